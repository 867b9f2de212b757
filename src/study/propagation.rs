//! Signal propagation through deep random networks: the initialization laws of
//! [`crate::init`] put to the test.
//!
//! # The network
//!
//! A configuration ([`PropagationConfig`]) is a stack of `depth` square layers of `width`
//! units, without biases:
//!
//! ```text
//! z_l = h_{l−1}·W_l,   (optionally z_l ← LayerNorm(z_l), no γ/β, ε = 1e-5)   h_l = φ(z_l)
//! ```
//!
//! with `W_l` `[width, width]` drawn from the initialization law with the gain
//! ([`crate::init::plan`], Philox stream [`weight_stream`]`(l)` of the seed) and `h_0 = X`,
//! `batch` inputs with independent N(0, 1) entries (stream [`INPUT_STREAM`]). Alongside, the
//! input–output Jacobian is followed in forward mode: one random direction `v_b` per input
//! (the rows of `V`, N(0, 1) entries, stream [`TANGENT_STREAM`]), propagated as
//!
//! ```text
//! u_l = t_{l−1}·W_l,   (u_l ← LayerNorm'(z_l)·u_l)   t_l = φ'(z_l) ⊙ u_l,   t_0 = V,
//! ```
//!
//! so that `t_l,b = J_l(x_b)·v_b`, the Jacobian of layer l's output at input x_b applied to
//! v_b ([`crate::ops::activation::plan_jvp`], [`crate::ops::layernorm::plan_jvp`]).
//! Everything stays on the GPU; each layer is one submission (weight fill, two matmuls,
//! LayerNorm and its JVP, the activation and its JVP, three row reductions), after which the
//! three per-row vectors of the reductions (`batch` values each) are read back. The matmuls
//! keep z (identity epilogue) rather than fusing φ into the epilogue, because the tangent
//! needs φ'(z) at the pre-activation; for the linear network (identity) no activation
//! dispatch is made at all.
//!
//! # What is recorded, per layer l = 1 ..= depth
//!
//! * `norm_ratio[l]`: the mean over the batch of ‖h_l,b‖ / ‖x_b‖, and `norm_spread[l]` its
//!   standard deviation over the batch;
//! * `activation_variance[l]`: the variance of all `batch × width` entries of h_l;
//! * `jacobian_ratio[l]`: the mean over the batch of ‖t_l,b‖ / ‖v_b‖ = ‖J v‖/‖v‖, and
//!   `jacobian_spread[l]` its standard deviation.
//!
//! The standard deviations are the population ones (divided by `batch`), so that
//! `ratio² + spread²` is the mean over the batch of the *squared* ratios, the quantity whose
//! expectation the initialization laws control (E‖h_l‖² = E‖x‖² under He for ReLU, γ^{2l}
//! for a linear network with gain γ, ...). Hanin (2018) shows that for ReLU networks the
//! fluctuation of ‖J v‖²/‖v‖² grows like exp(5·Σ_l 1/n_l) − 1: at a fixed depth, the spread
//! shrinks as the width grows.
//!
//! # Overflow
//!
//! An exploding network (gain > 1 over many layers) overflows f32 past about 3.4e38. The
//! squared norms of the reductions overflow first, once entries reach about
//! 1e19/sqrt(width): the ratios read inf from there on. Then the entries become ±inf, then
//! NaN (inf − inf in the next matmul); ReLU may turn NaN into 0 (WGSL's `max(NaN, 0)` may
//! return either operand), so a ReLU network can even record zeros after overflowing. The run
//! goes on and records what the GPU computed: inf, NaN or 0; nothing panics or errors on it
//! (`serde_json` writes non-finite numbers as `null`). A vanishing network records zeros once
//! its entries underflow; with LayerNorm, an all-zero row normalizes to zero (ε > 0), and
//! LayerNorm keeps an exploding network finite.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::init::{self, Init};
use crate::ops::activation::{self, Activation};
use crate::ops::layernorm::{self, LayerNormOptions};
use crate::ops::matmul::{self, MatmulOptions};
use crate::ops::random_fill::{self, RandomSpec};
use crate::ops::reduce::{self, Reduction};
use crate::tensor::Tensor;

