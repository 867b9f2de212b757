//! Row reductions against the f64 reference, including rows longer than one binding or than
//! one invocation may loop over (the adapter's loop limit).
//!
//! Tolerance: an f32 sum of n values in [-1, 1) accumulated per thread then by a tree has a
//! relative error ~2⁻²⁴·sqrt(n) against the sum's natural scale; sums of signed values can
//! nearly cancel, so sum is compared against ‖x‖₁-scaled bounds, the others relatively.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal, random,
};
use speckle::cpu::reduce::reduce as reference;
use speckle::ops::reduce;
use speckle::{Reduction, Tensor};

/// Checks every reduction with a tolerance of 1e-6; returns the number of dispatches of the
/// sum.
fn check(gpu: &speckle::Gpu, rows: usize, cols: usize, seed: u64) -> usize {
    check_tol(gpu, rows, cols, seed, 1e-6)
}

fn check_tol(gpu: &speckle::Gpu, rows: usize, cols: usize, seed: u64, tol: f64) -> usize {
    let x_host = random(rows * cols, seed);
    let x = Tensor::from_slice(gpu, &x_host, &[rows, cols]).unwrap();
    let mut sum_dispatches = 0;
    for r in [
        Reduction::Sum,
        Reduction::SumSquares,
        Reduction::Norm,
        Reduction::Max,
    ] {
        let out = Tensor::filled(gpu, &[rows], f32::NAN).unwrap();
        let plan = reduce::plan(gpu, r, &x, &out).unwrap();
        gpu.execute(&plan).unwrap();
        if r == Reduction::Sum {
            sum_dispatches = plan.len();
        }
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
                assert!(err < tol, "sum {rows}x{cols} row {row}: got {g}, expected {w}, error {err:.2e} of the absolute sum");
            }
        } else {
            assert_rel_close(&format!("{r:?} {rows}x{cols}"), &got, &want, tol);
        }
    }
    sum_dispatches
}

#[test]
fn reductions_match_the_reference() {
    let gpu = gpu();
    // Rows of 4, 36 and 100,000 values run the vec4 entry point, the others the scalar one.
    for &(rows, cols) in &[
        (1, 1),
        (7, 1),
        (1, 7),
        (3, 4),
        (33, 33),
        (33, 36),
        (5, 250),
        (2, 100_000),
    ] {
        check(gpu, rows, cols, (rows + cols) as u64);
    }
    assert!(reduce::takes_vec4(36, 36) && !reduce::takes_vec4(36, 33));
}

#[test]
fn rows_longer_than_one_binding_are_segmented() {
    let gpu = gpu_with_binding_limit(2048);
    check(&gpu, 3, 10_000, 3);
    check(&gpu, 500, 7, 4);
    // Rows of 20 (vec4): 25 fill a dispatch, so later windows start inside the binding's
    // alignment (element 4 with 32 bytes).
    check(&gpu, 500, 20, 5);
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

#[test]
fn rows_past_the_loop_limit_are_segmented() {
    // With 256 threads, a limit of 20 lets one invocation reduce 10 blocks of 4 values per
    // thread besides the tree (a loop of n passes counts n + 1: 10 + 1 + 8 + 1): rows of at
    // most 10,240 values. 40,000 values take 4 segments and a second pass; under a limit of
    // 12 (2 blocks per thread, 2,048 values), 5,000,000 values take 2,442 segments, then 2,
    // then the last pass. Short rows still take one dispatch. On a CPU adapter the rows get
    // 256 threads too, the fewest whose loops fit.
    assert_eq!(reduce::loops(10_240, 256), 20);
    assert_eq!(reduce::loops(10_241, 256), 21);
    let gpu = gpu_with_loop_limit(20);
    assert!(check(&gpu, 3, 40_000, 5) >= 2);
    assert_eq!(check(&gpu, 33, 33, 6), 1);
    let gpu = gpu_with_loop_limit(12);
    assert!(check(&gpu, 1, 5_000_000, 7) >= 3);
    assert_eq!(check(&gpu, 5, 250, 8), 1);
}

#[test]
fn a_limit_too_low_to_segment_is_refused_before_anything_runs() {
    // Segmenting needs at least two blocks of values per thread besides the tree:
    // 2 + 1 + 8 + 1 = 12 with 256 threads, more than a limit of 11.
    let gpu = gpu_with_loop_limit(11);
    let x = Tensor::zeros(&gpu, &[2, 5]).unwrap();
    let out = Tensor::zeros(&gpu, &[2]).unwrap();
    let r = loop_refusal(reduce::plan(&gpu, Reduction::Sum, &x, &out).unwrap_err());
    assert_eq!(r.limit, 11);
    assert!(r.message.contains("after 11"), "{}", r.message);
}

#[test]
fn a_row_past_lavapipes_loop_limit_is_correct() {
    // A row of 20,000,000 values in one workgroup: each thread sums about 20,000 values in
    // each of its four sums in f32, which 2⁻²⁴ · sqrt(20,000,000) = 2.7e-4 bounds
    // (measured: 2.6e-6 for the sum of squares when each thread took one sum of 78,000).
    // Checked on the test adapter with its own loop limit, whatever it is (19,542 loops
    // with 256 threads).
    check_tol(gpu(), 1, 20_000_000, 9, 2.7e-4);
}
