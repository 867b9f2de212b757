//! The trained-versus-random study: how much of its input a trained encoder keeps, compared
//! with random weights of the same shapes.
//!
//! For each regime (a list of hidden widths), an MLP with ReLU hidden layers and a linear
//! read-out is trained by Adam on the shapes task ([`super::task`], centred inputs); the
//! training and held-out splits come from different seeds. Held-out images are then
//! reconstructed from the top hidden layer's features h_L = ReLU(z_{L−1}) of (a) the trained
//! weights and (b) fresh He-normal weights of the same shapes with zero biases (what
//! [`Mlp::new`] draws), by the same algorithm: layer-by-layer ReLU inversion from the top
//! hidden layer down to the input ([`crate::reconstruct::relu`]) with each layer's W (as the
//! `[out, in]` operator, the transpose of the stored `[in, out]` weight) and b. The input
//! layer is solved without the non-negativity prior (centred inputs are signed); the estimate
//! is un-centred (+0.5) and clipped to [0, 1] before PSNR against the original image.
//!
//! A ReLU layer that expands enough (about 4× the units of its input) is invertible for almost
//! any weights, so the comparison is only informative where the widths are at or below the
//! input dimension; the expanding regime is the control. The trained encoder is also
//! reconstructed at checkpoints during training (the history).

use serde::Serialize;

use super::task::{self, TaskOptions};
use super::{fit, Mlp, Optimizer};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::adam::AdamOptions;
use crate::reconstruct::{psnr, relu, Operator, SolveOptions};
use crate::tensor::Tensor;

/// PSNRs are capped here (an exact reconstruction has infinite PSNR, which JSON cannot hold).
pub const PSNR_CAP_DB: f64 = 100.0;

/// Options of [`run`]. `Default`: the shapes task at 12 × 12 (n = 144), regimes `[96, 64]`
/// (compressive, two layers), `[96]` (its one-layer variant) and `[576]` (expanding 4×; a
/// two-layer expanding stack such as `[576, 2304]` is inverted only roughly layer by layer,
/// about 19 dB even from random weights), 8,000 training and 500 held-out
/// examples, 600 Adam steps (lr 3e-3) of 64, 6 checkpoints, 16 reconstructed examples, 40
/// CGLS iterations per layer in 2 active-set rounds, seed 1.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedVsRandomOptions {
    /// The task.
    pub task: TaskOptions,
    /// Hidden widths of each regime (each list non-empty, widths ≥ 1).
    pub regimes: Vec<Vec<usize>>,
    /// Training examples (≥ batch).
    pub train_count: usize,
    /// Held-out examples for the accuracy (≥ examples).
    pub held_out_count: usize,
    /// Held-out examples reconstructed (the first ones of the held-out split, ≥ 1).
    pub examples: usize,
    /// Training steps.
    pub steps: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Checkpoints of the history after step 0 (evenly spaced, the last at `steps`; 1..=steps).
    pub checkpoints: usize,
    /// The inversion's options (applied to each layer; `nonnegative` is ignored: the input
    /// layer is solved without the prior, the hidden ones with it).
    pub solve: SolveOptions,
    /// Seed of the splits, the initial weights, the shuffles and the random weights.
    pub seed: u64,
}

impl Default for TrainedVsRandomOptions {
    fn default() -> Self {
        TrainedVsRandomOptions {
            task: TaskOptions::default(),
            regimes: vec![vec![96, 64], vec![96], vec![576]],
            train_count: 8000,
            held_out_count: 500,
            examples: 16,
            steps: 600,
            batch: 64,
            lr: 3e-3,
            checkpoints: 6,
            solve: SolveOptions {
                max_iterations: 40,
                tolerance: 1e-3,
                check_every: 10,
                active_set_rounds: 2,
                ..SolveOptions::default()
            },
            seed: 1,
        }
    }
}