/// The Philox stream of the inputs X (under the configuration's seed).
pub const INPUT_STREAM: u32 = 1 << 31;
/// The Philox stream of the tangent directions V.
pub const TANGENT_STREAM: u32 = (1 << 31) + 1;
/// The most layers a configuration may have (the weight streams stay below [`INPUT_STREAM`]).
pub const MAX_DEPTH: usize = 1 << 20;

/// The Philox stream of layer `layer`'s weight (layers count from 1): `layer` itself.
pub fn weight_stream(layer: usize) -> u32 {
    layer as u32
}

/// One network of the study; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PropagationConfig {
    /// The law of every weight.
    pub init: Init,
    /// The activation φ (`Activation::Identity` for a linear network).
    pub activation: Activation,
    /// The gain of the law (1 is each law's own choice).
    pub gain: f32,
    /// Units per layer (and input dimension).
    pub width: usize,
    /// Number of layers.
    pub depth: usize,
    /// Number of inputs (and of tangent directions, one per input).
    pub batch: usize,
    /// LayerNorm (no γ, β; ε = 1e-5) on each pre-activation.
    pub layernorm: bool,
    /// The seed of the inputs, tangents and weights.
    pub seed: u64,
}

impl PropagationConfig {
    /// Checks the sizes (all ≥ 1, depth ≤ [`MAX_DEPTH`]), the gain (finite, > 0) and the
    /// activation's parameter (finite).
    pub fn check(&self) -> Result<()> {
        for (name, v) in [
            ("width", self.width),
            ("depth", self.depth),
            ("batch", self.batch),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!(
                    "propagation study: {name} must be at least 1, got 0"
                )));
            }
        }
        if self.depth > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "propagation study: depth {} exceeds the maximum {MAX_DEPTH}",
                self.depth
            )));
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return Err(Error::invalid(format!(
                "propagation study: the gain must be finite and > 0, got {}",
                self.gain
            )));
        }
        let param = match self.activation {
            Activation::LeakyRelu { slope } => slope,
            Activation::Threshold { level } => level,
            _ => 0.0,
        };
        if !param.is_finite() {
            return Err(Error::invalid(format!(
                "propagation study: the parameter of {} must be finite, got {param}",
                self.activation.name()
            )));
        }
        Ok(())
    }

    /// A short label, e.g. `kaiming_normal+relu gain 1 width 256 +layernorm`.
    pub fn label(&self) -> String {
        format!(
            "{}+{} gain {} width {}{}",
            self.init.name(),
            self.activation.name(),
            self.gain,
            self.width,
            if self.layernorm { " +layernorm" } else { "" }
        )
    }
}

/// The measurements of one configuration, one entry per layer l = 1 ..= depth (see the
/// [module docs](self)). Non-finite entries are possible in exploding networks.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PropagationResult {
    /// The law's name ([`Init::name`]).
    pub init: String,
    /// The activation's name ([`Activation::name`]; `identity` for a linear network).
    pub activation: String,
    /// The gain (the f32 gain's shortest decimal, so 0.9 reads 0.9).
    pub gain: f64,
    /// Units per layer.
    pub width: usize,
    /// Whether LayerNorm was applied to the pre-activations.
    pub layernorm: bool,
    /// The number of inputs.
    pub batch: usize,
    /// The seed.
    pub seed: u64,
    /// Mean over the batch of ‖h_l,b‖ / ‖x_b‖.
    pub norm_ratio: Vec<f64>,
    /// Population standard deviation over the batch of ‖h_l,b‖ / ‖x_b‖.
    pub norm_spread: Vec<f64>,
    /// Variance of the batch × width entries of h_l.
    pub activation_variance: Vec<f64>,
    /// Mean over the batch of ‖t_l,b‖ / ‖v_b‖ (the Jacobian's gain along v_b).
    pub jacobian_ratio: Vec<f64>,
    /// Population standard deviation over the batch of ‖t_l,b‖ / ‖v_b‖.
    pub jacobian_spread: Vec<f64>,
}

