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

use crate::gpu::Gpu;

/// Threads per workgroup for kernels that give one workgroup to each row of `cols` values:
/// enough to cover short rows without idle threads, at most 256 (and the adapter's limit),
/// always a power of two as the tree reductions need.
pub(crate) fn row_workgroup_size(gpu: &Gpu, cols: usize) -> u32 {
    let max = gpu.limits().max_compute_invocations_per_workgroup.min(256);
    let max = 1u32 << (31 - max.leading_zeros()); // round down to a power of two
    (cols.next_power_of_two().min(1 << 16) as u32).clamp(32.min(max), max)
}
