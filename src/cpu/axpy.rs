//! f64 reference of `shaders/axpy.wgsl` (host side [`crate::ops::axpy`]).

use crate::ops::axpy::AxpyOp;

/// The per-row coefficient of [`crate::ops::axpy::Coefficient`] on host values: α·num^p·den^q
/// (0 where den ≤ 0 or the result is not finite), or α·sign(num) with `sign`.
pub fn coefficient(
    alpha: f32,
    num: Option<(f32, f32)>,
    den: Option<(f32, f32)>,
    sign: bool,
) -> f64 {
    let alpha = f64::from(alpha);
    if sign {
        let n = num.map_or(0.0, |(v, _)| v);
        return if n >= 0.0 { alpha } else { -alpha };
    }
    let power = |v: f32, e: f32| {
        let (v, e) = (f64::from(v), f64::from(e));
        match e {
            1.0 => v,
            -1.0 => 1.0 / v,
            _ => v.max(0.0).powf(e),
        }
    };
    let mut c = alpha;
    if let Some((v, e)) = num {
        c *= power(v, e);
    }
    if let Some((v, e)) = den {
        if v.is_nan() || v <= 0.0 {
            return 0.0;
        }
        c *= power(v, e);
    }
    if c.is_finite() {
        c
    } else {
        0.0
    }
}

/// `op` on `y` (`rows` rows) with inputs `x` and `w` (empty when unused; `x` of one row is
/// broadcast for [`AxpyOp::Axpy`]) and per-row coefficients `c` (one per row).
pub fn axpy(op: AxpyOp, c: &[f64], x: &[f32], y: &[f32], w: &[f32], rows: usize) -> Vec<f64> {
    let cols = y.len() / rows;
    let half = cols / 2;
    let f = |v: f32| f64::from(v);
    let mut out: Vec<f64> = y.iter().map(|&v| f(v)).collect();
    for b in 0..rows {
        let row = b * cols;
        match op {
            AxpyOp::PairMul => {
                for i in 0..half {
                    let v = f(x[b * half + i]);
                    out[row + i] *= v;
                    out[row + half + i] *= v;
                }
            }
            AxpyOp::Amplitude => {
                for i in 0..half {
                    let (re, im) = (f(x[row + i]), f(x[row + half + i]));
                    let a = f(w[b * half + i]);
                    let mag = re.hypot(im);
                    let (pr, pi) = if mag > 0.0 {
                        (re / mag, im / mag)
                    } else {
                        (1.0, 0.0)
                    };
                    out[row + i] = a * pr - re;
                    out[row + half + i] = a * pi - im;
                }
            }
            _ => {
                for i in 0..cols {
                    let xv = if x.len() == cols {
                        f(x[i])
                    } else {
                        f(x[row + i])
                    };
                    let yv = f(y[row + i]);
                    let wv = w.get(row + i).map_or(0.0, |&v| f(v));
                    out[row + i] = match op {
                        AxpyOp::Axpy => yv + c[b] * xv,
                        AxpyOp::Xpay => xv + c[b] * yv,
                        AxpyOp::Scale => c[b] * xv,
                        AxpyOp::Mul => c[b] * xv * yv,
                        AxpyOp::Mask => {
                            if xv > 0.0 || wv > 0.0 {
                                1.0
                            } else {
                                0.0
                            }
                        }
                        AxpyOp::MaskedDiff => wv * (xv - yv),
                        AxpyOp::Sqrt => c[b] * xv.max(0.0).sqrt(),
                        // The pairwise operations are handled above.
                        AxpyOp::PairMul | AxpyOp::Amplitude => yv,
                    };
                }
            }
        }
    }
    out
}
