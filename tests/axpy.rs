//! The solvers' element-wise kernel against its f64 reference: every operation, per-row
//! coefficients of every form, broadcast rows, row blocks and column blocks of small bindings,
//! into poisoned outputs where the operation does not read y.
//!
//! Tolerance: each output is one or two f32 operations on values of order 1 (plus, for the
//! coefficient, a division, sqrt or inverseSqrt, the last within 2 ulp on conforming
//! adapters): 1e-6 relative over the tensor is a few ulp per element, and any wrong index or
//! formula is off by far more.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random};
use speckle::cpu::axpy::{axpy as reference, coefficient};
use speckle::ops::axpy::{self, AxpyOp, Coefficient};
use speckle::{Gpu, Tensor};

const OPS: [AxpyOp; 9] = [
    AxpyOp::Axpy,
    AxpyOp::Xpay,
    AxpyOp::Scale,
    AxpyOp::Mul,
    AxpyOp::Mask,
    AxpyOp::MaskedDiff,
    AxpyOp::Sqrt,
    AxpyOp::PairMul,
    AxpyOp::Amplitude,
];

/// Positive per-row values (sums of squares in the solvers), one of them 0 to exercise the
/// guard of a zero denominator.
fn positive(rows: usize, seed: u64) -> Vec<f32> {
    let mut v: Vec<f32> = random(rows, seed).iter().map(|x| 0.1 + x.abs()).collect();
    if rows > 2 {
        v[1] = 0.0;
    }
    v
}

/// Runs `op` with coefficient num^pn · den^pd (or sign) on seeded data and compares.
fn check(gpu: &Gpu, op: AxpyOp, rows: usize, cols: usize, form: usize) {
    let half = cols / 2;
    let x_len = match op {
        AxpyOp::PairMul => rows * half,
        _ => rows * cols,
    };
    let w_len = match op {
        AxpyOp::Amplitude => rows * half,
        _ => rows * cols,
    };
    let seed = (rows * 1000 + cols * 10 + form) as u64;
    let x_host = random(x_len, seed);
    let mut y_host = random(rows * cols, seed + 1);
    if op == AxpyOp::Amplitude {
        // A zero pair takes the (a, 0) branch.
        y_host[0] = 0.0;
    }
    let w_host = random(w_len, seed + 2);
    let mut x_in = x_host.clone();
    if op == AxpyOp::Amplitude {
        x_in[0] = 0.0;
        x_in[half] = 0.0;
    }
    let num_host = random(rows, seed + 3);
    let den_host = positive(rows, seed + 4);
    let x = Tensor::from_slice(gpu, &x_in, &[x_len / rows.max(1) * rows]).unwrap();
    let x = x.reshape(&[rows, x_len / rows]).unwrap();
    let reads_y = !matches!(op, AxpyOp::Scale | AxpyOp::Mask | AxpyOp::Sqrt);
    let y = if reads_y {
        Tensor::from_slice(gpu, &y_host, &[rows, cols]).unwrap()
    } else {
        Tensor::filled(gpu, &[rows, cols], f32::NAN).unwrap()
    };
    let w = Tensor::from_slice(gpu, &w_host, &[rows, w_len / rows]).unwrap();
    let num = Tensor::from_slice(gpu, &num_host, &[rows]).unwrap();
    let den = Tensor::from_slice(gpu, &den_host, &[rows]).unwrap();
    let (coef, host_c): (Coefficient<'_>, Vec<f64>) = match form {
        0 => (
            Coefficient::constant(-0.75),
            vec![coefficient(-0.75, None, None, false); rows],
        ),
        1 => (
            Coefficient::ratio(1.5, &num, &den),
            (0..rows)
                .map(|b| {
                    coefficient(
                        1.5,
                        Some((num_host[b], 1.0)),
                        Some((den_host[b], -1.0)),
                        false,
                    )
                })
                .collect(),
        ),
        2 => (
            Coefficient {
                alpha: 0.5,
                num: Some((&den, 0.5)),
                den: Some((&den, -0.5)),
                sign: false,
            },
            (0..rows)
                .map(|b| {
                    coefficient(
                        0.5,
                        Some((den_host[b], 0.5)),
                        Some((den_host[b], -0.5)),
                        false,
                    )
                })
                .collect(),
        ),
        _ => (
            Coefficient::sign_of(2.0, &num),
            (0..rows)
                .map(|b| coefficient(2.0, Some((num_host[b], 1.0)), None, true))
                .collect(),
        ),
    };
    axpy::run(gpu, op, &coef, Some(&x), &y, Some(&w)).unwrap();
    let y_ref_in: Vec<f32> = if reads_y {
        y_host.clone()
    } else {
        vec![0.0; rows * cols]
    };
    let want = reference(op, &host_c, &x_in, &y_ref_in, &w_host, rows);
    assert_rel_close(
        &format!("{op:?} rows {rows} cols {cols} coefficient form {form}"),
        &y.to_vec(gpu).unwrap(),
        &want,
        1e-6,
    );
}

