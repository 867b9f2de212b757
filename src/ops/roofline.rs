//! The measured roofline (`shaders/roofline.wgsl`): the adapter's peak FMA throughput (MODE 0,
//! independent vec4 FMA chains) and its copy bandwidth (MODE 1, `dst = src` over vec4s), timed
//! with [`time_dispatches`] and reported as medians.
//!
//! Loops: an FMA invocation runs `iters` rounds in one loop, which cannot be split (a chain
//! continues from its last value): rounds past the adapter's loop limit are refused (lavapipe
//! ends an invocation's loops after 65,535 iterations, silently; the chains converge, so the
//! values would still look right, but the flops counted would not have run). The copy has no
//! loop: one vec4 per invocation.

use crate::bench::{time_dispatches, Timing};
use crate::error::{Error, Result};
use crate::gpu::{AdapterSummary, Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Independent vec4 accumulators per invocation of the FMA mode (`ACC` in the kernel).
pub const ACCUMULATORS: usize = 8;
/// Flops of one round of one invocation: an FMA (2 flops) on each lane of each accumulator.
pub const FLOPS_PER_ROUND: f64 = (2 * 4 * ACCUMULATORS) as f64;
/// The FMA chains' multiplier: |mul| < 1 makes every chain contract to add / (1 − mul), so the
/// values stay in [0, 2) and the f32 rounding error stays bounded however long the chain.
pub const MUL: f32 = 0.5;
/// The FMA chains' addend.
pub const ADD: f32 = 0.25;

const MODE_FMA: u32 = 0;
const MODE_COPY: u32 = 1;

/// Uniform parameters of `shaders/roofline.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RooflineParams {
    n: u32,
    iters: u32,
    _pad: u32,
    base: u32,
    src_first: u32,
    dst_first: u32,
    mul: f32,
    add: f32,
}

fn workgroup_size(gpu: &Gpu) -> u32 {
    let l = gpu.limits();
    l.max_compute_invocations_per_workgroup
        .min(l.max_compute_workgroup_size_x)
        .clamp(1, 256)
}

fn dispatch(
    gpu: &Gpu,
    mode: u32,
    params: RooflineParams,
    src: wgpu::BindingResource<'_>,
    dst: wgpu::BindingResource<'_>,
    workgroups: usize,
) -> Result<Dispatch> {
    let wg = workgroup_size(gpu);
    let pipeline = gpu.pipeline(
        &shaders::ROOFLINE,
        &[("MODE", f64::from(mode)), ("WG", f64::from(wg))],
    )?;
    let uniform = gpu.uniform("speckle.roofline.params", &params);
    let bind_group = gpu.bind_group(&pipeline, &[uniform.as_entire_binding(), src, dst]);
    Ok(Dispatch::kernel(
        pipeline,
        bind_group,
        gpu.grid(workgroups as u32),
    ))
}

/// Loop iterations of an FMA invocation (MODE 0) running `iters` rounds: one pass per round,
/// and one more for the loop's exiting test (lavapipe counts it too).
pub fn fma_loops(iters: u32) -> u64 {
    u64::from(iters) + 1
}

