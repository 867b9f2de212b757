//! f64 reference of `shaders/project_finish.wgsl`.

use crate::cpu::philox::{self, Stream};
use crate::ops::project_finish::{Camera, Finish};

/// The phase offset u_i ∈ [0, 1) of row i of random Fourier features (b_i = 2π u_i).
pub fn fourier_offset(seed: u64, i: u32) -> f64 {
    f64::from(philox::uniform(
        philox::block(seed, Stream::RowOffset as u32, i, 0)[0],
    ))
}

/// `finish` of one output: row `i`, accumulators `re` and `im`, input squared norm `norm`.
pub fn finish_one(
    finish: Finish,
    re: f64,
    im: f64,
    norm: f64,
    i: u32,
    seed: u64,
    out_scale: f64,
) -> f64 {
    match finish {
        Finish::Optical => re * re + im * im,
        Finish::Fourier => {
            out_scale * (re + 2.0 * std::f64::consts::PI * fourier_offset(seed, i)).cos()
        }
        Finish::Relu => out_scale * re.max(0.0),
        Finish::Positive => out_scale * (re - 0.5 * norm).exp(),
    }
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
            let w = im.get(e).copied().unwrap_or(0.0);
            let norm = norms.get(b).copied().unwrap_or(0.0);
            finish_one(finish, v, w, norm, i as u32, seed, out_scale)
        })
        .collect()
}

/// The [`Camera`] model on intensities `y` (`[batch, n_out]`): λ = gain · max(y, 0);
/// v = λ + √λ · z with z the Gaussian entry (b, i) of stream `CameraNoise` (with noise) or
/// v = λ; out = clamp(⌊v + 0.5⌋, 0, 2^bits − 1). λ is capped at 2²⁴ like on the GPU (see
/// `shaders/project_finish.wgsl`), which changes no output but keeps infinite y finite.
pub fn camera(y: &[f32], n_out: usize, camera: &Camera) -> Vec<f64> {
    let top = f64::from(camera.max_level());
    y.iter()
        .enumerate()
        .map(|(e, &v)| {
            let lambda = (f64::from(camera.gain) * f64::from(v).max(0.0)).min(16_777_216.0);
            let v = match camera.noise {
                Some(seed) => {
                    let (b, i) = (e / n_out, e % n_out);
                    let z = philox::gaussian_entry(
                        seed,
                        Stream::CameraNoise as u32,
                        b as u32,
                        i as u64,
                    );
                    lambda + lambda.sqrt() * z
                }
                None => lambda,
            };
            (v + 0.5).floor().clamp(0.0, top)
        })
        .collect()
}
