//! The texture path of matmul for CPU adapters with 8-wide subgroups (lavapipe): op(A) and
//! op(B) are copied into rgba32float texture arrays (by buffer-to-texture copies, from the
//! operand itself where its layout allows, else from a staging buffer that
//! `shaders/matmul_pack.wgsl` fills), then
//! `shaders/matmul_texture.wgsl` computes the product from them. lavapipe (Mesa 22.3) loads
//! from storage buffers one SIMD lane at a time but fetches texels as vector gathers, which
//! makes this path about ten times faster there (see the kernel's header for the figures).
//! [`crate::ops::matmul::plan`] chooses it; this module plans it.

use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, TextureCopy, Work};
use crate::ops::matmul::{max_k_per_dispatch, MatmulDims, MatmulOptions, MatmulParams};
use crate::shaders;
use crate::tensor::{window_capacity, Operand, Tensor, Window};

/// Uniform parameters of `shaders/matmul_pack.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PackParams {
    cols: u32,
    texels: u32,
    out_stride: u32,
    x_first: u32,
    row_stride: u32,
    col_stride: u32,
    batch_stride: u32,
    heads: u32,
    head_stride: u32,
    layer0: u32,
    r0: u32,
    count: u32,
}

/// Texels in 256 bytes: the pack kernel's rows start that far apart, as wgpu's
/// buffer-to-texture copies ask.
const TEXELS_PER_COPY_ALIGNMENT: usize = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize / 16;

/// Subgroup size the texture kernel is written for (its workgroup is one subgroup).
const SUBGROUP: u32 = 8;
/// Rows and columns of C per workgroup (see `shaders/matmul_texture.wgsl`; TILE_M is ROWS in
/// `scripts/gen_matmul_texture.py`, which writes it).
const TILE_M: usize = 32;
const TILE_N: usize = 32;

/// Texture layers an operand needs: one per batch, or one shared by the batch.
fn layers(batch: usize, batch_stride: usize) -> usize {
    if batch_stride == 0 {
        1
    } else {
        batch
    }
}

/// True when the texture path can compute this product on `gpu`: subgroups of exactly 8,
/// textures large enough for op(A) (m × k/4 texels) and op(B) (k × n/4), every operand in one
/// binding, and a grid within the dispatch limits.
pub fn eligible(gpu: &Gpu, d: &MatmulDims, a: &Tensor, b: &Tensor, c: &Tensor) -> bool {
    eligible_operands(gpu, d, a, b, c.len())
}

/// True when the texture path runs this product: [`eligible_operands`], and the shared
/// dimension within one dispatch's loop limit (the kernel covers k in one dispatch, one loop
/// iteration per 4 values). What `matmul` and `matmul_f16` check before they take it.
pub(crate) fn takes<A: Operand + ?Sized, B: Operand + ?Sized>(
    gpu: &Gpu,
    d: &MatmulDims,
    a: &A,
    b: &B,
    c_len: usize,
) -> Result<bool> {
    Ok(d.k.div_ceil(4) <= max_k_per_dispatch(gpu)? && eligible_operands(gpu, d, a, b, c_len))
}

/// [`eligible`] for operands of either precision (f16 operands are widened as they are
/// packed) and an output of `c_len` values.
pub(crate) fn eligible_operands<A: Operand + ?Sized, B: Operand + ?Sized>(
    gpu: &Gpu,
    d: &MatmulDims,
    a: &A,
    b: &B,
    c_len: usize,
) -> bool {
    let info = gpu.adapter_info();
    let l = gpu.limits();
    let subgroups = gpu.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == SUBGROUP
        && info.subgroup_max_size == SUBGROUP;
    let dim = l.max_texture_dimension_2d as usize;
    let fits = |v: usize| off_power_of_two(v) <= dim;
    let textures_fit = fits(d.m)
        && fits(d.k.div_ceil(4))
        && fits(d.k.next_multiple_of(4))
        && fits(d.n.div_ceil(4))
        && layers(d.batch, d.a_batch_stride).max(layers(d.batch, d.b_batch_stride))
            <= l.max_texture_array_layers as usize;
    let capacity = window_capacity(gpu);
    let bindings_fit = a.elements() <= capacity && b.elements() <= capacity && c_len <= capacity;
    let groups = l.max_compute_workgroups_per_dimension as usize;
    let grid_fits =
        d.n.div_ceil(TILE_N) <= groups && d.m.div_ceil(TILE_M) <= groups && d.batch <= groups;
    subgroups && textures_fit && bindings_fit && grid_fits
}

