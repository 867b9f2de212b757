//! Reconstruction of inputs from random-weight features, on the GPU.
//!
//! Random weights keep the information of their input: from the features of a random linear
//! map, a random ReLU layer (or a stack of them) or an optical random projection |R x|², the
//! input can be recovered when there are enough features. An [`Encoder`] draws the weights
//! from a seed; [`reconstruct`] inverts its features with the algorithm of its kind:
//!
//! | encoder | features | solver | recovers x when |
//! | --- | --- | --- | --- |
//! | [`EncoderKind::Linear`] | R x, R Gaussian N(0, 1/m) | CGLS ([`cgls`]) | m ≥ n; for m < n the minimum-norm solution |
//! | [`EncoderKind::Relu`] | ReLU(W x + b), W He N(0, 2/n) | active-set CGLS on the active rows and violated inequalities ([`relu`]) | m/n ≳ 2–4 (about half the units are active) |
//! | [`EncoderKind::DeepRelu`] | L ReLU layers, widths n·r^(l/L) | the same, layer by layer from the last | rarely: each layer expands by only r^(1/L) (see below) |
//! | [`EncoderKind::Optical`] | \|R x\|², R complex Gaussian | spectral initialization, then Gerchberg–Saxton as steepest descent ([`phase`]) | m/n ≳ 4, up to the global sign |
//!
//! Every solver runs batched over the rows of its input (`[batch, n]`: e.g. the three colour
//! channels of an image are three independent problems), keeps its vectors on the GPU, and
//! computes its step sizes there (per-row sums of squares from [`crate::ops::reduce`], read by
//! [`crate::ops::axpy`]); the host reads back a few per-row scalars every
//! [`SolveOptions::check_every`] iterations to test the tolerance and report progress.
//! A block of iterations is one command buffer.
//!
//! # Numbers (n = 1024, a 32 × 32 image, batch 3; [`SolveOptions::recommended`])
//!
//! From `tests/reconstruct.rs` `timing_table` (ignored by default; run it with
//! `cargo test --test reconstruct timing_table -- --ignored --nocapture`). Seconds on lavapipe
//! (Mesa 22.3, 2 CPU cores) include generating the weights and encoding; the whole table took
//! 33 s on a quiet machine and 53 s while other builds shared the cores (58.7 s with 4
//! iterations per deep layer instead of 3). On an H200 (Vulkan) the same table takes 0.6 s
//! with the same iterations and PSNR (the algorithms are deterministic).
//!
//! | encoder | m/n | iterations | residual | PSNR dB (worst channel) | SSIM | seconds |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | linear | 0.5 | 20 | 2.7e-4 | 8.3 (minimum-norm solution) | 0.06 | 0.55 |
//! | linear | 1 | 40 (cap) | 6.3e-3 | 21.1 | 0.62 | 0.82 |
//! | linear | 2 | 20 | 3.3e-4 | 67.8 | 1.000 | 0.71 |
//! | linear | 4 | 10 | 6.4e-4 | 65.6 | 1.000 | 0.77 |
//! | linear | 8 | 10 | 2.4e-5 | 96.0 | 1.000 | 1.63 |
//! | relu | 0.5 | 20 | 1.9e-2 | 6.7 | 0.03 | 0.31 |
//! | relu | 1 | 40 (cap) | 3.5e-2 | 9.1 | 0.10 | 0.88 |
//! | relu | 2 | 40 (cap) | 1.6e-2 | 20.8 | 0.62 | 1.67 |
//! | relu | 4 | 20 | 3.2e-4 | 67.7 | 1.000 | 1.42 |
//! | relu | 8 | 10 | 6.6e-4 | 65.5 | 1.000 | 1.56 |
//! | deep_relu (3 layers) | 0.5 … 8 | 9 (3 per layer) | 0.63–0.70 | 5.3–5.9 | ≈ 0 | 0.21 … 3.55 |
//! | optical | 0.5, 1, 2 | 5 (+5 power) | 0.48–0.49 | 6.8–7.0 | ≈ 0 | 0.47, 0.44, 0.87 |
//! | optical | 4 | 30 (+20 power) | 2.9e-4 | 67.8 | 1.000 | 6.47 |
//! | optical | 8 | 20 (+10 power) | 1.7e-4 | 74.7 | 1.000 | 8.15 |
//!
//! One iteration costs one product with A and one with Aᵀ; on lavapipe a product of a 3-row
//! batch with an 8192 × 1024 matrix takes about 50–65 ms (matmul's scalar kernel, which beat
//! the texture path for these skinny shapes), so an iteration at m/n = 8 costs about 0.12 s
//! (linear, ReLU) or 0.25–0.4 s (optical: 2m rows). Below m/n = 2–4 the features do not
//! determine x (linear m < n: the minimum-norm solution; ReLU: about half the units are
//! active; optical: phase retrieval of real x needs m ≳ 2n and these solvers m ≳ 4n), so the
//! recommended options give those cases a small budget.
//!
//! Square Gaussian systems (m = n) are badly conditioned (κ grows like 2n): CGLS reduces the
//! residual steadily but the error of x only slowly, and the iteration cap decides the result.
//!
//! Deep ReLU stacks are inverted layer by layer; with widths growing geometrically each layer
//! expands by only r^(1/L) (2 for r = 8, L = 3), so about as many units are active as there
//! are unknowns, each layer's system is nearly square, and the errors of the later layers are
//! amplified by the earlier ones: the misfit decreases over the iterations but the input is
//! recovered only roughly.

