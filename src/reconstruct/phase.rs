//! Phase retrieval: real x from intensities y = |R x|² of a complex Gaussian R (the optical
//! encoder), batched over rows.
//!
//! 1. Spectral initialization (Candès, Li and Soltanolkotabi, 2015): the leading eigenvector of
//!    Y = (1/m) Σᵢ yᵢ rᵢ rᵢᴴ (real part, x being real) by power iteration, scaled by
//!    sqrt(mean y). With R's parts N(0, 1/2), E\[Y\] = ‖x‖² I + x xᵀ: the eigenvalue along x is
//!    twice the rest, and E\[yᵢ\] = ‖x‖² gives the scale. The iteration runs on the shifted
//!    Y − mean(y)·I, whose expectation x xᵀ has rank one, so the bulk of the spectrum (which
//!    spreads as m/n falls) competes less with the top eigenvalue. m/n = 4 at n = 1024 needed
//!    about 20 power iterations to converge afterwards; 10 were enough at m/n = 8.
//! 2. Gerchberg–Saxton as steepest descent (Fienup, 1982): with z = R x, the magnitude
//!    projection w = √y · z/|z| and the stacked real operator C = (Re R; Im R), each step
//!    moves x along s = Cᵀ(w − z), the negative gradient of ½‖|R x| − √y‖², with the exact
//!    line search α = ‖s‖²/‖C s‖² of the least-squares problem at fixed phases. z is updated
//!    as z + α C s, so a step costs one product with C and one with Cᵀ. (Conjugate directions
//!    diverged in trials: the phases change under them.)
//!
//! x and −x give the same intensities: without a prior the result is ±x per row, and
//! [`super::resolve_sign`] aligns it with a reference for reports. With the non-negativity
//! prior the sign is chosen so that each row sums to ≥ 0 after the initialization, and the
//! result is projected onto x ≥ 0 at the end.
//!
//! The residual is the amplitude misfit ‖|R x| − √y‖ / ‖√y‖ per row.

use super::cgls::{norms, relative};
use super::operator::{run_program, Operator, Step};
use super::{SolveOptions, SolveReport};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::activation;
use crate::ops::axpy::{self, AxpyOp, Coefficient};
use crate::ops::random_fill::{self, RandomSpec};
use crate::ops::reduce::{self, Reduction};
use crate::tensor::Tensor;
use crate::Activation;

/// Philox stream of the power iteration's random start (distinct from the matrix streams).
const STREAM_START: u32 = 0x5eed_0001;