/// The smallest size at least `v` that is not a power of two. lavapipe compiles a separate
/// variant of a shader for each combination of power-of-two texture sizes it sees (seconds
/// each); keeping every size off powers of two keeps it to one.
pub(crate) fn off_power_of_two(v: usize) -> usize {
    let mut v = v.max(1);
    while v.is_power_of_two() {
        v += 1;
    }
    v
}

/// An rgba32float texture array filled by the pack kernel or by copies and read by the matmul
/// kernel.
fn operand_texture(
    gpu: &Gpu,
    texels_x: usize,
    height: usize,
    layers: usize,
) -> Result<(wgpu::Texture, wgpu::TextureView)> {
    let device = gpu.device();
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("speckle.matmul_texture.operand"),
        size: wgpu::Extent3d {
            width: texels_x as u32,
            height: height as u32,
            depth_or_array_layers: layers as u32,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    gpu.check_scopes(
        &format!("allocating a {texels_x}x{height}x{layers} matmul operand texture"),
        memory,
        validation,
    )?;
    let view = texture.create_view(&wgpu::TextureViewDescriptor {
        dimension: Some(wgpu::TextureViewDimension::D2Array),
        ..Default::default()
    });
    Ok((texture, view))
}

/// Plans the pack of op(X) (`rows` × `cols` per layer, strides in elements) into a texture.
/// Where an operand's values are: op(X)[l][r, c] = x[first + (l / heads) · batch_stride +
/// (l % heads) · head_stride + r · row_stride + c · col_stride] for `layers` layers of `rows`
/// × `cols` values, packed into textures of at least `height` rows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PackLayout {
    pub first: usize,
    pub rows: usize,
    pub cols: usize,
    pub height: usize,
    pub row_stride: usize,
    pub col_stride: usize,
    pub batch_stride: usize,
    pub heads: usize,
    pub head_stride: usize,
    pub layers: usize,
}

