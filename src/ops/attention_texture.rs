//! The fused attention variant for CPU adapters with 8-wide subgroups
//! (`shaders/attention_texture.wgsl`), chosen automatically on lavapipe: one query row per
//! invocation, two where enough workgroups remain ([`pairs_on`]), or one per workgroup with
//! its keys split over the lanes for a single query ([`QueryLayout`]); K and V packed into
//! textures by `matmul_pack` and shared across the subgroup by `subgroupBroadcast`, because
//! lavapipe loads storage buffers and workgroup memory one SIMD lane at a time but fetches
//! texels as vector gathers. Same contract as [`attention::plan`](super::attention::plan); the
//! CPU reference is [`crate::cpu::attention`].
//!
//! Any number of keys: a dispatch takes at most what one texture holds and the adapter's loop
//! limit allows ([`keys_per_dispatch`]: 16,380 keys on lavapipe); longer problems run one
//! dispatch per range of keys ([`key_ranges`]), each writing its partial output and its rows'
//! log-sum-exps, which [`attention_combine`] merges as for the other attention kernels.
//! Measured on lavapipe (`speckle bench attention --shape 1,4,40000,64
//! --queries 256`): 389 ms in three ranges, against 3,535 ms for the subgroup variant that took
//! such keys before (BENCHMARKS.md).

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::attention::AttentionDims;
use crate::ops::attention_combine;
use crate::ops::loop_limit::{largest_within, looped};
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
    k_row0: u32,
    mask_stride: u32,
    lse_first: u32,
    _pad0: u32,
    _pad1: u32,
}

/// Invocations per workgroup: one subgroup, one query row each.
const SUBGROUP: u32 = 8;

// Keep in sync with the FLAG_ constants of shaders/attention_texture.wgsl.
const FLAG_CAUSAL: u32 = 1;
const FLAG_MASK: u32 = 2;
const FLAG_LSE: u32 = 4;

/// Whether the texture variant can run this problem here: subgroups of exactly 8, textures and
/// the dispatch grid within the adapter's limits, and every operand in one binding.
pub fn eligible(gpu: &Gpu, dims: &AttentionDims, tensors: &[&Tensor]) -> bool {
    let info = gpu.adapter_info();
    let l = gpu.limits();
    let subgroups = gpu.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == SUBGROUP
        && info.subgroup_max_size == SUBGROUP;
    let max_dim = l.max_texture_dimension_2d as usize;
    // Keys go to the textures in ranges of at most `texture_keys` (at least 4).
    let textures_fit = texture_keys(gpu) >= 4
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

/// How the texture kernel lays a problem's query rows over a subgroup's 8 lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryLayout {
    /// One query row per lane (`main`).
    OnePerLane,
    /// Two query rows per lane (`main` with PAIR): every fetched texel serves both.
    TwoPerLane,
    /// One query row per workgroup, its keys split over the lanes (`main_one`): for decoding
    /// steps of one query, where the other layouts leave 7 of 8 lanes on rows never written.
    KeysSplit,
}

/// The layout for `dims` on this machine's CPU cores, which run the CPU adapter: the keys split
/// over the lanes for one query row, else [`pairs_on`] with the cores' count.
pub fn layout(dims: &AttentionDims) -> QueryLayout {
    if dims.nq == 1 {
        QueryLayout::KeysSplit
    } else if pairs_on(dims, crate::cpu_cores()) {
        QueryLayout::TwoPerLane
    } else {
        QueryLayout::OnePerLane
    }
}

/// Whether each invocation should hold two query rows where the adapter runs `cores`
/// workgroups at once: where there are more query rows than one subgroup's 8, and the paired
/// workgroups (16 query rows each) still number at least `cores`. Every fetched texel of K
/// and V then serves two rows. On lavapipe, 2 cores, paired against not: 1, 4, 1024, 64
/// 25.2–26.2 against 38.8 ms, D = 16 to 256 1.36–1.57× faster; but 16 queries of one head over
/// 40,000 keys (one workgroup per range instead of two) 9.3–9.4 against 7.6–7.8 ms
/// (BENCHMARKS.md).
pub fn pairs_on(dims: &AttentionDims, cores: usize) -> bool {
    let paired_groups = dims.nq.div_ceil(2 * SUBGROUP as usize) * dims.heads * dims.batch;
    dims.nq > SUBGROUP as usize && paired_groups >= cores
}

