//! Row softmax against the f64 reference: rows short and far longer than a workgroup, scale,
//! causal mask, the segmented path for rows longer than one binding or than one invocation
//! may loop over (the adapter's loop limit), and extreme inputs.
//!
//! Tolerance: each output is exp(x − max)/Σ with f32 exp (a few ulp) and an f32 sum over the
//! row (relative error ~ 2⁻²⁴·sqrt(cols) per partial sum in the tree), so 1e-5 relative holds
//! up to 100,000 columns; a wrong max, mask or normaliser is off by far more.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal, random_scaled,
};
use speckle::cpu::softmax::softmax as reference;
use speckle::ops::{held_vec4s, softmax, MAX_HELD};
use speckle::{SoftmaxOptions, Tensor};

/// Checks against the reference with a tolerance of 1e-5 (see the top); returns the number of
/// dispatches.
fn check(
    gpu: &speckle::Gpu,
    rows: usize,
    cols: usize,
    options: SoftmaxOptions,
    seed: u64,
) -> usize {
    check_tol(gpu, rows, cols, options, seed, 1e-5)
}

fn check_tol(
    gpu: &speckle::Gpu,
    rows: usize,
    cols: usize,
    options: SoftmaxOptions,
    seed: u64,
    tol: f64,
) -> usize {
    let x_host = random_scaled(rows * cols, seed, 5.0);
    let x = Tensor::from_slice(gpu, &x_host, &[rows, cols]).unwrap();
    let y = Tensor::filled(gpu, &[rows, cols], f32::NAN).unwrap();
    let plan = softmax::plan(gpu, &x, &y, &options).unwrap();
    gpu.execute(&plan).unwrap();
    let causal = options.causal.then_some(rows);
    let want = reference(&x_host, cols, f64::from(options.scale), causal);
    assert_rel_close(
        &format!("softmax {rows}x{cols} {options:?}"),
        &y.to_vec(gpu).unwrap(),
        &want,
        tol,
    );
    plan.len()
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
fn rows_held_in_registers_and_rows_read_twice_match_the_reference() {
    // Rows of whole vec4s up to 4 · MAX_HELD · WG values are read once and held (WG = 8 on
    // lavapipe: up to 256 values, every count of held vec4s and the last one partial); longer
    // ones are read twice. Both with scale and causal mask, several rows per workgroup grid.
    let gpu = gpu();
    for (i, cols) in [4, 12, 32, 36, 100, 252, 256, 260, 1024, 4096]
        .into_iter()
        .enumerate()
    {
        for causal in [false, true] {
            let options = SoftmaxOptions { scale: 0.7, causal };
            check(gpu, 37, cols, options, 300 + i as u64);
        }
    }
}

#[test]
fn the_held_entry_takes_whole_vec4_rows_up_to_its_registers() {
    assert_eq!(held_vec4s(4, 256), Some(1));
    assert_eq!(held_vec4s(256, 8), Some(8));
    assert_eq!(held_vec4s(36, 8), Some(2));
    assert_eq!(held_vec4s(8192, 256), Some(MAX_HELD));
    assert_eq!(held_vec4s(260, 8), None);
    assert_eq!(held_vec4s(8196, 256), None);
    assert_eq!(held_vec4s(6, 8), None);
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
    // More keys than queries: query i still sees keys 0..=i only (top-left alignment); rows
    // of 36 take the vec4 entry point, of 33 the scalar one.
    for (cols, seed) in [(33, 3), (36, 4)] {
        check(
            gpu,
            7,
            cols,
            SoftmaxOptions {
                scale: 1.0,
                causal: true,
            },
            seed,
        );
    }
    assert!(softmax::takes_vec4(36) && !softmax::takes_vec4(33));
}

#[test]
fn causal_mask_repeats_per_batch_matrix() {
    let gpu = gpu();
    let (batch, q, k) = (3, 5, 8);
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
    // Short rows are split into row blocks instead; of 44 values (the vec4 entry), 23 fill a
    // dispatch, so later windows start inside the binding's alignment (element 4 with 32
    // bytes).
    check(&gpu, 300, 33, SoftmaxOptions::default(), 7);
    check(&gpu, 300, 44, SoftmaxOptions::default(), 8);
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

#[test]
fn rows_past_the_loop_limit_are_segmented() {
    // With 256 threads a fused invocation over 6,000 columns loops 2 · (6 + 1) + 8 + 1 = 23
    // times (each loop of n passes counts n + 1; a pass takes a block of 4 · 256 columns).
    // Under a limit of 20 the row takes the segmented path (one segment: 7 + 9 for the
    // statistics, 2 + 7 for the normalization); under 12 it needs three segments of 2,000
    // (3 + 9 and 4 + 3; two would take 4 + 9). Either way at least two dispatches per row
    // instead of one for all rows. On a CPU adapter the rows get 256 threads too, the fewest
    // whose loops would fit.
    assert_eq!(softmax::fused_loops(6000, 256), 23);
    assert_eq!(softmax::segment_loops(6000, 1, 256), 16);
    assert_eq!(softmax::segment_loops(3000, 2, 256), 13);
    assert_eq!(softmax::segment_loops(2000, 3, 256), 12);
    for limit in [20, 12] {
        let gpu = gpu_with_loop_limit(limit);
        let dispatches = check(&gpu, 2, 6000, SoftmaxOptions::default(), 8);
        assert!(dispatches >= 4, "limit {limit}: {dispatches} dispatches");
        check(
            &gpu,
            3,
            2500,
            SoftmaxOptions {
                scale: 0.5,
                causal: true,
            },
            9,
        );
        // Short rows still run fused.
        assert_eq!(check(&gpu, 300, 33, SoftmaxOptions::default(), 10), 1);
    }
}

#[test]
fn a_row_that_no_segmentation_fits_is_refused_before_anything_runs() {
    // Under a limit of 9, a row of 5,000 values fits no segmentation: the statistics of even
    // the shortest segment loop 1 + 1 times over it and 8 + 1 in the tree.
    let gpu = gpu_with_loop_limit(9);
    let x = Tensor::zeros(&gpu, &[2, 5000]).unwrap();
    let y = Tensor::zeros(&gpu, &[2, 5000]).unwrap();
    let r = loop_refusal(softmax::plan(&gpu, &x, &y, &SoftmaxOptions::default()).unwrap_err());
    assert_eq!(r.limit, 9);
    assert!(r.iterations > 9, "{}", r.message);
    assert!(r.message.contains("5000"), "{}", r.message);
}

#[test]
fn a_row_past_lavapipes_loop_limit_is_correct() {
    // With 256 threads a fused invocation over 9,000,000 columns loops 70,325 times; lavapipe
    // ends an invocation's loops after 65,535, so unsplit the last columns were never
    // written. Rounding: each thread sums ~35,000 exponentials in f32, so 1e-4 relative
    // (against ~2⁻²⁴ · 35,000 = 2e-3 in the worst case, ~2⁻²⁴ · sqrt(35,000) typically);
    // unwritten (NaN) columns fail any tolerance. Checked on the test adapter with its own
    // limit, whatever it is.
    check_tol(gpu(), 1, 9_000_000, SoftmaxOptions::default(), 11, 1e-4);
}