impl TrainedVsRandomOptions {
    /// Checks the options before any work; the messages name the CLI flags.
    pub fn validate(&self) -> Result<()> {
        if self.regimes.is_empty() {
            return Err(Error::invalid(
                "trained-vs-random needs at least one regime",
            ));
        }
        for w in &self.regimes {
            if w.is_empty() || w.contains(&0) {
                return Err(Error::invalid(format!(
                    "--widths: every regime needs at least one hidden width, all >= 1; got {w:?}"
                )));
            }
        }
        if self.steps == 0 {
            return Err(Error::invalid("--steps must be at least 1, got 0"));
        }
        if self.checkpoints == 0 || self.checkpoints > self.steps {
            return Err(Error::invalid(format!(
                "--checkpoints must be in 1..={} (the steps), got {}",
                self.steps, self.checkpoints
            )));
        }
        if self.batch == 0 || self.train_count < self.batch {
            return Err(Error::invalid(format!(
                "--batch must be at least 1 and at most --train-count ({}), got {}",
                self.train_count, self.batch
            )));
        }
        if self.examples == 0 || self.held_out_count < self.examples {
            return Err(Error::invalid(format!(
                "--examples must be in 1..=--held-out-count ({}), got {}",
                self.held_out_count, self.examples
            )));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(format!(
                "--lr must be finite and positive, got {}",
                self.lr
            )));
        }
        if self.solve.max_iterations == 0 {
            return Err(Error::invalid("--iterations must be at least 1, got 0"));
        }
        self.solve.validate()?;
        // The task's own checks (size, contrast) on a one-example draw.
        task::generate(&self.task, 1, 0).map(|_| ())
    }
}

/// One checkpoint of the trained encoder's history.
#[derive(Clone, Debug, Serialize)]
pub struct Checkpoint {
    /// Training steps taken.
    pub step: usize,
    /// Held-out accuracy.
    pub accuracy: f64,
    /// Mean PSNR (dB) of the reconstructions from the trained encoder's top hidden layer.
    pub psnr_trained_db: f64,
    /// Mean end-to-end feature misfit ‖h_L(x̂) − h_L(x)‖/‖h_L(x)‖ of those reconstructions.
    pub misfit_trained: f64,
    /// Fraction of the top hidden layer's units that are active, over the examples.
    pub active_fraction: f64,
}

/// One regime's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct RegimeResult {
    /// Hidden widths.
    pub widths: Vec<usize>,
    /// True when every hidden layer has at least as many units as its input.
    pub expanding: bool,
    /// Held-out accuracy of the trained network.
    pub accuracy: f64,
    /// Mean PSNR (dB) of the reconstructions from random weights.
    pub psnr_random_db: f64,
    /// Mean PSNR (dB) of the reconstructions from the trained weights.
    pub psnr_trained_db: f64,
    /// Per-example PSNRs (dB), random weights.
    pub psnr_random_per_example: Vec<f64>,
    /// Per-example PSNRs (dB), trained weights.
    pub psnr_trained_per_example: Vec<f64>,
    /// Mean feature misfit of the random-weight reconstructions.
    pub misfit_random: f64,
    /// Mean feature misfit of the trained-weight reconstructions.
    pub misfit_trained: f64,
    /// Fraction of active top-layer units, random weights.
    pub active_fraction_random: f64,
    /// Fraction of active top-layer units, trained weights.
    pub active_fraction_trained: f64,
    /// The trained encoder at step 0 and at each checkpoint.
    pub history: Vec<Checkpoint>,
    /// The reconstructions from random weights, `[examples, n]` in [0, 1].
    #[serde(skip)]
    pub random_images: Vec<f32>,
    /// The reconstructions from the trained weights, `[examples, n]` in [0, 1].
    #[serde(skip)]
    pub trained_images: Vec<f32>,
    /// Wall-clock seconds of the regime.
    pub seconds: f64,
}