/// An upper bound of the loop passes of the busiest invocation of one dispatch over `nk` keys
/// with head dimension `head_dim`, counted as `ops::loop_limit` says (`Loops:` in
/// `shaders/attention_texture.wgsl`): the query rows' loads and the outputs' stores (two of
/// each where the invocation holds two queries, [`QueryLayout::TwoPerLane`]), 8 texels per
/// chunk of 32 values (CHUNKS = ceil(D / 32)) each a loop over its 4 values, and one pass per 4
/// keys (fewer with [`QueryLayout::KeysSplit`], whose lanes take every 8th block of keys).
pub fn loop_iterations(head_dim: usize, nk: usize) -> u64 {
    let chunks = head_dim.div_ceil(32) as u64;
    2 * 2 * chunks * 8 * looped(4, 0, 0) + looped((nk as u64).div_ceil(4), 0, 0)
}

/// The most key rows one texture holds: a multiple of 4 (keys are read 4 at a time) whose
/// height stays off powers of two (`matmul_texture::off_power_of_two`) within the adapter's
/// `max_texture_dimension_2d`. 16,380 on lavapipe.
pub fn texture_keys(gpu: &Gpu) -> usize {
    let max = gpu.limits().max_texture_dimension_2d as usize;
    let rows = max / 4 * 4;
    if off_power_of_two(rows) > max {
        rows.saturating_sub(4)
    } else {
        rows
    }
}

/// The most keys one dispatch takes on `gpu` with head dimension `head_dim`: what a texture
/// holds ([`texture_keys`]), fewer where the adapter's loop limit ([`Gpu::loop_limit`]) allows
/// fewer passes ([`loop_iterations`]); 4 (which the loop-limit check then refuses) where not
/// even 4 keys fit. Longer problems run as several dispatches over ranges of keys, merged by
/// their log-sum-exp.
pub fn keys_per_dispatch(gpu: &Gpu, head_dim: usize) -> Result<usize> {
    Ok(keys_within(gpu, gpu.loop_limit()?, head_dim))
}

/// [`keys_per_dispatch`] under the loop limit `limit` (`None`: no limit).
pub(crate) fn keys_within(gpu: &Gpu, limit: Option<u64>, head_dim: usize) -> usize {
    let rows = texture_keys(gpu);
    let Some(limit) = limit else {
        return rows.max(4);
    };
    let fit = largest_within(limit, rows as u64, |n| {
        loop_iterations(head_dim, n as usize)
    })
    .unwrap_or(0) as usize;
    (fit / 4 * 4).max(4)
}

/// The ranges of keys `(k0, n)` the dispatches take: as few as [`keys_per_dispatch`] allows,
/// of equal length (a multiple of 4, the last shorter); with the causal mask, none that starts
/// at or past Nq (no query sees those keys: top-left alignment).
pub fn key_ranges(gpu: &Gpu, dims: &AttentionDims, causal: bool) -> Result<Vec<(usize, usize)>> {
    let most = keys_per_dispatch(gpu, dims.head_dim)?;
    let count = dims.nk.div_ceil(most);
    let len = dims.nk.div_ceil(count).next_multiple_of(4).min(most);
    Ok((0..dims.nk)
        .step_by(len)
        .filter(|&k0| !causal || k0 == 0 || k0 < dims.nq)
        .map(|k0| (k0, len.min(dims.nk - k0)))
        .collect())
}