/// Recovers real x (`[batch, n]`) from intensities `y` = |R x|² (`[batch, m]`), `op` being the
/// stacked real operator (Re R; Im R) of 2m rows ([`super::Operator::from_projection`] of an
/// optical projection, or [`super::Encoder::operator`]); `seed` seeds the power iteration's
/// random start. The report's residual is the amplitude misfit ‖|R x| − √y‖/‖√y‖;
/// `options.max_iterations` caps the descent steps, `options.power_iterations` (counted apart)
/// the initialization.
pub fn retrieve(
    gpu: &Gpu,
    op: &Operator,
    y: &Tensor,
    seed: u64,
    options: &SolveOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Tensor, SolveReport)> {
    let start = std::time::Instant::now();
    options.validate()?;
    let rows = op.rows();
    let m = rows / 2;
    super::check_measurements(y, m)?;
    let batch = y.shape()[0];
    let n = op.cols();
    let one = Coefficient::constant(1.0);

    // √y and Σ y (= ‖√y‖², the scale of the residual).
    let amplitude = Tensor::empty(gpu, &[batch, m])?;
    let sum_y = Tensor::empty(gpu, &[batch])?;
    let setup: Vec<Step> = vec![
        axpy::plan(gpu, AxpyOp::Sqrt, &one, Some(y), &amplitude, None)?.into(),
        reduce::plan(gpu, Reduction::Sum, y, &sum_y)?.into(),
    ];

    // Power iteration: v ← normalize(Cᵀ (ỹ ⊙ C v)), ỹ = y on both halves.
    let v = random_fill::run(gpu, &[batch, n], &RandomSpec::gaussian(seed, STREAM_START))?;
    let z = Tensor::empty(gpu, &[batch, rows])?;
    let s = Tensor::empty(gpu, &[batch, n])?;
    let nu = Tensor::empty(gpu, &[batch])?;
    let mut power = op.plan_apply(gpu, &v, &z, None)?;
    power.push(axpy::plan(gpu, AxpyOp::PairMul, &one, Some(y), &z, None)?.into());
    power.extend(op.plan_adjoint(gpu, &z, &s)?);
    // The shift: s = m (Y − mean(y) I) v.
    let shift = Coefficient {
        alpha: -1.0,
        num: Some((&sum_y, 1.0)),
        den: None,
        sign: false,
    };
    power.push(axpy::plan(gpu, AxpyOp::Axpy, &shift, Some(&v), &s, None)?.into());
    power.push(reduce::plan(gpu, Reduction::SumSquares, &s, &nu)?.into());
    let normalize = Coefficient {
        alpha: 1.0,
        num: None,
        den: Some((&nu, -0.5)),
        sign: false,
    };
    power.push(axpy::plan(gpu, AxpyOp::Scale, &normalize, Some(&s), &v, None)?.into());

    // x = v · sqrt(Σy / m) (v has unit norm), and the sign for the prior.
    let x = Tensor::empty(gpu, &[batch, n])?;
    let scale = Coefficient {
        alpha: (1.0 / m as f64).sqrt() as f32,
        num: Some((&sum_y, 0.5)),
        den: None,
        sign: false,
    };
    let mut init: Vec<Step> =
        vec![axpy::plan(gpu, AxpyOp::Scale, &scale, Some(&v), &x, None)?.into()];
    if options.nonnegative {
        init.push(reduce::plan(gpu, Reduction::Sum, &x, &nu)?.into());
        init.push(
            axpy::plan(
                gpu,
                AxpyOp::Scale,
                &Coefficient::sign_of(1.0, &nu),
                Some(&x),
                &x,
                None,
            )?
            .into(),
        );
    }

    // Head: z = C x, r = w − z, s = Cᵀ r, γ = ‖s‖², ‖r‖².
    let r = Tensor::empty(gpu, &[batch, rows])?;
    let q = Tensor::empty(gpu, &[batch, rows])?;
    let gamma = Tensor::empty(gpu, &[batch])?;
    let delta = Tensor::empty(gpu, &[batch])?;
    let rr = Tensor::empty(gpu, &[batch])?;
    let mut head = op.plan_apply(gpu, &x, &z, None)?;
    head.push(axpy::plan(gpu, AxpyOp::Amplitude, &one, Some(&z), &r, Some(&amplitude))?.into());
    head.extend(op.plan_adjoint(gpu, &r, &s)?);
    head.push(reduce::plan(gpu, Reduction::SumSquares, &s, &gamma)?.into());
    head.push(reduce::plan(gpu, Reduction::SumSquares, &r, &rr)?.into());

    // One step: q = C s, α = γ/‖q‖², x += α s, z += α q, r = w − z, s = Cᵀ r, γ = ‖s‖².
    let mut step = op.plan_apply(gpu, &s, &q, None)?;
    step.push(reduce::plan(gpu, Reduction::SumSquares, &q, &delta)?.into());
    let alpha = Coefficient::ratio(1.0, &gamma, &delta);
    step.push(axpy::plan(gpu, AxpyOp::Axpy, &alpha, Some(&s), &x, None)?.into());
    step.push(axpy::plan(gpu, AxpyOp::Axpy, &alpha, Some(&q), &z, None)?.into());
    step.push(axpy::plan(gpu, AxpyOp::Amplitude, &one, Some(&z), &r, Some(&amplitude))?.into());
    step.extend(op.plan_adjoint(gpu, &r, &s)?);
    step.push(reduce::plan(gpu, Reduction::SumSquares, &s, &gamma)?.into());
    let check: Vec<Step> = vec![reduce::plan(gpu, Reduction::SumSquares, &r, &rr)?.into()];

    run_program(gpu, &setup, 1)?;
    run_program(gpu, &power, options.power_iterations)?;
    run_program(gpu, &init, 1)?;
    run_program(gpu, &head, 1)?;
    let y_norm = norms(gpu, &sum_y)?; // ‖√y‖ = sqrt(Σ y)
    let mut rel = relative(&norms(gpu, &rr)?, &y_norm);
    let mut done = 0;
    let mut converged = rel.iter().all(|&v| v <= options.tolerance);
    progress(0, max(&rel));
    let every = options.check_every.max(1);
    while !converged && done < options.max_iterations {
        let k = every.min(options.max_iterations - done);
        run_program(gpu, &step, k)?;
        run_program(gpu, &check, 1)?;
        done += k;
        rel = relative(&norms(gpu, &rr)?, &y_norm);
        progress(done, max(&rel));
        converged = rel.iter().all(|&v| v <= options.tolerance);
    }
    if options.nonnegative {
        gpu.execute(&activation::plan(gpu, Activation::Relu, &x, &x)?)?;
        // The reported misfit is that of the projected x.
        run_program(gpu, &head, 1)?;
        rel = relative(&norms(gpu, &rr)?, &y_norm);
    }
    Ok((x, SolveReport::new(done, rel, converged, start)))
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}
