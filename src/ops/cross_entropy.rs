//! Softmax cross-entropy with its gradient (`shaders/cross_entropy.wgsl`): for logits
//! `[batch, classes]` and one integer label per row (stored as f32), the per-row loss
//! −log softmax(z)_label (max-subtracted log-sum-exp), the gradient
//! `grad_scale · (softmax(z) − onehot(label))` and a per-row correct flag (argmax = label), in
//! one pass with one workgroup per row. The mean loss and the number of correct predictions
//! are then one [`crate::ops::reduce`] each ([`CrossEntropy::plan_totals`]). The f64
//! reference is [`crate::cpu::cross_entropy`]. Rows whose invocations would loop more often
//! than the adapter allows ([`loops`]; lavapipe ends an invocation's loops after 65,535
//! iterations, silently: with 256 threads, past about 8.4 million classes) are refused.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::most_that_fit;
use crate::ops::reduce::{self, Reduction};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Loop iterations of an invocation over rows of `cols` classes with `wg` threads per
/// workgroup, an upper bound counting a loop that runs n times as n + 1 (lavapipe counts the
/// exiting test too): two passes over the row's blocks of 4·wg values (ceil(cols / (4 wg))
/// each: a thread takes four values of each block) and the tree reduction (log2(wg)).
pub fn loops(cols: usize, wg: u32) -> u64 {
    2 * (cols.div_ceil(4 * wg as usize) as u64 + 1) + u64::from(wg.trailing_zeros()) + 1
}

/// Uniform parameters of `shaders/cross_entropy.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CrossEntropyParams {
    rows: u32,
    cols: u32,
    z_first: u32,
    grad_first: u32,
    label_first: u32,
    loss_first: u32,
    correct_first: u32,
    grad_scale: f32,
}

/// The outputs of the kernel for a batch: per-row loss and correct flag, the gradient, and
/// their totals once [`CrossEntropy::plan_totals`] has run.
#[derive(Debug)]
pub struct CrossEntropy {
    /// dL/dz, `[batch, classes]`.
    pub grad: Tensor,
    /// −log softmax(z)_label per row, `[batch]`.
    pub loss: Tensor,
    /// 1 where the row's argmax is its label, else 0, `[batch]`.
    pub correct: Tensor,
    /// Σ loss, `[1]`.
    pub loss_sum: Tensor,
    /// Σ correct, `[1]`.
    pub correct_sum: Tensor,
}

impl CrossEntropy {
    /// Allocates the outputs for `batch` rows of `classes` logits.
    pub fn new(gpu: &Gpu, batch: usize, classes: usize) -> Result<CrossEntropy> {
        Ok(CrossEntropy {
            grad: Tensor::empty(gpu, &[batch, classes])?,
            loss: Tensor::empty(gpu, &[batch])?,
            correct: Tensor::empty(gpu, &[batch])?,
            loss_sum: Tensor::empty(gpu, &[1])?,
            correct_sum: Tensor::empty(gpu, &[1])?,
        })
    }

    /// Plans the kernel on `z` and `labels` into these outputs (see [`plan`]).
    pub fn plan(
        &self,
        gpu: &Gpu,
        z: &Tensor,
        labels: &Tensor,
        grad_scale: f32,
    ) -> Result<Vec<Dispatch>> {
        plan(
            gpu,
            z,
            labels,
            grad_scale,
            &self.grad,
            &self.loss,
            &self.correct,
        )
    }

    /// Plans `loss_sum = Σ loss` and `correct_sum = Σ correct` (run after [`Self::plan`]).
    pub fn plan_totals(&self, gpu: &Gpu) -> Result<Vec<Dispatch>> {
        let mut d = reduce::plan(gpu, Reduction::Sum, &self.loss, &self.loss_sum)?;
        d.extend(reduce::plan(
            gpu,
            Reduction::Sum,
            &self.correct,
            &self.correct_sum,
        )?);
        Ok(d)
    }

    /// Reads back (Σ loss, Σ correct).
    pub fn totals(&self, gpu: &Gpu) -> Result<(f64, f64)> {
        let l = self.loss_sum.to_vec(gpu)?;
        let c = self.correct_sum.to_vec(gpu)?;
        Ok((f64::from(l[0]), f64::from(c[0])))
    }
}

