//! Reconstruction from random-weight features on small problems against a known x (n = 256,
//! a 16 × 16 image in [0, 1], batch 3 as the three channels of a colour image).
//!
//! Thresholds: PSNR (peak 1) 60 dB is an RMS error of 1e-3, about 2e-3 relative to images of
//! RMS ~0.6: CGLS at m/n = 2 (κ ≈ 5.8) reaches it in ~30 iterations in exact arithmetic and
//! f32 rounding stays near 1e-6 relative. ReLU at m/n = 4 keeps ~2n active rows (an
//! overdetermined system as well conditioned as the linear one): 40 dB leaves margin. Phase
//! retrieval at m/n = 8 converges linearly from the spectral start: 30 dB is reached after
//! ~15 steps here, the test runs more.

mod common;

use common::gpu;
use speckle::projection::{Kind, Mode, Projection};
use speckle::reconstruct::{
    self, psnr, relative_error, resolve_sign, ssim, Encoder, EncoderKind, SolveOptions,
};
use speckle::{Gpu, Tensor};

const SIDE: usize = 16;
const N: usize = SIDE * SIDE;
const BATCH: usize = 3;

/// A smooth pattern plus seeded texture, clamped to [0, 1], one per channel.
fn image(side: usize, channel: usize) -> Vec<f32> {
    let noise = common::random(side * side, 40 + channel as u64);
    (0..side * side)
        .map(|k| {
            let (u, v) = (
                (k % side) as f32 / side as f32,
                (k / side) as f32 / side as f32,
            );
            let c = channel as f32;
            let base = 0.5 + 0.35 * (6.0 * u + c).sin() * (4.0 * v - c).cos();
            (base + 0.1 * noise[k]).clamp(0.0, 1.0)
        })
        .collect()
}

fn images(side: usize) -> Vec<f32> {
    (0..BATCH).flat_map(|c| image(side, c)).collect()
}

fn rows(v: &[f32], n: usize) -> Vec<&[f32]> {
    v.chunks(n).collect()
}

/// Encodes the test images with `encoder` and reconstructs them; returns (x, x̂, report).
fn round_trip(
    gpu: &Gpu,
    encoder: &Encoder,
    options: &SolveOptions,
) -> (Vec<f32>, Vec<f32>, reconstruct::SolveReport) {
    let x_host = images(SIDE);
    let x = Tensor::from_slice(gpu, &x_host, &[BATCH, N]).unwrap();
    let y = encoder.encode(gpu, &x).unwrap();
    let (x_hat, report) =
        reconstruct::reconstruct(gpu, encoder, &y, options, &mut |_, _| {}).unwrap();
    assert_eq!(x_hat.shape(), [BATCH, N]);
    (x_host, x_hat.to_vec(gpu).unwrap(), report)
}

