//! The tensor-core path of the f16-operand matmul (`shaders/matmul_coop.wgsl`): 64 × 64 tiles
//! of C per subgroup from 16 × 16 × 16 cooperative-matrix products, f16 operands, f32
//! accumulators. [`crate::ops::matmul_f16`] runs it where [`eligible`] holds and the options
//! leave the kernel open (or name `coop`); every other f16 product runs the vec4 or tiled
//! kernel.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::activation::Activation;
use crate::ops::matmul::{
    choose_blocks, max_k_per_dispatch, plan_blocks, Bindings, MatmulDims, MatmulOptions,
};
use crate::shaders;
use crate::tensor::{window_capacity, HalfTensor, Tensor};

/// Rows and columns of C per workgroup (4 × 4 cooperative tiles of 16).
pub const TILE: u32 = 64;
/// The cooperative-matrix shape used (M = N = K).
const COOP: u32 = 16;

/// The subgroup size the kernel's workgroup takes, when the adapter reports a
/// 16 × 16 × 16 f16 → f32 cooperative-matrix configuration and a fixed subgroup size that
/// fits a workgroup; `None` otherwise.
pub fn subgroup_size(gpu: &Gpu) -> Option<u32> {
    use wgpu::CooperativeScalarType as S;
    let has_shape = gpu.cooperative_matrix_properties().iter().any(|c| {
        c.m_size == COOP
            && c.n_size == COOP
            && c.k_size == COOP
            && c.ab_type == S::F16
            && c.cr_type == S::F32
    });
    let info = gpu.adapter_info();
    let l = gpu.limits();
    let sg = info.subgroup_max_size;
    let fixed = sg > 0 && info.subgroup_min_size == sg;
    let fits = sg
        <= l.max_compute_workgroup_size_x
            .min(l.max_compute_invocations_per_workgroup);
    (has_shape && fixed && fits).then_some(sg)
}

/// True when the tensor-core kernel computes this product on `gpu`: the configuration of
/// [`subgroup_size`], m, n and k multiples of 16, and a plain product (α = 1, β = 0, no bias,
/// no activation).
pub fn eligible(gpu: &Gpu, d: &MatmulDims, o: &MatmulOptions<'_>) -> bool {
    let whole = |v: usize| v.is_multiple_of(COOP as usize);
    subgroup_size(gpu).is_some()
        && whole(d.m)
        && whole(d.n)
        && whole(d.k)
        && o.alpha == 1.0
        && o.beta == 0.0
        && o.bias.is_none()
        && o.activation == Activation::Identity
}

/// Plans the product; the caller has checked the shapes and [`eligible`].
pub(crate) fn plan(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    d: &MatmulDims,
) -> Result<Vec<Dispatch>> {
    let sg = subgroup_size(gpu).ok_or_else(|| {
        Error::invalid(format!(
            "adapter {:?} has no 16x16x16 f16 -> f32 cooperative matrices with a fixed subgroup size",
            gpu.adapter_info().name
        ))
    })?;
    plan_tiles(
        gpu,
        a,
        b,
        c,
        o,
        d,
        &shaders::MATMUL_COOP,
        sg,
        TILE,
        COOP as usize,
    )
}

/// Plans a tensor-core kernel (`kernel`, whose workgroup computes `tile` × `tile` of C, with
/// subgroups of `sg`) over blocks of the problem whose sizes are multiples of `align`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_tiles(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    d: &MatmulDims,
    kernel: &shaders::Kernel,
    sg: u32,
    tile: u32,
    align: usize,
) -> Result<Vec<Dispatch>> {
    let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
    let tiles = (tile as usize, tile as usize);
    let max_k = max_k_per_dispatch(gpu)?;
    let capacity = window_capacity(gpu);
    let blk = choose_blocks(d, o, tiles, align, capacity, max_groups, max_k).ok_or_else(|| {
        Error::invalid(format!("{}: no block split fits one binding", kernel.name))
    })?;
    let pipeline = gpu.pipeline(
        kernel,
        &[
            ("SG", f64::from(sg)),
            ("TRANS_A", f64::from(u8::from(o.trans_a))),
            ("TRANS_B", f64::from(u8::from(o.trans_b))),
        ],
    )?;
    Ok(plan_blocks(
        gpu,
        *d,
        a,
        b,
        c,
        o,
        &pipeline,
        (tile, tile),
        blk,
        Bindings::NoBias,
    ))
}
