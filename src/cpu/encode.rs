//! f64 reference of `shaders/encode.wgsl`: the threshold and bit-plane encoders and the
//! bit-plane decoder.

use crate::ops::encode::Encoder;

/// The integer a value stands for in `bits`-bit bit-plane encoding:
/// clamp(⌊v + 0.5⌋, 0, 2^bits − 1) (round half up, then saturate). Exact: v + 0.5 of an f32
/// is exact in f64. NaN gives 0 (the GPU leaves non-finite input unspecified).
pub fn quantize(v: f32, bits: u32) -> u32 {
    let top = f64::from((1u32 << bits) - 1);
    (f64::from(v) + 0.5).floor().clamp(0.0, top) as u32
}

/// `encoder` applied to `x`, rows of `d` values: `[batch, d]` for threshold, `[batch, bits, d]`
/// (plane k of sample b is row b·bits + k, k = 0 least significant) for bitplane.
pub fn encode(encoder: Encoder, x: &[f32], d: usize) -> Vec<f64> {
    match encoder {
        Encoder::Threshold { level } => x
            .iter()
            .map(|&v| if v > level { 1.0 } else { 0.0 })
            .collect(),
        Encoder::Bitplane { bits } => {
            let mut out = Vec::with_capacity(x.len() * bits as usize);
            for row in x.chunks(d) {
                for k in 0..bits {
                    out.extend(row.iter().map(|&v| f64::from((quantize(v, bits) >> k) & 1)));
                }
            }
            out
        }
    }
}

/// The decoder: planes `[batch, bits, n]` to `[batch, n]`, out[b, i] = Σₖ 2ᵏ · planes[b, k, i].
pub fn decode(bits: u32, planes: &[f32], n: usize) -> Vec<f64> {
    let bits = bits as usize;
    let mut out = Vec::with_capacity(planes.len() / bits.max(1));
    for sample in planes.chunks(bits * n) {
        out.extend((0..n).map(|i| {
            (0..bits)
                .map(|k| f64::from(sample[k * n + i]) * 2f64.powi(k as i32))
                .sum::<f64>()
        }));
    }
    out
}
