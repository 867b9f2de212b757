//! Row reductions against the f64 reference, including rows longer than one binding.
//!
//! Tolerance: an f32 sum of n values in [-1, 1) accumulated per thread then by a tree has a
//! relative error ~2⁻²⁴·sqrt(n) against the sum's natural scale; sums of signed values can
//! nearly cancel, so sum is compared against ‖x‖₁-scaled bounds, the others relatively.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random};
use speckle::cpu::reduce::reduce as reference;
use speckle::ops::reduce;
use speckle::{Reduction, Tensor};

fn check(gpu: &speckle::Gpu, rows: usize, cols: usize, seed: u64) {
    let x_host = random(rows * cols, seed);
    let x = Tensor::from_slice(gpu, &x_host, &[rows, cols]).unwrap();
    for r in [
        Reduction::Sum,
        Reduction::SumSquares,
        Reduction::Norm,
        Reduction::Max,
    ] {
        let out = Tensor::filled(gpu, &[rows], f32::NAN).unwrap();
        gpu.execute(&reduce::plan(gpu, r, &x, &out).unwrap())
            .unwrap();
        let got = out.to_vec(gpu).unwrap();
        let want = reference(r, &x_host, cols);
        if r == Reduction::Sum {
            // Compare each row's error with the row's absolute sum (cancellation-safe).
            for (row, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let scale: f64 = x_host[row * cols..(row + 1) * cols]
                    .iter()
                    .map(|v| f64::from(v.abs()))
                    .sum();
                let err = (f64::from(g) - w).abs() / scale;
                assert!(err < 1e-6, "sum {rows}x{cols} row {row}: got {g}, expected {w}, error {err:.2e} of the absolute sum");
            }
        } else {
            assert_rel_close(&format!("{r:?} {rows}x{cols}"), &got, &want, 1e-6);
        }
    }
}

#[test]
fn reductions_match_the_reference() {
    let gpu = gpu();
    for &(rows, cols) in &[(1, 1), (7, 1), (1, 7), (33, 33), (5, 250), (2, 100_000)] {
        check(gpu, rows, cols, (rows + cols) as u64);
    }
}

#[test]
fn rows_longer_than_one_binding_are_segmented() {
    let gpu = gpu_with_binding_limit(2048);
    check(&gpu, 3, 10_000, 3);
    check(&gpu, 500, 7, 4);
}

#[test]
fn output_shape_drops_the_last_axis() {
    assert_eq!(reduce::output_shape(&[2, 3, 4]), vec![2, 3]);
    assert_eq!(reduce::output_shape(&[5]), vec![1]);
    let gpu = gpu();
    let x = Tensor::from_slice(gpu, &[1.0, -2.0, 3.0, 4.0, 5.0, -6.0], &[2, 1, 3]).unwrap();
    let out = reduce::run(gpu, Reduction::Max, &x).unwrap();
    assert_eq!(out.shape(), &[2, 1]);
    assert_eq!(out.to_vec(gpu).unwrap(), vec![3.0, 5.0]);
    assert!(Reduction::from_name("mean").is_err());
}
