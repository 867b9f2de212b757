//! The fused optical projection y = |(R + iI) x|², that is y_o = (R x)_o² + (I x)_o², in one
//! pass: one product with the real and imaginary rows of the matrix side by side and the
//! modulus taken before anything is stored, so neither R x nor I x ever reaches memory.
//!
//! The matrix is stored *paired* (`[2·n_out, d]`): rows in blocks of 8, the 4 real rows R_{4q ..
//! 4q+3} then the 4 imaginary rows I_{4q .. 4q+3} ([`crate::cpu::project_optical::paired_row`]),
//! generated in that layout by [`random_fill::plan_paired`] from the same Philox entries as the
//! separate R and I. y = |x · Pᵀ|² over the column pairs is computed by
//! - `shaders/matmul_tiled.wgsl` with `PAIRED` (f32 operands, or f16 ones through
//!   `matmul_tiled_f16`, accumulating in f32): the tile's columns are regrouped as they are
//!   staged so that each thread holds the real and imaginary parts of the same outputs;
//! - `matmul_coop_paired` (`shaders/matmul_coop.wgsl` with `shaders/lib/coop_store_paired.wgsl`)
//!   on tensor cores where the adapter has cooperative matrices: f16 operands, f32 accumulators,
//!   the modulus through workgroup memory;
//! - `matmul_coop_staged_paired` (`shaders/matmul_coop_staged.wgsl` with
//!   `shaders/lib/coop_staged_store_paired.wgsl`), the same with four subgroups sharing operand
//!   slabs in workgroup memory, where batch, d and n_out fit its whole tiles
//!   ([`coop_staged_eligible`]); chosen by tuning (`coop-staged`), never by default.
//!
//! The product is never split along d (the modulus needs the whole sum): blocks of inputs and of
//! outputs keep every window within one binding. d and n_out must be multiples of 4 (the tensor
//! cores: batch and d multiples of 16, n_out of 8); [`eligible`] says when a projection can take
//! this path. Since one invocation loops over the whole of d, a d whose loops would pass the
//! adapter's loop limit ([`loops`]; lavapipe ends an invocation's loops after 65,535
//! iterations, silently) is refused: the unfused path, whose products split d, computes it.

use crate::cpu::philox::Stream;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::matmul::{tiled_workgroup_bytes, MatmulParams, LOOP_OVERHEAD, TILED_SIZES};
use crate::ops::project_dense::DenseSpec;
use crate::ops::random_fill::{self, RandomSpec};
use crate::ops::{matmul_coop, matmul_coop_staged};
use crate::shaders;
use crate::tensor::{window_capacity, HalfTensor, Operand, Tensor, Window};
use crate::tune::ShapeClass;

/// Outputs per block of the paired layout (a block is their 4 real rows, then their 4
/// imaginary rows).
pub const PAIR_BLOCK: usize = 4;

/// The kernel of a fused optical product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpticalKernel {
    /// `matmul_tiled` with `PAIRED`: T × T threads, 8T inputs × 4T outputs per workgroup
    /// (T in [`TILED_SIZES`]).
    Tiled(u32),
    /// `matmul_coop_paired`: one subgroup, 64 inputs × 32 outputs per workgroup; f16 only.
    Coop,
    /// `matmul_coop_staged_paired`: four subgroups sharing operand slabs in workgroup memory,
    /// 128 inputs × 64 outputs per workgroup; f16 only, where [`coop_staged_eligible`].
    CoopStaged,
}

impl OpticalKernel {
    /// The configuration notation: `tiled16`, `tiled8`, `coop`, `coop-staged`.
    pub fn name(self) -> String {
        match self {
            OpticalKernel::Tiled(t) => format!("tiled{t}"),
            OpticalKernel::Coop => "coop".into(),
            OpticalKernel::CoopStaged => matmul_coop_staged::NAME.into(),
        }
    }

