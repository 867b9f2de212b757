//! Encoders with random weights drawn from a seed: the feature maps that the solvers invert.

use super::operator::{run_program, Operator, Step};
use crate::cpu::philox::Stream;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::activation;
use crate::ops::random_fill::{self, RandomSpec};
use crate::projection::{Kind, Mode, Projection};
use crate::tensor::Tensor;
use crate::Activation;

/// Standard deviation of the ReLU encoders' biases: bᵢ ~ N(0, 0.1²). Small against the
/// pre-activations (He weights give E\[(W x)ᵢ²\] = 2·mean(x²), about 0.6 for images in
/// \[0, 1\]), so about half the units stay active for any input, yet non-zero so that the
/// features are not positively homogeneous (ReLU(W·(cx)) = c·ReLU(W x) without a bias).
pub const RELU_BIAS_STD: f32 = 0.1;

/// The default depth of [`EncoderKind::DeepRelu`].
pub const DEFAULT_LAYERS: usize = 3;

/// Which random feature map an [`Encoder`] computes (m = round(ratio · n) features).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderKind {
    /// y = R x with R Gaussian m × n, entries N(0, 1/m) (the `gaussian` projection).
    Linear,
    /// y = ReLU(W x + b): W m × n He-initialized, N(0, 2/n); b ~ N(0, [`RELU_BIAS_STD`]²).
    Relu,
    /// `layers` random ReLU layers (He weights, biases as [`EncoderKind::Relu`]) whose widths
    /// grow geometrically: layer l = 1..L has round(n · ratio^(l/L)) units, so the last has
    /// m = round(ratio · n) (a total expansion of ratio, not ratio^L).
    DeepRelu {
        /// L ≥ 1 ([`DEFAULT_LAYERS`] is 3).
        layers: usize,
    },
    /// y = |R x|² with R complex Gaussian m × n, real and imaginary parts N(0, 1/2) each
    /// (the `optical` projection: E\[yᵢ\] = ‖x‖²).
    Optical,
}

impl EncoderKind {
    /// Every name accepted by [`EncoderKind::from_name`].
    pub const NAMES: &'static [&'static str] = &["linear", "relu", "deep_relu", "optical"];

    /// Parses a name of [`EncoderKind::NAMES`] (`deep_relu` with [`DEFAULT_LAYERS`]).
    pub fn from_name(name: &str) -> Result<EncoderKind> {
        Ok(match name {
            "linear" => EncoderKind::Linear,
            "relu" => EncoderKind::Relu,
            "deep_relu" | "deep-relu" => EncoderKind::DeepRelu {
                layers: DEFAULT_LAYERS,
            },
            "optical" => EncoderKind::Optical,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown encoder {name:?}; known: {}",
                    EncoderKind::NAMES.join(", ")
                )))
            }
        })
    }

    /// The name, as in [`EncoderKind::NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            EncoderKind::Linear => "linear",
            EncoderKind::Relu => "relu",
            EncoderKind::DeepRelu { .. } => "deep_relu",
            EncoderKind::Optical => "optical",
        }
    }
}

/// One random ReLU layer: its weight operator and bias.
#[derive(Debug)]
struct Layer {
    weight: Operator,
    bias: Tensor,
}

/// What the encoder holds to compute and invert its features.
#[derive(Debug)]
enum Body {
    /// The linear or optical projection, and its operator for the solvers (for optical, the
    /// stacked real operator of 2m rows).
    Projection {
        projection: Box<Projection>,
        operator: Operator,
    },
    /// ReLU layers, first to last.
    Layers(Vec<Layer>),
}

/// A random-weight encoder of n inputs: weights drawn from a seed (Philox, so the same seed
/// gives the same weights on every adapter, materialized or matrix-free).
#[derive(Debug)]
pub struct Encoder {
    kind: EncoderKind,
    n: usize,
    m: usize,
    ratio: f64,
    seed: u64,
    mode: Mode,
    widths: Vec<usize>,
    body: Body,
}

