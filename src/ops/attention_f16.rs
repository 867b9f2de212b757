//! Fused multi-head attention with f16 Q, K and V (`shaders/attention_f16.wgsl`):
//! `O = softmax(scale · Q Kᵀ) V` in one pass over the keys, f32 scores, softmax and
//! accumulation, an f32 output. On adapters with 16 × 16 × 16 f16 → f32 cooperative matrices
//! (NVIDIA's tensor cores) both products run on them; elsewhere the portable build computes
//! the same steps one value per invocation (correct everywhere, not fast).
//!
//! * Layout and masks: those of [`crate::ops::attention`] (Q and O `[B, Nq, H·D]`, K and V
//!   `[B, Nk, H·D]`, the causal mask aligned top-left), without the key mask.
//! * Shapes: D a multiple of 16 up to [`MAX_HEAD_DIM`], Nk ≥ 16 (the kernel loads keys in
//!   tiles of 16 rows and clamps the last tile back inside K); any Nq. Other problems get an
//!   error that says which rule they break; [`crate::ops::attention`] takes them in f32.
//! * Numerics: the probabilities are rounded to f16 for the product with V, and the row sums
//!   add up the rounded values, so each output row is an exact weighted mean of V's rows with
//!   weights within 2⁻¹¹ (relative) of the softmax of the f16 inputs
//!   ([`crate::cpu::attention_f16`]).
//! * The workgroup is one subgroup and owns 32 query rows; keys go in blocks of
//!   [`KEYS_PER_BLOCK`] (fewer where workgroup memory is short, [`keys_per_block`]).
//! * Key ranges (split-KV), as in [`crate::ops::attention`] ([`key_split`]): one workgroup per
//!   query block and range of keys, each writing a partial output and its rows' log-sum-exp,
//!   merged by [`crate::ops::attention_combine`]; on GPUs for problems with few query blocks
//!   (decoding steps), everywhere for the loop limit.
//! * Loops: an invocation walks the keys of its range (one online softmax per row), so on
//!   adapters that end an invocation's loops after a number of passes ([`Gpu::loop_limit`]:
//!   65,535 on lavapipe, silently) the keys are cut into ranges that fit (about 34,000 keys at
//!   D = 64 for the portable build on lavapipe); a problem that cannot be cut (its partial
//!   outputs would not fit one binding, or not even one block fits) and whose bound
//!   ([`loop_iterations`]) exceeds the limit is refused before anything runs, with an
//!   [`Error::LoopLimit`] that names the most keys that fit and what takes the problem
//!   instead.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::attention::{
    self, plan_chunks, split_keys, AttentionConfig, AttentionDims, AttentionVariant, ChunkKernel,
    KeySplit,
};
use crate::ops::loop_limit::{looped, most_that_fit};
use crate::ops::matmul_coop;
use crate::shaders::{self, Kernel};
use crate::tensor::{HalfTensor, Tensor};

/// The largest head dimension D the kernel accepts (a multiple of 16).
pub const MAX_HEAD_DIM: usize = 128;
/// Query rows per workgroup (`BQ` in the shader).
pub const QUERIES_PER_WORKGROUP: u32 = 32;
/// Keys per block where workgroup memory allows (see [`keys_per_block`]).
pub const KEYS_PER_BLOCK: u32 = 64;
/// Invocations per workgroup of the portable build (no subgroup operations).
const PORTABLE_WORKGROUP: u32 = 64;

/// Which build of the kernel runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AttentionF16Kernel {
    /// [`Coop`](AttentionF16Kernel::Coop) where the adapter has the cooperative matrices,
    /// [`Portable`](AttentionF16Kernel::Portable) elsewhere.
    #[default]
    Auto,
    /// Both products on the tensor cores. An error where the adapter lacks 16 × 16 × 16
    /// f16 → f32 cooperative matrices with a fixed subgroup size.
    Coop,
    /// Both products one value per invocation: any adapter with `SHADER_F16`.
    Portable,
}