    /// Parses [`OpticalKernel::name`].
    pub fn parse(s: &str) -> Result<OpticalKernel> {
        if s == "coop" {
            return Ok(OpticalKernel::Coop);
        }
        if s == matmul_coop_staged::NAME {
            return Ok(OpticalKernel::CoopStaged);
        }
        s.strip_prefix("tiled")
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|t| TILED_SIZES.contains(t))
            .map(OpticalKernel::Tiled)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "optical kernel {s:?} is not coop, coop-staged or tiledT with T one of \
                     {TILED_SIZES:?}"
                ))
            })
    }

    /// Rows of x (inputs) and columns of the paired product (2 per output) per workgroup.
    fn tile(self) -> (usize, usize) {
        match self {
            OpticalKernel::Tiled(t) => (8 * t as usize, 8 * t as usize),
            OpticalKernel::Coop => (matmul_coop::TILE as usize, matmul_coop::TILE as usize),
            OpticalKernel::CoopStaged => {
                let t = matmul_coop_staged::TILE as usize;
                (t, t)
            }
        }
    }

    /// True for the tensor-core kernels (f16 operands only).
    fn is_coop(self) -> bool {
        matches!(self, OpticalKernel::Coop | OpticalKernel::CoopStaged)
    }
}

/// Loop iterations of an invocation of `kernel` over the shared dimension `d`, an upper bound
/// (the whole of d runs in one dispatch) counted as lavapipe counts them: a loop of n passes
/// counts n + 1, plus one pass of each loop nested in it (see
/// `ops::project_dense::forward_loops`):
/// - `Tiled(T)`: ceil(d / T) slices of T values of d, each a pass of the slice loop and an
///   inner loop of T passes (T + 1; `shaders/matmul_tiled.wgsl`; lavapipe does not unroll
///   it: measured, tiled8 over d = 56,000 stopped after 52,429 values, 10 iterations per
///   slice of 8), then the exit and the inner loop's pass in it; the paired store has no loop.
/// - the tensor-core kernels: at most d + `LOOP_OVERHEAD`, the bound of the matmul family
///   (`Coop`: d / 16 + 1 passes over d and the modulus's 6 · 512 / SG + 1; `CoopStaged`: 4
///   per 32 of d and the staged stores' 16 · (128 / SG + 1)).
pub fn loops(kernel: OpticalKernel, d: usize) -> u64 {
    match kernel {
        OpticalKernel::Tiled(t) => d.div_ceil(t as usize) as u64 * (u64::from(t) + 2) + 2,
        OpticalKernel::Coop | OpticalKernel::CoopStaged => d as u64 + LOOP_OVERHEAD,
    }
}

/// The most [`loops`] of any kernel the fused path may take for `d`: what a projection checks
/// before choosing it, when the kernel is not chosen yet.
pub fn max_loops(d: usize) -> u64 {
    TILED_SIZES
        .iter()
        .map(|&t| OpticalKernel::Tiled(t))
        .chain([OpticalKernel::Coop, OpticalKernel::CoopStaged])
        .map(|k| loops(k, d))
        .max()
        .unwrap_or(0)
}

/// What to do instead of a fused pass refused for the loop limit.
pub(crate) const LOOP_REMEDY: &str = "the fused pass cannot split d (|.|² needs the whole sum); \
     use the unfused projection (Fusion::Unfused or Fusion::Auto, --unfused), whose products \
     split d";

/// Why a projection of d values to `n_out` outputs cannot take the fused path, or `None` when
/// it can.
pub fn ineligibility(gpu: &Gpu, d: usize, n_out: usize) -> Option<String> {
    if !d.is_multiple_of(4) || !n_out.is_multiple_of(PAIR_BLOCK) {
        return Some(format!(
            "the fused optical projection needs d and n_out multiples of 4, got d = {d}, \
             n_out = {n_out}"
        ));
    }
    // The smallest block holds 16 rows of the paired matrix and 16 inputs (the tensor cores').
    let capacity = window_capacity(gpu);
    if d.saturating_mul(16) > capacity {
        return Some(format!(
            "16 rows of d = {d} values exceed one storage binding ({capacity} f32 values)"
        ));
    }
    None
}