#[test]
fn every_operation_matches_the_reference() {
    let gpu = gpu();
    for op in OPS {
        for &(rows, cols) in &[(1, 2), (3, 34), (7, 250), (33, 130)] {
            for form in 0..4 {
                check(gpu, op, rows, cols, form);
            }
        }
    }
}

#[test]
fn small_bindings_split_rows_and_columns() {
    // 2 KiB bindings hold about 500 values after alignment slack: rows of 250 go in blocks
    // of two rows, rows of 700 (the element-wise operations) in column blocks.
    let gpu = gpu_with_binding_limit(2048);
    for op in OPS {
        check(&gpu, op, 5, 250, 1);
        if !op.is_pairwise() {
            check(&gpu, op, 3, 700, 2);
        }
    }
}

#[test]
fn a_bias_row_is_added_to_every_row() {
    let gpu = gpu();
    let (rows, cols) = (4, 37);
    let bias = random(cols, 1);
    let y_host = random(rows * cols, 2);
    let b = Tensor::from_slice(gpu, &bias, &[cols]).unwrap();
    let y = Tensor::from_slice(gpu, &y_host, &[rows, cols]).unwrap();
    axpy::run(
        gpu,
        AxpyOp::Axpy,
        &Coefficient::constant(1.0),
        Some(&b),
        &y,
        None,
    )
    .unwrap();
    let want: Vec<f64> = y_host
        .iter()
        .enumerate()
        .map(|(k, &v)| f64::from(v) + f64::from(bias[k % cols]))
        .collect();
    assert_rel_close("bias", &y.to_vec(gpu).unwrap(), &want, 1e-6);
}

#[test]
fn in_place_scaling_binds_one_tensor_twice() {
    let gpu = gpu();
    let host = random(2 * 9, 3);
    let y = Tensor::from_slice(gpu, &host, &[2, 9]).unwrap();
    axpy::run(
        gpu,
        AxpyOp::Scale,
        &Coefficient::constant(3.0),
        Some(&y),
        &y,
        None,
    )
    .unwrap();
    let want: Vec<f64> = host.iter().map(|&v| 3.0 * f64::from(v)).collect();
    assert_rel_close("in place", &y.to_vec(gpu).unwrap(), &want, 1e-6);
}

#[test]
fn shape_errors() {
    let gpu = gpu();
    let y = Tensor::zeros(gpu, &[3, 6]).unwrap();
    let x_bad = Tensor::zeros(gpu, &[3, 5]).unwrap();
    let c = Coefficient::constant(1.0);
    assert!(axpy::plan(gpu, AxpyOp::Axpy, &c, Some(&x_bad), &y, None).is_err());
    assert!(axpy::plan(gpu, AxpyOp::Axpy, &c, None, &y, None).is_err());
    let x = Tensor::zeros(gpu, &[3, 6]).unwrap();
    assert!(
        axpy::plan(gpu, AxpyOp::Mask, &c, Some(&x), &y, None).is_err(),
        "Mask needs w"
    );
    let odd = Tensor::zeros(gpu, &[3, 5]).unwrap();
    assert!(axpy::plan(gpu, AxpyOp::PairMul, &c, Some(&x), &odd, None).is_err());
    let rows2 = Tensor::zeros(gpu, &[2]).unwrap();
    assert!(axpy::plan(
        gpu,
        AxpyOp::Axpy,
        &Coefficient::ratio(1.0, &rows2, &rows2),
        Some(&x),
        &y,
        None
    )
    .is_err());
    assert!(axpy::plan(
        gpu,
        AxpyOp::Axpy,
        &Coefficient::constant(f32::NAN),
        Some(&x),
        &y,
        None
    )
    .is_err());
}
