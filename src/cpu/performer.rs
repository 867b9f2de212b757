//! f64 reference of random-feature attention (Performer / FAVOR+, `shaders/performer.wgsl` and
//! the matmuls of [`crate::ops::performer`]), from the same projection matrix W.
//!
//! With x̃ = sqrt(|s|)·x for the scale s (the key side also takes the sign of s), the positive
//! random features φ(x)_i = exp(w_i·x̃ − ‖x̃‖²/2)/sqrt(m) satisfy E[φ(q)·φ(k)] = exp(s·q·k) for
//! rows w_i ~ N(0, I_D); the attention output is Σ_j (φ(q_i)·φ(k_j)) v_j / Σ_j φ(q_i)·φ(k_j).
//! The reference applies the same stabilizers as the GPU (see [`crate::ops::performer`]); they
//! cancel in the output, so its value is that of the plain formula, in f64.

use crate::cpu::philox::Stream;
use crate::cpu::project_dense::matrix_entry;
use crate::error::Result;
use crate::ops::attention::AttentionDims;
use crate::projection::{orthogonal, Kind, Projection};

/// The unscaled projection matrix W `[features, head_dim]` (row-major, f64) of `seed`: the
/// matrix of the `positive` projection kind, `Projection::new(Kind::Positive, features, seed)`
/// fitted to `head_dim`, with `orthogonal` rows in blocks of `head_dim` and chi-distributed
/// norms ([`orthogonal::rows`]) or independent N(0, 1) entries. Errors for a zero size.
pub fn projection_matrix(
    features: usize,
    head_dim: usize,
    seed: u64,
    orthogonal: bool,
) -> Result<Vec<f64>> {
    let mut projection = Projection::new(Kind::Positive, features, seed);
    projection.orthogonal = orthogonal;
    projection.fit(head_dim)?;
    if orthogonal {
        return Ok(orthogonal::rows(seed, head_dim, 0, features).0);
    }
    let dense = projection.spec()?.dense;
    Ok((0..features)
        .flat_map(|i| {
            (0..head_dim).map(move |j| matrix_entry(&dense, Stream::Matrix, i as u32, j as u64))
        })
        .collect())
}

/// `(sqrt(|scale|), sign(scale)·sqrt(|scale|))`: the factors of queries and keys, so that
/// q̃·k̃ = scale·q·k.
pub fn input_factors(scale: f64) -> (f64, f64) {
    let a = scale.abs().sqrt();
    (a, if scale < 0.0 { -a } else { a })
}

/// The rows of one head: row `n` of head `h` of batch `b` of a `[B, N, H·D]` tensor.
fn head_rows(x: &[f32], b: usize, h: usize, rows: usize, heads: usize, d: usize) -> Vec<&[f32]> {
    (0..rows)
        .map(|n| &x[(b * rows + n) * heads * d + h * d..][..d])
        .collect()
}

/// `alpha·w_i·x − alpha²‖x‖²/2` for every feature i of one row: the exponent of φ(x)_i.
fn exponents(x: &[f32], w: &[f64], features: usize, alpha: f64) -> Vec<f64> {
    let d = x.len();
    let norm2: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (0..features)
        .map(|i| {
            let dot: f64 = w[i * d..(i + 1) * d]
                .iter()
                .zip(x)
                .map(|(&a, &b)| a * f64::from(b))
                .sum();
            alpha * dot - alpha * alpha * norm2 / 2.0
        })
        .collect()
}

/// φ(x) without stabilizer, `[B, H, N, m]`, for `x` `[B, N, H·D]`: exp(alpha·w_i·x −
/// alpha²‖x‖²/2)/sqrt(m) (queries: alpha = sqrt(|scale|); keys: [`input_factors`]`.1`).
/// May overflow for large inputs (the attention path is stabilized; this is the estimator).
pub fn feature_map(
    x: &[f32],
    batch: usize,
    rows: usize,
    heads: usize,
    w: &[f64],
    features: usize,
    alpha: f64,
) -> Vec<f64> {
    let d = x.len() / (batch * rows * heads);
    let inv = 1.0 / (features as f64).sqrt();
    let mut out = Vec::with_capacity(batch * heads * rows * features);
    for b in 0..batch {
        for h in 0..heads {
            for row in head_rows(x, b, h, rows, heads, d) {
                out.extend(
                    exponents(row, w, features, alpha)
                        .into_iter()
                        .map(|e| e.exp() * inv),
                );
            }
        }
    }
    out
}

