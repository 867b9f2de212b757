//! The fused attention variant for CPU adapters with 8-wide subgroups
//! (`shaders/attention_texture.wgsl`), chosen automatically on lavapipe: one query row per
//! invocation, K and V packed into textures by `matmul_pack` and shared across the subgroup by
//! `subgroupBroadcast`, because lavapipe loads storage buffers and workgroup memory one SIMD
//! lane at a time but fetches texels as vector gathers. Same contract as
//! [`attention::plan`](super::attention::plan); the CPU reference is
//! [`crate::cpu::attention`].

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::attention::AttentionDims;
use crate::ops::loop_limit::looped;
use crate::ops::matmul_texture::{off_power_of_two, pack, PackLayout};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// Uniform parameters of `shaders/attention_texture.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionTextureParams {
    nq: u32,
    nk: u32,
    heads: u32,
    d: u32,
    row: u32,
    texels: u32,
    q_first: u32,
    o_first: u32,
    mask_first: u32,
    flags: u32,
    scale: f32,
    _pad: u32,
}

/// Invocations per workgroup: one subgroup, one query row each.
const SUBGROUP: u32 = 8;

// Keep in sync with the FLAG_ constants of shaders/attention_texture.wgsl.
const FLAG_CAUSAL: u32 = 1;
const FLAG_MASK: u32 = 2;

/// Whether the texture variant can run this problem here: subgroups of exactly 8, textures and
/// the dispatch grid within the adapter's limits, and every operand in one binding.
pub fn eligible(gpu: &Gpu, dims: &AttentionDims, tensors: &[&Tensor]) -> bool {
    let info = gpu.adapter_info();
    let l = gpu.limits();
    let subgroups = gpu.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == SUBGROUP
        && info.subgroup_max_size == SUBGROUP;
    let max_dim = l.max_texture_dimension_2d as usize;
    let textures_fit = off_power_of_two(dims.nk.next_multiple_of(4)) <= max_dim
        && off_power_of_two(dims.head_dim.div_ceil(4)) <= max_dim
        && dims.batch * dims.heads <= l.max_texture_array_layers as usize;
    let groups = l.max_compute_workgroups_per_dimension as usize;
    let grid_fits = dims.nq.div_ceil(SUBGROUP as usize) <= groups
        && dims.heads <= groups
        && dims.batch <= groups;
    let capacity = window_capacity(gpu);
    let bindings_fit = tensors.iter().all(|t| t.len() <= capacity);
    subgroups && textures_fit && grid_fits && bindings_fit
}

/// An upper bound of the loop passes of the busiest invocation over `nk` keys with head
/// dimension `head_dim`, counted as [`looped`] says (`Loops:` in
/// `shaders/attention_texture.wgsl`): the query row's load and the output's store, 8 texels
/// per chunk of 32 values (CHUNKS = ceil(D / 32)) each a loop over its 4 values, and one pass
/// per 4 keys. Far within lavapipe's limit wherever the variant is eligible (its K and V
/// textures hold at most 16,384 keys there).
pub fn loop_iterations(head_dim: usize, nk: usize) -> u64 {
    let chunks = head_dim.div_ceil(32) as u64;
    2 * chunks * 8 * looped(4, 0, 0) + looped((nk as u64).div_ceil(4), 0, 0)
}

/// Plans `out = attention(q, k, v)`; shapes already checked into `dims` by the caller, `scale`
/// resolved. Errors where the adapter cannot run this variant ([`eligible`]).
#[expect(
    clippy::too_many_arguments,
    reason = "the operands and options of one attention, all named"
)]
pub fn plan(
    gpu: &Gpu,
    dims: &AttentionDims,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    out: &Tensor,
    scale: f32,
    causal: bool,
) -> Result<Vec<Dispatch>> {
    let mut tensors = vec![q, k, v, out];
    tensors.extend(key_mask);
    if !eligible(gpu, dims, &tensors) {
        return Err(Error::invalid(format!(
            "the texture variant of attention needs subgroups of exactly 8 invocations, \
             textures of {} rows and {} layers, and every operand in one binding; this adapter \
             or problem ({dims:?}) does not allow it (use the subgroup or workgroup variant)",
            dims.nk,
            dims.batch * dims.heads
        )));
    }
    let (d, row) = (dims.head_dim, dims.row_len());
    let layout = PackLayout {
        rows: dims.nk,
        cols: d,
        // Keys are read 4 at a time: rows up to the next multiple of 4 exist (zeros).
        height: dims.nk.next_multiple_of(4),
        row_stride: row,
        col_stride: 1,
        batch_stride: dims.nk * row,
        heads: dims.heads,
        head_stride: d,
        layers: dims.batch * dims.heads,
    };
    let (k_view, pack_k) = pack(gpu, k, &layout)?;
    let (v_view, pack_v) = pack(gpu, v, &layout)?;
    let texels = d.div_ceil(4);
    let chunks = d.div_ceil(32);
    let pipeline = gpu.pipeline(&shaders::ATTENTION_TEXTURE, &[("CHUNKS", chunks as f64)])?;
    let qw = q.window(gpu, 0, q.len());
    let ow = out.window(gpu, 0, out.len());
    let mw = key_mask.map(|m| m.window(gpu, 0, m.len()));
    let mut flags = 0;
    if causal {
        flags |= FLAG_CAUSAL;
    }
    if mw.is_some() {
        flags |= FLAG_MASK;
    }
    let params = AttentionTextureParams {
        nq: dims.nq as u32,
        nk: dims.nk as u32,
        heads: dims.heads as u32,
        d: d as u32,
        row: row as u32,
        texels: texels as u32,
        q_first: qw.first,
        o_first: ow.first,
        mask_first: mw.as_ref().map_or(0, |w| w.first),
        flags,
        scale,
        _pad: 0,
    };
    let uniform = gpu.uniform("speckle.attention_texture.params", &params);
    let bind_group = gpu.bind_group(
        &pipeline,
        &[
            uniform.as_entire_binding(),
            qw.resource(),
            wgpu::BindingResource::TextureView(&k_view),
            wgpu::BindingResource::TextureView(&v_view),
            Window::or_placeholder(mw.as_ref(), gpu),
            ow.resource(),
        ],
    );
    let attend = Dispatch::kernel(
        pipeline,
        bind_group,
        [
            dims.nq.div_ceil(SUBGROUP as usize) as u32,
            dims.heads as u32,
            dims.batch as u32,
        ],
    );
    let mut dispatches = pack_k;
    dispatches.extend(pack_v);
    dispatches.push(attend);
    Ok(dispatches)
}