/// The outcome of [`run`].
#[derive(Clone, Debug, Serialize)]
pub struct TrainedVsRandomResult {
    /// Held-out accuracy of the first regime's trained network.
    pub accuracy: f64,
    /// Chance accuracy 1/K.
    pub chance_accuracy: f64,
    /// Input dimension n.
    pub features: usize,
    /// Number of classes K.
    pub classes: usize,
    /// Mean PSNR (dB) of the blank estimate (every pixel 0.5, what the zero vector un-centres
    /// to): the floor a reconstruction that recovered nothing sits near.
    pub psnr_blank_db: f64,
    /// Each regime, in the order of the options.
    pub regimes: Vec<RegimeResult>,
    /// The first regime's history.
    pub history: Vec<Checkpoint>,
    /// The reconstructed originals, `[examples, n]` in [0, 1].
    #[serde(skip)]
    pub originals: Vec<f32>,
    /// Wall-clock seconds of the whole study.
    pub seconds: f64,
}

/// Units of work [`run`] reports through `progress`: per regime, one per checkpoint
/// (training and reconstruction) plus step 0 and the random weights.
pub fn progress_total(options: &TrainedVsRandomOptions) -> usize {
    options.regimes.len() * (options.checkpoints + 2)
}

/// Runs the study. `progress(message)` is called after each unit of work
/// ([`progress_total`] in all).
pub fn run(
    gpu: &Gpu,
    options: &TrainedVsRandomOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<TrainedVsRandomResult> {
    let start = std::time::Instant::now();
    options.validate()?;
    let o = options;
    let train = task::generate(&o.task, o.train_count, o.seed ^ 0x7472_6169_6e00)?.centred();
    let held = task::generate(&o.task, o.held_out_count, o.seed ^ 0x6865_6c64_0000)?.centred();
    let n = train.features;
    let k = train.classes;
    let x_held = Tensor::from_slice(gpu, &held.images, &[held.len(), n])?;
    let y_held = Tensor::from_slice(gpu, &held.labels, &[held.len()])?;
    let shown = &held.images[..o.examples * n];
    let x_shown = Tensor::from_slice(gpu, shown, &[o.examples, n])?;
    let originals: Vec<f32> = shown.iter().map(|v| v + 0.5).collect();

    let mut regimes = Vec::new();
    for widths in &o.regimes {
        let t0 = std::time::Instant::now();
        let mut sizes = vec![n];
        sizes.extend(widths);
        sizes.push(k);
        let label = format!("{widths:?}");

        let random = Mlp::new(gpu, &sizes, o.seed.wrapping_add(1000))?;
        let r = reconstruct(gpu, &random, &x_shown, &originals, &o.solve)?;
        progress(&format!("{label}: random weights"));

        let mut mlp = Mlp::new(gpu, &sizes, o.seed.wrapping_add(1))?;
        let mut optimizer = Optimizer::adam(AdamOptions {
            lr: o.lr,
            ..AdamOptions::default()
        });
        let mut history = Vec::new();
        let mut done = 0;
        let mut last = None;
        for c in 0..=o.checkpoints {
            let target = o.steps * c / o.checkpoints;
            if target > done {
                let seed = o.seed.wrapping_add(2 + c as u64);
                fit(
                    gpu,
                    &mut mlp,
                    &train,
                    o.batch,
                    target - done,
                    &mut optimizer,
                    seed,
                )?;
                done = target;
            }
            let (_, accuracy) = mlp.evaluate(gpu, &x_held, &y_held)?;
            let t = reconstruct(gpu, &mlp, &x_shown, &originals, &o.solve)?;
            history.push(Checkpoint {
                step: done,
                accuracy,
                psnr_trained_db: t.psnr,
                misfit_trained: t.misfit,
                active_fraction: t.active,
            });
            progress(&format!(
                "{label}: step {done}, accuracy {accuracy:.3}, PSNR {:.1} dB",
                t.psnr
            ));
            last = Some((accuracy, t));
        }
        let Some((accuracy, t)) = last else {
            return Err(Error::invalid("trained-vs-random ran no checkpoint"));
        };
        let expanding = sizes[..sizes.len() - 1].windows(2).all(|w| w[1] >= w[0]);
        regimes.push(RegimeResult {
            widths: widths.clone(),
            expanding,
            accuracy,
            psnr_random_db: r.psnr,
            psnr_trained_db: t.psnr,
            psnr_random_per_example: r.per_example,
            psnr_trained_per_example: t.per_example,
            misfit_random: r.misfit,
            misfit_trained: t.misfit,
            active_fraction_random: r.active,
            active_fraction_trained: t.active,
            history,
            random_images: r.images,
            trained_images: t.images,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    let blank = vec![0.5f32; n];
    let psnr_blank_db = mean(
        &originals
            .chunks(n)
            .map(|x| psnr(x, &blank, 1.0).min(PSNR_CAP_DB))
            .collect::<Vec<_>>(),
    );
    Ok(TrainedVsRandomResult {
        accuracy: regimes[0].accuracy,
        psnr_blank_db,
        chance_accuracy: 1.0 / k as f64,
        features: n,
        classes: k,
        history: regimes[0].history.clone(),
        regimes,
        originals,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One reconstruction's measures.
struct Recon {
    images: Vec<f32>,
    per_example: Vec<f64>,
    psnr: f64,
    misfit: f64,
    active: f64,
}

/// The top hidden layer's features of `x` through `mlp`.
fn top_hidden(gpu: &Gpu, mlp: &Mlp, x: &Tensor) -> Result<Tensor> {
    let mut acts = mlp.forward(gpu, x)?;
    acts.hidden
        .pop()
        .ok_or_else(|| Error::invalid("the network has no hidden layer to reconstruct from"))
}

/// Reconstructs the centred inputs `x` (`[examples, n]`) from `mlp`'s top hidden layer by
/// layer-by-layer ReLU inversion, un-centres and clips the estimate, and measures it against
/// `originals` (in [0, 1]).
fn reconstruct(
    gpu: &Gpu,
    mlp: &Mlp,
    x: &Tensor,
    originals: &[f32],
    solve: &SolveOptions,
) -> Result<Recon> {
    let n = mlp.sizes[0];
    let examples = x.shape()[0];
    let hidden = mlp.layers() - 1;
    let h = top_hidden(gpu, mlp, x)?;
    let (weights, _) = mlp.to_host(gpu)?;
    let mut operators = Vec::with_capacity(hidden);
    for (l, w) in weights.iter().take(hidden).enumerate() {
        let (rows, cols) = (mlp.sizes[l + 1], mlp.sizes[l]);
        let mut t = vec![0.0f32; rows * cols];
        for i in 0..cols {
            for j in 0..rows {
                t[j * cols + i] = w[i * rows + j];
            }
        }
        operators.push(Operator::dense(Tensor::from_slice(
            gpu,
            &t,
            &[rows, cols],
        )?)?);
    }
    let layers: Vec<(&Operator, &Tensor)> = operators.iter().zip(&mlp.biases).collect();
    let options = SolveOptions {
        nonnegative: false,
        ..*solve
    };
    let (x_hat, report) = relu::invert_stack(gpu, &layers, &h, &options, &mut |_, _| {}, &|x| {
        top_hidden(gpu, mlp, x)
    })?;
    let images: Vec<f32> = x_hat
        .to_vec(gpu)?
        .iter()
        .map(|v| (v + 0.5).clamp(0.0, 1.0))
        .collect();
    let per_example: Vec<f64> = (0..examples)
        .map(|e| {
            let range = e * n..(e + 1) * n;
            psnr(&originals[range.clone()], &images[range], 1.0).min(PSNR_CAP_DB)
        })
        .collect();
    let features = h.to_vec(gpu)?;
    let active = features.iter().filter(|&&v| v > 0.0).count() as f64 / features.len() as f64;
    Ok(Recon {
        psnr: mean(&per_example),
        misfit: mean(&report.row_residuals),
        per_example,
        images,
        active,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}