impl AttentionF16Kernel {
    /// The name used in reports: `auto`, `coop` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            AttentionF16Kernel::Auto => "auto",
            AttentionF16Kernel::Coop => "coop",
            AttentionF16Kernel::Portable => "portable",
        }
    }

    /// The build `Auto` resolves to on `gpu` (a forced build is returned as is).
    pub fn resolve(self, gpu: &Gpu) -> AttentionF16Kernel {
        match self {
            AttentionF16Kernel::Auto if matmul_coop::subgroup_size(gpu).is_some() => {
                AttentionF16Kernel::Coop
            }
            AttentionF16Kernel::Auto => AttentionF16Kernel::Portable,
            forced => forced,
        }
    }
}

/// Options of [`plan`] and [`run`]. `Default`: scale `1/sqrt(D)`, no causal mask, the build
/// chosen by the adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionF16Options {
    /// Multiplies the scores `Q·K` before the softmax; `None` is `1/sqrt(D)`. Must be finite.
    pub scale: Option<f32>,
    /// Causal mask aligned top-left: query `i` sees keys `j <= i` (PyTorch's `is_causal`).
    pub causal: bool,
    /// The build of the kernel.
    pub kernel: AttentionF16Kernel,
}

/// Checks the operand shapes and the rules of the module docs; the problem's sizes.
pub fn dims(q: &[usize], k: &[usize], v: &[usize], heads: usize) -> Result<AttentionDims> {
    let dims = AttentionDims::checked("attention_f16", q, k, v, heads, Some(MAX_HEAD_DIM))?;
    if !dims.head_dim.is_multiple_of(16) {
        return Err(Error::shape(
            "attention_f16",
            format!(
                "the head dimension D = {} must be a multiple of 16 (the kernel's tiles are \
                 16 wide); f32 attention (ops::attention) takes it",
                dims.head_dim
            ),
        ));
    }
    if dims.nk < 16 {
        return Err(Error::shape(
            "attention_f16",
            format!(
                "Nk = {} keys, but the kernel needs at least 16 (it loads keys in tiles of 16); \
                 f32 attention (ops::attention) takes it",
                dims.nk
            ),
        ));
    }
    Ok(dims)
}

/// Workgroup memory of the kernel for head dimension `d` and `keys` per block, in bytes (the
/// arrays of `shaders/attention_f16.wgsl`, rows padded by 16 bytes).
pub fn workgroup_bytes(d: u32, keys: u32) -> u64 {
    let bq = u64::from(QUERIES_PER_WORKGROUP);
    let (d, keys) = (u64::from(d), u64::from(keys));
    let qs = bq * (d + 8) * 2;
    let ss = bq * (keys + 4) * 4;
    let ps = bq * (keys + 8) * 2;
    let os = bq * (d + 4) * 4;
    qs + ss + ps + os + 2 * bq * 4
}

/// Keys per block for head dimension `d` on `gpu`: [`KEYS_PER_BLOCK`], or the largest of 32
/// and 16 that fits workgroup memory (D = 128 takes 16 in lavapipe's 32 KiB); an error naming
/// the sizes where none fits.
pub fn keys_per_block(gpu: &Gpu, d: u32) -> Result<u32> {
    let limit = u64::from(gpu.limits().max_compute_workgroup_storage_size);
    [KEYS_PER_BLOCK, 32, 16]
        .into_iter()
        .find(|&keys| workgroup_bytes(d, keys) <= limit)
        .ok_or_else(|| {
            Error::invalid(format!(
                "attention_f16: D = {d} needs {} bytes of workgroup memory even with 16 keys per \
                 block, but the adapter allows {limit}",
                workgroup_bytes(d, 16)
            ))
        })
}

/// The build `build` resolves to on `gpu`, its kernel and its workgroup size.
fn kernel(
    gpu: &Gpu,
    build: AttentionF16Kernel,
) -> Result<(AttentionF16Kernel, &'static Kernel, u32)> {
    let build = build.resolve(gpu);
    match build {
        AttentionF16Kernel::Coop => {
            let sg = matmul_coop::subgroup_size(gpu).ok_or_else(|| {
                Error::invalid(format!(
                    "attention_f16: adapter {:?} has no 16x16x16 f16 -> f32 cooperative \
                     matrices with a fixed subgroup size (use the portable build)",
                    gpu.adapter_info().name
                ))
            })?;
            Ok((build, &shaders::ATTENTION_F16, sg))
        }
        _ => {
            let l = gpu.limits();
            let threads = PORTABLE_WORKGROUP
                .min(l.max_compute_workgroup_size_x)
                .min(l.max_compute_invocations_per_workgroup);
            Ok((
                AttentionF16Kernel::Portable,
                &shaders::ATTENTION_F16_PORTABLE,
                threads,
            ))
        }
    }
}

