//! f64 reference of `shaders/layernorm.wgsl`: layer normalization of each row (biased
//! variance) and its Jacobian-vector product.

/// Layer normalization of each row of `cols` values of `x`:
/// `y = γ ⊙ (x − μ)/sqrt(σ² + ε) + β`, γ and β `cols` values each (`None`: 1 and 0).
pub fn layernorm(
    x: &[f32],
    cols: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    eps: f64,
) -> Vec<f64> {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let gamma = gamma.map(widen);
    let beta = beta.map(widen);
    layernorm_f64(&x, cols, gamma.as_deref(), beta.as_deref(), eps)
}

/// [`layernorm`] on f64 inputs (for finite differences and network references).
pub fn layernorm_f64(
    x: &[f64],
    cols: usize,
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
    eps: f64,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let (mean, rstd) = stats(row, eps);
        for (j, &v) in row.iter().enumerate() {
            let g = gamma.map_or(1.0, |g| g[j]);
            let b = beta.map_or(0.0, |b| b[j]);
            out.push(g * (v - mean) * rstd + b);
        }
    }
    out
}

/// The Jacobian-vector product of [`layernorm`] at `x` along `t`:
/// `γ ⊙ (t − mean(t) − x̂ ⊙ mean(x̂ ⊙ t)) / sqrt(σ² + ε)`, row by row.
pub fn layernorm_jvp(
    x: &[f32],
    t: &[f32],
    cols: usize,
    gamma: Option<&[f32]>,
    eps: f64,
) -> Vec<f64> {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let t: Vec<f64> = t.iter().map(|&v| f64::from(v)).collect();
    let gamma = gamma.map(widen);
    layernorm_jvp_f64(&x, &t, cols, gamma.as_deref(), eps)
}

/// [`layernorm_jvp`] on f64 inputs.
pub fn layernorm_jvp_f64(
    x: &[f64],
    t: &[f64],
    cols: usize,
    gamma: Option<&[f64]>,
    eps: f64,
) -> Vec<f64> {
    assert_eq!(x.len(), t.len(), "layernorm_jvp: x and t differ in length");
    let mut out = Vec::with_capacity(x.len());
    for (row, trow) in x.chunks(cols).zip(t.chunks(cols)) {
        let n = row.len() as f64;
        let (mean, rstd) = stats(row, eps);
        let mean_t = trow.iter().sum::<f64>() / n;
        let mean_xh_t = row
            .iter()
            .zip(trow)
            .map(|(&v, &tv)| (v - mean) * rstd * tv)
            .sum::<f64>()
            / n;
        for (j, (&v, &tv)) in row.iter().zip(trow).enumerate() {
            let g = gamma.map_or(1.0, |g| g[j]);
            let xh = (v - mean) * rstd;
            out.push(g * rstd * (tv - mean_t - xh * mean_xh_t));
        }
    }
    out
}

/// The row's mean and 1/sqrt(biased variance + ε), two-pass.
fn stats(row: &[f64], eps: f64) -> (f64, f64) {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|&v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}