fn min_psnr(x: &[f32], x_hat: &[f32]) -> f64 {
    rows(x, N)
        .iter()
        .zip(rows(x_hat, N))
        .map(|(a, b)| psnr(a, b, 1.0))
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn linear_at_ratio_2_recovers_x_materialized_and_matrix_free_alike() {
    let gpu = gpu();
    let options = SolveOptions {
        max_iterations: 100,
        tolerance: 1e-6,
        ..Default::default()
    };
    let dense = Encoder::new(gpu, EncoderKind::Linear, N, 2.0, 7).unwrap();
    let free = Encoder::with_mode(gpu, EncoderKind::Linear, N, 2.0, 7, Mode::MatrixFree).unwrap();
    assert_eq!(dense.m(), 2 * N);
    let (x, a, report) = round_trip(gpu, &dense, &options);
    let (_, b, report_free) = round_trip(gpu, &free, &options);
    let (pa, pb) = (min_psnr(&x, &a), min_psnr(&x, &b));
    assert!(pa >= 60.0, "materialized: PSNR {pa:.1} dB, {report:?}");
    assert!(pb >= 60.0, "matrix-free: PSNR {pb:.1} dB, {report_free:?}");
    // Both solve the same system (the same entries, from the same seed) to rounding.
    let diff = relative_error(&a, &b);
    assert!(
        diff < 1e-4,
        "materialized and matrix-free differ by {diff:.2e}"
    );
    assert!(report.residual < 1e-5, "{report:?}");
}

/// x* = Rᵀ (R Rᵀ)⁻¹ y in f64 for the m × n matrix of `projection` (m < n).
fn minimum_norm(projection: &Projection, y: &[f32], m: usize, n: usize) -> Vec<f64> {
    let r: Vec<f64> = (0..m * n)
        .map(|k| projection.entry(k / n, k % n).unwrap())
        .collect();
    // G = R Rᵀ (m × m), solve G w = y by Gaussian elimination with partial pivoting.
    let mut g = vec![0.0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            g[i * m + j] = (0..n).map(|k| r[i * n + k] * r[j * n + k]).sum();
        }
    }
    let mut w: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    for col in 0..m {
        let pivot = (col..m)
            .max_by(|&a, &b| g[a * m + col].abs().total_cmp(&g[b * m + col].abs()))
            .unwrap();
        for k in 0..m {
            g.swap(col * m + k, pivot * m + k);
        }
        w.swap(col, pivot);
        for row in col + 1..m {
            let f = g[row * m + col] / g[col * m + col];
            for k in col..m {
                g[row * m + k] -= f * g[col * m + k];
            }
            w[row] -= f * w[col];
        }
    }
    for col in (0..m).rev() {
        let s: f64 = (col + 1..m).map(|k| g[col * m + k] * w[k]).sum();
        w[col] = (w[col] - s) / g[col * m + col];
    }
    (0..n)
        .map(|j| (0..m).map(|i| r[i * n + j] * w[i]).sum())
        .collect()
}