/// The loop passes of the busiest invocation of `build` (resolved: Coop or Portable) with SG
/// = `threads` invocations, head dimension `d` and `keys` per block over `nk` keys, an upper
/// bound counted as [`looped`] says (`Loops:` in `shaders/attention_f16.wgsl`): the query tile
/// and the stores (BQ · D / SG passes each), the row state (BQ / SG), and per block the scores
/// (coop: BK / 16 tiles of D / 16 steps; portable: BQ · BK / SG scores, one pass each), the
/// softmax (BQ / SG rows of BK / 4 + BK / 4 + D / 4 passes) and the accumulation (coop: D / 16
/// column tiles of BK / 16 steps; portable: BQ · D / SG outputs, one pass each).
fn bound(build: AttentionF16Kernel, threads: u32, d: u32, keys: u32, nk: usize) -> u64 {
    let (sg, bq) = (u64::from(threads), u64::from(QUERIES_PER_WORKGROUP));
    let (d, bk) = (u64::from(d), u64::from(keys));
    let (scores, accumulate) = if build == AttentionF16Kernel::Coop {
        (
            looped(bk / 16, looped(d / 16, 0, 0), 1),
            looped(d / 16, looped(bk / 16, 0, 0), 1),
        )
    } else {
        (
            looped((bq * bk).div_ceil(sg), 0, 0),
            looped((bq * d).div_ceil(sg), 0, 0),
        )
    };
    let row = 2 * looped(bk / 4, 0, 0) + looped(d / 4, 0, 0);
    let softmax = looped(bq.div_ceil(sg), row, 3);
    let rows = looped(bq.div_ceil(sg), 0, 0);
    let block = scores + softmax + accumulate;
    // Loops in a block: the scores' and the accumulation's (two each in the coop build) and
    // the softmax's four.
    let nested = if build == AttentionF16Kernel::Coop {
        8
    } else {
        6
    };
    // The query tile and the stores; the row state and the log-sum-exps.
    2 * looped((bq * d).div_ceil(sg), 0, 0)
        + 2 * rows
        + looped((nk as u64).div_ceil(bk), block, nested)
}

/// The key ranges of `build` (resolved) with SG = `threads`, head dimension `d` and `keys` per
/// block on `dims` under the loop limit `limit` ([`split_keys`]).
fn split_within(
    gpu: &Gpu,
    limit: Option<u64>,
    dims: &AttentionDims,
    (build, threads, d, keys): (AttentionF16Kernel, u32, u32, u32),
) -> KeySplit {
    split_keys(
        gpu,
        limit,
        dims,
        QUERIES_PER_WORKGROUP as usize,
        keys as usize,
        |n| bound(build, threads, d, keys, n),
    )
}

/// How [`plan`] takes the keys of `dims` with `build` on `gpu`: in one range, or in several
/// merged by [`crate::ops::attention_combine`] (see the module docs).
pub fn key_split(gpu: &Gpu, dims: &AttentionDims, build: AttentionF16Kernel) -> Result<KeySplit> {
    let d = dims.head_dim as u32;
    let keys = keys_per_block(gpu, d)?;
    let (build, _, threads) = kernel(gpu, build)?;
    Ok(split_within(
        gpu,
        gpu.loop_limit()?,
        dims,
        (build, threads, d, keys),
    ))
}

/// An upper bound of the loop passes of the busiest invocation of `build` (as it resolves on
/// `gpu`, with the block size and key ranges [`plan`] uses) on a problem of `dims`: what
/// [`plan`] checks against [`Gpu::loop_limit`].
pub fn loop_iterations(gpu: &Gpu, dims: &AttentionDims, build: AttentionF16Kernel) -> Result<u64> {
    let d = dims.head_dim as u32;
    let keys = keys_per_block(gpu, d)?;
    let (build, _, threads) = kernel(gpu, build)?;
    let split = split_within(gpu, gpu.loop_limit()?, dims, (build, threads, d, keys));
    Ok(bound(build, threads, d, keys, split.keys))
}

