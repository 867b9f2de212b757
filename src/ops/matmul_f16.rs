//! Matmul with f16 operands and f32 accumulation: `C = act(α·op(A)·op(B) + β·C + bias)` for
//! [`HalfTensor`] operands A and B and an f32 C, by the f16-operand builds of the vec4 and
//! tiled kernels (`shaders::MATMUL_VEC4_F16`, `shaders::MATMUL_TILED_F16`: the same files with
//! `shaders/lib/operands_f16.wgsl`), which widen every value to f32 as they load it.
//!
//! On adapters with 8-wide subgroups (lavapipe) the texture kernel of `ops::matmul_texture`
//! runs them instead, the operands widened to f32 by the pack kernel as it lays them out for
//! the textures: the same values, about 1.8 times as fast there (n = 1024: 51 ms against
//! 88–96 ms for the vec4 build).
//!
//! Where the adapter has cooperative matrices (tensor cores, `EXPERIMENTAL_COOPERATIVE_MATRIX`
//! with a 16 × 16 × 16 f16 → f32 configuration), plain products (α = 1, β = 0, no bias or
//! activation) of shapes in multiples of 16 run on them instead (`ops::matmul_coop`, one
//! subgroup per 64 × 64 tile); the configuration `2x2-coop` (tuned or asked for) runs
//! `ops::matmul_coop_staged` where its shapes allow (four subgroups per 128 × 128 tile, the
//! operands staged through workgroup memory).
//!
//! The opt-in reduced-precision mode: operands take half the memory and bandwidth; the
//! products and sums are f32 as in [`crate::ops::matmul`], so the result is the f32 product of
//! the f16-rounded operands (exact for binary data and small integers). Problems larger than
//! one binding are split as in matmul. Operands must have rows of whole vec4s
//! ([`matmul::vec4_eligible`]); other shapes are an error that names them.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::matmul::{
    self, check_problem, choose_blocks, max_k_per_dispatch, plan_storage, vec4_eligible,
    MatmulConfig, MatmulDims, MatmulKernel, MatmulOptions,
};
use crate::ops::{matmul_coop, matmul_coop_staged, matmul_texture};
use crate::shaders;
use crate::tensor::{window_capacity, HalfTensor, Tensor};

/// The op name of the f16 path's tuned configurations ([`crate::tune`]).
pub const TUNE_OP: &str = "matmul_f16";

/// The configuration asked for: `o.config`, else the one tuned for the problem's class
/// (`speckle tune --ops matmul_f16`), else none (the kernel is then chosen by [`kernel_for`]).
fn asked(gpu: &Gpu, d: &MatmulDims, o: &MatmulOptions<'_>) -> Option<MatmulConfig> {
    o.config.or_else(|| {
        gpu.tuned_config(TUNE_OP, &matmul::shape_class(d, o.trans_a, o.trans_b))
            .and_then(|s| s.parse::<MatmulConfig>().ok())
            .filter(|c| c.check(gpu).is_ok())
    })
}

/// The configuration of the vec4 and tiled paths: `cfg` if given (a texture, scalar or coop
/// configuration runs the vec4 kernel with its workgroup), else [`MatmulConfig::builtin`]
/// with the vec4 kernel.
fn storage_config(gpu: &Gpu, cfg: Option<MatmulConfig>) -> Result<MatmulConfig> {
    let cfg = cfg.unwrap_or_else(|| MatmulConfig::builtin(gpu));
    let cfg = match cfg.kernel {
        MatmulKernel::Tiled | MatmulKernel::Vec4 => cfg,
        _ => MatmulConfig {
            kernel: MatmulKernel::Vec4,
            ..cfg
        },
    };
    cfg.check(gpu)?;
    Ok(cfg)
}

/// The kernel [`plan`] runs for these operands and options: [`MatmulKernel::Coop`] where the
/// tensor-core path is eligible (`ops::matmul_coop`) and the configuration asked for (or
/// tuned) is none or names it; else [`MatmulKernel::Texture`] where the configuration asked
/// for (or the adapter's built-in one: lavapipe's) is the texture kernel and the texture path
/// is eligible (`ops::matmul_texture`, the operands widened to f32 as they are packed); else
/// [`MatmulKernel::Tiled`] or [`MatmulKernel::Vec4`].
pub fn kernel_for(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    o: &MatmulOptions<'_>,
) -> Result<MatmulKernel> {
    let d = MatmulDims::new(a.shape(), b.shape(), o.trans_a, o.trans_b)?;
    let cfg = asked(gpu, &d, o);
    let wants_coop = cfg.is_none_or(|c| c.kernel == MatmulKernel::Coop);
    if wants_coop && matmul_coop::eligible(gpu, &d, o) {
        return Ok(MatmulKernel::Coop);
    }
    let wants_texture =
        cfg.unwrap_or_else(|| MatmulConfig::builtin(gpu)).kernel == MatmulKernel::Texture;
    let out_len = d.output_shape().iter().product::<usize>();
    if wants_texture && matmul_texture::takes(gpu, &d, a, b, out_len)? {
        return Ok(MatmulKernel::Texture);
    }
    Ok(storage_config(gpu, cfg)?.kernel)
}

