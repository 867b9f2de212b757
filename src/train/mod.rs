//! A small GPU training loop: a multi-layer perceptron with ReLU hidden layers and a linear
//! read-out, trained on softmax cross-entropy by SGD (with momentum) or Adam. Every stage is a
//! kernel of [`crate::ops`]: forward with fused-bias matmuls and ReLU, the loss and its
//! gradient with [`crate::ops::cross_entropy`], backward with transposed matmuls
//! (dW = Hᵀ G, db = 1ᵀ G, dH = G Wᵀ) and the ReLU derivative by
//! [`crate::ops::activation::plan_jvp`], the updates by [`crate::ops::axpy`] (SGD) or
//! [`crate::ops::adam`]. One training step is one submission and one read-back (the loss).
//!
//! Weights are stored `[in, out]` (a layer computes `z = h W + b` on rows `h`), as
//! [`crate::init::weight`] draws them. The synthetic classification task the tests and the
//! study train on is [`task`].

pub mod study;
pub mod task;

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::init::{self, Init};
use crate::ops::activation::{self, Activation};
use crate::ops::adam::{self, AdamOptions};
use crate::ops::axpy::{self, AxpyOp, Coefficient};
use crate::ops::cross_entropy::CrossEntropy;
use crate::ops::matmul::{self, MatmulOptions};
use crate::tensor::Tensor;

/// A multi-layer perceptron: `sizes.len() − 1` affine layers, ReLU after every one but the
/// last (the read-out, whose outputs are the logits).
#[derive(Debug)]
pub struct Mlp {
    /// Layer sizes: inputs, hidden widths, classes.
    pub sizes: Vec<usize>,
    /// Weights of layer l, `[sizes[l], sizes[l + 1]]`.
    pub weights: Vec<Tensor>,
    /// Biases of layer l, `[sizes[l + 1]]`.
    pub biases: Vec<Tensor>,
}

/// The activations of one forward pass, kept for the backward pass.
#[derive(Debug)]
pub struct Activations {
    /// The input, `[batch, sizes[0]]` (a handle to the caller's tensor).
    pub input: Tensor,
    /// Pre-activations z_l = h_l W_l + b_l of each layer, `[batch, sizes[l + 1]]`; the last
    /// one holds the logits.
    pub pre: Vec<Tensor>,
    /// Hidden features h_{l+1} = ReLU(z_l) of the hidden layers, `[batch, sizes[l + 1]]`.
    pub hidden: Vec<Tensor>,
}

impl Activations {
    /// The logits, `[batch, classes]`.
    pub fn logits(&self) -> &Tensor {
        &self.pre[self.pre.len() - 1]
    }
}

/// Gradients of the mean loss with respect to every parameter, shaped like them.
#[derive(Debug)]
pub struct Gradients {
    /// dL/dW_l, `[sizes[l], sizes[l + 1]]`.
    pub weights: Vec<Tensor>,
    /// dL/db_l, `[sizes[l + 1]]`.
    pub biases: Vec<Tensor>,
}

/// Which update rule an [`Optimizer`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// Heavy-ball SGD: u = g + momentum·u, w = w − lr·u (plain SGD with momentum 0).
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum coefficient in [0, 1).
        momentum: f32,
    },
    /// Adam with the given hyper-parameters.
    Adam(AdamOptions),
}

/// An optimizer and its state (velocities or moments, allocated at the first step).
#[derive(Debug)]
pub struct Optimizer {
    /// The update rule.
    pub kind: OptimizerKind,
    step: u32,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
}

impl Optimizer {
    /// SGD with momentum (0 for plain SGD).
    pub fn sgd(lr: f32, momentum: f32) -> Optimizer {
        Optimizer::new(OptimizerKind::Sgd { lr, momentum })
    }

    /// Adam.
    pub fn adam(options: AdamOptions) -> Optimizer {
        Optimizer::new(OptimizerKind::Adam(options))
    }

