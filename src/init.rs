//! Initialization laws of weight matrices, drawn from a seed.
//!
//! A weight `W` is `[fan_in, fan_out]`: the convention is `y = x·W` for a row vector `x` of
//! `fan_in` values (PyTorch's `nn.Linear` stores the transpose, `[fan_out, fan_in]`). For the
//! laws that are one random fill, entry `(i, j)` is drawn on the GPU by [`random_fill`] as the
//! entry `(i, j)` of Philox stream `stream` under `seed`: a pure function of
//! `(seed, stream, i, j)`, the same on every adapter, and [`weight_reference`] gives it on the
//! CPU. The orthogonal law is generated on the CPU (see below) and uploaded.
//!
//! # The laws
//!
//! With `g` the gain (1 is each paper's choice; PyTorch's `calculate_gain` gives others):
//!
//! | law ([`Init`]) | name | distribution | variance of each entry |
//! |-----|------|--------------|------------------------|
//! | [`Init::XavierUniform`] | `xavier_uniform` | U\[−a, a\], a = g·sqrt(6/(fan_in + fan_out)) | a²/3 = g²·2/(fan_in + fan_out) |
//! | [`Init::XavierNormal`] | `xavier_normal` | N(0, g²·2/(fan_in + fan_out)) | g²·2/(fan_in + fan_out) |
//! | [`Init::KaimingNormal`] | `kaiming_normal` | N(0, g²·2/fan_in) | g²·2/fan_in |
//! | [`Init::KaimingUniform`] | `kaiming_uniform` | U\[−a, a\], a = g·sqrt(6/fan_in) | a²/3 = g²·2/fan_in |
//! | [`Init::LecunNormal`] | `lecun_normal` | N(0, g²/fan_in) | g²/fan_in |
//! | [`Init::Orthogonal`] | `orthogonal` | g·Q, Q Haar-random with orthonormal rows (fan_in ≤ fan_out) or columns | g²/max(fan_in, fan_out) |
//!
//! Names follow PyTorch's `torch.nn.init` (`xavier_uniform_`, `kaiming_normal_`, ...) and, for
//! LeCun, Keras/JAX. [`Init::from_name`] also accepts the short names `xavier` (uniform),
//! `glorot`, `glorot_uniform`, `glorot_normal`, `he`, `he_normal`, `kaiming` (He normal) and
//! `lecun`.
//!
//! **Why these variances.** For `y_j = Σ_i x_i W_ij` with independent zero-mean weights of
//! variance `v`, independent of the inputs, `E[y_j²] = fan_in · v · E[x_i²]`: the *second
//! moment* of the inputs, not their variance, is what propagates.
//!
//! - LeCun (LeCun et al., 1998, "Efficient BackProp"): v = 1/fan_in keeps `E[y²] = E[x²]`.
//!   It is the lecture notes' derivation: var(y) = d·E\[w²\]·var(x) = var(x) for
//!   E\[w²\] = 1/d (inputs of mean 0). It is the law SELU was designed for (Klambauer et
//!   al., 2017): with N(0, 1/fan_in) weights, SELU's fixed point is mean 0, variance 1.
//! - Xavier/Glorot (Glorot and Bengio, 2010) balances the forward and the backward signal: the
//!   variance 2/(fan_in + fan_out) is the compromise between 1/fan_in (keeps the forward
//!   second moment) and 1/fan_out (keeps the gradient's). For square layers it is LeCun's.
//! - He/Kaiming (He et al., 2015): v = 2/fan_in compensates ReLU, which keeps half of the
//!   second moment. For any `z` symmetric about 0, `E[ReLU(z)²] = E[z²]/2` (the square of
//!   ReLU is z² on one half of a symmetric law and 0 on the other), so with `z = x·W`,
//!   `E‖ReLU(z)‖² = fan_out · (fan_in · v · E[x²]) / 2`, which v = 2/fan_in keeps at
//!   `E[x²]` per unit.
//! - Orthogonal (Saxe et al., 2014): `‖x·W‖ = g·‖x‖` *exactly* for every x when
//!   fan_in ≤ fan_out (W·Wᵀ = g²·I), so a deep linear network scales every norm by exactly
//!   g^L, without the fluctuations of random Gaussian layers.
//!
//! **Two corrections to the lecture notes' shorthand.**
//!
//! - The notes' U\[−1/sqrt(d), 1/sqrt(d)\] does *not* have variance 1/d: U\[−a, a\] has
//!   variance a²/3, so it has 1/(3d). The uniform law of variance 1/d is
//!   U\[−sqrt(3/d), sqrt(3/d)\] (and Xavier uniform's bound sqrt(6/(fan_in + fan_out)) is
//!   sqrt(3·2/(fan_in + fan_out)) for that reason).
//! - "var(ReLU(x)) = var(x)/2" is about the second moment: `E[ReLU(x)²] = var(x)/2` for x
//!   symmetric about 0. The variance of ReLU(x) is smaller, since ReLU(x) has a positive mean:
//!   for Gaussian x, `E[ReLU(x)] = σ/sqrt(2π)` and
//!   `var(ReLU(x)) = (1/2 − 1/(2π))·var(x) ≈ 0.341·var(x)`. The next layer sees the second
//!   moment (above), which is why He's factor is exactly 2.
//!
//! # Orthogonal weights
//!
//! `Q` comes from [`crate::projection::orthogonal::rows`]: Gaussian rows orthogonalized by
//! Gram–Schmidt (twice) in f64 on the CPU, each row then divided by its norm, so that the
//! rows are orthonormal; the law of Q is Haar (the directions of Gram–Schmidt applied to a
//! Gaussian matrix). With `k = min(fan_in, fan_out)` and `m = max(fan_in, fan_out)`, k rows of
//! length m are drawn; for fan_in ≤ fan_out they are the rows of W, otherwise its columns
//! (PyTorch's `orthogonal_` makes the same choice). The rows are the Philox stream `Matrix` of
//! the seed `seed ^ (stream · 0x9E3779B97F4A7C15)` (the seed itself for stream 0), so a weight
//! is still a pure function of (seed, stream). The product by the gain is done in f64 and
//! rounded once to f32; the GPU gets exactly the f32 values of [`weight_reference`]. The cost
//! is O(m·k²) on one CPU thread (measured in a release build: 0.03 s at 256 × 256, 0.2 s at
//! 512 × 512, 1.5 s at 1024 × 1024) plus the upload.

