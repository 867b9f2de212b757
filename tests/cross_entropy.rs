//! Softmax cross-entropy against the f64 reference (loss, gradient, correct flags, totals) and
//! its gradient against central finite differences of the f64 loss.
//!
//! Tolerance: the loss is log(Z) + M − z_label with an f32 sum over the row and f32 exp/log
//! (a few ulp each), the gradient entries are f32 probabilities (as in softmax, 1e-5 relative
//! covers rows of thousands of classes), so 1e-5 relative on each output; a wrong max, label
//! or normaliser is off by far more. Rows past the adapter's loop limit are refused.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_loop_limit, loop_refusal_of, poisoned, random_scaled,
};
use speckle::cpu::cross_entropy::cross_entropy as reference;
use speckle::ops::cross_entropy::{self, CrossEntropy};
use speckle::{Gpu, Tensor};

fn labels_for(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    common::random(rows, seed)
        .into_iter()
        .map(|u| (((u + 1.0) * 0.5 * cols as f32) as usize).min(cols - 1) as f32)
        .collect()
}

fn check(rows: usize, cols: usize, seed: u64) {
    check_on(gpu(), rows, cols, seed);
}

fn check_on(gpu: &Gpu, rows: usize, cols: usize, seed: u64) {
    let z_host = random_scaled(rows * cols, seed, 4.0);
    let l_host = labels_for(rows, cols, seed + 100);
    let z = Tensor::from_slice(gpu, &z_host, &[rows, cols]).unwrap();
    let labels = Tensor::from_slice(gpu, &l_host, &[rows]).unwrap();
    let out = CrossEntropy {
        grad: poisoned(gpu, &[rows, cols]),
        loss: poisoned(gpu, &[rows]),
        correct: poisoned(gpu, &[rows]),
        loss_sum: poisoned(gpu, &[1]),
        correct_sum: poisoned(gpu, &[1]),
    };
    let scale = 1.0 / rows as f32;
    let mut d = out.plan(gpu, &z, &labels, scale).unwrap();
    d.extend(out.plan_totals(gpu).unwrap());
    gpu.execute(&d).unwrap();
    let want = reference(&z_host, cols, &l_host, f64::from(scale));
    let what = format!("cross_entropy {rows}x{cols}");
    assert_rel_close(
        &format!("{what} loss"),
        &out.loss.to_vec(gpu).unwrap(),
        &want.loss,
        1e-5,
    );
    assert_rel_close(
        &format!("{what} grad"),
        &out.grad.to_vec(gpu).unwrap(),
        &want.grad,
        1e-5,
    );
    assert_eq!(
        out.correct.to_vec(gpu).unwrap(),
        want.correct.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        "{what} correct flags"
    );
    let (loss_sum, correct_sum) = out.totals(gpu).unwrap();
    let want_loss: f64 = want.loss.iter().sum();
    let want_correct: f64 = want.correct.iter().sum();
    assert!(
        (loss_sum - want_loss).abs() <= 1e-5 * want_loss.abs(),
        "{what}: loss sum {loss_sum} vs {want_loss}"
    );
    assert_eq!(correct_sum, want_correct, "{what}: correct count");
}

#[test]
fn rows_of_every_length_match_the_reference() {
    for &(rows, cols) in &[
        (1, 1),
        (7, 2),
        (3, 7),
        (33, 10),
        (31, 33),
        (5, 250),
        (2, 1000),
    ] {
        check(rows, cols, (rows * 7 + cols) as u64);
    }
}

#[test]
fn gradient_matches_finite_differences() {
    // Central differences of the f64 mean loss with h = 1e-4: truncation error ~ h²·|L'''|
    // (< 1e-8 for these logits), far below the f32 gradient's ~1e-7; bound 1e-5 relative.
    let gpu = gpu();
    let (rows, cols) = (4, 9);
    let z_host = random_scaled(rows * cols, 11, 3.0);
    let l_host = labels_for(rows, cols, 12);
    let z = Tensor::from_slice(gpu, &z_host, &[rows, cols]).unwrap();
    let labels = Tensor::from_slice(gpu, &l_host, &[rows]).unwrap();
    let out = cross_entropy::run(gpu, &z, &labels).unwrap();
    let mean_loss = |zz: &[f64]| -> f64 {
        let mut total = 0.0;
        for (row, &l) in zz.chunks(cols).zip(&l_host) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            total += s.ln() + m - row[l as usize];
        }
        total / rows as f64
    };
    let base: Vec<f64> = z_host.iter().map(|&v| f64::from(v)).collect();
    let h = 1e-4;
    let fd: Vec<f64> = (0..base.len())
        .map(|i| {
            let mut p = base.clone();
            p[i] += h;
            let mut m = base.clone();
            m[i] -= h;
            (mean_loss(&p) - mean_loss(&m)) / (2.0 * h)
        })
        .collect();
    assert_rel_close(
        "cross_entropy grad vs finite differences",
        &out.grad.to_vec(gpu).unwrap(),
        &fd,
        1e-5,
    );
}

