//! f64 reference of `shaders/roofline.wgsl`.

use crate::ops::roofline::ACCUMULATORS;

/// The FMA mode: for each of `invocations` invocations (global index g), the vec4 it writes —
/// the sum of its [`ACCUMULATORS`] chains a_j = s + (4j + lane) / 32, s = (g mod 2¹⁶) / 2¹⁶,
/// after `iters` rounds of a = a · mul + add — computed in f64, 4 values per invocation.
pub fn fma_chains(invocations: usize, iters: u32, mul: f32, add: f32) -> Vec<f64> {
    let (m, c) = (f64::from(mul), f64::from(add));
    let mut out = Vec::with_capacity(4 * invocations);
    for g in 0..invocations {
        let s = (g & 0xffff) as f64 / 65536.0;
        for lane in 0..4 {
            let mut sum = 0.0;
            for j in 0..ACCUMULATORS {
                let mut a = s + (4 * j + lane) as f64 / 32.0;
                for _ in 0..iters {
                    a = a * m + c;
                }
                sum += a;
            }
            out.push(sum);
        }
    }
    out
}

/// The copy mode: the destination equals the source.
pub fn copy(src: &[f32]) -> Vec<f32> {
    src.to_vec()
}