/// The seed of ReLU layer `l` (0-based) of an encoder seeded with `seed`.
fn layer_seed(seed: u64, l: usize) -> u64 {
    seed ^ (l as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Encoder {
    /// An encoder of `kind` from n inputs to m = round(ratio · n) features with weights from
    /// `seed`, materialized (the weights generated once on the GPU and multiplied by matmul).
    /// Errors: n = 0, ratio not finite or ≤ 0, m = 0, a deep encoder of 0 layers.
    pub fn new(gpu: &Gpu, kind: EncoderKind, n: usize, ratio: f64, seed: u64) -> Result<Encoder> {
        Encoder::with_mode(gpu, kind, n, ratio, seed, Mode::Materialized)
    }

    /// [`Encoder::new`] in `mode`: with [`Mode::MatrixFree`] no weight matrix is ever stored;
    /// the kernels regenerate the entries from the seed (`project_dense` and its transpose),
    /// with exactly the values the materialized mode stores.
    pub fn with_mode(
        gpu: &Gpu,
        kind: EncoderKind,
        n: usize,
        ratio: f64,
        seed: u64,
        mode: Mode,
    ) -> Result<Encoder> {
        if n == 0 {
            return Err(Error::invalid("an encoder needs n >= 1 inputs"));
        }
        if !(ratio.is_finite() && ratio > 0.0) {
            return Err(Error::invalid(format!(
                "the feature ratio m/n must be finite and > 0, got {ratio}"
            )));
        }
        let m = (ratio * n as f64).round();
        if m < 1.0 || m > u32::MAX as f64 {
            return Err(Error::invalid(format!(
                "ratio {ratio} gives m = round({ratio} * {n}) = {m} features; it must be between 1 and 2^32 - 1"
            )));
        }
        let m = m as usize;
        let (widths, body) = match kind {
            EncoderKind::Linear | EncoderKind::Optical => {
                let projection_kind = if kind == EncoderKind::Linear {
                    Kind::Gaussian
                } else {
                    Kind::Optical
                };
                let mut projection = Projection::new(projection_kind, m, seed);
                projection.mode = mode;
                projection.fit(n)?;
                let operator = Operator::from_projection(gpu, &projection)?;
                (
                    vec![n, m],
                    Body::Projection {
                        projection: Box::new(projection),
                        operator,
                    },
                )
            }
            EncoderKind::Relu | EncoderKind::DeepRelu { .. } => {
                let layers = match kind {
                    EncoderKind::DeepRelu { layers } => layers,
                    _ => 1,
                };
                if layers == 0 {
                    return Err(Error::invalid("a deep ReLU encoder needs at least 1 layer"));
                }
                let mut widths = vec![n];
                for l in 1..=layers {
                    let w = if l == layers {
                        m
                    } else {
                        ((n as f64) * ratio.powf(l as f64 / layers as f64))
                            .round()
                            .max(1.0) as usize
                    };
                    widths.push(w);
                }
                let mut built = Vec::with_capacity(layers);
                for l in 0..layers {
                    let (fan_in, fan_out) = (widths[l], widths[l + 1]);
                    let s = layer_seed(seed, l);
                    let scale = (2.0 / fan_in as f64).sqrt() as f32;
                    let weight = Operator::gaussian(gpu, fan_out, fan_in, scale, s, mode)?;
                    let bias = random_fill::run(
                        gpu,
                        &[fan_out],
                        &RandomSpec {
                            distribution: random_fill::Distribution::Gaussian,
                            scale: RELU_BIAS_STD,
                            seed: s,
                            stream: Stream::RowOffset as u32,
                            row0: 0,
                        },
                    )?;
                    built.push(Layer { weight, bias });
                }
                (widths, Body::Layers(built))
            }
        };
        Ok(Encoder {
            kind,
            n,
            m,
            ratio,
            seed,
            mode,
            widths,
            body,
        })
    }

    /// The kind.
    pub fn kind(&self) -> EncoderKind {
        self.kind
    }

    /// Input dimension n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of features m = round(ratio · n) (intensities for the optical kind).
    pub fn m(&self) -> usize {
        self.m
    }

    /// The ratio m/n asked for.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Materialized or matrix-free.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Layer widths from the input: \[n, m\] for one layer, \[n, n₁, …, m\] for deep ReLU.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Checks that `x` is `[batch, n]` and returns the batch.
    fn check_input(&self, x: &Tensor) -> Result<usize> {
        match x.shape() {
            [batch, n] if *n == self.n => Ok(*batch),
            s => Err(Error::shape(
                "reconstruct",
                format!(
                    "the {} encoder takes [batch, {}] inputs, got shape {s:?}",
                    self.kind.name(),
                    self.n
                ),
            )),
        }
    }

    /// The features of `x` (`[batch, n]`), `[batch, m]`.
    pub fn encode(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let batch = self.check_input(x)?;
        match &self.body {
            // The linear features are the operator's product; the optical ones need |·|²,
            // which the projection's finishing kernel applies.
            Body::Projection { operator, .. } if self.kind == EncoderKind::Linear => {
                operator.apply(gpu, x)
            }
            Body::Projection { projection, .. } => projection.transform(gpu, x),
            Body::Layers(layers) => {
                let mut h: Option<Tensor> = None;
                for layer in layers {
                    let input = h.as_ref().unwrap_or(x);
                    let out = Tensor::empty(gpu, &[batch, layer.weight.rows()])?;
                    let mut steps = layer
                        .weight
                        .plan_apply(gpu, input, &out, Some(&layer.bias))?;
                    steps.push(Step::Run(activation::plan(
                        gpu,
                        Activation::Relu,
                        &out,
                        &out,
                    )?));
                    run_program(gpu, &steps, 1)?;
                    h = Some(out);
                }
                h.ok_or_else(|| Error::invalid("a ReLU encoder needs at least one layer"))
            }
        }
    }

    /// The projection's operator (linear: R, m rows; optical: the stacked real operator of
    /// (Re R, Im R), 2m rows); `None` for the ReLU kinds.
    pub fn operator(&self) -> Option<&Operator> {
        match &self.body {
            Body::Projection { operator, .. } => Some(operator),
            Body::Layers(_) => None,
        }
    }

    /// The ReLU layers' (weight, bias), first to last; empty for the other kinds.
    pub(crate) fn layers(&self) -> Vec<(&Operator, &Tensor)> {
        match &self.body {
            Body::Layers(layers) => layers.iter().map(|l| (&l.weight, &l.bias)).collect(),
            Body::Projection { .. } => Vec::new(),
        }
    }
}
