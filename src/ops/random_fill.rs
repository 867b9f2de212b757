//! Seeded random tensors from Philox4x32-10 (`shaders/random_fill.wgsl`): entry (r, c) of a
//! `[rows, cols]` tensor is a pure function of (seed, stream, row0 + r, c), the same on every
//! adapter and on the CPU (`cpu::random_fill`). The mapping is documented in `cpu::philox`.

use crate::cpu::philox;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Loop iterations one Philox4x32-10 block may cost: `philox4x32_10` in
/// `shaders/lib/philox.wgsl` loops over its 10 rounds, and lavapipe counts a loop that runs n
/// times as n + 1 (its last, exiting test counts too; measured with the loop_limit probe). It
/// unrolls this loop in practice (a matrix-free projection looping 60,000 times over blocks
/// was right), but an adapter need not, so the kernels' loop bounds count it: every kernel
/// that draws a block inside a loop multiplies this in.
pub(crate) const PHILOX_LOOPS: u64 = 11;

/// What each entry is drawn from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// The raw u32 word, stored bit for bit in the f32 slot (for checking the generator).
    Bits,
    /// Uniform in [0, 1).
    Uniform,
    /// Uniform in [−1, 1): `2u − 1` from the [`Uniform`](Distribution::Uniform) draw `u`
    /// (exact in f32), so `scale` = a gives U[−a, a) with variance a²/3.
    UniformSymmetric,
    /// Standard normal (Box–Muller).
    Gaussian,
    /// ±1 with equal probability.
    Rademacher,
    /// +1 with probability `p`, −1 with probability `p`, 0 otherwise (Achlioptas, Li et al.:
    /// p = 1/(2s)).
    Sparse {
        /// Probability of each sign, at most 1/2.
        p: f32,
    },
}

impl Distribution {
    /// The kernel's DIST code.
    fn code(self) -> u32 {
        match self {
            Distribution::Bits => 0,
            Distribution::Uniform => 1,
            Distribution::Gaussian => 2,
            Distribution::Rademacher => 3,
            Distribution::Sparse { .. } => 4,
            Distribution::UniformSymmetric => 5,
        }
    }
}

/// Uniform parameters of `shaders/random_fill.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RandomFillParams {
    rows: u32,
    cols: u32,
    row0: u32,
    out_first: u32,
    _pad: u32,
    stream: u32,
    key_lo: u32,
    key_hi: u32,
    scale: f32,
    sparse_p: f32,
    pair_stream: u32,
    paired: u32,
}

const WG: u32 = 256;

/// What to generate: the distribution, its scale, the seed and stream, and the global index
/// of the tensor's first row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomSpec {
    /// Distribution of each entry.
    pub distribution: Distribution,
    /// Multiplies every value (ignored for [`Distribution::Bits`]).
    pub scale: f32,
    /// The seed (the Philox key).
    pub seed: u64,
    /// The stream (a [`philox::Stream`] as u32, or any other value).
    pub stream: u32,
    /// Global row index of the tensor's first row (to fill a matrix in row blocks).
    pub row0: u32,
}

impl RandomSpec {
    /// Standard normal entries of `stream` of `seed`, scale 1, from row 0.
    pub fn gaussian(seed: u64, stream: u32) -> RandomSpec {
        RandomSpec {
            distribution: Distribution::Gaussian,
            scale: 1.0,
            seed,
            stream,
            row0: 0,
        }
    }
}

/// Plans filling `out` (shape `[rows, cols]`, or `[cols]` as one row) as `spec` says.
pub fn plan(gpu: &Gpu, out: &Tensor, spec: &RandomSpec) -> Result<Vec<Dispatch>> {
    plan_layout(gpu, out, spec, None)
}

/// Plans filling `out` (`[rows, cols]`) with the rows of two streams interleaved in blocks of
/// 4: global row `8q + t` (from `spec.row0`) is row `4q + t` of `spec.stream` for t < 4 and
/// row `4q + t − 4` of `pair_stream` otherwise ([`crate::cpu::project_optical::paired_row`]),
/// the layout of the fused optical projection's matrix ([`crate::ops::project_optical`]).
pub fn plan_paired(
    gpu: &Gpu,
    out: &Tensor,
    spec: &RandomSpec,
    pair_stream: u32,
) -> Result<Vec<Dispatch>> {
    plan_layout(gpu, out, spec, Some(pair_stream))
}

fn plan_layout(
    gpu: &Gpu,
    out: &Tensor,
    spec: &RandomSpec,
    pair_stream: Option<u32>,
) -> Result<Vec<Dispatch>> {
    if let Distribution::Sparse { p } = spec.distribution {
        if !(p > 0.0 && p <= 0.5) {
            return Err(Error::invalid(format!(
                "sparse probability must be in (0, 1/2], got {p}"
            )));
        }
    }
    if !spec.scale.is_finite() {
        return Err(Error::invalid(format!(
            "random scale must be finite, got {}",
            spec.scale
        )));
    }
    let shape = out.shape();
    let cols = shape[shape.len() - 1];
    let rows = out.len() / cols;
    if spec.row0 as usize + rows > u32::MAX as usize {
        return Err(Error::invalid(format!(
            "rows {} .. {} exceed the generator's u32 row index",
            spec.row0,
            spec.row0 as usize + rows
        )));
    }
    let pipeline = gpu.pipeline(
        &shaders::RANDOM_FILL,
        &[
            ("WG", f64::from(WG)),
            ("DIST", f64::from(spec.distribution.code())),
        ],
    )?;
    let key = philox::key(spec.seed);
    let quads = cols.div_ceil(4);
    // Row blocks whose window fits one binding and whose blocks fit one grid.
    let max_rows = (window_capacity(gpu) / cols)
        .min(gpu.max_grid() * WG as usize / quads)
        .max(1);
    if cols > window_capacity(gpu) {
        return Err(Error::invalid(format!(
            "rows of {cols} values exceed one storage binding ({} bytes)",
            gpu.binding_limit()
        )));
    }
    let mut dispatches = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let n = max_rows.min(rows - r0);
        let window = out.window(gpu, r0 * cols, n * cols);
        let params = RandomFillParams {
            rows: n as u32,
            cols: cols as u32,
            row0: spec.row0 + r0 as u32,
            out_first: window.first,
            _pad: 0,
            stream: spec.stream,
            key_lo: key[0],
            key_hi: key[1],
            scale: spec.scale,
            sparse_p: match spec.distribution {
                Distribution::Sparse { p } => p,
                _ => 0.0,
            },
            pair_stream: pair_stream.unwrap_or(0),
            paired: u32::from(pair_stream.is_some()),
        };
        let uniform = gpu.uniform("speckle.random_fill.params", &params);
        let bind_group =
            gpu.bind_group(&pipeline, &[uniform.as_entire_binding(), window.resource()]);
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid(((n * quads) as u32).div_ceil(WG)),
        ));
        r0 += n;
    }
    Ok(dispatches)
}

/// A new tensor of `shape` filled as `spec` says.
pub fn run(gpu: &Gpu, shape: &[usize], spec: &RandomSpec) -> Result<Tensor> {
    let out = Tensor::empty(gpu, shape)?;
    gpu.execute(&plan(gpu, &out, spec)?)?;
    Ok(out)
}