/// Plans `out = attention(q, k, v)`; shapes already checked into `dims` by the caller, `scale`
/// resolved, the query rows laid out as `layout` says (the caller's choice: [`layout`]). Errors
/// where the adapter cannot run this variant ([`eligible`]). Keys beyond one
/// dispatch's ([`keys_per_dispatch`]) run as several dispatches over [`key_ranges`], merged by
/// [`attention_combine`] (see `shaders/attention_texture.wgsl`).
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
    layout: QueryLayout,
) -> Result<Vec<Dispatch>> {
    let mut tensors = vec![q, k, v, out];
    tensors.extend(key_mask);
    if !eligible(gpu, dims, &tensors) {
        return Err(Error::invalid(format!(
            "the texture variant of attention needs subgroups of exactly 8 invocations, \
             textures of {} layers, and every operand in one binding; this adapter or problem \
             ({dims:?}) does not allow it (use the subgroup or workgroup variant)",
            dims.batch * dims.heads
        )));
    }
    let (d, row) = (dims.head_dim, dims.row_len());
    let texels = d.div_ceil(4);
    let chunks = d.div_ceil(32);
    let ranges = key_ranges(gpu, dims, causal)?;
    let pair = layout == QueryLayout::TwoPerLane;
    let (entry, queries_per_group) = match layout {
        QueryLayout::OnePerLane => ("main", SUBGROUP as usize),
        QueryLayout::TwoPerLane => ("main", 2 * SUBGROUP as usize),
        QueryLayout::KeysSplit => ("main_one", 1),
    };
    let pipeline = gpu.pipeline_entry(
        &shaders::ATTENTION_TEXTURE,
        entry,
        &[
            ("CHUNKS", chunks as f64),
            ("PAIR", f64::from(u8::from(pair))),
        ],
    )?;
    // With several ranges, each writes its partial output and its rows' log-sum-exps into its
    // slice of these, and attention_combine merges them into `out`.
    let rows = dims.batch * dims.nq;
    let partials = if ranges.len() > 1 {
        Some((
            Tensor::empty(gpu, &[ranges.len(), rows, row])?,
            Tensor::empty(gpu, &[ranges.len(), rows, dims.heads])?,
        ))
    } else {
        None
    };
    let qw = q.window(gpu, 0, q.len());
    let mw = key_mask.map(|m| m.window(gpu, 0, m.len()));
    let mut dispatches = Vec::new();
    for (index, &(k0, nk)) in ranges.iter().enumerate() {
        let layout = PackLayout {
            first: k0 * row,
            rows: nk,
            cols: d,
            // Keys are read 4 at a time: rows up to the next multiple of 4 exist (zeros).
            height: nk.next_multiple_of(4),
            row_stride: row,
            col_stride: 1,
            batch_stride: dims.nk * row,
            heads: dims.heads,
            head_stride: d,
            layers: dims.batch * dims.heads,
        };
        let (k_view, pack_k) = pack(gpu, k, &layout)?;
        let (v_view, pack_v) = pack(gpu, v, &layout)?;
        let mut flags = 0;
        if causal {
            flags |= FLAG_CAUSAL;
        }
        if mw.is_some() {
            flags |= FLAG_MASK;
        }
        let (ow, lw) = match &partials {
            Some((o, l)) => {
                flags |= FLAG_LSE;
                let (plane, lse_plane) = (rows * row, rows * dims.heads);
                (
                    o.window(gpu, index * plane, plane),
                    Some(l.window(gpu, index * lse_plane, lse_plane)),
                )
            }
            None => (out.window(gpu, 0, out.len()), None),
        };
        let params = AttentionTextureParams {
            nq: dims.nq as u32,
            nk: nk as u32,
            heads: dims.heads as u32,
            d: d as u32,
            row: row as u32,
            texels: texels as u32,
            q_first: qw.first,
            o_first: ow.first,
            mask_first: mw.as_ref().map_or(0, |w| w.first + k0 as u32),
            flags,
            scale,
            k_row0: k0 as u32,
            mask_stride: dims.nk as u32,
            lse_first: lw.as_ref().map_or(0, |w| w.first),
            _pad0: 0,
            _pad1: 0,
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
                Window::or_unused_output(lw.as_ref(), gpu),
            ],
        );
        dispatches.extend(pack_k);
        dispatches.extend(pack_v);
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            [
                dims.nq.div_ceil(queries_per_group) as u32,
                dims.heads as u32,
                dims.batch as u32,
            ],
        ));
    }
    if let Some((o, l)) = &partials {
        let merged = out.view(&[rows, row])?;
        dispatches.extend(attention_combine::plan(gpu, o, l, &merged)?);
    }
    Ok(dispatches)
}