/// Runs the network of `config` on the GPU, calling `progress(l)` after each layer l
/// (1 ..= depth). Errors: sizes of 0, a depth above [`MAX_DEPTH`], a gain that is not finite
/// and positive, and GPU errors; never on overflow (see the [module docs](self)).
pub fn run(
    gpu: &Gpu,
    config: &PropagationConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<PropagationResult> {
    config.check()?;
    let (batch, width) = (config.batch, config.width);
    let shape = [batch, width];
    let mut h = random_fill::run(
        gpu,
        &shape,
        &RandomSpec::gaussian(config.seed, INPUT_STREAM),
    )?;
    let mut t = random_fill::run(
        gpu,
        &shape,
        &RandomSpec::gaussian(config.seed, TANGENT_STREAM),
    )?;
    let mut z = Tensor::empty(gpu, &shape)?;
    let mut u = Tensor::empty(gpu, &shape)?;
    let w = Tensor::empty(gpu, &[width, width])?;
    let squares_h = Tensor::empty(gpu, &[batch])?;
    let sums_h = Tensor::empty(gpu, &[batch])?;
    let squares_t = Tensor::empty(gpu, &[batch])?;

    let mut first = reduce::plan(gpu, Reduction::SumSquares, &h, &squares_h)?;
    first.extend(reduce::plan(gpu, Reduction::SumSquares, &t, &squares_t)?);
    gpu.execute(&first)?;
    let x_norms = sqrt_all(read(gpu, &squares_h)?);
    let v_norms = sqrt_all(read(gpu, &squares_t)?);

    let mut result = PropagationResult {
        init: config.init.name().to_owned(),
        activation: config.activation.name().to_owned(),
        gain: config
            .gain
            .to_string()
            .parse()
            .unwrap_or(f64::from(config.gain)),
        width,
        layernorm: config.layernorm,
        batch,
        seed: config.seed,
        norm_ratio: Vec::with_capacity(config.depth),
        norm_spread: Vec::with_capacity(config.depth),
        activation_variance: Vec::with_capacity(config.depth),
        jacobian_ratio: Vec::with_capacity(config.depth),
        jacobian_spread: Vec::with_capacity(config.depth),
    };
    let ln = LayerNormOptions::default();
    let linear = config.activation == Activation::Identity;
    for layer in 1..=config.depth {
        // Writes w now for the orthogonal law (the previous layer has finished), else plans.
        let mut d: Vec<Dispatch> = init::plan(
            gpu,
            &w,
            config.init,
            config.gain,
            config.seed,
            weight_stream(layer),
        )?;
        d.extend(matmul::plan(gpu, &h, &w, &z, &MatmulOptions::default())?);
        d.extend(matmul::plan(gpu, &t, &w, &u, &MatmulOptions::default())?);
        if config.layernorm {
            // The JVP reads z before z is normalized in place.
            d.extend(layernorm::plan_jvp(gpu, &z, &u, &u, &ln)?);
            d.extend(layernorm::plan(gpu, &z, &z, &ln)?);
        }
        if linear {
            // h_l = z_l and t_l = u_l: swap the buffers instead of copying.
            std::mem::swap(&mut h, &mut z);
            std::mem::swap(&mut t, &mut u);
        } else {
            d.extend(activation::plan(gpu, config.activation, &z, &h)?);
            d.extend(activation::plan_jvp(gpu, config.activation, &z, &u, &t)?);
        }
        d.extend(reduce::plan(gpu, Reduction::SumSquares, &h, &squares_h)?);
        d.extend(reduce::plan(gpu, Reduction::Sum, &h, &sums_h)?);
        d.extend(reduce::plan(gpu, Reduction::SumSquares, &t, &squares_t)?);
        gpu.execute(&d)?;
        drop(d);

        let sq_h = read(gpu, &squares_h)?;
        let sum_h = read(gpu, &sums_h)?;
        let sq_t = read(gpu, &squares_t)?;
        let (m, s) = mean_std(sq_h.iter().zip(&x_norms).map(|(&q, &n)| q.sqrt() / n));
        result.norm_ratio.push(m);
        result.norm_spread.push(s);
        let entries = (batch * width) as f64;
        let mean = sum_h.iter().sum::<f64>() / entries;
        let second = sq_h.iter().sum::<f64>() / entries;
        result.activation_variance.push(second - mean * mean);
        let (m, s) = mean_std(sq_t.iter().zip(&v_norms).map(|(&q, &n)| q.sqrt() / n));
        result.jacobian_ratio.push(m);
        result.jacobian_spread.push(s);
        progress(layer);
    }
    Ok(result)
}

/// Reads a small vector back as f64.
fn read(gpu: &Gpu, t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_vec(gpu)?.into_iter().map(f64::from).collect())
}