use crate::cpu::random_fill as cpu_random_fill;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::random_fill::{self, Distribution, RandomSpec};
use crate::projection::orthogonal;
use crate::tensor::Tensor;

/// An initialization law of a `[fan_in, fan_out]` weight matrix (see the module docs for the
/// formulas). More laws may be added, so matches need a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Init {
    /// Xavier/Glorot uniform: U\[−a, a\] with a = gain·sqrt(6/(fan_in + fan_out)); variance
    /// gain²·2/(fan_in + fan_out). PyTorch's `xavier_uniform_`.
    XavierUniform,
    /// Xavier/Glorot normal: N(0, gain²·2/(fan_in + fan_out)). PyTorch's `xavier_normal_`.
    XavierNormal,
    /// He/Kaiming normal: N(0, gain²·2/fan_in), for ReLU networks. PyTorch's
    /// `kaiming_normal_` (mode `fan_in`) with its gain sqrt(2) written into the law.
    KaimingNormal,
    /// He/Kaiming uniform: U\[−a, a\] with a = gain·sqrt(6/fan_in); variance gain²·2/fan_in.
    KaimingUniform,
    /// LeCun normal: N(0, gain²/fan_in), the law SELU networks need.
    LecunNormal,
    /// gain times a Haar-random matrix with orthonormal rows (fan_in ≤ fan_out) or orthonormal
    /// columns (fan_in > fan_out), generated on the CPU in f64 and uploaded.
    Orthogonal,
}

