//! f64 reference of the f16 attention (`ops::attention_f16`): the exact attention of Q, K and V
//! rounded to f16 ([`crate::cpu::to_f16`]), as [`crate::HalfTensor::from_f32`] stores them.
//!
//! The kernel also rounds the probabilities to f16 before their product with V, which this
//! reference does not: that moves each weight by at most 2⁻¹¹ of itself, so an output differs
//! from this by at most about 2⁻¹⁰ · max |v| (the rounded weights are normalized by their own
//! sum).

use crate::cpu::attention::attention;
use crate::cpu::to_f16::to_f16_slice;
use crate::ops::attention::AttentionDims;

/// The attention of the f16-rounded operands (layouts of [`crate::cpu::attention::attention`],
/// no key mask), in f64.
pub fn attention_f16(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: &AttentionDims,
    scale: f64,
    causal: bool,
) -> Vec<f64> {
    let (q, k, v) = (to_f16_slice(q), to_f16_slice(k), to_f16_slice(v));
    attention(&q, &k, &v, None, dims, scale, causal)
}