fn sqrt_all(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(f64::sqrt).collect()
}

/// Mean and population standard deviation (two-pass). Non-finite values propagate.
fn mean_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The default set, for each width in order: He (Kaiming normal) + ReLU, Xavier uniform +
/// ReLU, Xavier uniform + tanh, LeCun normal + SELU (gain 1 each), then Xavier uniform +
/// linear (identity) at gains 0.9, 1 and 1.1: seven configurations per width, all with
/// `depth`, `batch`, `layernorm` and `seed` (the same seed, so the same inputs and tangents
/// everywhere). Sizes are checked by [`run`].
pub fn default_configs(
    depth: usize,
    widths: &[usize],
    batch: usize,
    layernorm: bool,
    seed: u64,
) -> Vec<PropagationConfig> {
    let laws: [(Init, Activation, f32); 7] = [
        (Init::KaimingNormal, Activation::Relu, 1.0),
        (Init::XavierUniform, Activation::Relu, 1.0),
        (Init::XavierUniform, Activation::Tanh, 1.0),
        (Init::LecunNormal, Activation::Selu, 1.0),
        (Init::XavierUniform, Activation::Identity, 0.9),
        (Init::XavierUniform, Activation::Identity, 1.0),
        (Init::XavierUniform, Activation::Identity, 1.1),
    ];
    widths
        .iter()
        .flat_map(|&width| {
            laws.iter()
                .map(move |&(init, activation, gain)| PropagationConfig {
                    init,
                    activation,
                    gain,
                    width,
                    depth,
                    batch,
                    layernorm,
                    seed,
                })
        })
        .collect()
}

/// The Cartesian product inits × activations × gains × widths (the last varying fastest),
/// from names: [`Init::from_name`] (with its aliases) and [`Activation::from_name`] (with
/// `linear` for identity; `leaky_relu` gets slope 0.01, `threshold` level 0). Errors: an
/// unknown name, an empty list, a size of 0, a gain that is not finite and positive.
#[expect(
    clippy::too_many_arguments,
    reason = "the study's axes and fixed sizes, all named at the call site"
)]
pub fn product_configs(
    inits: &[&str],
    activations: &[&str],
    gains: &[f32],
    widths: &[usize],
    depth: usize,
    batch: usize,
    layernorm: bool,
    seed: u64,
) -> Result<Vec<PropagationConfig>> {
    for (name, len) in [
        ("initialization", inits.len()),
        ("activation", activations.len()),
        ("gain", gains.len()),
        ("width", widths.len()),
    ] {
        if len == 0 {
            return Err(Error::invalid(format!(
                "propagation study: give at least one {name}"
            )));
        }
    }
    let inits = inits
        .iter()
        .map(|name| Init::from_name(name))
        .collect::<Result<Vec<_>>>()?;
    let activations = activations
        .iter()
        .map(|name| Activation::from_name(name, 0.01, 0.0))
        .collect::<Result<Vec<_>>>()?;
    let mut configs = Vec::new();
    for &init in &inits {
        for &activation in &activations {
            for &gain in gains {
                for &width in widths {
                    let config = PropagationConfig {
                        init,
                        activation,
                        gain,
                        width,
                        depth,
                        batch,
                        layernorm,
                        seed,
                    };
                    config.check()?;
                    configs.push(config);
                }
            }
        }
    }
    Ok(configs)
}