#[test]
fn extreme_logits_stay_finite_and_argmax_ties_take_the_first() {
    let gpu = gpu();
    let z_host = vec![1e30, -1e30, 0.0, 88.0, 3.0, 3.0, 1.0, 3.0];
    let l_host = vec![0.0, 1.0];
    let z = Tensor::from_slice(gpu, &z_host, &[2, 4]).unwrap();
    let labels = Tensor::from_slice(gpu, &l_host, &[2]).unwrap();
    let out = cross_entropy::run(gpu, &z, &labels).unwrap();
    let loss = out.loss.to_vec(gpu).unwrap();
    assert!(loss.iter().all(|v| v.is_finite()), "{loss:?}");
    assert_eq!(loss[0], 0.0, "the dominant logit is the label: loss 0");
    // Row 1: columns 0, 1 and 3 tie at 3; argmax is column 0, the label is 1: not correct.
    assert_eq!(out.correct.to_vec(gpu).unwrap(), vec![1.0, 0.0]);
    assert!(out.grad.to_vec(gpu).unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn argmax_ties_take_the_first_within_and_across_a_threads_blocks() {
    // 2,000 classes tied at the max in columns 37, 45, 1,061 and 1,999: with 8 threads
    // (lavapipe) 37 and 45 fall in one block of thread 5 and 1,061 in a later one; with 256
    // threads (GPUs) 1,061 falls in the next block of thread 37 and 45 in another thread's.
    // Either way column 37 wins: label 37 is correct and label 45 is not.
    let gpu = gpu();
    let cols = 2000;
    let mut row = random_scaled(cols, 7, 1.0);
    for c in [37, 45, 1061, 1999] {
        row[c] = 5.0;
    }
    let z_host = [row.clone(), row].concat();
    let z = Tensor::from_slice(gpu, &z_host, &[2, cols]).unwrap();
    let labels = Tensor::from_slice(gpu, &[37.0, 45.0], &[2]).unwrap();
    let out = cross_entropy::run(gpu, &z, &labels).unwrap();
    assert_eq!(out.correct.to_vec(gpu).unwrap(), vec![1.0, 0.0]);
}

#[test]
fn invalid_labels_give_nan_and_bad_shapes_are_errors() {
    let gpu = gpu();
    let z = Tensor::from_slice(gpu, &random_scaled(12, 3, 1.0), &[3, 4]).unwrap();
    let labels = Tensor::from_slice(gpu, &[4.0, -1.0, 1.5], &[3]).unwrap();
    let out = cross_entropy::run(gpu, &z, &labels).unwrap();
    assert!(out.loss.to_vec(gpu).unwrap().iter().all(|v| v.is_nan()));
    assert!(out.grad.to_vec(gpu).unwrap().iter().all(|v| v.is_nan()));
    assert_eq!(out.correct.to_vec(gpu).unwrap(), vec![0.0; 3]);
    let short = Tensor::zeros(gpu, &[2]).unwrap();
    assert!(cross_entropy::run(gpu, &z, &short).is_err());
}

/// Asserts that planning `cols` classes on `gpu` is refused for the loop limit, with the
/// numbers in the message.
fn assert_refused(gpu: &Gpu, cols: usize, iterations: u64, limit: u64, longest: u64) {
    let z = Tensor::zeros(gpu, &[2, cols]).unwrap();
    let labels = Tensor::zeros(gpu, &[2]).unwrap();
    let out = CrossEntropy::new(gpu, 2, cols).unwrap();
    let e = out.plan(gpu, &z, &labels, 0.5).unwrap_err();
    loop_refusal_of(e, iterations, limit, &[&longest.to_string()]);
}

#[test]
fn rows_past_the_loop_limit_are_refused_before_anything_runs() {
    // With 256 threads, an invocation over 5,000 classes loops 2 · (5 + 1) + 8 + 1 = 21
    // times (a loop of n passes counts n + 1; a pass takes a block of 4 · 256 classes):
    // within a limit of 21, refused under 20 (whose longest rows are 4 · 1,024 = 4,096
    // classes). On a CPU adapter the rows get 256 threads too, the fewest whose loops fit.
    assert_eq!(cross_entropy::loops(5000, 256), 21);
    check_on(&gpu_with_loop_limit(21), 3, 5000, 60);
    assert_refused(&gpu_with_loop_limit(20), 5000, 21, 20, 4096);
    // On the test adapter: 9,000,000 classes, refused while a pass took one value (70,325
    // loops with 256 threads, past lavapipe's 65,535), loop 2 · 8,791 + 9 = 17,591 times.
    let gpu = gpu();
    match gpu.loop_limit().unwrap() {
        Some(65_535) => check_on(gpu, 1, 9_000_000, 61),
        Some(limit) => {
            eprintln!("adapter loop limit {limit}: the 9,000,000-class row is not checked")
        }
        None => {
            let z = Tensor::zeros(gpu, &[1, 9_000_000]).unwrap();
            let labels = Tensor::zeros(gpu, &[1]).unwrap();
            let out = CrossEntropy::new(gpu, 1, 9_000_000).unwrap();
            assert!(out.plan(gpu, &z, &labels, 1.0).is_ok());
        }
    }
}
