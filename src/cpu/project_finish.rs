//! f64 reference of `shaders/project_finish.wgsl`.

use crate::cpu::philox::{self, Stream};
use crate::ops::project_finish::Finish;

/// The phase offset u_i ∈ [0, 1) of row i of random Fourier features (b_i = 2π u_i).
pub fn fourier_offset(seed: u64, i: u32) -> f64 {
    f64::from(philox::uniform(
        philox::block(seed, Stream::RowOffset as u32, i, 0)[0],
    ))
}

/// `finish` applied to `[batch, n_out]` accumulators; `norms[b]` = ‖x_b‖².
pub fn project_finish(
    finish: Finish,
    re: &[f64],
    im: &[f64],
    norms: &[f64],
    n_out: usize,
    seed: u64,
    out_scale: f64,
) -> Vec<f64> {
    re.iter()
        .enumerate()
        .map(|(e, &v)| {
            let (b, i) = (e / n_out, e % n_out);
            match finish {
                Finish::Optical => v * v + im[e] * im[e],
                Finish::Fourier => {
                    out_scale
                        * (v + 2.0 * std::f64::consts::PI * fourier_offset(seed, i as u32)).cos()
                }
                Finish::Relu => out_scale * v.max(0.0),
                Finish::Positive => out_scale * (v - 0.5 * norms[b]).exp(),
            }
        })
        .collect()
}