/// Plans the FMA mode: `invocations` invocations run `iters` rounds of [`ACCUMULATORS`] vec4
/// FMA chains (`a = fma(a, MUL, ADD)`) each and write their sum, a vec4, to `out`
/// (`4 · invocations` values; invocation g writes `out[4g .. 4g + 4]`). The work is
/// [`FLOPS_PER_ROUND`] · `iters` · `invocations` flops. Each invocation loops over the rounds
/// ([`fma_loops`]): an [`Error::LoopLimit`] where that passes the adapter's loop limit.
pub fn plan_fma(gpu: &Gpu, invocations: usize, iters: u32, out: &Tensor) -> Result<Vec<Dispatch>> {
    if out.len() != 4 * invocations {
        return Err(Error::shape(
            "roofline",
            format!(
                "{invocations} invocations write {} values but the output {:?} holds {}",
                4 * invocations,
                out.shape(),
                out.len()
            ),
        ));
    }
    if invocations > u32::MAX as usize {
        return Err(Error::invalid(format!(
            "roofline: {invocations} invocations; at most {} (seeds are u32 indices)",
            u32::MAX
        )));
    }
    if let Some(limit) = gpu.loop_limit()? {
        let most = limit.saturating_sub(fma_loops(0));
        gpu.check_loops(
            "roofline",
            fma_loops(iters),
            &format!("run at most {most} FMA rounds per invocation (--fma-iters {most})"),
        )?;
    }
    let wg = workgroup_size(gpu) as usize;
    let chunk = (window_capacity(gpu) / 4)
        .min(gpu.max_grid() * wg)
        .min(u32::MAX as usize)
        .max(1);
    let mut dispatches = Vec::new();
    let mut g0 = 0;
    while g0 < invocations {
        let n = chunk.min(invocations - g0);
        let w = out.window(gpu, 4 * g0, 4 * n);
        dispatches.push(dispatch(
            gpu,
            MODE_FMA,
            RooflineParams {
                n: n as u32,
                iters,
                _pad: 0,
                base: g0 as u32,
                src_first: 0,
                dst_first: w.first / 4,
                mul: MUL,
                add: ADD,
            },
            gpu.placeholder().as_entire_binding(),
            w.resource(),
            n.div_ceil(wg),
        )?);
        g0 += n;
    }
    Ok(dispatches)
}

/// Plans the copy mode: `dst = src`, element for element (bit for bit). Both hold the same
/// number of values, a multiple of 4; problems larger than one binding are split.
pub fn plan_copy(gpu: &Gpu, src: &Tensor, dst: &Tensor) -> Result<Vec<Dispatch>> {
    let len = src.len();
    if dst.len() != len || !len.is_multiple_of(4) {
        return Err(Error::shape(
            "roofline",
            format!(
                "the copy needs src and dst of the same length, a multiple of 4; got {:?} and {:?}",
                src.shape(),
                dst.shape()
            ),
        ));
    }
    let wg = workgroup_size(gpu) as usize;
    // Chunks start on a multiple of the binding alignment, so windows start on whole vec4s,
    // and hold at most one vec4 per invocation of the largest grid.
    let align = (gpu.binding_alignment().max(16) / 4) as usize;
    let capacity = window_capacity(gpu).min(gpu.max_grid().saturating_mul(wg * 4));
    let chunk = ((capacity / align) * align).max(align);
    let mut dispatches = Vec::new();
    let mut start = 0;
    while start < len {
        let n = chunk.min(len - start);
        let sw = src.window(gpu, start, n);
        let dw = dst.window(gpu, start, n);
        let vec4s = n / 4;
        let workgroups = vec4s.div_ceil(wg).max(1);
        dispatches.push(dispatch(
            gpu,
            MODE_COPY,
            RooflineParams {
                n: vec4s as u32,
                iters: 0,
                _pad: 0,
                base: 0,
                src_first: sw.first / 4,
                dst_first: dw.first / 4,
                mul: 0.0,
                add: 0.0,
            },
            sw.resource(),
            dw.resource(),
            workgroups,
        )?);
        start += n;
    }
    Ok(dispatches)
}

/// Options of [`measure`]; `None` sizes are chosen from the adapter.
#[derive(Clone, Debug)]
pub struct RooflineOptions {
    /// Invocations of the FMA mode (default 2¹⁴ on a CPU adapter, 2²⁰ on a GPU).
    pub fma_invocations: Option<usize>,
    /// Rounds of each FMA chain (default 1024 on a CPU adapter, 4096 on a GPU).
    pub fma_iters: Option<u32>,
    /// Bytes of the copy's source (the same again are written); default the binding limit
    /// clamped to 64–256 MiB.
    pub copy_bytes: Option<u64>,
    /// Untimed runs of each mode first.
    pub warmup: usize,
    /// Timed runs of each mode (medians reported).
    pub runs: usize,
    /// Time with the host clock even where GPU timestamps exist.
    pub wall_clock: bool,
}