/// A texture holding the operand `x` laid out as `layout` says, and the work that fills it
/// (zero past `cols` and `rows`). Dimensions are kept off powers of two.
///
/// Where every layer's rows are whole texels of consecutive values that wgpu can copy (see
/// [`copy_offsets`]), the work is one buffer-to-texture copy per layer; otherwise the
/// matmul_pack kernel lays the rows out that way in a staging buffer, a piece that fits one
/// binding at a time, and one copy moves each piece (all its layers). The copies
/// leave the texels past `cols` and the rows past `rows` unwritten: wgpu zero-initializes a
/// texture before its first partial copy, and no later step writes there. On lavapipe the
/// copies of both operands of n = 1024 take 0.3–0.4 ms, and the whole product about 10 %
/// less time than with the pack kernel (BENCHMARKS.md).
pub(crate) fn pack<X: Operand + ?Sized>(
    gpu: &Gpu,
    x: &X,
    layout: &PackLayout,
) -> Result<(wgpu::TextureView, Vec<Dispatch>)> {
    let texels_x = off_power_of_two(layout.cols.div_ceil(4));
    let height = off_power_of_two(layout.height);
    let (texture, view) = operand_texture(gpu, texels_x, height, layout.layers)?;
    // Rows `row .. row + rows` of `layers` layers from layer `layer`, their rows following
    // each other in `buffer`.
    let copy = |buffer: &wgpu::Buffer,
                offset: u64,
                bytes_per_row: usize,
                [layer, layers, row, rows]: [usize; 4]| {
        Dispatch {
            work: Work::CopyToTexture(TextureCopy {
                buffer: buffer.clone(),
                offset,
                bytes_per_row: bytes_per_row as u32,
                texture: texture.clone(),
                layer: layer as u32,
                layers: layers as u32,
                row: row as u32,
                size: [layout.cols.div_ceil(4) as u32, rows as u32],
            }),
        }
    };
    let window = x.window_of(gpu, 0, x.elements());
    // An f16 operand is always widened by the pack kernel.
    if let Some(offsets) = copy_offsets(layout).filter(|_| !x.halves()) {
        let copies = offsets
            .into_iter()
            .enumerate()
            .map(|(l, offset)| {
                copy(
                    window.binding.buffer,
                    offset,
                    layout.row_stride * 4,
                    [l, 1, 0, layout.rows],
                )
            })
            .collect();
        return Ok((view, copies));
    }
    let texels = layout.cols.div_ceil(4);
    let stride = texels.next_multiple_of(TEXELS_PER_COPY_ALIGNMENT);
    // An operand stored transposed reads consecutive values along its rows.
    let rows_first = layout.row_stride == 1 && layout.col_stride != 1;
    let pipeline = gpu.pipeline_entry(
        &shaders::MATMUL_PACK,
        if x.halves() { "main_f16" } else { "main" },
        &[("ROWS_FIRST", f64::from(u8::from(rows_first)))],
    )?;
    // The pieces: groups of whole layers where one layer's texels fit a binding and its rows a
    // grid dimension (8 per workgroup), else ranges of one layer's rows. Each is laid out in
    // one staging buffer, then copied, before the next piece reuses the buffer: the staging
    // memory stays within one binding however the rows' padding to 256 bytes inflates them.
    let per_row = 4 * stride;
    let grid = gpu.limits().max_compute_workgroups_per_dimension as usize;
    let most_rows = (window_capacity(gpu) / per_row).min(8 * grid).max(1);
    let mut pieces = Vec::new(); // (layer0, layers, r0, count)
    if layout.rows <= most_rows {
        let per_group = (window_capacity(gpu) / (per_row * layout.rows.max(1)))
            .min(grid)
            .max(1);
        for l0 in (0..layout.layers).step_by(per_group) {
            pieces.push((l0, per_group.min(layout.layers - l0), 0, layout.rows));
        }
    } else {
        for l in 0..layout.layers {
            for r0 in (0..layout.rows).step_by(most_rows) {
                pieces.push((l, 1, r0, most_rows.min(layout.rows - r0)));
            }
        }
    }
    let largest = pieces
        .iter()
        .map(|&(_, layers, _, count)| layers * count)
        .max()
        .unwrap_or(1);
    let staging = Tensor::empty(gpu, &[largest.max(1) * per_row])?;
    let mut dispatches = Vec::new();
    for (layer0, layers, r0, count) in pieces {
        let out = staging.window(gpu, 0, layers * count * per_row);
        let params = PackParams {
            cols: layout.cols as u32,
            texels: texels as u32,
            out_stride: stride as u32,
            x_first: window.first + layout.first as u32,
            row_stride: layout.row_stride as u32,
            col_stride: layout.col_stride as u32,
            batch_stride: layout.batch_stride as u32,
            heads: layout.heads.max(1) as u32, // a divisor in the (trusted) kernel
            head_stride: layout.head_stride as u32,
            layer0: layer0 as u32,
            r0: r0 as u32,
            count: count as u32,
        };
        let uniform = gpu.uniform("speckle.matmul_pack.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                window.resource(),
                out.resource(),
            ],
        );
        let (rows_groups, texel_groups) = (count.div_ceil(8) as u32, texels.div_ceil(8) as u32);
        let grid = if rows_first {
            [rows_groups, texel_groups, layers as u32]
        } else {
            [texel_groups, rows_groups, layers as u32]
        };
        dispatches.push(Dispatch::kernel(pipeline.clone(), bind_group, grid));
        dispatches.push(copy(
            staging.buffer(),
            0,
            stride * 16,
            [layer0, layers, r0, count],
        ));
    }
    Ok((view, dispatches))
}

