//! CGLS: conjugate gradients on the normal equations AᵀA x = Aᵀ t, in the stable form of
//! Hestenes–Stiefel (Björck, *Numerical Methods for Least Squares Problems*, §7.4), batched
//! over rows and optionally restricted to a subset of A's rows by a 0/1 mask M:
//! minimize ‖M ⊙ (A x − t)‖. Every vector stays on the GPU; the step sizes α = γ/δ and
//! β = γ'/γ are per-row ratios of sums of squares that `reduce` leaves on the GPU and `axpy`
//! reads there, so a block of iterations runs without a read-back. Per iteration: one product
//! with A, one with Aᵀ, two sums of squares (a third at checks) and four axpy dispatches (five
//! with a mask).

use super::operator::{run_program, Operator, Step};
use super::{SolveOptions, SolveReport};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::axpy::{self, AxpyOp, Coefficient};
use crate::ops::reduce::{self, Reduction};
use crate::tensor::Tensor;

/// CGLS also stops when ‖Aᵀ r‖ ≤ STALL · tolerance · ‖Aᵀ r₀‖ on every row: the least-squares
/// optimum of an inconsistent system, whose residual stays above the tolerance. The factor
/// keeps badly conditioned consistent systems (where ‖Aᵀ r‖ falls much faster than ‖r‖)
/// iterating towards the tolerance on ‖r‖.
const STALL: f64 = 1e-2;

/// The state of a batched CGLS: the iterate and its work vectors, and the recorded programs.
pub(crate) struct Cgls {
    /// The iterate, `[batch, n]`.
    pub x: Tensor,
    /// The residual M ⊙ (t − A x), `[batch, rows]`: [`Cgls::residual`] computes it, and a
    /// caller that knows A x may write it (and `rr`) itself before [`Cgls::run`].
    pub r: Tensor,
    /// Sums of squares of the residual, `[batch]`, after [`Cgls::residual`] (and at checks).
    pub rr: Tensor,
    /// γ = ‖Aᵀ r‖² at the start of the current run, `[batch]`.
    gamma: Tensor,
    gamma0: Vec<f64>,
    /// Programs: the masked residual, the start of a run, one iteration, a check.
    residual_program: Vec<Step>,
    start_program: Vec<Step>,
    iteration_program: Vec<Step>,
    check_program: Vec<Step>,
    batch: usize,
}

impl Cgls {
    /// Prepares CGLS for `op`, right-hand side `t` (`[batch, rows]`), optional mask (the same
    /// shape, 0/1) and starting point `x0` (zero when `None`).
    pub fn new(
        gpu: &Gpu,
        op: &Operator,
        t: &Tensor,
        mask: Option<&Tensor>,
        x0: Option<Tensor>,
    ) -> Result<Cgls> {
        let batch = t.shape().first().copied().unwrap_or(1);
        let (rows, n) = (op.rows(), op.cols());
        let x = match x0 {
            Some(x) => x,
            None => Tensor::zeros(gpu, &[batch, n])?,
        };
        let r = Tensor::empty(gpu, &[batch, rows])?;
        let q = Tensor::empty(gpu, &[batch, rows])?;
        let s = Tensor::empty(gpu, &[batch, n])?;
        let p = Tensor::empty(gpu, &[batch, n])?;
        let rr = Tensor::zeros(gpu, &[batch])?;
        let gamma = Tensor::zeros(gpu, &[batch])?;
        let gamma_new = Tensor::zeros(gpu, &[batch])?;
        let delta = Tensor::zeros(gpu, &[batch])?;
        let one = Coefficient::constant(1.0);

        // r = M ⊙ (t − A x), ‖r‖².
        let mut residual_program = op.plan_apply(gpu, &x, &r, None)?;
        residual_program.push(
            match mask {
                Some(m) => axpy::plan(gpu, AxpyOp::MaskedDiff, &one, Some(t), &r, Some(m))?,
                None => axpy::plan(
                    gpu,
                    AxpyOp::Xpay,
                    &Coefficient::constant(-1.0),
                    Some(t),
                    &r,
                    None,
                )?,
            }
            .into(),
        );
        residual_program.push(reduce::plan(gpu, Reduction::SumSquares, &r, &rr)?.into());

        // s = Aᵀ r, γ = ‖s‖², p = s.
        let mut start_program = op.plan_adjoint(gpu, &r, &s)?;
        start_program.push(reduce::plan(gpu, Reduction::SumSquares, &s, &gamma)?.into());
        start_program.push(axpy::plan(gpu, AxpyOp::Scale, &one, Some(&s), &p, None)?.into());

        // One iteration.
        let mut it = op.plan_apply(gpu, &p, &q, None)?;
        if let Some(m) = mask {
            it.push(axpy::plan(gpu, AxpyOp::Mul, &one, Some(m), &q, None)?.into());
        }
        it.push(reduce::plan(gpu, Reduction::SumSquares, &q, &delta)?.into());
        it.push(
            axpy::plan(
                gpu,
                AxpyOp::Axpy,
                &Coefficient::ratio(1.0, &gamma, &delta),
                Some(&p),
                &x,
                None,
            )?
            .into(),
        );
        it.push(
            axpy::plan(
                gpu,
                AxpyOp::Axpy,
                &Coefficient::ratio(-1.0, &gamma, &delta),
                Some(&q),
                &r,
                None,
            )?
            .into(),
        );
        it.extend(op.plan_adjoint(gpu, &r, &s)?);
        it.push(reduce::plan(gpu, Reduction::SumSquares, &s, &gamma_new)?.into());
        it.push(
            axpy::plan(
                gpu,
                AxpyOp::Xpay,
                &Coefficient::ratio(1.0, &gamma_new, &gamma),
                Some(&s),
                &p,
                None,
            )?
            .into(),
        );
        it.push(axpy::plan(gpu, AxpyOp::Scale, &one, Some(&gamma_new), &gamma, None)?.into());

        let check_program = vec![reduce::plan(gpu, Reduction::SumSquares, &r, &rr)?.into()];
        Ok(Cgls {
            x,
            r,
            rr,
            gamma,
            gamma0: vec![0.0; batch],
            residual_program,
            start_program,
            iteration_program: it,
            check_program,
            batch,
        })
    }

