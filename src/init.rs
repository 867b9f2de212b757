//! Initialization laws of weight matrices, drawn on the GPU from a seed.
//!
//! A weight `W` is `[fan_in, fan_out]`: the convention is `y = x·W` for a row vector `x` of
//! `fan_in` values (PyTorch's `nn.Linear` stores the transpose, `[fan_out, fan_in]`). Entry
//! `(i, j)` is drawn by [`random_fill`] as the entry `(i, j)` of Philox stream `stream` under
//! `seed`: a pure function of `(seed, stream, i, j)`, the same on every adapter, and
//! [`weight_reference`] gives it on the CPU.
//!
//! The laws ([`Init`]), with `g` the gain:
//!
//! | law | distribution | variance of each entry |
//! |-----|--------------|------------------------|
//! | [`Init::XavierUniform`] | U\[−a, a\], a = g·sqrt(6/(fan_in + fan_out)) | a²/3 = g²·2/(fan_in + fan_out) |
//! | [`Init::XavierNormal`] | N(0, σ²), σ = g·sqrt(2/(fan_in + fan_out)) | g²·2/(fan_in + fan_out) |
//!
//! Xavier/Glorot (Glorot and Bengio, 2010) balances the forward and backward signal: the
//! variance 2/(fan_in + fan_out) is the compromise between 1/fan_in (keeps the forward
//! variance) and 1/fan_out (keeps the gradient's). Laws that are not one random fill
//! (orthogonal) get their own arm in [`weight`] and [`weight_reference`].

use crate::cpu::random_fill as cpu_random_fill;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::random_fill::{self, Distribution, RandomSpec};
use crate::tensor::Tensor;

/// An initialization law of a `[fan_in, fan_out]` weight matrix (see the module docs for the
/// formulas). More laws will be added, so matches need a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Init {
    /// Xavier/Glorot uniform: U\[−a, a\] with a = gain·sqrt(6/(fan_in + fan_out)); variance
    /// gain²·2/(fan_in + fan_out). PyTorch's `xavier_uniform_`.
    XavierUniform,
    /// Xavier/Glorot normal: N(0, gain²·2/(fan_in + fan_out)). PyTorch's `xavier_normal_`.
    XavierNormal,
}

impl Init {
    /// Every name accepted by [`Init::from_name`].
    pub const NAMES: &'static [&'static str] = &["xavier_uniform", "xavier_normal"];

    /// Parses a name of [`Init::NAMES`].
    pub fn from_name(name: &str) -> Result<Init> {
        match name {
            "xavier_uniform" | "glorot_uniform" => Ok(Init::XavierUniform),
            "xavier_normal" | "glorot_normal" => Ok(Init::XavierNormal),
            _ => Err(Error::invalid(format!(
                "unknown initialization {name:?}; known: {}",
                Init::NAMES.join(", ")
            ))),
        }
    }

    /// The name, as in [`Init::NAMES`].
    pub fn name(self) -> &'static str {
        match self {
            Init::XavierUniform => "xavier_uniform",
            Init::XavierNormal => "xavier_normal",
        }
    }

    /// The variance of each entry of a `[fan_in, fan_out]` weight under `gain`:
    /// gain²·2/(fan_in + fan_out) for both Xavier laws.
    pub fn variance(self, fan_in: usize, fan_out: usize, gain: f32) -> f64 {
        match self {
            Init::XavierUniform | Init::XavierNormal => {
                f64::from(gain).powi(2) * 2.0 / (fan_in + fan_out) as f64
            }
        }
    }

    /// The bound a of a uniform law (every entry lies in \[−a, a\]); `None` for the others.
    pub fn bound(self, fan_in: usize, fan_out: usize, gain: f32) -> Option<f64> {
        match self {
            Init::XavierUniform => Some(f64::from(gain) * (6.0 / (fan_in + fan_out) as f64).sqrt()),
            Init::XavierNormal => None,
        }
    }
}

/// Checks the shape and gain, and gives the random fill that draws `law`.
fn random_spec(
    shape: [usize; 2],
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<RandomSpec> {
    let [fan_in, fan_out] = shape;
    if fan_in == 0 || fan_out == 0 {
        return Err(Error::shape(
            "init",
            format!("a weight needs fan_in >= 1 and fan_out >= 1, got shape [{fan_in}, {fan_out}]"),
        ));
    }
    if !(gain.is_finite() && gain > 0.0) {
        return Err(Error::invalid(format!(
            "the gain of {} must be finite and > 0, got {gain}",
            law.name()
        )));
    }
    let (distribution, scale) = match law {
        Init::XavierUniform => (
            Distribution::UniformSymmetric,
            law.bound(fan_in, fan_out, gain).unwrap_or(0.0),
        ),
        Init::XavierNormal => (
            Distribution::Gaussian,
            law.variance(fan_in, fan_out, gain).sqrt(),
        ),
    };
    Ok(RandomSpec {
        distribution,
        scale: scale as f32,
        seed,
        stream,
        row0: 0,
    })
}

/// A `[fan_in, fan_out]` weight drawn from `law` with `gain` (1 is Glorot's choice; PyTorch's
/// `calculate_gain` gives others) on the GPU, entry `(i, j)` from Philox stream `stream` of
/// `seed`. Errors: a zero dimension, a gain that is not finite and positive.
pub fn weight(
    gpu: &Gpu,
    shape: [usize; 2],
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<Tensor> {
    let spec = random_spec(shape, law, gain, seed, stream)?;
    random_fill::run(gpu, &shape, &spec)
}

/// The CPU counterpart of [`weight`], row-major. Uniform laws give exactly the f32 values the
/// GPU stores (the scale times `2u − 1` is exact in f64 and rounded once to f32, as the GPU's
/// multiply rounds it); normal laws give f64 Box–Muller values of the same Philox words, which
/// the GPU's f32 `log`, `cos` and `sin` match to about 1e-6 relative.
pub fn weight_reference(
    shape: [usize; 2],
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<Vec<f64>> {
    let spec = random_spec(shape, law, gain, seed, stream)?;
    let values = cpu_random_fill::random_fill(&spec, shape[0], shape[1]);
    Ok(match spec.distribution {
        Distribution::UniformSymmetric => values.into_iter().map(|v| f64::from(v as f32)).collect(),
        _ => values,
    })
}