/// The byte offset of each layer's first value when `layout` can be filled by buffer-to-
/// texture copies, `None` when it needs the pack kernel. A copy moves whole rgba32float
/// texels of consecutive values, so a row must be contiguous (`col_stride` 1) and a whole
/// number of texels (`cols` a multiple of 4), and wgpu asks that rows start a multiple of
/// 256 bytes apart and each copy at a multiple of 16 bytes (the texel size).
pub(crate) fn copy_offsets(layout: &PackLayout) -> Option<Vec<u64>> {
    let rows_aligned =
        (layout.row_stride * 4).is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize);
    if layout.col_stride != 1 || !layout.cols.is_multiple_of(4) || !rows_aligned {
        return None;
    }
    let heads = layout.heads.max(1);
    let offsets: Vec<u64> = (0..layout.layers)
        .map(|l| {
            (layout.first + (l / heads) * layout.batch_stride + (l % heads) * layout.head_stride)
                as u64
                * 4
        })
        .collect();
    offsets
        .iter()
        .all(|o| o.is_multiple_of(16))
        .then_some(offsets)
}

/// Plans the product through textures; the caller has checked [`eligible`] and the shapes.
pub fn plan(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    d: &MatmulDims,
) -> Result<Vec<Dispatch>> {
    plan_operands(gpu, a, b, c, o, d)
}

/// [`plan`] for operands of either precision: f16 operands are widened to f32 as the pack
/// kernel lays them out, so the product is the f32 product of their values.
pub(crate) fn plan_operands<A: Operand + ?Sized, B: Operand + ?Sized>(
    gpu: &Gpu,
    a: &A,
    b: &B,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    d: &MatmulDims,
) -> Result<Vec<Dispatch>> {
    let (a_layers, b_layers) = (
        layers(d.batch, d.a_batch_stride),
        layers(d.batch, d.b_batch_stride),
    );
    // op(A)[r, kk]: A[r * k + kk] (N) or A[kk * m + r] (T); op(B)[kk, j]: B[kk * n + j] (N) or
    // B[j * k + kk] (T). B's texture is padded to whole texels along k with zero rows.
    let (a_rs, a_cs) = if o.trans_a { (1, d.m) } else { (d.k, 1) };
    let (b_rs, b_cs) = if o.trans_b { (1, d.k) } else { (d.n, 1) };
    let (a_view, pack_a) = pack(
        gpu,
        a,
        &PackLayout {
            first: 0,
            rows: d.m,
            cols: d.k,
            height: d.m,
            row_stride: a_rs,
            col_stride: a_cs,
            batch_stride: d.a_batch_stride,
            heads: 1,
            head_stride: 0,
            layers: a_layers,
        },
    )?;
    let (b_view, pack_b) = pack(
        gpu,
        b,
        &PackLayout {
            first: 0,
            rows: d.k,
            cols: d.n,
            height: d.k.next_multiple_of(4),
            row_stride: b_rs,
            col_stride: b_cs,
            batch_stride: d.b_batch_stride,
            heads: 1,
            head_stride: 0,
            layers: b_layers,
        },
    )?;

    let pipeline = gpu.pipeline(&shaders::MATMUL_TEXTURE, &[])?;
    let cw = c.window(gpu, 0, c.len());
    let bias_window = o.bias.map(|t| t.window(gpu, 0, t.len()));
    let params = MatmulParams {
        a_batch_stride: u32::from(a_layers > 1),
        b_batch_stride: u32::from(b_layers > 1),
        ..MatmulParams::whole(d, o, cw.first, bias_window.as_ref().map(|w| w.first))
    };
    let uniform = gpu.uniform("speckle.matmul_texture.params", &params);
    let bias_resource = Window::or_placeholder(bias_window.as_ref(), gpu);
    let bind_group = gpu.bind_group(
        &pipeline,
        &[
            uniform.as_entire_binding(),
            wgpu::BindingResource::TextureView(&a_view),
            wgpu::BindingResource::TextureView(&b_view),
            bias_resource,
            cw.resource(),
        ],
    );
    let product = Dispatch::kernel(
        pipeline,
        bind_group,
        [
            d.n.div_ceil(TILE_N) as u32,
            d.m.div_ceil(TILE_M) as u32,
            d.batch as u32,
        ],
    );
    let mut dispatches = pack_a;
    dispatches.extend(pack_b);
    dispatches.push(product);
    Ok(dispatches)
}
