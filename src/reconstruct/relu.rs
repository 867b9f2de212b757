//! Inversion of random ReLU layers y = ReLU(W x + b), batched over rows, and of deep stacks of
//! them layer by layer.
//!
//! The rows split into the active ones (yᵢ > 0), where W x + b = y is an equation, and the
//! inactive ones (yᵢ = 0), where W x + b ≤ 0 is an inequality. The solver minimizes the convex
//!
//!   f(x) = ½ Σ_active (wᵢ·x + bᵢ − yᵢ)² + ½ Σ_inactive max(wᵢ·x + bᵢ, 0)²,
//!
//! zero exactly at the x that reproduce y, by an active-set (semismooth Newton) iteration:
//! round 0 solves least squares on the active rows alone by CGLS; each later round adds the
//! inactive rows that the current x violates (wᵢ·x + bᵢ > 0) with target 0 and solves again
//! by CGLS warm-started at the current x. Each round's least-squares problem is f's local
//! quadratic model, so the rounds are Newton steps on f; rows leave the set again when the
//! new x satisfies their inequality. For hidden layers (and with the non-negativity prior) x
//! is projected onto x ≥ 0 after each round.
//!
//! The residual is sqrt(2 f(x)) / ‖y‖ per row: 0 exactly when ReLU(W x + b) = y, and equal to
//! ‖ReLU(W x + b) − y‖/‖y‖ whenever the active rows have W x + b ≥ 0.

use super::cgls::{relative, Cgls};
use super::operator::{run_program, Operator, Step};
use super::{SolveOptions, SolveReport};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::activation;
use crate::ops::axpy::{self, AxpyOp, Coefficient};
use crate::ops::reduce::{self, Reduction};
use crate::tensor::Tensor;
use crate::Activation;

/// The outcome of one layer's inversion.
pub(crate) struct LayerSolution {
    pub x: Tensor,
    pub residuals: Vec<f64>,
    pub converged: bool,
}