    /// An optimizer with fresh state.
    pub fn new(kind: OptimizerKind) -> Optimizer {
        Optimizer {
            kind,
            step: 0,
            first: Vec::new(),
            second: Vec::new(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.step
    }

    fn validate(&self) -> Result<()> {
        match self.kind {
            OptimizerKind::Sgd { lr, momentum } => {
                if !(lr.is_finite() && lr > 0.0 && (0.0..1.0).contains(&momentum)) {
                    return Err(Error::invalid(format!(
                        "sgd needs lr > 0 and momentum in [0, 1), got lr {lr}, momentum {momentum}"
                    )));
                }
                Ok(())
            }
            OptimizerKind::Adam(o) => o.validate(),
        }
    }

    /// Plans one update of `params` from `grads` (pairs of one shape each).
    fn plan(&mut self, gpu: &Gpu, params: &[&Tensor], grads: &[&Tensor]) -> Result<Vec<Dispatch>> {
        self.validate()?;
        if self.first.len() != params.len() {
            self.first = params
                .iter()
                .map(|p| Tensor::zeros(gpu, p.shape()))
                .collect::<Result<_>>()?;
            if matches!(self.kind, OptimizerKind::Adam(_)) {
                self.second = params
                    .iter()
                    .map(|p| Tensor::zeros(gpu, p.shape()))
                    .collect::<Result<_>>()?;
            }
        }
        self.step += 1;
        let mut d = Vec::new();
        for (i, (w, g)) in params.iter().zip(grads).enumerate() {
            match self.kind {
                OptimizerKind::Sgd { lr, momentum } => {
                    let u = &self.first[i];
                    d.extend(axpy::plan(
                        gpu,
                        AxpyOp::Xpay,
                        &Coefficient::constant(momentum),
                        Some(g),
                        u,
                        None,
                    )?);
                    d.extend(axpy::plan(
                        gpu,
                        AxpyOp::Axpy,
                        &Coefficient::constant(-lr),
                        Some(u),
                        w,
                        None,
                    )?);
                }
                OptimizerKind::Adam(o) => {
                    d.extend(adam::plan(
                        gpu,
                        &o,
                        self.step,
                        g,
                        w,
                        &self.first[i],
                        &self.second[i],
                    )?);
                }
            }
        }
        Ok(d)
    }
}

/// Host copies of an MLP's parameters: (weights `[in, out]` row-major, biases), per layer.
pub type HostParameters = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// The Philox stream of layer `l`'s weight (seed is the network's).
fn weight_stream(l: usize) -> u32 {
    0x7261_0000 + l as u32
}

impl Mlp {
    /// A network with layer sizes `sizes` (at least an input and an output size, each ≥ 1):
    /// He-normal weights (N(0, 2/fan_in), [`Init::KaimingNormal`]) from `seed`, zero biases.
    pub fn new(gpu: &Gpu, sizes: &[usize], seed: u64) -> Result<Mlp> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::invalid(format!(
                "an MLP needs at least an input and an output size, all >= 1; got {sizes:?}"
            )));
        }
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in 0..sizes.len() - 1 {
            weights.push(init::weight(
                gpu,
                [sizes[l], sizes[l + 1]],
                Init::KaimingNormal,
                1.0,
                seed,
                weight_stream(l),
            )?);
            biases.push(Tensor::zeros(gpu, &[sizes[l + 1]])?);
        }
        Ok(Mlp {
            sizes: sizes.to_vec(),
            weights,
            biases,
        })
    }

    /// Number of affine layers.
    pub fn layers(&self) -> usize {
        self.weights.len()
    }

    /// Number of classes (the read-out's width).
    pub fn classes(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    fn check_input(&self, x: &Tensor) -> Result<usize> {
        let s = x.shape();
        if s.len() != 2 || s[1] != self.sizes[0] {
            return Err(Error::shape(
                "train",
                format!("the input must be [batch, {}], got {s:?}", self.sizes[0]),
            ));
        }
        Ok(s[0])
    }

    /// Allocates the activations of a batch of `x` and plans the forward pass into them.
    pub fn plan_forward(&self, gpu: &Gpu, x: &Tensor) -> Result<(Activations, Vec<Dispatch>)> {
        let batch = self.check_input(x)?;
        let input = x.view(x.shape())?;
        let mut pre = Vec::new();
        let mut hidden: Vec<Tensor> = Vec::new();
        let mut d = Vec::new();
        for l in 0..self.layers() {
            let z = Tensor::empty(gpu, &[batch, self.sizes[l + 1]])?;
            let h_in = if l == 0 { &input } else { &hidden[l - 1] };
            d.extend(matmul::plan(
                gpu,
                h_in,
                &self.weights[l],
                &z,
                &MatmulOptions {
                    bias: Some(&self.biases[l]),
                    ..Default::default()
                },
            )?);
            if l + 1 < self.layers() {
                let h = Tensor::empty(gpu, z.shape())?;
                d.extend(activation::plan(gpu, Activation::Relu, &z, &h)?);
                hidden.push(h);
            }
            pre.push(z);
        }
        Ok((Activations { input, pre, hidden }, d))
    }

    /// Runs the forward pass on `x` (`[batch, sizes[0]]`).
    pub fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Activations> {
        let (acts, d) = self.plan_forward(gpu, x)?;
        gpu.execute(&d)?;
        Ok(acts)
    }

    /// Allocates the gradients and plans the backward pass from `grad_logits` (dL/dz of the
    /// last layer, `[batch, classes]`) through the activations of a forward pass. The
    /// gradient buffers of the hidden layers are overwritten along the way.
    pub fn plan_backward(
        &self,
        gpu: &Gpu,
        acts: &Activations,
        grad_logits: &Tensor,
    ) -> Result<(Gradients, Vec<Dispatch>)> {
        let batch = acts.input.shape()[0];
        if grad_logits.shape() != acts.logits().shape() {
            return Err(Error::shape(
                "train",
                format!(
                    "the logits' gradient {:?} must have the logits' shape {:?}",
                    grad_logits.shape(),
                    acts.logits().shape()
                ),
            ));
        }
        let ones = Tensor::filled(gpu, &[batch, 1], 1.0)?;
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        let mut d = Vec::new();
        let mut g = grad_logits.view(grad_logits.shape())?;
        for l in (0..self.layers()).rev() {
            let h_in = if l == 0 {
                &acts.input
            } else {
                &acts.hidden[l - 1]
            };
            let dw = Tensor::empty(gpu, self.weights[l].shape())?;
            d.extend(matmul::plan(
                gpu,
                h_in,
                &g,
                &dw,
                &MatmulOptions {
                    trans_a: true,
                    ..Default::default()
                },
            )?);
            let db = Tensor::empty(gpu, &[self.sizes[l + 1]])?;
            d.extend(matmul::plan(
                gpu,
                &ones,
                &g,
                &db.view(&[1, self.sizes[l + 1]])?,
                &MatmulOptions {
                    trans_a: true,
                    ..Default::default()
                },
            )?);
            if l > 0 {
                let dh = Tensor::empty(gpu, &[batch, self.sizes[l]])?;
                d.extend(matmul::plan(
                    gpu,
                    &g,
                    &self.weights[l],
                    &dh,
                    &MatmulOptions {
                        trans_b: true,
                        ..Default::default()
                    },
                )?);
                d.extend(activation::plan_jvp(
                    gpu,
                    Activation::Relu,
                    &acts.pre[l - 1],
                    &dh,
                    &dh,
                )?);
                g = dh;
            }
            weights.push(dw);
            biases.push(db);
        }
        weights.reverse();
        biases.reverse();
        Ok((Gradients { weights, biases }, d))
    }

    /// The mean cross-entropy of `x` against `labels` (`[batch]`, integers as f32) and its
    /// gradients, without updating anything.
    pub fn gradients(&self, gpu: &Gpu, x: &Tensor, labels: &Tensor) -> Result<(f64, Gradients)> {
        let (acts, mut d) = self.plan_forward(gpu, x)?;
        let batch = acts.input.shape()[0];
        let ce = CrossEntropy::new(gpu, batch, self.classes())?;
        d.extend(ce.plan(gpu, acts.logits(), labels, 1.0 / batch as f32)?);
        d.extend(ce.plan_totals(gpu)?);
        let (grads, back) = self.plan_backward(gpu, &acts, &ce.grad)?;
        d.extend(back);
        gpu.execute(&d)?;
        let (loss, _) = ce.totals(gpu)?;
        Ok((loss / batch as f64, grads))
    }

    /// One step of `optimizer` on the mean cross-entropy of the batch `x` (`[batch,
    /// sizes[0]]`) against `labels` (`[batch]`, integers in `[0, classes)` as f32): forward,
    /// loss, backward and update in one submission. Returns the batch's mean loss before the
    /// update.
    pub fn train_step(
        &mut self,
        gpu: &Gpu,
        x: &Tensor,
        labels: &Tensor,
        optimizer: &mut Optimizer,
    ) -> Result<f64> {
        let (acts, mut d) = self.plan_forward(gpu, x)?;
        let batch = acts.input.shape()[0];
        let ce = CrossEntropy::new(gpu, batch, self.classes())?;
        d.extend(ce.plan(gpu, acts.logits(), labels, 1.0 / batch as f32)?);
        d.extend(ce.plan_totals(gpu)?);
        let (grads, back) = self.plan_backward(gpu, &acts, &ce.grad)?;
        d.extend(back);
        let params: Vec<&Tensor> = self.weights.iter().chain(&self.biases).collect();
        let gs: Vec<&Tensor> = grads.weights.iter().chain(&grads.biases).collect();
        d.extend(optimizer.plan(gpu, &params, &gs)?);
        gpu.execute(&d)?;
        let loss = f64::from(ce.loss_sum.to_vec(gpu)?[0]);
        Ok(loss / batch as f64)
    }

    /// The mean cross-entropy and the accuracy (fraction of rows whose argmax is the label)
    /// of the network on `x` and `labels`.
    pub fn evaluate(&self, gpu: &Gpu, x: &Tensor, labels: &Tensor) -> Result<(f64, f64)> {
        let (acts, mut d) = self.plan_forward(gpu, x)?;
        let batch = acts.input.shape()[0];
        let ce = CrossEntropy::new(gpu, batch, self.classes())?;
        d.extend(ce.plan(gpu, acts.logits(), labels, 1.0 / batch as f32)?);
        d.extend(ce.plan_totals(gpu)?);
        gpu.execute(&d)?;
        let (loss, correct) = ce.totals(gpu)?;
        Ok((loss / batch as f64, correct / batch as f64))
    }

    /// Reads the weights and biases back (row-major `[in, out]` weights).
    pub fn to_host(&self, gpu: &Gpu) -> Result<HostParameters> {
        let w = self
            .weights
            .iter()
            .map(|t| t.to_vec(gpu))
            .collect::<Result<_>>()?;
        let b = self
            .biases
            .iter()
            .map(|t| t.to_vec(gpu))
            .collect::<Result<_>>()?;
        Ok((w, b))
    }
}