/// [`Error::LoopLimit`] where `build` would loop past the adapter's limit on `dims`, naming
/// the most keys it takes and what takes the problem instead: f32 attention where its tiled
/// variant fits ([`crate::ops::attention`], which on lavapipe also has a texture variant),
/// else [`crate::ops::attention::unfused`].
fn check_loop_limit(
    gpu: &Gpu,
    dims: &AttentionDims,
    build: AttentionF16Kernel,
    threads: u32,
    keys: u32,
) -> Result<()> {
    let Some(limit) = gpu.loop_limit()? else {
        return Ok(());
    };
    let d = dims.head_dim as u32;
    let split = split_within(gpu, Some(limit), dims, (build, threads, d, keys));
    let iterations = bound(build, threads, d, keys, split.keys);
    if iterations <= limit {
        return Ok(());
    }
    let most = most_that_fit(limit, |n| bound(build, threads, d, keys, n));
    // Whether f32 attention's tiled kernel, in its own key ranges, fits.
    let f32_fits = AttentionConfig::for_gpu(gpu, dims.head_dim, AttentionVariant::Auto)
        .ok()
        .and_then(|c| {
            attention::key_split(gpu, dims, &c)
                .ok()
                .map(|split| c.loop_iterations(split.keys) <= limit)
        })
        .unwrap_or(false);
    let f32_note = if f32_fits {
        format!("takes Nk = {}", dims.nk)
    } else {
        "does not take it here either; attention::unfused (matmul, softmax, matmul) does".into()
    };
    gpu.check_loops(
        &format!("attention_f16 ({} build)", build.name()),
        iterations,
        &format!(
            "it takes at most {most} keys of D = {d} in one range here (Nk = {}; ranges need \
             the problem in one dispatch and their partial outputs in one binding); f32 \
             attention (ops::attention, --precision f32) {f32_note}",
            dims.nk
        ),
    )
}

/// Plans `out = attention(q, k, v)` with `heads` heads (see the module docs). `out` is f32 of
/// Q's shape. An [`Error::LoopLimit`] where the keys are more than the adapter's loop limit
/// lets one invocation walk ([`loop_iterations`]), before anything is created.
pub fn plan(
    gpu: &Gpu,
    q: &HalfTensor,
    k: &HalfTensor,
    v: &HalfTensor,
    out: &Tensor,
    heads: usize,
    options: &AttentionF16Options,
) -> Result<Vec<Dispatch>> {
    let dims = dims(q.shape(), k.shape(), v.shape(), heads)?;
    if out.shape() != q.shape() {
        return Err(Error::shape(
            "attention_f16",
            format!(
                "the output has shape {:?} but must have Q's shape {:?}",
                out.shape(),
                q.shape()
            ),
        ));
    }
    let scale = options.scale.unwrap_or_else(|| dims.default_scale());
    if !scale.is_finite() {
        return Err(Error::invalid(format!(
            "attention_f16: the scale must be finite, got {scale}"
        )));
    }
    let d = dims.head_dim as u32;
    let keys = keys_per_block(gpu, d)?;
    let (build, kernel, threads) = kernel(gpu, options.kernel)?;
    check_loop_limit(gpu, &dims, build, threads, keys)?;
    let pipeline = gpu.pipeline(
        kernel,
        &[
            ("SG", f64::from(threads)),
            ("D", f64::from(d)),
            ("BK", f64::from(keys)),
        ],
    )?;
    let chunk_kernel = ChunkKernel {
        pipeline,
        queries: QUERIES_PER_WORKGROUP as usize,
        mask_slot: false,
        lse_slot: true,
    };
    let split = split_within(gpu, gpu.loop_limit()?, &dims, (build, threads, d, keys));
    plan_chunks(
        gpu,
        &dims,
        [q, k, v],
        out,
        None,
        &chunk_kernel,
        options.causal,
        scale,
        split,
    )
}

/// Returns `attention(q, k, v)` as a new f32 tensor of Q's shape (see [`plan`]).
pub fn run(
    gpu: &Gpu,
    q: &HalfTensor,
    k: &HalfTensor,
    v: &HalfTensor,
    heads: usize,
    options: &AttentionF16Options,
) -> Result<Tensor> {
    let out = Tensor::empty(gpu, q.shape())?;
    gpu.execute(&plan(gpu, q, k, v, &out, heads, options)?)?;
    Ok(out)
}