impl Init {
    /// Every canonical name accepted by [`Init::from_name`] (which also takes the aliases of
    /// the module docs).
    pub const NAMES: &'static [&'static str] = &[
        "xavier_uniform",
        "xavier_normal",
        "kaiming_normal",
        "kaiming_uniform",
        "lecun_normal",
        "orthogonal",
    ];

    /// Parses a name of [`Init::NAMES`] or an alias: `xavier`, `glorot`, `glorot_uniform`
    /// (Xavier uniform), `glorot_normal`, `he`, `he_normal`, `kaiming` (Kaiming normal),
    /// `lecun`.
    pub fn from_name(name: &str) -> Result<Init> {
        match name {
            "xavier_uniform" | "xavier" | "glorot" | "glorot_uniform" => Ok(Init::XavierUniform),
            "xavier_normal" | "glorot_normal" => Ok(Init::XavierNormal),
            "kaiming_normal" | "kaiming" | "he" | "he_normal" => Ok(Init::KaimingNormal),
            "kaiming_uniform" | "he_uniform" => Ok(Init::KaimingUniform),
            "lecun_normal" | "lecun" => Ok(Init::LecunNormal),
            "orthogonal" => Ok(Init::Orthogonal),
            _ => Err(Error::invalid(format!(
                "unknown initialization {name:?}; known: {} (aliases: xavier, glorot, he, he_uniform, \
                 lecun)",
                Init::NAMES.join(", ")
            ))),
        }
    }

    /// The name, as in [`Init::NAMES`].
    pub fn name(self) -> &'static str {
        match self {
            Init::XavierUniform => "xavier_uniform",
            Init::XavierNormal => "xavier_normal",
            Init::KaimingNormal => "kaiming_normal",
            Init::KaimingUniform => "kaiming_uniform",
            Init::LecunNormal => "lecun_normal",
            Init::Orthogonal => "orthogonal",
        }
    }

    /// The variance of each entry of a `[fan_in, fan_out]` weight under `gain`:
    /// gain²·2/(fan_in + fan_out) (Xavier), gain²·2/fan_in (Kaiming), gain²/fan_in (LeCun),
    /// gain²/max(fan_in, fan_out) (orthogonal: each of the k orthonormal vectors of length m
    /// has squared norm 1 spread evenly over m entries in expectation).
    pub fn variance(self, fan_in: usize, fan_out: usize, gain: f32) -> f64 {
        let g2 = f64::from(gain).powi(2);
        match self {
            Init::XavierUniform | Init::XavierNormal => g2 * 2.0 / (fan_in + fan_out) as f64,
            Init::KaimingNormal | Init::KaimingUniform => g2 * 2.0 / fan_in as f64,
            Init::LecunNormal => g2 / fan_in as f64,
            Init::Orthogonal => g2 / fan_in.max(fan_out) as f64,
        }
    }

    /// The bound a of a uniform law (every entry lies in \[−a, a\]); `None` for the others.
    pub fn bound(self, fan_in: usize, fan_out: usize, gain: f32) -> Option<f64> {
        match self {
            Init::XavierUniform => Some(f64::from(gain) * (6.0 / (fan_in + fan_out) as f64).sqrt()),
            Init::KaimingUniform => Some(f64::from(gain) * (6.0 / fan_in as f64).sqrt()),
            _ => None,
        }
    }
}

/// Checks the shape and gain of a weight of `law`.
fn check(shape: [usize; 2], law: Init, gain: f32) -> Result<()> {
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
    Ok(())
}

