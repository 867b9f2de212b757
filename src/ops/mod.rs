//! The host side of each kernel: parameters, configuration, planning into [`Dispatch`]es and
//! a convenience `run`. One module per kernel, named like its WGSL file.
//!
//! [`Dispatch`]: crate::Dispatch

pub mod activation;
pub mod adam;
pub mod attention;
pub mod attention_blocked;
pub mod attention_combine;
pub mod attention_f16;
pub mod attention_texture;
pub mod axpy;
pub mod cross_entropy;
pub mod encode;
pub mod gat;
pub mod layernorm;
pub mod loop_limit;
pub mod matmul;
pub mod matmul_coop;
pub mod matmul_coop_staged;
pub mod matmul_f16;
pub mod matmul_skinny;
pub mod matmul_texture;
pub mod performer;
pub mod project_dense;
pub mod project_finish;
pub mod project_optical;
pub mod random_fill;
pub mod reduce;
pub mod roofline;
pub mod softmax;
pub mod srht;
pub mod to_f16;
pub mod transpose;

use crate::error::Result;
use crate::gpu::Gpu;

/// The most vec4s per thread the row kernels' `main_held` entry points (softmax, layernorm)
/// keep in registers (their shaders' MAX_HELD).
pub const MAX_HELD: usize = 8;

/// The vec4s each of `wg` threads holds where a row kernel reads rows of `cols` values once and
/// keeps them in registers for its output (`main_held`) instead of reading them twice: rows of
/// whole vec4s of at most 4 · [`MAX_HELD`] · `wg` values; `None` for the others.
pub fn held_vec4s(cols: usize, wg: u32) -> Option<usize> {
    let per_thread = (cols / 4).div_ceil(wg as usize);
    (cols.is_multiple_of(4) && per_thread <= MAX_HELD).then_some(per_thread.max(1))
}

/// Threads per workgroup for kernels that give one workgroup to each row of `cols` values
/// (softmax, layernorm, cross-entropy, reduce), whose invocations loop `loops(cols, wg)` times
/// with `wg` threads: always a power of two as their tree reductions need, at most 256 (and
/// the adapter's limit).
///
/// * On GPUs, enough to cover short rows without idle threads, at least 32.
/// * On CPU adapters, one subgroup (the adapter's, else 8), doubled only while the loops would
///   pass the adapter's loop limit. A CPU driver runs a workgroup on one core, its subgroups
///   one after another, switching between them at every barrier, so more threads add no
///   parallelism, only switches and tree levels: on lavapipe the 1024 × 4096 softmax took
///   17 ms with 8 threads and 36 ms with 256, the row sums 3.4 and 13 ms.
///
/// Where no size fits the limit, the largest: the caller refuses or splits the row as before.
pub(crate) fn row_workgroup_size(
    gpu: &Gpu,
    cols: usize,
    loops: impl Fn(usize, u32) -> u64,
) -> Result<u32> {
    let max = gpu.limits().max_compute_invocations_per_workgroup.min(256);
    let max = 1u32 << (31 - max.leading_zeros()); // round down to a power of two
    if !gpu.is_cpu() {
        return Ok((cols.next_power_of_two().min(1 << 16) as u32).clamp(32.min(max), max));
    }
    let mut wg = cpu_workgroup_threads(gpu).min(max);
    if let Some(limit) = gpu.loop_limit()? {
        while wg < max && loops(cols, wg) > limit {
            wg *= 2;
        }
    }
    Ok(wg)
}

/// The threads a CPU adapter's one-core workgroup gets where more would add only switches
/// between subgroups (the row kernels, srht's local stages): one subgroup, the adapter's
/// largest (a power of two), else 8.
pub(crate) fn cpu_workgroup_threads(gpu: &Gpu) -> u32 {
    match gpu.adapter_info().subgroup_max_size {
        0 => 8,
        s => s.next_power_of_two(),
    }
}
