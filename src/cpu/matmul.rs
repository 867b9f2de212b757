//! f64 reference of `shaders/matmul.wgsl`.

use crate::error::Result;
use crate::ops::activation::Activation;
use crate::ops::matmul::MatmulDims;

/// The operands and options of one reference product (mirrors `MatmulOptions`).
#[derive(Clone, Copy, Debug)]
pub struct Problem<'a> {
    /// A, row-major, of `a_shape`.
    pub a: &'a [f32],
    /// Shape of A.
    pub a_shape: &'a [usize],
    /// B, row-major, of `b_shape`.
    pub b: &'a [f32],
    /// Shape of B.
    pub b_shape: &'a [usize],
    /// Use Aᵀ.
    pub trans_a: bool,
    /// Use Bᵀ.
    pub trans_b: bool,
    /// Scale of the product.
    pub alpha: f64,
    /// Scale of `c`.
    pub beta: f64,
    /// Existing C (read when `beta` ≠ 0).
    pub c: Option<&'a [f32]>,
    /// Bias, one per column.
    pub bias: Option<&'a [f32]>,
    /// Applied last.
    pub activation: Activation,
}

impl<'a> Problem<'a> {
    /// A plain product `a · b`.
    pub fn new(a: &'a [f32], a_shape: &'a [usize], b: &'a [f32], b_shape: &'a [usize]) -> Self {
        Problem {
            a,
            a_shape,
            b,
            b_shape,
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            beta: 0.0,
            c: None,
            bias: None,
            activation: Activation::Identity,
        }
    }
}

/// Entry (batch, i, j) of `act(α·op(A)·op(B) + β·C + bias)` in f64.
pub fn entry(p: &Problem<'_>, d: &MatmulDims, batch: usize, i: usize, j: usize) -> f64 {
    let a0 = batch * d.a_batch_stride;
    let b0 = batch * d.b_batch_stride;
    let mut acc = 0.0f64;
    for kk in 0..d.k {
        let av = if p.trans_a {
            p.a[a0 + kk * d.m + i]
        } else {
            p.a[a0 + i * d.k + kk]
        };
        let bv = if p.trans_b {
            p.b[b0 + j * d.k + kk]
        } else {
            p.b[b0 + kk * d.n + j]
        };
        acc += f64::from(av) * f64::from(bv);
    }
    let mut v = p.alpha * acc;
    if p.beta != 0.0 {
        if let Some(c) = p.c {
            v += p.beta * f64::from(c[(batch * d.m + i) * d.n + j]);
        }
    }
    if let Some(bias) = p.bias {
        v += f64::from(bias[j]);
    }
    super::activation::apply(p.activation, v)
}

/// The whole product, row-major in the output shape.
pub fn matmul(p: &Problem<'_>) -> Result<Vec<f64>> {
    let d = MatmulDims::new(p.a_shape, p.b_shape, p.trans_a, p.trans_b)?;
    let mut out = Vec::with_capacity(d.batch * d.m * d.n);
    for batch in 0..d.batch {
        for i in 0..d.m {
            for j in 0..d.n {
                out.push(entry(p, &d, batch, i, j));
            }
        }
    }
    Ok(out)
}