mod cgls;
mod encoder;
mod metrics;
mod operator;
pub mod phase;
pub mod relu;

pub use cgls::cgls;
pub use encoder::{Encoder, EncoderKind, DEFAULT_LAYERS, RELU_BIAS_STD};
pub use metrics::{psnr, relative_error, resolve_sign, ssim};
pub use operator::Operator;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// Options of the solvers. `Default`: at most 200 iterations, tolerance 1e-4, a check every
/// 5 iterations, no prior, 10 power iterations, 3 active-set rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolveOptions {
    /// The cap on iterations (each one product with A and one with Aᵀ). For deep ReLU stacks
    /// the cap applies to each layer; phase retrieval's power iterations are counted apart
    /// ([`SolveOptions::power_iterations`]).
    pub max_iterations: usize,
    /// Stop when every row's relative residual is at most this (see [`SolveReport::residual`]);
    /// CGLS also stops when ‖Aᵀ r‖ has fallen by 100 times this factor on every row (the
    /// least-squares optimum of an inconsistent system, whose residual stays larger).
    pub tolerance: f64,
    /// Read the residuals back every this many iterations (≥ 1; the iterations between run as
    /// one command buffer). Larger saves synchronization on fast GPUs; the solver may run up
    /// to this many − 1 iterations past the tolerance.
    pub check_every: usize,
    /// The non-negativity prior x ≥ 0 (images): phase retrieval chooses the sign that makes
    /// each row's sum ≥ 0 and projects at the end; ReLU inversion projects after each round
    /// (hidden layers of deep stacks always); linear least squares projects at the end.
    pub nonnegative: bool,
    /// Power iterations of phase retrieval's spectral initialization.
    pub power_iterations: usize,
    /// Active-set rounds of ReLU inversion (round 0: active rows only).
    pub active_set_rounds: usize,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            max_iterations: 200,
            tolerance: 1e-4,
            check_every: 5,
            nonnegative: false,
            power_iterations: 10,
            active_set_rounds: 3,
        }
    }
}