/// Inverts y = ReLU(W x + b) for `y` `[batch, rows]` (W is `op`, b is `bias` of `rows`
/// values). `done` counts iterations across calls for `progress`.
#[expect(
    clippy::too_many_arguments,
    reason = "the layer, its measurements, the prior and the solver's shared state"
)]
pub(crate) fn invert_layer(
    gpu: &Gpu,
    op: &Operator,
    bias: &Tensor,
    y: &Tensor,
    nonnegative: bool,
    options: &SolveOptions,
    done: &mut usize,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<LayerSolution> {
    let batch = y.shape()[0];
    let rows = op.rows();
    let one = Coefficient::constant(1.0);
    // t = y − b (the target of every fitted row: yᵢ − bᵢ on active rows, −bᵢ on violated
    // inactive ones, where yᵢ = 0), ‖y‖.
    let t = Tensor::empty(gpu, &[batch, rows])?;
    let y_sq = Tensor::empty(gpu, &[batch])?;
    let prepare: Vec<Step> = vec![
        axpy::plan(gpu, AxpyOp::Scale, &one, Some(y), &t, None)?.into(),
        axpy::plan(
            gpu,
            AxpyOp::Axpy,
            &Coefficient::constant(-1.0),
            Some(bias),
            &t,
            None,
        )?
        .into(),
        reduce::plan(gpu, Reduction::SumSquares, y, &y_sq)?.into(),
    ];
    run_program(gpu, &prepare, 1)?;
    let y_norm = super::cgls::norms(gpu, &y_sq)?;

    let mask = Tensor::empty(gpu, &[batch, rows])?;
    let mut cgls = Cgls::new(gpu, op, &t, Some(&mask), None)?;
    // Round 0 at x = 0: the active rows, r = M ⊙ t (no product needed).
    let start: Vec<Step> = vec![
        axpy::plan(gpu, AxpyOp::Mask, &one, Some(y), &mask, Some(y))?.into(),
        axpy::plan(gpu, AxpyOp::Scale, &one, Some(&t), &cgls.r, None)?.into(),
        axpy::plan(gpu, AxpyOp::Mul, &one, Some(&mask), &cgls.r, None)?.into(),
        reduce::plan(gpu, Reduction::SumSquares, &cgls.r, &cgls.rr)?.into(),
    ];
    // Later rounds: z = W x + b, M = active or violated (z > 0), r = M ⊙ (y − z) (which is
    // M ⊙ (t − W x)), so one product evaluates f and starts the round.
    let z = Tensor::empty(gpu, &[batch, rows])?;
    let mut evaluate = op.plan_apply(gpu, &cgls.x, &z, Some(bias))?;
    evaluate.push(axpy::plan(gpu, AxpyOp::Mask, &one, Some(y), &mask, Some(&z))?.into());
    evaluate.push(axpy::plan(gpu, AxpyOp::Scale, &one, Some(&z), &cgls.r, None)?.into());
    evaluate.push(axpy::plan(gpu, AxpyOp::MaskedDiff, &one, Some(y), &cgls.r, Some(&mask))?.into());
    evaluate.push(reduce::plan(gpu, Reduction::SumSquares, &cgls.r, &cgls.rr)?.into());
    let project = activation::plan(gpu, Activation::Relu, &cgls.x, &cgls.x)?;

    let rounds = options.active_set_rounds.max(1);
    let mut iterations = 0;
    let mut residuals = vec![f64::INFINITY; batch];
    let mut converged = false;
    for round in 0..=rounds {
        if round == 0 {
            run_program(gpu, &start, 1)?;
        } else {
            // f at the current x: sqrt(2 f) = ‖r‖.
            run_program(gpu, &evaluate, 1)?;
            residuals = relative(&super::cgls::norms(gpu, &cgls.rr)?, &y_norm);
            progress(*done, residuals.iter().copied().fold(0.0, f64::max));
            converged = residuals.iter().all(|&v| v <= options.tolerance);
            if converged || round == rounds || iterations >= options.max_iterations {
                break;
            }
        }
        let left = options.max_iterations - iterations;
        let budget = left.div_ceil(rounds - round);
        let (ran, _, _) = cgls.run(gpu, budget, &y_norm, options, done, progress)?;
        iterations += ran;
        if nonnegative {
            gpu.execute(&project)?;
        }
    }
    Ok(LayerSolution {
        x: cgls.x,
        residuals,
        converged,
    })
}

/// Inverts one random ReLU layer y = ReLU(W x + b) for `y` `[batch, rows]`, W the operator
/// `weight` (`[rows, n]`) and b the `bias` (`rows` values), by the active-set iteration of the
/// [module docs](self); with `options.nonnegative`, x is projected onto x ≥ 0 after each round.
pub fn invert(
    gpu: &Gpu,
    weight: &Operator,
    bias: &Tensor,
    y: &Tensor,
    options: &SolveOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Tensor, SolveReport)> {
    let start = std::time::Instant::now();
    options.validate()?;
    super::check_measurements(y, weight.rows())?;
    if bias.len() != weight.rows() {
        return Err(crate::Error::shape(
            "reconstruct",
            format!(
                "the bias {:?} must hold one value per row of W ({})",
                bias.shape(),
                weight.rows()
            ),
        ));
    }
    let mut done = 0;
    let solution = invert_layer(
        gpu,
        weight,
        bias,
        y,
        options.nonnegative,
        options,
        &mut done,
        progress,
    )?;
    Ok((
        solution.x,
        SolveReport::new(done, solution.residuals, solution.converged, start),
    ))
}

/// Inverts a stack of ReLU layers from the last to the first: each layer's solution is the
/// previous layer's measurements. Hidden activations are ≥ 0 (ReLU outputs), so every layer
/// but the first is solved with the non-negativity projection; the first with it only when
/// `options.nonnegative`. `options` applies to each layer (the iteration cap is per layer).
/// The report's residual is the end-to-end misfit ‖F(x̂) − y‖/‖y‖ of the whole stack.
pub(crate) fn invert_stack(
    gpu: &Gpu,
    layers: &[(&Operator, &Tensor)],
    y: &Tensor,
    options: &SolveOptions,
    progress: &mut dyn FnMut(usize, f64),
    forward: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<(Tensor, SolveReport)> {
    let start = std::time::Instant::now();
    let mut done = 0;
    let mut h: Option<Tensor> = None;
    let mut converged = true;
    let mut last_residuals = Vec::new();
    for (l, (op, bias)) in layers.iter().enumerate().rev() {
        let target = h.as_ref().unwrap_or(y);
        let nonnegative = l > 0 || options.nonnegative;
        let solution = invert_layer(
            gpu,
            op,
            bias,
            target,
            nonnegative,
            options,
            &mut done,
            progress,
        )?;
        converged &= solution.converged;
        last_residuals = solution.residuals;
        h = Some(solution.x);
    }
    let x = match h {
        Some(x) => x,
        None => {
            return Err(crate::Error::invalid(
                "a ReLU stack needs at least one layer",
            ))
        }
    };
    let residuals = if layers.len() == 1 {
        last_residuals
    } else {
        misfit(gpu, &forward(&x)?, y)?
    };
    Ok((x, SolveReport::new(done, residuals, converged, start)))
}

/// ‖a − b‖/‖b‖ per row of two `[batch, m]` tensors, on the GPU.
pub(crate) fn misfit(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    let batch = b.shape()[0];
    let diff = Tensor::empty(gpu, b.shape())?;
    let (dd, bb) = (Tensor::empty(gpu, &[batch])?, Tensor::empty(gpu, &[batch])?);
    let program: Vec<Step> = vec![
        axpy::plan(
            gpu,
            AxpyOp::Scale,
            &Coefficient::constant(1.0),
            Some(a),
            &diff,
            None,
        )?
        .into(),
        axpy::plan(
            gpu,
            AxpyOp::Axpy,
            &Coefficient::constant(-1.0),
            Some(b),
            &diff,
            None,
        )?
        .into(),
        reduce::plan(gpu, Reduction::SumSquares, &diff, &dd)?.into(),
        reduce::plan(gpu, Reduction::SumSquares, b, &bb)?.into(),
    ];
    run_program(gpu, &program, 1)?;
    Ok(relative(
        &super::cgls::norms(gpu, &dd)?,
        &super::cgls::norms(gpu, &bb)?,
    ))
}
