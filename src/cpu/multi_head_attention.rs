//! f64 reference of [`MultiHeadAttention`](crate::layers::MultiHeadAttention): the projections,
//! the attention and the output projection all in f64 from the same f32 inputs and weights,
//! so that a comparison measures the error of the whole GPU chain (three f32 stages), not of
//! its last stage.

use crate::cpu::attention::attention;
use crate::ops::attention::{AttentionDims, AttentionOptions};

/// The weights of the layer, row-major f32 as the GPU holds them: `W` `[E, E]` in the `x·W`
/// convention, biases `[E]`.
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    /// Query projection.
    pub wq: &'a [f32],
    /// Key projection.
    pub wk: &'a [f32],
    /// Value projection.
    pub wv: &'a [f32],
    /// Output projection.
    pub wo: &'a [f32],
    /// Query bias.
    pub bq: Option<&'a [f32]>,
    /// Key bias.
    pub bk: Option<&'a [f32]>,
    /// Value bias.
    pub bv: Option<&'a [f32]>,
    /// Output bias.
    pub bo: Option<&'a [f32]>,
}

/// `rows` rows of `x` `[rows, e]` times `w` `[e, e]`, plus `bias`, in f64.
fn project(x: &[f64], rows: usize, e: usize, w: &[f32], bias: Option<&[f32]>) -> Vec<f64> {
    let mut out = vec![0.0f64; rows * e];
    for (r, o) in out.chunks_exact_mut(e).enumerate() {
        if let Some(b) = bias {
            for (acc, &bj) in o.iter_mut().zip(b) {
                *acc = f64::from(bj);
            }
        }
        for (i, &xi) in x[r * e..(r + 1) * e].iter().enumerate() {
            for (acc, &wij) in o.iter_mut().zip(&w[i * e..(i + 1) * e]) {
                *acc += xi * f64::from(wij);
            }
        }
    }
    out
}

/// The layer's forward pass in f64: `Q = query·Wq + bq`, `K = key·Wk + bk`,
/// `V = value·Wv + bv`, `O = attention(Q, K, V)` with `dims.heads` heads, out `= O·Wo + bo`.
///
/// `query` is `[B, Nq, E]`, `key` and `value` `[B, Nk, E]` with E = `dims.heads ·
/// dims.head_dim` (row-major); `key_mask` `[B, Nk]` (nonzero: visible). The scale is
/// `options.scale`, or the f32 `1/sqrt(D)` the GPU uses; `options.causal` is PyTorch's
/// top-left `is_causal`. A query that sees no key gets `O = 0`, so its output is `bo`.
pub fn multi_head_attention(
    query: &[f32],
    key: &[f32],
    value: &[f32],
    key_mask: Option<&[f32]>,
    weights: &Weights<'_>,
    dims: &AttentionDims,
    options: &AttentionOptions,
) -> Vec<f64> {
    let e = dims.row_len();
    let widen = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let q = project(
        &widen(query),
        dims.batch * dims.nq,
        e,
        weights.wq,
        weights.bq,
    );
    let k = project(&widen(key), dims.batch * dims.nk, e, weights.wk, weights.bk);
    let v = project(
        &widen(value),
        dims.batch * dims.nk,
        e,
        weights.wv,
        weights.bv,
    );
    let scale = f64::from(options.scale.unwrap_or_else(|| dims.default_scale()));
    let o = attention(&q, &k, &v, key_mask, dims, scale, options.causal);
    project(&o, dims.batch * dims.nq, e, weights.wo, weights.bo)
}
