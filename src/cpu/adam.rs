//! f64 reference of `shaders/adam.wgsl`.

/// One Adam step `t` (from 1) in f64 on `w`, `m`, `v` with gradient `g`.
#[expect(
    clippy::too_many_arguments,
    reason = "the hyper-parameters of the paper"
)]
pub fn adam(
    g: &[f64],
    w: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    t: i32,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
) {
    let c1 = 1.0 / (1.0 - beta1.powi(t));
    let c2 = 1.0 / (1.0 - beta2.powi(t));
    for i in 0..w.len() {
        m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
        w[i] -= lr * (m[i] * c1) / ((v[i] * c2).sqrt() + eps);
    }
}