/// The random fill that draws `law`, or `None` for the orthogonal law (generated on the CPU).
fn random_spec(
    shape: [usize; 2],
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<Option<RandomSpec>> {
    check(shape, law, gain)?;
    let [fan_in, fan_out] = shape;
    let (distribution, scale) = match law {
        Init::XavierUniform | Init::KaimingUniform => (
            Distribution::UniformSymmetric,
            law.bound(fan_in, fan_out, gain).unwrap_or(0.0),
        ),
        Init::XavierNormal | Init::KaimingNormal | Init::LecunNormal => (
            Distribution::Gaussian,
            law.variance(fan_in, fan_out, gain).sqrt(),
        ),
        Init::Orthogonal => return Ok(None),
    };
    Ok(Some(RandomSpec {
        distribution,
        scale: scale as f32,
        seed,
        stream,
        row0: 0,
    }))
}

/// The seed of the orthogonal rows of (`seed`, `stream`): `seed` for stream 0, otherwise
/// mixed with the stream by the golden-ratio constant (see the module docs).
fn orthogonal_seed(seed: u64, stream: u32) -> u64 {
    seed ^ u64::from(stream).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The orthogonal weight, row-major `[fan_in, fan_out]`, each value gain·q rounded to f32
/// (held in f64).
fn orthogonal_weight(shape: [usize; 2], gain: f32, seed: u64, stream: u32) -> Vec<f64> {
    let [fan_in, fan_out] = shape;
    let (k, m) = (fan_in.min(fan_out), fan_in.max(fan_out));
    // k rows of length m; in one block of m rows, so mutually orthogonal.
    let (w, norms) = orthogonal::rows(orthogonal_seed(seed, stream), m, 0, k);
    let gain = f64::from(gain);
    let value = |r: usize, c: usize| f64::from((gain * w[r * m + c] / norms[r]) as f32);
    if fan_in <= fan_out {
        (0..fan_in)
            .flat_map(|i| (0..fan_out).map(move |j| (i, j)))
            .map(|(i, j)| value(i, j))
            .collect()
    } else {
        // Orthonormal columns: W = (gain·Q)ᵀ with Q of shape [fan_out, fan_in].
        (0..fan_in)
            .flat_map(|i| (0..fan_out).map(move |j| (i, j)))
            .map(|(i, j)| value(j, i))
            .collect()
    }
}

/// Plans filling the existing `[fan_in, fan_out]` tensor `w` with a weight of `law` (the same
/// values as [`weight`]), for callers that reuse one buffer, e.g. a layer per iteration.
///
/// The laws drawn on the GPU are returned as dispatches to record. The orthogonal law is
/// generated on the CPU and written into `w` now, through the queue (ordered before any work
/// submitted later); its plan is empty. Errors: `w` not 2-D, a zero dimension, a gain that is
/// not finite and positive.
pub fn plan(
    gpu: &Gpu,
    w: &Tensor,
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<Vec<Dispatch>> {
    let shape: [usize; 2] = w.shape().try_into().map_err(|_| {
        Error::shape(
            "init",
            format!("a weight is [fan_in, fan_out], got shape {:?}", w.shape()),
        )
    })?;
    match random_spec(shape, law, gain, seed, stream)? {
        Some(spec) => random_fill::plan(gpu, w, &spec),
        None => {
            let values: Vec<f32> = orthogonal_weight(shape, gain, seed, stream)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            w.write(gpu, &values)?;
            Ok(Vec::new())
        }
    }
}

/// A `[fan_in, fan_out]` weight drawn from `law` with `gain` (1 is each paper's choice;
/// PyTorch's `calculate_gain` gives others), entry `(i, j)` from Philox stream `stream` of
/// `seed` (on the GPU; the orthogonal law on the CPU, then uploaded). Errors: a zero
/// dimension, a gain that is not finite and positive.
pub fn weight(
    gpu: &Gpu,
    shape: [usize; 2],
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<Tensor> {
    check(shape, law, gain)?;
    let w = Tensor::empty(gpu, &shape)?;
    let dispatches = plan(gpu, &w, law, gain, seed, stream)?;
    if !dispatches.is_empty() {
        gpu.execute(&dispatches)?;
    }
    Ok(w)
}

/// The CPU counterpart of [`weight`], row-major. Uniform laws and the orthogonal law give
/// exactly the f32 values the GPU holds (for uniform laws the scale times `2u − 1` is exact in
/// f64 and rounded once to f32, as the GPU's multiply rounds it; orthogonal values are the
/// ones uploaded); normal laws give f64 Box–Muller values of the same Philox words, which the
/// GPU's f32 `log`, `cos` and `sin` match to about 1e-6 relative.
pub fn weight_reference(
    shape: [usize; 2],
    law: Init,
    gain: f32,
    seed: u64,
    stream: u32,
) -> Result<Vec<f64>> {
    let Some(spec) = random_spec(shape, law, gain, seed, stream)? else {
        return Ok(orthogonal_weight(shape, gain, seed, stream));
    };
    let values = cpu_random_fill::random_fill(&spec, shape[0], shape[1]);
    Ok(match spec.distribution {
        Distribution::UniformSymmetric => values.into_iter().map(|v| f64::from(v as f32)).collect(),
        _ => values,
    })
}