/// True when the fused path can compute the projection ([`ineligibility`] finds nothing).
pub fn eligible(gpu: &Gpu, d: usize, n_out: usize) -> bool {
    ineligibility(gpu, d, n_out).is_none()
}

/// True when the tensor-core kernel can compute the f16 product on `gpu`: cooperative
/// matrices ([`matmul_coop::subgroup_size`]), batch and d multiples of 16, n_out of 8.
pub fn coop_eligible(gpu: &Gpu, batch: usize, d: usize, n_out: usize) -> bool {
    matmul_coop::subgroup_size(gpu).is_some()
        && batch.is_multiple_of(16)
        && d.is_multiple_of(16)
        && n_out.is_multiple_of(8)
}

/// Why the staged tensor-core kernel cannot compute the f16 product on `gpu`, or `None` when
/// it can: what [`matmul_coop_staged::device_ineligibility`] checks, batch a multiple of 128,
/// n_out of 64 (the paired columns in whole 128-tiles) and d of 32.
pub fn coop_staged_ineligibility(
    gpu: &Gpu,
    batch: usize,
    d: usize,
    n_out: usize,
) -> Option<String> {
    let bytes = matmul_coop_staged::WORKGROUP_BYTES_PAIRED;
    if let Some(why) = matmul_coop_staged::device_ineligibility(gpu, bytes) {
        return Some(why);
    }
    if !batch.is_multiple_of(128) || !n_out.is_multiple_of(64) || !d.is_multiple_of(32) {
        return Some(format!(
            "batch = {batch} must be a multiple of 128, n_out = {n_out} of 64 and d = {d} of 32"
        ));
    }
    None
}

/// True when [`coop_staged_ineligibility`] finds nothing.
pub fn coop_staged_eligible(gpu: &Gpu, batch: usize, d: usize, n_out: usize) -> bool {
    coop_staged_ineligibility(gpu, batch, d, n_out).is_none()
}

/// The largest tiled T the adapter's workgroup limits and memory allow, at most `at_most`.
fn largest_tiled(gpu: &Gpu, at_most: u32) -> u32 {
    let l = gpu.limits();
    TILED_SIZES
        .iter()
        .copied()
        .filter(|&t| {
            t <= at_most
                && t <= l
                    .max_compute_workgroup_size_x
                    .min(l.max_compute_workgroup_size_y)
                && t * t <= l.max_compute_invocations_per_workgroup
                && tiled_workgroup_bytes(t) <= l.max_compute_workgroup_storage_size
        })
        .max()
        .unwrap_or(TILED_SIZES[0])
}

/// The kernel used when none is asked for: the tensor cores for f16 operands where
/// [`coop_eligible`]; else the tiled kernel with T = 16 on GPUs (T = 8 on CPU adapters, whose
/// workgroups run as loops: smaller tiles waste less on the edges of small problems).
pub fn default_kernel(
    gpu: &Gpu,
    batch: usize,
    d: usize,
    n_out: usize,
    half: bool,
) -> OpticalKernel {
    if half && coop_eligible(gpu, batch, d, n_out) {
        return OpticalKernel::Coop;
    }
    OpticalKernel::Tiled(largest_tiled(gpu, if gpu.is_cpu() { 8 } else { 16 }))
}

/// The op name of the tuned configurations ([`crate::tune`]).
pub const TUNE_OP: &str = "project_optical";

/// The tuning class: `f32` or `f16` operands and the octaves of batch, d and n_out.
pub fn shape_class(batch: usize, d: usize, n_out: usize, half: bool) -> ShapeClass {
    ShapeClass::new(if half { "f16" } else { "f32" }, &[batch, d, n_out])
}

