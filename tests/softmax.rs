//! Row softmax against the f64 reference: rows short and far longer than a workgroup, scale,
//! causal mask, the segmented path for rows longer than one binding, and extreme inputs.
//!
//! Tolerance: each output is exp(x − max)/Σ with f32 exp (a few ulp) and an f32 sum over the
//! row (relative error ~ 2⁻²⁴·sqrt(cols) per partial sum in the tree), so 1e-5 relative holds
//! up to 100,000 columns; a wrong max, mask or normaliser is off by far more.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random_scaled};
use speckle::cpu::softmax::softmax as reference;
use speckle::ops::softmax;
use speckle::{SoftmaxOptions, Tensor};

fn check(gpu: &speckle::Gpu, rows: usize, cols: usize, options: SoftmaxOptions, seed: u64) {
    let x_host = random_scaled(rows * cols, seed, 5.0);
    let x = Tensor::from_slice(gpu, &x_host, &[rows, cols]).unwrap();
    let y = Tensor::filled(gpu, &[rows, cols], f32::NAN).unwrap();
    gpu.execute(&softmax::plan(gpu, &x, &y, &options).unwrap())
        .unwrap();
    let causal = options.causal.then_some(rows);
    let want = reference(&x_host, cols, f64::from(options.scale), causal);
    assert_rel_close(
        &format!("softmax {rows}x{cols} {options:?}"),
        &y.to_vec(gpu).unwrap(),
        &want,
        1e-5,
    );
}

#[test]
fn rows_of_every_length_match_the_reference() {
    let gpu = gpu();
    for &(rows, cols) in &[
        (1, 1),
        (7, 1),
        (3, 7),
        (33, 33),
        (5, 250),
        (2, 1000),
        (1, 100_000),
    ] {
        check(
            gpu,
            rows,
            cols,
            SoftmaxOptions::default(),
            (rows * 7 + cols) as u64,
        );
    }
}

#[test]
fn scale_and_causal_mask() {
    let gpu = gpu();
    check(
        gpu,
        31,
        31,
        SoftmaxOptions {
            scale: 0.125,
            causal: false,
        },
        1,
    );
    check(
        gpu,
        31,
        31,
        SoftmaxOptions {
            scale: 0.125,
            causal: true,
        },
        2,
    );
    // More keys than queries: query i still sees keys 0..=i only (top-left alignment).
    check(
        gpu,
        7,
        33,
        SoftmaxOptions {
            scale: 1.0,
            causal: true,
        },
        3,
    );
}

#[test]
fn causal_mask_repeats_per_batch_matrix() {
    let gpu = gpu();
    let (batch, q, k) = (3, 5, 6);
    let x_host = random_scaled(batch * q * k, 4, 2.0);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, q, k]).unwrap();
    let y = softmax::run(
        gpu,
        &x,
        &SoftmaxOptions {
            scale: 1.0,
            causal: true,
        },
    )
    .unwrap();
    let want = reference(&x_host, k, 1.0, Some(q));
    assert_rel_close("batched causal", &y.to_vec(gpu).unwrap(), &want, 1e-5);
}

#[test]
fn rows_longer_than_one_binding_are_segmented() {
    // 4 KiB bindings hold ~1000 values: a 100,000-long row takes ~100 segments.
    let gpu = gpu_with_binding_limit(4096);
    check(&gpu, 2, 100_000, SoftmaxOptions::default(), 5);
    check(
        &gpu,
        3,
        2500,
        SoftmaxOptions {
            scale: 0.5,
            causal: true,
        },
        6,
    );
    // Short rows are split into row blocks instead.
    check(&gpu, 300, 33, SoftmaxOptions::default(), 7);
}

#[test]
fn extreme_inputs_give_finite_probabilities() {
    let gpu = gpu();
    let x_host: Vec<f32> = vec![1e30, -1e30, 0.0, 88.0, 1e38, -1e38, 1.0, 1.0];
    let x = Tensor::from_slice(gpu, &x_host, &[2, 4]).unwrap();
    let y = softmax::run(gpu, &x, &SoftmaxOptions::default())
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    assert!(y.iter().all(|v| v.is_finite() && *v >= 0.0), "{y:?}");
    for row in y.chunks(4) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "row sums to {sum}: {row:?}");
    }
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(gpu, &[4]).unwrap();
    assert!(
        softmax::run(
            gpu,
            &x,
            &SoftmaxOptions {
                scale: 1.0,
                causal: true
            }
        )
        .is_err(),
        "causal needs 2-D"
    );
    assert!(softmax::run(
        gpu,
        &x,
        &SoftmaxOptions {
            scale: f32::INFINITY,
            causal: false
        }
    )
    .is_err());
}