#[test]
fn linear_at_ratio_half_gives_the_minimum_norm_solution() {
    let gpu = gpu();
    let encoder = Encoder::new(gpu, EncoderKind::Linear, N, 0.5, 11).unwrap();
    let m = encoder.m();
    let options = SolveOptions {
        max_iterations: 100,
        tolerance: 1e-6,
        ..Default::default()
    };
    let (x, x_hat, report) = round_trip(gpu, &encoder, &options);
    // R x̂ = y: the features of x̂ match.
    assert!(report.residual < 1e-4, "{report:?}");
    // CGLS from 0 stays in R's row space: x̂ is the minimum-norm solution.
    let mut projection = Projection::new(Kind::Gaussian, m, 11);
    projection.fit(N).unwrap();
    let x_t = Tensor::from_slice(gpu, &x, &[BATCH, N]).unwrap();
    let y = encoder.encode(gpu, &x_t).unwrap().to_vec(gpu).unwrap();
    for b in 0..BATCH {
        let want = minimum_norm(&projection, &y[b * m..(b + 1) * m], m, N);
        let err = speckle::cpu::relative_error(&x_hat[b * N..(b + 1) * N], &want);
        assert!(
            err < 1e-3,
            "row {b}: x̂ differs from the minimum-norm solution by {err:.2e}"
        );
        let (nx, nh) = (
            norm(&x[b * N..(b + 1) * N]),
            norm(&x_hat[b * N..(b + 1) * N]),
        );
        assert!(nh < nx, "row {b}: ‖x̂‖ = {nh} is not below ‖x‖ = {nx}");
    }
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn relu_at_ratio_4_recovers_x() {
    let gpu = gpu();
    let encoder = Encoder::new(gpu, EncoderKind::Relu, N, 4.0, 3).unwrap();
    let options = SolveOptions {
        max_iterations: 100,
        tolerance: 1e-6,
        ..Default::default()
    };
    let (x, x_hat, report) = round_trip(gpu, &encoder, &options);
    let p = min_psnr(&x, &x_hat);
    assert!(p >= 40.0, "PSNR {p:.1} dB, {report:?}");
}

#[test]
fn deep_relu_runs_and_improves_with_iterations() {
    let gpu = gpu();
    let encoder = Encoder::new(gpu, EncoderKind::DeepRelu { layers: 3 }, N, 8.0, 5).unwrap();
    assert_eq!(encoder.widths(), [N, 2 * N, 4 * N, 8 * N]);
    let mut residuals = Vec::new();
    let mut errors = Vec::new();
    for cap in [2, 40] {
        let options = SolveOptions {
            max_iterations: cap,
            check_every: 2,
            ..Default::default()
        };
        let (x, x_hat, report) = round_trip(gpu, &encoder, &options);
        assert!(x_hat.iter().all(|v| v.is_finite()));
        residuals.push(report.residual);
        errors.push(relative_error(&x, &x_hat));
    }
    assert!(
        residuals[1] < 0.9 * residuals[0],
        "end-to-end misfit {residuals:?} should fall with iterations"
    );
    // The input itself is recovered only roughly (see the module docs): relative errors
    // stay near 1 at this size; they are only required to be finite.
    assert!(
        errors.iter().all(|e| e.is_finite()),
        "relative errors {errors:?}"
    );
}

#[test]
fn optical_at_ratio_8_recovers_x_with_the_prior_and_up_to_sign_without() {
    let gpu = gpu();
    let encoder = Encoder::new(gpu, EncoderKind::Optical, N, 8.0, 9).unwrap();
    let prior = SolveOptions {
        max_iterations: 60,
        tolerance: 1e-5,
        nonnegative: true,
        ..Default::default()
    };
    let (x, x_hat, report) = round_trip(gpu, &encoder, &prior);
    let p = min_psnr(&x, &x_hat);
    assert!(p >= 30.0, "with the prior: PSNR {p:.1} dB, {report:?}");
    assert!(x_hat.iter().all(|&v| v >= 0.0));
    let plain = SolveOptions {
        nonnegative: false,
        ..prior
    };
    let (_, x_hat, report) = round_trip(gpu, &encoder, &plain);
    let aligned: Vec<f32> = rows(&x_hat, N)
        .iter()
        .zip(rows(&x, N))
        .flat_map(|(h, r)| resolve_sign(h, r))
        .collect();
    let p = min_psnr(&x, &aligned);
    assert!(
        p >= 30.0,
        "without the prior, after resolve_sign: PSNR {p:.1} dB, {report:?}"
    );
}

#[test]
fn optical_matrix_free_matches_materialized() {
    let gpu = gpu();
    let options = SolveOptions {
        max_iterations: 10,
        nonnegative: true,
        ..Default::default()
    };
    let side = 8;
    let n = side * side;
    let x_host: Vec<f32> = (0..BATCH).flat_map(|c| image(side, c)).collect();
    let x = Tensor::from_slice(gpu, &x_host, &[BATCH, n]).unwrap();
    let mut out = Vec::new();
    for mode in [Mode::Materialized, Mode::MatrixFree] {
        let encoder = Encoder::with_mode(gpu, EncoderKind::Optical, n, 8.0, 4, mode).unwrap();
        let y = encoder.encode(gpu, &x).unwrap();
        let (x_hat, _) =
            reconstruct::reconstruct(gpu, &encoder, &y, &options, &mut |_, _| {}).unwrap();
        out.push(x_hat.to_vec(gpu).unwrap());
    }
    let diff = relative_error(&out[0], &out[1]);
    assert!(
        diff < 1e-3,
        "materialized and matrix-free differ by {diff:.2e}"
    );
}

#[test]
fn the_cap_and_the_tolerance_stop_the_solver_and_progress_is_reported() {
    let gpu = gpu();
    // m = n: badly conditioned, no convergence to 1e-6 within 7 iterations.
    let encoder = Encoder::new(gpu, EncoderKind::Linear, N, 1.0, 2).unwrap();
    let x = Tensor::from_slice(gpu, &images(SIDE), &[BATCH, N]).unwrap();
    let y = encoder.encode(gpu, &x).unwrap();
    let mut calls = Vec::new();
    let capped = SolveOptions {
        max_iterations: 7,
        tolerance: 1e-6,
        check_every: 3,
        ..Default::default()
    };
    let (_, report) =
        reconstruct::reconstruct(gpu, &encoder, &y, &capped, &mut |i, r| calls.push((i, r)))
            .unwrap();
    assert_eq!(report.iterations, 7);
    assert!(!report.converged);
    assert_eq!(
        calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        [3, 6, 7],
        "progress at each check"
    );
    assert!(
        calls.windows(2).all(|w| w[1].1 <= w[0].1 * 1.01),
        "{calls:?}"
    );
    assert!((calls[2].1 - report.residual).abs() < 1e-12);
    // A loose tolerance stops early.
    let loose = SolveOptions {
        max_iterations: 500,
        tolerance: 0.2,
        check_every: 1,
        ..Default::default()
    };
    let (_, report) = reconstruct::reconstruct(gpu, &encoder, &y, &loose, &mut |_, _| {}).unwrap();
    assert!(report.converged, "{report:?}");
    assert!(
        report.iterations < 50 && report.residual <= 0.2,
        "{report:?}"
    );
}

#[test]
fn dense_operators_apply_and_adjoint_in_every_layout() {
    // A x and Aᵀ r against f64, for the batches and shapes that take the skinny matmul on A
    // (apply), on Aᵀ (the adjoint on CPU adapters), the scalar or the adapter's default
    // kernel (odd n, more than 8 rows); each product twice, so that the second reuses a
    // transpose the first made. f32 sums of at most 64 terms: 1e-5.
    use speckle::reconstruct::Operator;
    let gpu = gpu();
    for (rows, n) in [(64, 36), (30, 17)] {
        let a_host = common::random(rows * n, 71);
        let op = Operator::dense(Tensor::from_slice(gpu, &a_host, &[rows, n]).unwrap()).unwrap();
        for batch in [1, 3, 8, 9, 20] {
            let x_host = common::random(batch * n, 72 + batch as u64);
            let r_host = common::random(batch * rows, 73 + batch as u64);
            let x = Tensor::from_slice(gpu, &x_host, &[batch, n]).unwrap();
            let r = Tensor::from_slice(gpu, &r_host, &[batch, rows]).unwrap();
            use speckle::cpu::matmul::{matmul as reference, Problem};
            let ax = reference(&Problem {
                trans_b: true,
                ..Problem::new(&x_host, &[batch, n], &a_host, &[rows, n])
            })
            .unwrap();
            let atr =
                reference(&Problem::new(&r_host, &[batch, rows], &a_host, &[rows, n])).unwrap();
            for round in 0..2 {
                let what = format!("{rows} x {n} operator, batch {batch}, round {round}");
                let got = op.apply(gpu, &x).unwrap().to_vec(gpu).unwrap();
                common::assert_rel_close(&format!("A x, {what}"), &got, &ax, 1e-5);
                let got = op.adjoint(gpu, &r).unwrap().to_vec(gpu).unwrap();
                common::assert_rel_close(&format!("Aᵀ r, {what}"), &got, &atr, 1e-5);
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = gpu();
    for ratio in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-6] {
        assert!(
            Encoder::new(gpu, EncoderKind::Linear, N, ratio, 1).is_err(),
            "ratio {ratio}"
        );
    }
    assert!(Encoder::new(gpu, EncoderKind::Relu, 0, 2.0, 1).is_err());
    assert!(Encoder::new(gpu, EncoderKind::DeepRelu { layers: 0 }, N, 2.0, 1).is_err());
    assert!(EncoderKind::from_name("sigmoid").is_err());
    for kind in [
        EncoderKind::Linear,
        EncoderKind::Relu,
        EncoderKind::DeepRelu { layers: 2 },
        EncoderKind::Optical,
    ] {
        let encoder = Encoder::new(gpu, kind, 16, 2.0, 1).unwrap();
        assert_eq!(
            EncoderKind::from_name(kind.name()).unwrap().name(),
            kind.name()
        );
        let wrong = Tensor::zeros(gpu, &[2, 15]).unwrap();
        assert!(encoder.encode(gpu, &wrong).is_err(), "{kind:?} input shape");
        let flat = Tensor::zeros(gpu, &[16]).unwrap();
        assert!(encoder.encode(gpu, &flat).is_err(), "{kind:?} 1-D input");
        let bad_y = Tensor::zeros(gpu, &[2, encoder.m() + 1]).unwrap();
        let options = SolveOptions::default();
        assert!(
            reconstruct::reconstruct(gpu, &encoder, &bad_y, &options, &mut |_, _| {}).is_err(),
            "{kind:?} measurement shape"
        );
        let y = Tensor::zeros(gpu, &[2, encoder.m()]).unwrap();
        let negative = SolveOptions {
            tolerance: -1.0,
            ..options
        };
        assert!(
            reconstruct::reconstruct(gpu, &encoder, &y, &negative, &mut |_, _| {}).is_err(),
            "{kind:?} negative tolerance"
        );
        // All-zero features are a valid input: x̂ is finite.
        let (x_hat, _) =
            reconstruct::reconstruct(gpu, &encoder, &y, &options, &mut |_, _| {}).unwrap();
        assert!(
            x_hat.to_vec(gpu).unwrap().iter().all(|v| v.is_finite()),
            "{kind:?}"
        );
    }
}

#[test]
fn quality_measures() {
    let x = image(SIDE, 0);
    assert_eq!(psnr(&x, &x, 1.0), f64::INFINITY);
    let shifted: Vec<f32> = x.iter().map(|v| v + 0.01).collect();
    assert!((psnr(&x, &shifted, 1.0) - 40.0).abs() < 1e-3);
    assert!(psnr(&x, &x[1..], 1.0).is_nan());
    assert!((ssim(&x, &x, SIDE, SIDE, 1.0) - 1.0).abs() < 1e-12);
    let noisy: Vec<f32> = x
        .iter()
        .zip(common::random(N, 3))
        .map(|(a, n)| a + 0.2 * n)
        .collect();
    let s = ssim(&x, &noisy, SIDE, SIDE, 1.0);
    assert!(s < 0.9 && s > 0.0, "SSIM of a noisy copy: {s}");
    // A constant offset changes the luminance term only a little; structure is intact.
    assert!(ssim(&x, &shifted, SIDE, SIDE, 1.0) > 0.99);
    // Images smaller than the window use one clipped window.
    assert!((ssim(&x[..16], &x[..16], 4, 4, 1.0) - 1.0).abs() < 1e-12);
    assert!((relative_error(&x, &x)).abs() < 1e-12);
    let neg: Vec<f32> = x.iter().map(|v| -v).collect();
    assert_eq!(resolve_sign(&neg, &x), x);
    assert_eq!(resolve_sign(&x, &x), x);
}

/// The demo's workload on this adapter: n = 1024 (a 32 × 32 channel), batch 3, every encoder
/// at ratios 0.5, 1, 2, 4, 8 with [`SolveOptions::recommended`]; prints the table of the
/// module docs. `cargo test --test reconstruct timing_table -- --ignored --nocapture`.
#[test]
#[ignore = "timing report (about a minute on lavapipe)"]
fn timing_table() {
    let gpu = gpu();
    let side = 32;
    let n = side * side;
    let x_host = images(side);
    let x = Tensor::from_slice(gpu, &x_host, &[BATCH, n]).unwrap();
    let total = std::time::Instant::now();
    println!("| encoder | m/n | iterations | residual | PSNR (min over channels) | SSIM | seconds (encode + solve) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for kind in [
        EncoderKind::Linear,
        EncoderKind::Relu,
        EncoderKind::DeepRelu { layers: 3 },
        EncoderKind::Optical,
    ] {
        // SPECKLE_TIMING_KINDS=relu,optical limits the table to some encoders.
        if std::env::var("SPECKLE_TIMING_KINDS")
            .is_ok_and(|k| !k.split(',').any(|k| k == kind.name()))
        {
            continue;
        }
        for ratio in [0.5, 1.0, 2.0, 4.0, 8.0] {
            if std::env::var("SPECKLE_TIMING_RATIOS")
                .is_ok_and(|r| !r.split(',').any(|r| r.parse() == Ok(ratio)))
            {
                continue;
            }
            let t = std::time::Instant::now();
            let encoder = Encoder::new(gpu, kind, n, ratio, 1).unwrap();
            let y = encoder.encode(gpu, &x).unwrap();
            let mut options = SolveOptions::recommended(kind, ratio);
            if let Some(cap) = std::env::var("SPECKLE_TIMING_CAP")
                .ok()
                .and_then(|c| c.parse().ok())
            {
                options.max_iterations = cap;
            }
            if std::env::var("SPECKLE_TIMING_PRIOR").is_ok_and(|p| p == "0") {
                options.nonnegative = false;
            }
            if let Some(p) = std::env::var("SPECKLE_TIMING_POWER")
                .ok()
                .and_then(|c| c.parse().ok())
            {
                options.power_iterations = p;
            }
            let (x_hat, report) =
                reconstruct::reconstruct(gpu, &encoder, &y, &options, &mut |_, _| {}).unwrap();
            let x_hat = x_hat.to_vec(gpu).unwrap();
            let seconds = t.elapsed().as_secs_f64();
            let mut worst = f64::INFINITY;
            let mut s_min = f64::INFINITY;
            for (a, b) in rows(&x_host, n).iter().zip(rows(&x_hat, n)) {
                let b = resolve_sign(b, a);
                worst = worst.min(psnr(a, &b, 1.0));
                s_min = s_min.min(ssim(a, &b, side, side, 1.0));
            }
            println!(
                "| {} | {ratio} | {} | {:.1e} | {worst:.1} | {s_min:.3} | {seconds:.2} ({:.2} solving) |",
                kind.name(),
                report.iterations,
                report.residual,
                report.seconds
            );
        }
    }
    println!("total {:.1} s", total.elapsed().as_secs_f64());
}

#[test]
fn relu_matrix_free_matches_materialized_and_the_layer_api_checks_shapes() {
    let gpu = gpu();
    let side = 8;
    let n = side * side;
    let x_host: Vec<f32> = (0..BATCH).flat_map(|c| image(side, c)).collect();
    let x = Tensor::from_slice(gpu, &x_host, &[BATCH, n]).unwrap();
    let options = SolveOptions {
        max_iterations: 60,
        tolerance: 1e-6,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut features = Vec::new();
    for mode in [Mode::Materialized, Mode::MatrixFree] {
        let encoder = Encoder::with_mode(gpu, EncoderKind::Relu, n, 4.0, 8, mode).unwrap();
        let y = encoder.encode(gpu, &x).unwrap();
        features.push(y.to_vec(gpu).unwrap());
        let (x_hat, _) =
            reconstruct::reconstruct(gpu, &encoder, &y, &options, &mut |_, _| {}).unwrap();
        out.push(x_hat.to_vec(gpu).unwrap());
    }
    // The same weights and biases: features equal to f32 rounding of length-64 dot products.
    let diff = relative_error(&features[0], &features[1]);
    assert!(diff < 1e-5, "features differ by {diff:.2e}");
    assert!(min_psnr_n(&x_host, &out[1], n) >= 40.0);
    let diff = relative_error(&out[0], &out[1]);
    assert!(diff < 1e-3, "solutions differ by {diff:.2e}");

    let weight = reconstruct::Operator::gaussian(gpu, 32, 8, 0.5, 1, Mode::Materialized).unwrap();
    let y = Tensor::zeros(gpu, &[2, 32]).unwrap();
    let short_bias = Tensor::zeros(gpu, &[31]).unwrap();
    assert!(
        reconstruct::relu::invert(gpu, &weight, &short_bias, &y, &options, &mut |_, _| {}).is_err()
    );
    let bias = Tensor::zeros(gpu, &[32]).unwrap();
    let (x_hat, report) =
        reconstruct::relu::invert(gpu, &weight, &bias, &y, &options, &mut |_, _| {}).unwrap();
    assert_eq!(x_hat.shape(), [2, 8]);
    assert!(report.residual.is_finite());
}

fn min_psnr_n(x: &[f32], x_hat: &[f32], n: usize) -> f64 {
    rows(x, n)
        .iter()
        .zip(rows(x_hat, n))
        .map(|(a, b)| psnr(a, b, 1.0))
        .fold(f64::INFINITY, f64::min)
}