/// True when `kernel` can compute the product on `gpu` (with f16 operands when `half`).
pub fn usable(
    gpu: &Gpu,
    kernel: OpticalKernel,
    batch: usize,
    d: usize,
    n_out: usize,
    half: bool,
) -> bool {
    match kernel {
        OpticalKernel::Tiled(t) => check_tiled(gpu, t).is_ok(),
        OpticalKernel::Coop => half && coop_eligible(gpu, batch, d, n_out),
        OpticalKernel::CoopStaged => half && coop_staged_eligible(gpu, batch, d, n_out),
    }
}

/// The kernel `speckle tune` measured best for the problem's class on this adapter, if any
/// (and if [`usable`]); [`plan`] and [`plan_f16`] take [`default_kernel`] otherwise.
pub fn tuned_kernel(
    gpu: &Gpu,
    batch: usize,
    d: usize,
    n_out: usize,
    half: bool,
) -> Option<OpticalKernel> {
    gpu.tuned_config(TUNE_OP, &shape_class(batch, d, n_out, half))
        .and_then(|s| OpticalKernel::parse(&s).ok())
        .filter(|&k| usable(gpu, k, batch, d, n_out, half))
}

/// Generates the paired matrix (`[2·n_out, d]`, f32) of the optical kind's `spec`: the
/// entries of R (stream [`Stream::Matrix`]) and I ([`Stream::MatrixImaginary`]) that the
/// separate matrices hold, interleaved in blocks of [`PAIR_BLOCK`] rows.
pub fn paired_matrix(gpu: &Gpu, spec: &DenseSpec, n_out: usize, d: usize) -> Result<Tensor> {
    if !spec.complex {
        return Err(Error::invalid(
            "the paired matrix is the optical kind's: its spec must be complex",
        ));
    }
    let out = Tensor::empty(gpu, &[2 * n_out, d])?;
    let random = RandomSpec {
        distribution: spec.distribution,
        scale: spec.scale,
        seed: spec.seed,
        stream: Stream::Matrix as u32,
        row0: 0,
    };
    gpu.execute(&random_fill::plan_paired(
        gpu,
        &out,
        &random,
        Stream::MatrixImaginary as u32,
    )?)?;
    Ok(out)
}

/// Plans y = |x Pᵀ|² over column pairs for f32 `x` (`[batch, d]`) and paired matrix `paired`
/// (`[2·n_out, d]`) into `y` (`[batch, n_out]`), with `kernel` or [`default_kernel`].
pub fn plan(
    gpu: &Gpu,
    x: &Tensor,
    paired: &Tensor,
    y: &Tensor,
    kernel: Option<OpticalKernel>,
) -> Result<Vec<Dispatch>> {
    let (batch, d, n_out) = check_shapes(x.shape(), paired.shape(), y.shape())?;
    let kernel = kernel.unwrap_or_else(|| default_kernel(gpu, batch, d, n_out, false));
    if kernel.is_coop() {
        return Err(Error::invalid(format!(
            "the tensor-core optical kernel {} takes f16 operands (plan_f16)",
            kernel.name()
        )));
    }
    plan_operands(gpu, x, paired, y, (batch, d, n_out), kernel, false)
}

/// [`plan`] with f16 operands (accumulating in f32): on the tensor cores where
/// [`coop_eligible`], else through the tiled kernel's f16 build.
pub fn plan_f16(
    gpu: &Gpu,
    x: &HalfTensor,
    paired: &HalfTensor,
    y: &Tensor,
    kernel: Option<OpticalKernel>,
) -> Result<Vec<Dispatch>> {
    let (batch, d, n_out) = check_shapes(x.shape(), paired.shape(), y.shape())?;
    let kernel = kernel.unwrap_or_else(|| default_kernel(gpu, batch, d, n_out, true));
    if kernel == OpticalKernel::Coop && !coop_eligible(gpu, batch, d, n_out) {
        return Err(Error::invalid(format!(
            "the tensor-core optical kernel needs cooperative matrices (adapter {:?}), batch and \
             d multiples of 16 and n_out of 8; got batch {batch}, d {d}, n_out {n_out}",
            gpu.adapter_info().name
        )));
    }
    if kernel == OpticalKernel::CoopStaged {
        if let Some(why) = coop_staged_ineligibility(gpu, batch, d, n_out) {
            return Err(Error::invalid(format!(
                "the staged tensor-core optical kernel cannot run batch {batch}, d {d}, n_out \
                 {n_out} on adapter {:?}: {why}",
                gpu.adapter_info().name
            )));
        }
    }
    plan_operands(gpu, x, paired, y, (batch, d, n_out), kernel, true)
}