/// φ(q)·φ(k) for every (query, key) pair, `[B, H, Nq, Nk]`: the unbiased estimate of
/// exp(scale·q·k) (no stabilizer).
pub fn kernel_estimate(
    q: &[f32],
    k: &[f32],
    dims: &AttentionDims,
    w: &[f64],
    features: usize,
    scale: f64,
) -> Vec<f64> {
    let (aq, ak) = input_factors(scale);
    let fq = feature_map(q, dims.batch, dims.nq, dims.heads, w, features, aq);
    let fk = feature_map(k, dims.batch, dims.nk, dims.heads, w, features, ak);
    let groups = dims.batch * dims.heads;
    let mut out = Vec::with_capacity(groups * dims.nq * dims.nk);
    for g in 0..groups {
        for i in 0..dims.nq {
            let a = &fq[(g * dims.nq + i) * features..][..features];
            for j in 0..dims.nk {
                let b = &fk[(g * dims.nk + j) * features..][..features];
                out.push(a.iter().zip(b).map(|(x, y)| x * y).sum());
            }
        }
    }
    out
}

/// Random-feature attention in f64: Q `[B, Nq, H·D]`, K and V `[B, Nk, H·D]`, output
/// `[B, Nq, H·D]`, with W `[features, D]` ([`projection_matrix`]) and the scale `scale`.
///
/// `out_i = Σ_j (φ(q_i)·φ(k_j)) v_j / Σ_j φ(q_i)·φ(k_j)` over all keys, or with `causal` over
/// keys `j <= i` (top-left, as the exact kernel). Query features are stabilized by their row
/// maximum, key features by one maximum per (batch, head), as on the GPU (both cancel). A query
/// whose normalizer is not positive outputs zeros.
#[expect(
    clippy::too_many_arguments,
    reason = "the operands of attention and the three numbers that define the features"
)]
pub fn performer(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: &AttentionDims,
    w: &[f64],
    features: usize,
    scale: f64,
    causal: bool,
) -> Vec<f64> {
    let AttentionDims {
        batch,
        nq,
        nk,
        heads,
        head_dim: d,
    } = *dims;
    let m = features;
    let (aq, ak) = input_factors(scale);
    let inv = 1.0 / (m as f64).sqrt();
    let row = heads * d;
    let mut out = vec![0.0f64; batch * nq * row];
    for b in 0..batch {
        for h in 0..heads {
            let qs = head_rows(q, b, h, nq, heads, d);
            let ks = head_rows(k, b, h, nk, heads, d);
            let vs = head_rows(v, b, h, nk, heads, d);
            let phi_q: Vec<Vec<f64>> = qs
                .iter()
                .map(|x| {
                    let e = exponents(x, w, m, aq);
                    let max = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    e.into_iter().map(|v| (v - max).exp() * inv).collect()
                })
                .collect();
            let ek: Vec<Vec<f64>> = ks.iter().map(|x| exponents(x, w, m, ak)).collect();
            let max = ek
                .iter()
                .flatten()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            let phi_k: Vec<Vec<f64>> = ek
                .into_iter()
                .map(|e| e.into_iter().map(|v| (v - max).exp() * inv).collect())
                .collect();
            // S = Σ φ(k_j) v_jᵀ and z = Σ φ(k_j) over the keys seen so far (all, if not causal).
            let mut s = vec![0.0f64; m * d];
            let mut z = vec![0.0f64; m];
            let add_key = |j: usize, s: &mut [f64], z: &mut [f64]| {
                for f in 0..m {
                    let p = phi_k[j][f];
                    z[f] += p;
                    for (acc, &x) in s[f * d..(f + 1) * d].iter_mut().zip(vs[j]) {
                        *acc += p * f64::from(x);
                    }
                }
            };
            let mut seen = 0;
            if !causal {
                while seen < nk {
                    add_key(seen, &mut s, &mut z);
                    seen += 1;
                }
            }
            for (i, fq) in phi_q.iter().enumerate() {
                while causal && seen <= i && seen < nk {
                    add_key(seen, &mut s, &mut z);
                    seen += 1;
                }
                let den: f64 = fq.iter().zip(&z).map(|(a, b)| a * b).sum();
                if den <= 0.0 {
                    continue;
                }
                let o = &mut out[(b * nq + i) * row + h * d..][..d];
                for (f, &a) in fq.iter().enumerate() {
                    for (acc, &x) in o.iter_mut().zip(&s[f * d..(f + 1) * d]) {
                        *acc += a * x;
                    }
                }
                for acc in o.iter_mut() {
                    *acc /= den;
                }
            }
        }
    }
    out
}