impl SolveOptions {
    /// Checks the values: a finite tolerance ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::invalid(format!(
                "the tolerance must be finite and >= 0, got {}",
                self.tolerance
            )));
        }
        Ok(())
    }

    /// Options tuned so that the reconstruction demo (n = 1024, batch 3, the four encoders
    /// at ratios 0.5, 1, 2, 4 and 8) runs in well under a minute on lavapipe (33–53 s
    /// measured, see the [module docs](self) for each case's cost and quality): tolerance
    /// 1e-3 (about 60 dB); linear 40 iterations; ReLU 40 in 2 active-set rounds; deep ReLU 3
    /// per layer in 1 round (more does not help it); optical with the non-negativity prior,
    /// 40 steps after 10 power iterations at m/n ≥ 6, 30 after 20 at m/n ≥ 3 (fewer power
    /// iterations left m/n = 4 unconverged), 5 after 5 below (where it cannot succeed).
    pub fn recommended(kind: EncoderKind, ratio: f64) -> SolveOptions {
        let base = SolveOptions {
            tolerance: 1e-3,
            ..SolveOptions::default()
        };
        match kind {
            EncoderKind::Linear => SolveOptions {
                max_iterations: 40,
                ..base
            },
            EncoderKind::Relu => SolveOptions {
                max_iterations: 40,
                active_set_rounds: 2,
                ..base
            },
            EncoderKind::DeepRelu { .. } => SolveOptions {
                max_iterations: 3,
                check_every: 3,
                active_set_rounds: 1,
                ..base
            },
            EncoderKind::Optical if ratio >= 6.0 => SolveOptions {
                max_iterations: 40,
                power_iterations: 10,
                nonnegative: true,
                ..base
            },
            EncoderKind::Optical if ratio >= 3.0 => SolveOptions {
                max_iterations: 30,
                power_iterations: 20,
                nonnegative: true,
                ..base
            },
            EncoderKind::Optical => SolveOptions {
                max_iterations: 5,
                power_iterations: 5,
                nonnegative: true,
                ..base
            },
        }
    }
}

/// What a solver did.
#[derive(Clone, Debug, PartialEq)]
pub struct SolveReport {
    /// Iterations run (each one product with A and one with Aᵀ; summed over layers for deep
    /// ReLU stacks).
    pub iterations: usize,
    /// The largest relative residual over the rows: ‖A x − y‖/‖y‖ for linear systems,
    /// sqrt(2 f(x))/‖y‖ of the ReLU misfit f ([`relu`]), the end-to-end ‖F(x) − y‖/‖y‖ for deep
    /// stacks, the amplitude misfit ‖|R x| − √y‖/‖√y‖ for phase retrieval.
    pub residual: f64,
    /// Each row's relative residual.
    pub row_residuals: Vec<f64>,
    /// True when the tolerance was met before the iteration cap.
    pub converged: bool,
    /// Wall-clock seconds, from the call to the return (planning and read-backs included).
    pub seconds: f64,
}

impl SolveReport {
    fn new(
        iterations: usize,
        row_residuals: Vec<f64>,
        converged: bool,
        start: std::time::Instant,
    ) -> SolveReport {
        SolveReport {
            iterations,
            residual: row_residuals.iter().copied().fold(0.0, f64::max),
            row_residuals,
            converged,
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

/// Checks that `y` is `[batch, m]`.
fn check_measurements(y: &Tensor, m: usize) -> Result<()> {
    match y.shape() {
        [_, cols] if *cols == m => Ok(()),
        s => Err(Error::shape(
            "reconstruct",
            format!("the measurements must be [batch, {m}], got shape {s:?}"),
        )),
    }
}

/// Recovers x̂ (`[batch, n]`) from the features `y` (`[batch, m]`) of `encoder`, with the
/// algorithm of its kind (see the [module docs](self)). `progress(iteration, residual)` is
/// called at each check with the iterations so far and the largest row residual.
pub fn reconstruct(
    gpu: &Gpu,
    encoder: &Encoder,
    y: &Tensor,
    options: &SolveOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Tensor, SolveReport)> {
    options.validate()?;
    check_measurements(y, encoder.m())?;
    match encoder.kind() {
        EncoderKind::Linear => {
            let op = encoder
                .operator()
                .ok_or_else(|| Error::invalid("the linear encoder has no operator"))?;
            let (x, report) = cgls(gpu, op, y, options, progress)?;
            if options.nonnegative {
                gpu.execute(&crate::ops::activation::plan(
                    gpu,
                    crate::Activation::Relu,
                    &x,
                    &x,
                )?)?;
            }
            Ok((x, report))
        }
        EncoderKind::Optical => {
            let op = encoder
                .operator()
                .ok_or_else(|| Error::invalid("the optical encoder has no operator"))?;
            phase::retrieve(gpu, op, y, encoder.seed(), options, progress)
        }
        EncoderKind::Relu | EncoderKind::DeepRelu { .. } => {
            let layers = encoder.layers();
            relu::invert_stack(gpu, &layers, y, options, progress, &|x| {
                encoder.encode(gpu, x)
            })
        }
    }
}
