//! Reference of `shaders/random_fill.wgsl`: the same entries from the same Philox words,
//! distributions evaluated in f64 (uniform, symmetric uniform, Rademacher, sparse and the raw
//! words are exact for a power-of-two scale;
//! Gaussians differ from the GPU's f32 Box–Muller by about 1e-6 relative).

use super::philox;
use crate::ops::random_fill::{Distribution, RandomSpec};

/// Entry (`row`, `col`) (global row index) as `spec` draws it; [`Distribution::Bits`] gives the
/// word as a number.
pub fn entry(spec: &RandomSpec, row: u32, col: u64) -> f64 {
    let words = philox::block(spec.seed, spec.stream, row, (col / 4) as u32);
    let t = (col % 4) as usize;
    let scale = f64::from(spec.scale);
    match spec.distribution {
        Distribution::Bits => f64::from(words[t]),
        Distribution::Uniform => scale * f64::from(philox::uniform(words[t])),
        Distribution::UniformSymmetric => {
            scale * (2.0 * f64::from(philox::uniform(words[t])) - 1.0)
        }
        Distribution::Gaussian => scale * philox::gaussians(words)[t],
        Distribution::Rademacher => scale * if words[t] >> 31 == 0 { 1.0 } else { -1.0 },
        Distribution::Sparse { p } => {
            let u = philox::uniform(words[t]);
            let sign = if u < p {
                1.0
            } else if u < 2.0 * p {
                -1.0
            } else {
                0.0
            };
            scale * sign
        }
    }
}

/// The whole `[rows, cols]` fill, row-major.
pub fn random_fill(spec: &RandomSpec, rows: usize, cols: usize) -> Vec<f64> {
    (0..rows)
        .flat_map(|r| (0..cols).map(move |c| entry(spec, spec.row0 + r as u32, c as u64)))
        .collect()
}
