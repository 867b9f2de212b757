//! f64 reference of `shaders/attention_combine.wgsl` (host side
//! [`crate::ops::attention_combine`]).

use crate::ops::attention_combine::NEG;

/// The combine of `partials` (`[splits, rows, heads·head_dim]`) weighted by `lse`
/// (`[splits, rows, heads]`), `[rows, heads·head_dim]`: for each row r and head h, with top the
/// largest lse over the ranges, w_s = exp(lse_s − top) (0 where lse_s is [`NEG`] or below, or
/// NaN) and out = Σ_s w_s · partials_s / Σ_s w_s over the terms of w_s > 0 only; zeros where
/// no range has an lse above [`NEG`].
pub fn attention_combine(
    partials: &[f32],
    lse: &[f32],
    splits: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
) -> Vec<f64> {
    let row_len = heads * head_dim;
    assert_eq!(partials.len(), splits * rows * row_len, "partials length");
    assert_eq!(lse.len(), splits * rows * heads, "lse length");
    let mut out = vec![0.0; rows * row_len];
    for r in 0..rows {
        for h in 0..heads {
            let lse_of = |s: usize| lse[(s * rows + r) * heads + h];
            // Ranges that saw a key: lse above NEG (not NaN).
            let seen: Vec<usize> = (0..splits).filter(|&s| lse_of(s) > NEG).collect();
            let Some(top) = seen.iter().map(|&s| f64::from(lse_of(s))).reduce(f64::max) else {
                continue;
            };
            let weights: Vec<(usize, f64)> = seen
                .iter()
                .map(|&s| (s, (f64::from(lse_of(s)) - top).exp()))
                .filter(|&(_, w)| w > 0.0)
                .collect();
            let total: f64 = weights.iter().map(|&(_, w)| w).sum();
            for d in 0..head_dim {
                let col = h * head_dim + d;
                let sum: f64 = weights
                    .iter()
                    .map(|&(s, w)| w * f64::from(partials[(s * rows + r) * row_len + col]))
                    .sum();
                out[r * row_len + col] = sum / total;
            }
        }
    }
    out
}
