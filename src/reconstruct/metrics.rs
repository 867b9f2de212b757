//! Image-quality measures for comparing a reconstruction with the original, and the sign
//! alignment that phase retrieval's reports need.

/// Peak signal-to-noise ratio 10·log10(peak² / MSE) in dB of `x_hat` against `x` (infinite
/// when they are equal; NaN when the lengths differ or are 0). For images in \[0, 1\], peak = 1.
pub fn psnr(x: &[f32], x_hat: &[f32], peak: f64) -> f64 {
    if x.len() != x_hat.len() || x.is_empty() {
        return f64::NAN;
    }
    let mse = x
        .iter()
        .zip(x_hat)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum::<f64>()
        / x.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (peak * peak / mse).log10()
}

/// Relative error ‖x̂ − x‖ / ‖x‖ (‖x̂‖ when x = 0; NaN when the lengths differ).
pub fn relative_error(x: &[f32], x_hat: &[f32]) -> f64 {
    if x.len() != x_hat.len() {
        return f64::NAN;
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(x_hat) {
        diff += (f64::from(b) - f64::from(a)).powi(2);
        norm += f64::from(a).powi(2);
    }
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

/// The structural similarity index (SSIM) of two single-channel images of `width` × `height`
/// pixels (row-major), as Wang, Bovik, Sheikh and Simoncelli (2004) define it: local means,
/// variances and covariance under an 11 × 11 Gaussian window of σ = 1.5 (normalized),
/// C1 = (0.01·peak)², C2 = (0.03·peak)², averaged over every window position that lies
/// entirely inside the image ("valid" positions, no padding; images smaller than the window
/// use one window clipped to the image). 1 for identical images; NaN when the sizes do not
/// match `width · height`.
pub fn ssim(x: &[f32], x_hat: &[f32], width: usize, height: usize, peak: f64) -> f64 {
    let len = width * height;
    if x.len() != len || x_hat.len() != len || len == 0 {
        return f64::NAN;
    }
    const RADIUS: usize = 5;
    const SIGMA: f64 = 1.5;
    let kernel: Vec<f64> = (0..=2 * RADIUS)
        .map(|i| {
            let d = i as f64 - RADIUS as f64;
            (-d * d / (2.0 * SIGMA * SIGMA)).exp()
        })
        .collect();
    let (c1, c2) = ((0.01 * peak).powi(2), (0.03 * peak).powi(2));
    let size = 2 * RADIUS + 1;
    // Window positions: top-left corners of every window inside the image, or one clipped
    // window at (0, 0) when the image is smaller.
    let (wx, wy) = (size.min(width), size.min(height));
    let (ox, oy) = (
        (size - wx) / 2, // offset into the kernel for a clipped window
        (size - wy) / 2,
    );
    let mut total = 0.0;
    let mut count = 0usize;
    for top in 0..=(height - wy) {
        for left in 0..=(width - wx) {
            let (mut sw, mut mx, mut my) = (0.0, 0.0, 0.0);
            let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
            for dy in 0..wy {
                for dx in 0..wx {
                    let w = kernel[oy + dy] * kernel[ox + dx];
                    let k = (top + dy) * width + left + dx;
                    let (a, b) = (f64::from(x[k]), f64::from(x_hat[k]));
                    sw += w;
                    mx += w * a;
                    my += w * b;
                    sxx += w * a * a;
                    syy += w * b * b;
                    sxy += w * a * b;
                }
            }
            let (mx, my) = (mx / sw, my / sw);
            let vx = sxx / sw - mx * mx;
            let vy = syy / sw - my * my;
            let cxy = sxy / sw - mx * my;
            total += ((2.0 * mx * my + c1) * (2.0 * cxy + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
            count += 1;
        }
    }
    total / count as f64
}

/// `x_hat` or `−x_hat`, whichever is closer to `reference` (the larger inner product; `x_hat`
/// on a tie). Phase retrieval recovers x only up to its global sign (x and −x give the same
/// |R x|²), so reports that compare with a known x align the sign first. Each row (image
/// channel) of a batch is an independent problem with its own sign: call this per row.
/// Lengths that differ give `x_hat` unchanged.
pub fn resolve_sign(x_hat: &[f32], reference: &[f32]) -> Vec<f32> {
    if x_hat.len() != reference.len() {
        return x_hat.to_vec();
    }
    let dot: f64 = x_hat
        .iter()
        .zip(reference)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    if dot < 0.0 {
        x_hat.iter().map(|&v| -v).collect()
    } else {
        x_hat.to_vec()
    }
}