/// Plans the cross-entropy of logits `z` (`[batch, classes]`, or any shape whose last axis is
/// the classes) against `labels` (one f32 per row holding an integer in `[0, classes)`; any
/// other value gives a NaN loss and gradient row). Writes `grad` (z's size) scaled by
/// `grad_scale` (1/batch for the gradient of the mean loss), `loss` and `correct` (one value
/// per row each). Rows are split into blocks whose windows fit one binding.
///
/// Errors: sizes that disagree, a non-finite `grad_scale`, or a row longer than one storage
/// binding (tens of millions of classes).
pub fn plan(
    gpu: &Gpu,
    z: &Tensor,
    labels: &Tensor,
    grad_scale: f32,
    grad: &Tensor,
    loss: &Tensor,
    correct: &Tensor,
) -> Result<Vec<Dispatch>> {
    let shape = z.shape();
    let cols = shape[shape.len() - 1];
    let rows = z.len() / cols;
    if grad.len() != z.len() || labels.len() != rows || loss.len() != rows || correct.len() != rows
    {
        return Err(Error::shape(
            "cross_entropy",
            format!(
                "logits {:?} ({rows} rows) need labels, loss and correct of {rows} values and a \
                 gradient of the logits' size; got labels {:?}, loss {:?}, correct {:?}, grad {:?}",
                shape,
                labels.shape(),
                loss.shape(),
                correct.shape(),
                grad.shape()
            ),
        ));
    }
    if !grad_scale.is_finite() {
        return Err(Error::invalid(format!(
            "cross_entropy grad_scale must be finite, got {grad_scale}"
        )));
    }
    let capacity = window_capacity(gpu);
    if cols > capacity {
        return Err(Error::shape(
            "cross_entropy",
            format!("rows of {cols} classes exceed one storage binding ({capacity} values)"),
        ));
    }
    let wg = super::row_workgroup_size(gpu, cols, loops)?;
    if let Some(limit) = gpu.loop_limit()? {
        let most = most_that_fit(limit, |c| loops(c, wg));
        gpu.check_loops(
            "cross_entropy",
            loops(cols, wg),
            &format!(
                "cross_entropy takes a row in one workgroup of {wg} threads, so rows of at most \
                 {} classes fit (got {cols}); use fewer classes",
                most
            ),
        )?;
    }
    let pipeline = gpu.pipeline(&shaders::CROSS_ENTROPY, &[("WG", f64::from(wg))])?;
    let max_rows = (capacity / cols).min(gpu.max_grid());
    let mut dispatches = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let n = max_rows.min(rows - r0);
        let zw = z.window(gpu, r0 * cols, n * cols);
        let gw = grad.window(gpu, r0 * cols, n * cols);
        let lw = labels.window(gpu, r0, n);
        let sw = loss.window(gpu, r0, n);
        let cw = correct.window(gpu, r0, n);
        let params = CrossEntropyParams {
            rows: n as u32,
            cols: cols as u32,
            z_first: zw.first,
            grad_first: gw.first,
            label_first: lw.first,
            loss_first: sw.first,
            correct_first: cw.first,
            grad_scale,
        };
        let uniform = gpu.uniform("speckle.cross_entropy.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                zw.resource(),
                lw.resource(),
                gw.resource(),
                sw.resource(),
                cw.resource(),
            ],
        );
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid(n as u32),
        ));
        r0 += n;
    }
    Ok(dispatches)
}

/// Runs the kernel and the totals on `z` and `labels` with `grad_scale` = 1/rows (the
/// gradient of the mean loss), returning all outputs.
pub fn run(gpu: &Gpu, z: &Tensor, labels: &Tensor) -> Result<CrossEntropy> {
    let cols = z.shape()[z.shape().len() - 1];
    let rows = z.len() / cols;
    let out = CrossEntropy::new(gpu, rows, cols)?;
    let mut d = out.plan(gpu, z, labels, 1.0 / rows as f32)?;
    d.extend(out.plan_totals(gpu)?);
    gpu.execute(&d)?;
    Ok(out)
}