/// Trains `mlp` for `steps` minibatch steps of `batch` examples drawn (a seeded shuffle per
/// epoch) from `data`, and returns the mean loss of each step. Each batch is uploaded into
/// tensors allocated once.
pub fn fit(
    gpu: &Gpu,
    mlp: &mut Mlp,
    data: &task::Dataset,
    batch: usize,
    steps: usize,
    optimizer: &mut Optimizer,
    seed: u64,
) -> Result<Vec<f64>> {
    let n = data.features;
    if n != mlp.sizes[0] || batch == 0 || batch > data.len() {
        return Err(Error::invalid(format!(
            "fit: the data has {} examples of {n} features; the network takes {} features and \
             the batch ({batch}) must be 1..={}",
            data.len(),
            mlp.sizes[0],
            data.len()
        )));
    }
    let x = Tensor::empty(gpu, &[batch, n])?;
    let y = Tensor::empty(gpu, &[batch])?;
    let mut rng = task::SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut pos = order.len();
    let mut xs = vec![0.0f32; batch * n];
    let mut ys = vec![0.0f32; batch];
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        for b in 0..batch {
            if pos == order.len() {
                rng.shuffle(&mut order);
                pos = 0;
            }
            let i = order[pos];
            pos += 1;
            xs[b * n..(b + 1) * n].copy_from_slice(data.example(i));
            ys[b] = data.labels[i];
        }
        x.write(gpu, &xs)?;
        y.write(gpu, &ys)?;
        losses.push(mlp.train_step(gpu, &x, &y, optimizer)?);
    }
    Ok(losses)
}