/// (batch, d, n_out) of consistent shapes, with the fused path's rules checked.
fn check_shapes(x: &[usize], paired: &[usize], y: &[usize]) -> Result<(usize, usize, usize)> {
    let (&[batch, d], &[rows, pd], &[yb, n_out]) = (x, paired, y) else {
        return Err(Error::shape(
            "project_optical",
            format!("x, the paired matrix and y must be 2-D, got {x:?}, {paired:?}, {y:?}"),
        ));
    };
    if pd != d || rows != 2 * n_out || yb != batch {
        return Err(Error::shape(
            "project_optical",
            format!(
                "x {x:?} ([batch, d]), the paired matrix {paired:?} ([2 n_out, d]) and y {y:?} \
                 ([batch, n_out]) disagree"
            ),
        ));
    }
    if batch == 0 || d == 0 || n_out == 0 {
        return Err(Error::shape(
            "project_optical",
            format!("zero-size dimension: x {x:?}, y {y:?}"),
        ));
    }
    if !d.is_multiple_of(4) || !n_out.is_multiple_of(PAIR_BLOCK) {
        return Err(Error::shape(
            "project_optical",
            format!("d and n_out must be multiples of 4, got d = {d}, n_out = {n_out}"),
        ));
    }
    Ok((batch, d, n_out))
}

/// Blocks of inputs and of paired columns whose windows fit `capacity` elements and whose
/// grids fit `max_groups`: (rows of x, columns of the paired product) per dispatch. Blocks
/// shrink in multiples of the kernel's tile, then below it (rows in multiples of `align.0`,
/// columns of `align.1`: at least 16, whole blocks of pairs, whole cooperative tiles), since
/// a wide output may leave room for fewer rows of y than a tile has.
fn choose_blocks(
    (batch, d, n_out): (usize, usize, usize),
    tile: (usize, usize),
    (align, col_align): (usize, usize),
    capacity: usize,
    max_groups: usize,
) -> Result<(usize, usize)> {
    let cols = 2 * n_out;
    let mut mb = batch.min(max_groups * tile.0);
    let mut nb = cols.min(max_groups * tile.1);
    let halve = |v: usize, tile: usize, align: usize| {
        let unit = if v > tile { tile } else { align };
        v.div_ceil(2).next_multiple_of(unit)
    };
    loop {
        let x_span = mb * d;
        let p_span = nb * d;
        let y_span = (mb - 1) * n_out + nb / 2;
        if x_span.max(p_span).max(y_span) <= capacity {
            return Ok((mb, nb));
        }
        let before = (mb, nb);
        if p_span > capacity {
            nb = halve(nb, tile.1, col_align).min(nb);
        } else if mb > align {
            mb = halve(mb, tile.0, align).min(mb);
        } else {
            nb = halve(nb, tile.1, col_align).min(nb);
        }
        if (mb, nb) == before {
            return Err(Error::invalid(format!(
                "the fused optical projection of d = {d} to n_out = {n_out} finds no block of \
                 {align} inputs and {} outputs that fits one binding ({capacity} values)",
                col_align / 2
            )));
        }
    }
}