/// True when [`plan`] runs `ops::matmul_coop_staged`: the tensor-core path is taken, the
/// configuration asked for (or tuned) is [`matmul_coop_staged::LAYOUT`], and the shapes allow.
pub fn runs_staged(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    o: &MatmulOptions<'_>,
) -> Result<bool> {
    Ok(variant_name(gpu, a, b, o)? == matmul_coop_staged::NAME)
}

/// True when the configuration asked for (or tuned) is the staged layout and its shapes allow.
fn staged(gpu: &Gpu, d: &MatmulDims, o: &MatmulOptions<'_>) -> bool {
    asked(gpu, d, o).is_some_and(|c| matmul_coop_staged::is_layout(&c))
        && matmul_coop_staged::eligible(gpu, d, o)
}

/// The name of the kernel [`plan`] runs, for reports: [`MatmulKernel::name`], with
/// `coop-staged` for `ops::matmul_coop_staged`.
pub fn variant_name(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    o: &MatmulOptions<'_>,
) -> Result<String> {
    let d = MatmulDims::new(a.shape(), b.shape(), o.trans_a, o.trans_b)?;
    let kernel = kernel_for(gpu, a, b, o)?;
    if kernel == MatmulKernel::Coop && staged(gpu, &d, o) {
        return Ok(matmul_coop_staged::NAME.into());
    }
    Ok(kernel.name().into())
}

/// Plans `c = act(α·op(a)·op(b) + β·c + bias)` with f16 operands; `c` has the output shape.
pub fn plan(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
) -> Result<Vec<Dispatch>> {
    let d = MatmulDims::new(a.shape(), b.shape(), o.trans_a, o.trans_b)?;
    check_problem(&d, a.shape(), b.shape(), c, o)?;
    if !vec4_eligible(&d, o.trans_a, o.trans_b) {
        return Err(Error::shape(
            "matmul_f16",
            format!(
                "f16 operands need rows of whole vec4s: n = {} must be a multiple of 4, and so \
                 must k = {} (A not transposed or B transposed) and m = {} (A transposed); \
                 A {:?}, B {:?}",
                d.n,
                d.k,
                d.m,
                a.shape(),
                b.shape()
            ),
        ));
    }
    let kernel = kernel_for(gpu, a, b, o)?;
    if kernel == MatmulKernel::Texture {
        return matmul_texture::plan_operands(gpu, a, b, c, o, &d);
    }
    if kernel == MatmulKernel::Coop {
        if staged(gpu, &d, o) {
            return matmul_coop_staged::plan(gpu, a, b, c, o, &d);
        }
        return matmul_coop::plan(gpu, a, b, c, o, &d);
    }
    let cfg = storage_config(gpu, asked(gpu, &d, o))?;
    let shader = match kernel {
        MatmulKernel::Tiled => &shaders::MATMUL_TILED_F16,
        _ => &shaders::MATMUL_VEC4_F16,
    };
    let tile = (cfg.tile_m(kernel) as usize, cfg.tile_n(kernel) as usize);
    let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
    // Windows are sized in f32 capacity: halves take half the bytes, so they fit too.
    let max_k = max_k_per_dispatch(gpu)?;
    let blk = choose_blocks(&d, o, tile, 4, window_capacity(gpu), max_groups, max_k)
        .ok_or_else(|| Error::invalid("matmul_f16: no block split fits one binding"))?;
    plan_storage(gpu, d, a, b, c, o, shader, kernel, &cfg, blk)
}

/// Returns `act(α·op(a)·op(b) + bias)` as a new f32 tensor (β is ignored: there is no C yet).
pub fn run(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    options: &MatmulOptions<'_>,
) -> Result<Tensor> {
    let d = MatmulDims::new(a.shape(), b.shape(), options.trans_a, options.trans_b)?;
    let c = Tensor::empty(gpu, &d.output_shape())?;
    let options = MatmulOptions {
        beta: 0.0,
        ..*options
    };
    gpu.execute(&plan(gpu, a, b, &c, &options)?)?;
    Ok(c)
}
