//! f64 reference of `shaders/attention.wgsl`.

use crate::ops::attention::AttentionDims;

/// Multi-head scaled-dot-product attention in f64: Q `[B, Nq, H·D]`, K and V `[B, Nk, H·D]`
/// (row-major, head `h` in columns `h·D .. (h+1)·D`), output `[B, Nq, H·D]`.
///
/// Query `i` of batch `b` sees key `j` when `causal` is false or `j <= i` (top-left, like
/// PyTorch's `is_causal`), and `key_mask` is absent or `key_mask[b·Nk + j] != 0`. The weights
/// are the softmax of `scale · q·k` over the keys it sees; a query that sees no key gets zeros.
/// Q, K and V may be f32 (the GPU's inputs) or f64 (computed upstream in f64).
pub fn attention<T: Copy + Into<f64>>(
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[f32]>,
    dims: &AttentionDims,
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
    let row = heads * d;
    let mut out = vec![0.0f64; batch * nq * row];
    let mut scores = vec![0.0f64; nk];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..nq {
                let qi = &q[(b * nq + i) * row + h * d..][..d];
                let visible =
                    |j: usize| (!causal || j <= i) && key_mask.is_none_or(|m| m[b * nk + j] != 0.0);
                let mut max = f64::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    if visible(j) {
                        let kj = &k[(b * nk + j) * row + h * d..][..d];
                        *s = scale
                            * qi.iter()
                                .zip(kj)
                                .map(|(&x, &y)| x.into() * y.into())
                                .sum::<f64>();
                        max = max.max(*s);
                    }
                }
                if max == f64::NEG_INFINITY {
                    continue; // no key seen: the row stays zero
                }
                let o = &mut out[(b * nq + i) * row + h * d..][..d];
                let mut sum = 0.0;
                for (j, &s) in scores.iter().enumerate() {
                    if visible(j) {
                        let w = (s - max).exp();
                        sum += w;
                        let vj = &v[(b * nk + j) * row + h * d..][..d];
                        for (acc, &x) in o.iter_mut().zip(vj) {
                            *acc += w * x.into();
                        }
                    }
                }
                for acc in o.iter_mut() {
                    *acc /= sum;
                }
            }
        }
    }
    out
}