/// The dispatches of `kernel` over blocks of inputs and outputs.
fn plan_operands(
    gpu: &Gpu,
    x: &dyn Operand,
    paired: &dyn Operand,
    y: &Tensor,
    dims: (usize, usize, usize),
    kernel: OpticalKernel,
    half: bool,
) -> Result<Vec<Dispatch>> {
    let (batch, d, n_out) = dims;
    if let Some(why) = ineligibility(gpu, d, n_out) {
        return Err(Error::invalid(why));
    }
    gpu.check_loops(
        &format!("project_optical ({})", kernel.name()),
        loops(kernel, d),
        LOOP_REMEDY,
    )?;
    let pipeline = match kernel {
        OpticalKernel::Tiled(t) => {
            check_tiled(gpu, t)?;
            gpu.pipeline(
                if half {
                    &shaders::MATMUL_TILED_F16
                } else {
                    &shaders::MATMUL_TILED
                },
                &[
                    ("T", f64::from(t)),
                    ("TRANS_A", 0.0),
                    ("TRANS_B", 1.0),
                    ("PAIRED", 1.0),
                ],
            )?
        }
        OpticalKernel::Coop | OpticalKernel::CoopStaged => {
            let sg = matmul_coop::subgroup_size(gpu)
                .ok_or_else(|| Error::invalid("the adapter has no cooperative matrices"))?;
            let shader = if kernel == OpticalKernel::Coop {
                &shaders::MATMUL_COOP_PAIRED
            } else {
                &shaders::MATMUL_COOP_STAGED_PAIRED
            };
            gpu.pipeline(
                shader,
                &[("SG", f64::from(sg)), ("TRANS_A", 0.0), ("TRANS_B", 1.0)],
            )?
        }
    };
    let tile = kernel.tile();
    let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
    // The staged kernel has no edge tiles: every block is whole 128-tiles (batch and 2 n_out
    // are multiples of 128 where it runs).
    let align = match kernel {
        OpticalKernel::Tiled(_) => (1, 16),
        OpticalKernel::Coop => (16, 16),
        OpticalKernel::CoopStaged => tile,
    };
    let (mb, nb) = choose_blocks(dims, tile, align, window_capacity(gpu), max_groups)?;
    let mut dispatches = Vec::new();
    for m0 in (0..batch).step_by(mb) {
        let rows = mb.min(batch - m0);
        for c0 in (0..2 * n_out).step_by(nb) {
            let cols = nb.min(2 * n_out - c0);
            let xw = x.window_of(gpu, m0 * d, rows * d);
            let pw = paired.window_of(gpu, c0 * d, cols * d);
            let yw = y.window(gpu, m0 * n_out + c0 / 2, (rows - 1) * n_out + cols / 2);
            let params = MatmulParams {
                m: rows as u32,
                n: cols as u32,
                k: d as u32,
                a_first: xw.first,
                b_first: pw.first,
                c_first: yw.first,
                lda: d as u32,
                ldb: d as u32,
                ldc: n_out as u32,
                alpha: 1.0,
                ..Default::default()
            };
            let uniform = gpu.uniform("speckle.project_optical.params", &params);
            let resources = match kernel {
                OpticalKernel::Tiled(_) => vec![
                    uniform.as_entire_binding(),
                    xw.resource(),
                    pw.resource(),
                    Window::or_placeholder(None, gpu),
                    yw.resource(),
                ],
                OpticalKernel::Coop | OpticalKernel::CoopStaged => vec![
                    uniform.as_entire_binding(),
                    xw.resource(),
                    pw.resource(),
                    yw.resource(),
                ],
            };
            dispatches.push(Dispatch::kernel(
                pipeline.clone(),
                gpu.bind_group(&pipeline, &resources),
                [
                    cols.div_ceil(tile.1) as u32,
                    rows.div_ceil(tile.0) as u32,
                    1,
                ],
            ));
        }
    }
    Ok(dispatches)
}

/// Checks T against the tiled kernel's sizes and the adapter's limits.
fn check_tiled(gpu: &Gpu, t: u32) -> Result<()> {
    crate::ops::matmul::MatmulConfig {
        wg_x: t,
        wg_y: t,
        kernel: crate::ops::matmul::MatmulKernel::Tiled,
    }
    .check(gpu)
}