    /// Computes r = M ⊙ (t − A x) for the current x and returns ‖r‖ per row.
    pub fn residual(&mut self, gpu: &Gpu) -> Result<Vec<f64>> {
        run_program(gpu, &self.residual_program, 1)?;
        norms(gpu, &self.rr)
    }

    /// Runs up to `budget` iterations from the residual in `r` and `rr`
    /// (conjugate directions restart here), checking every `options.check_every` iterations:
    /// stops when every row's ‖r‖/scale ≤ tolerance or ‖Aᵀ r‖ ≤ [`STALL`] · tolerance ·
    /// ‖Aᵀ r₀‖. `done`
    /// counts iterations across runs (for the progress callback). Returns (iterations run,
    /// per-row relative residuals at the end, converged).
    pub fn run(
        &mut self,
        gpu: &Gpu,
        budget: usize,
        scale: &[f64],
        options: &SolveOptions,
        done: &mut usize,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Result<(usize, Vec<f64>, bool)> {
        let mut rel = relative(&norms(gpu, &self.rr)?, scale);
        let met = rel.iter().all(|&v| v <= options.tolerance);
        if met || budget == 0 {
            return Ok((0, rel, met));
        }
        run_program(gpu, &self.start_program, 1)?;
        self.gamma0 = self
            .gamma
            .to_vec(gpu)?
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let mut ran = 0;
        let every = options.check_every.max(1);
        while ran < budget {
            let k = every.min(budget - ran);
            run_program(gpu, &self.iteration_program, k)?;
            run_program(gpu, &self.check_program, 1)?;
            ran += k;
            *done += k;
            rel = relative(&norms(gpu, &self.rr)?, scale);
            let gamma: Vec<f32> = self.gamma.to_vec(gpu)?;
            let stalled = (0..self.batch).all(|b| {
                let g0 = self.gamma0[b];
                g0 <= 0.0 || (f64::from(gamma[b]) / g0).sqrt() <= STALL * options.tolerance
            });
            progress(*done, rel.iter().copied().fold(0.0, f64::max));
            if rel.iter().all(|&v| v <= options.tolerance) || stalled {
                return Ok((ran, rel, true));
            }
        }
        Ok((ran, rel, false))
    }
}

/// sqrt of each value of a `[batch]` tensor of sums of squares.
pub(crate) fn norms(gpu: &Gpu, sums: &Tensor) -> Result<Vec<f64>> {
    Ok(sums
        .to_vec(gpu)?
        .iter()
        .map(|&v| f64::from(v).max(0.0).sqrt())
        .collect())
}

/// value / scale per row (the value itself where the scale is 0).
pub(crate) fn relative(values: &[f64], scale: &[f64]) -> Vec<f64> {
    values
        .iter()
        .zip(scale)
        .map(|(&v, &s)| if s > 0.0 { v / s } else { v })
        .collect()
}

/// Least squares min ‖A x − y‖ per row of `y` (`[batch, rows]`) by CGLS from x = 0: for
/// m ≥ n and A of full rank, the least-squares solution; for m < n, the minimum-norm
/// solution of A x = y (CGLS from 0 stays in the row space of A). `report.residual` is the
/// largest relative residual ‖A x − y‖/‖y‖ over the rows.
///
/// A square Gaussian system (m = n) is badly conditioned: the singular values of an n × n
/// Gaussian matrix spread from about 2√n·σ down to about σ/√n, so κ grows like 2n. Within an
/// iteration cap CGLS then reduces the residual ‖A x − y‖ steadily while the error of x
/// decreases slowly (its components along the smallest singular vectors converge last); see
/// the [module docs](super) for measured figures.
pub fn cgls(
    gpu: &Gpu,
    op: &Operator,
    y: &Tensor,
    options: &SolveOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Tensor, SolveReport)> {
    let start = std::time::Instant::now();
    options.validate()?;
    super::check_measurements(y, op.rows())?;
    let mut solver = Cgls::new(gpu, op, y, None, None)?;
    let scale = solver.residual(gpu)?; // r = y at x = 0
    let mut done = 0;
    let (iterations, rel, converged) = solver.run(
        gpu,
        options.max_iterations,
        &scale,
        options,
        &mut done,
        progress,
    )?;
    Ok((
        solver.x,
        SolveReport::new(iterations, rel, converged, start),
    ))
}