impl Default for RooflineOptions {
    fn default() -> Self {
        RooflineOptions {
            fma_invocations: None,
            fma_iters: None,
            copy_bytes: None,
            warmup: 2,
            runs: 10,
            wall_clock: false,
        }
    }
}

/// The measured roofline of an adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Roofline {
    /// The adapter measured.
    pub adapter: AdapterSummary,
    /// Peak FMA throughput, GFLOP/s (an FMA counts 2 flops), from the median time.
    pub fma_gflops: f64,
    /// Copy bandwidth, GB/s (10⁹ bytes read + written per second), from the median time.
    pub copy_gbps: f64,
    /// The ridge point fma_gflops / copy_gbps: flops per byte moved above which a kernel can be
    /// compute-bound.
    pub ridge_flops_per_byte: f64,
    /// Invocations of the FMA mode.
    pub fma_invocations: usize,
    /// Rounds of each FMA chain.
    pub fma_iters: u32,
    /// Flops of one FMA run.
    pub fma_flops: f64,
    /// Timing of the FMA mode.
    pub fma: Timing,
    /// Bytes of the copy's source (as many are written).
    pub copy_bytes: u64,
    /// Timing of the copy mode.
    pub copy: Timing,
}

/// The default copy size: the binding limit clamped to 64–256 MiB (and to the largest buffer),
/// a multiple of 256 bytes.
fn default_copy_bytes(gpu: &Gpu) -> u64 {
    const MIB: u64 = 1 << 20;
    gpu.binding_limit()
        .clamp(64 * MIB, 256 * MIB)
        .min(gpu.limits().max_buffer_size)
        / 256
        * 256
}

/// Measures the adapter's peak FMA throughput and copy bandwidth.
pub fn measure(gpu: &Gpu, options: &RooflineOptions) -> Result<Roofline> {
    let cpu = gpu.is_cpu();
    let invocations = options
        .fma_invocations
        .unwrap_or(if cpu { 1 << 14 } else { 1 << 20 });
    let iters = options.fma_iters.unwrap_or(if cpu { 1024 } else { 4096 });
    let copy_bytes = options
        .copy_bytes
        .unwrap_or_else(|| default_copy_bytes(gpu));
    if invocations == 0 || iters == 0 || copy_bytes < 16 || !copy_bytes.is_multiple_of(16) {
        return Err(Error::invalid(format!(
            "roofline: need at least one FMA invocation and round and a copy of a positive \
             multiple of 16 bytes; got {invocations} invocations, {iters} rounds, {copy_bytes} bytes"
        )));
    }

    let out = Tensor::empty(gpu, &[invocations, 4])?;
    let fma_plan = plan_fma(gpu, invocations, iters, &out)?;
    let fma = time_dispatches(
        gpu,
        &fma_plan,
        options.warmup,
        options.runs,
        options.wall_clock,
    )?;
    drop(fma_plan);
    drop(out);

    let len = (copy_bytes / 4) as usize;
    let src = Tensor::zeros(gpu, &[len])?;
    let dst = Tensor::empty(gpu, &[len])?;
    let copy_plan = plan_copy(gpu, &src, &dst)?;
    let copy = time_dispatches(
        gpu,
        &copy_plan,
        options.warmup,
        options.runs,
        options.wall_clock,
    )?;

    let fma_flops = FLOPS_PER_ROUND * f64::from(iters) * invocations as f64;
    let fma_gflops = fma_flops / (fma.median_ms * 1e-3) * 1e-9;
    let copy_gbps = 2.0 * copy_bytes as f64 / (copy.median_ms * 1e-3) * 1e-9;
    Ok(Roofline {
        adapter: gpu.summary(),
        fma_gflops,
        copy_gbps,
        ridge_flops_per_byte: fma_gflops / copy_gbps,
        fma_invocations: invocations,
        fma_iters: iters,
        fma_flops,
        fma,
        copy_bytes,
        copy,
    })
}
