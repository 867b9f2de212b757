//! f64 reference of `shaders/srht.wgsl`: blocks of H·D3·H·D2·H·D1 applied to the zero-padded
//! inputs, with the same Philox sign diagonals.

use crate::cpu::philox;
use crate::ops::srht::{diagonal_stream, padded_len};

/// The unnormalized fast Walsh–Hadamard transform, in place (length a power of two).
pub fn fwht(v: &mut [f64]) {
    let mut h = 1;
    while h < v.len() {
        for start in (0..v.len()).step_by(2 * h) {
            for i in start..start + h {
                let (a, b) = (v[i], v[i + h]);
                v[i] = a + b;
                v[i + h] = a - b;
            }
        }
        h *= 2;
    }
}

/// The structured projection of `batch` inputs of length `d` to `n_out` outputs (each
/// `[batch, n_out]`), linear or optical, scaled as the kernel scales it.
pub fn srht(x: &[f32], batch: usize, d: usize, n_out: usize, seed: u64, optical: bool) -> Vec<f64> {
    let p = padded_len(d);
    let blocks = n_out.div_ceil(p);
    let parts = if optical { 2 } else { 1 };
    let norm = 1.0 / (p as f64).powf(1.5);
    let mut y = Vec::with_capacity(batch * n_out);
    for b in 0..batch {
        let mut rows = Vec::new();
        for k in 0..blocks {
            for t in 0..parts {
                let mut v = vec![0.0; p];
                for j in 0..d {
                    v[j] = f64::from(x[b * d + j]);
                }
                for s in 0..3 {
                    let stream = diagonal_stream(k, t, s);
                    for (j, value) in v.iter_mut().enumerate() {
                        *value *= philox::rademacher_entry(seed, stream, 0, j as u64);
                    }
                    fwht(&mut v);
                }
                rows.push(v.into_iter().map(|u| u * norm).collect::<Vec<f64>>());
            }
        }
        for i in 0..n_out {
            let (k, r) = (i / p, i % p);
            if optical {
                let (re, im) = (rows[2 * k][r], rows[2 * k + 1][r]);
                y.push(p as f64 / 2.0 * (re * re + im * im));
            } else {
                y.push((p as f64 / n_out as f64).sqrt() * rows[k][r]);
            }
        }
    }
    y
}

/// The transpose of the linear structured projection: for each row of `y` (`[batch, n_out]`),
/// Σ_k D1 H D2 H D3 H y_k over its blocks y_k (zero-padded to p), the first d values kept,
/// scaled like the forward transform, giving `[batch, d]`.
pub fn srht_transpose(y: &[f32], batch: usize, d: usize, n_out: usize, seed: u64) -> Vec<f64> {
    let p = padded_len(d);
    let blocks = n_out.div_ceil(p);
    let scale = (p as f64 / n_out as f64).sqrt() / (p as f64).powf(1.5);
    let mut x = vec![0.0; batch * d];
    for b in 0..batch {
        for k in 0..blocks {
            let mut v = vec![0.0; p];
            for (r, value) in v.iter_mut().enumerate() {
                if k * p + r < n_out {
                    *value = f64::from(y[b * n_out + k * p + r]);
                }
            }
            for s in (0..3).rev() {
                fwht(&mut v);
                let stream = diagonal_stream(k, 0, s);
                for (j, value) in v.iter_mut().enumerate() {
                    *value *= philox::rademacher_entry(seed, stream, 0, j as u64);
                }
            }
            for j in 0..d {
                x[b * d + j] += scale * v[j];
            }
        }
    }
    x
}
