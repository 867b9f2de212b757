//! Random projections and features, statistically: the conventions of the module docs hold,
//! Johnson–Lindenstrauss distances are kept, kernels are approximated, and the two modes agree.
//! Every tolerance is derived in a comment; seeds are fixed, and the bounds are at least 5
//! standard deviations wide except where a comment says how often another seed would fail.

mod common;

use common::{gpu, random};
use speckle::projection::{
    johnson_lindenstrauss_min_dim, Fusion, Kind, Mode, Precision, Projection, Scaling,
};
use speckle::{Gpu, Tensor};

fn fitted(kind: Kind, n_out: usize, seed: u64, d: usize, mode: Mode) -> Projection {
    let mut p = Projection::new(kind, n_out, seed);
    p.mode = mode;
    p.fit(d).unwrap();
    p
}

fn transform(gpu: &Gpu, p: &Projection, x: &[f32], batch: usize) -> Vec<f64> {
    let d = p.input_dim().unwrap();
    let t = Tensor::from_slice(gpu, x, &[batch, d]).unwrap();
    p.transform(gpu, &t)
        .unwrap()
        .to_vec(gpu)
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn sq_norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn jl_min_dim_matches_scikit_learn() {
    // scikit-learn's documented examples.
    assert_eq!(johnson_lindenstrauss_min_dim(1_000_000, 0.5).unwrap(), 663);
    assert_eq!(
        johnson_lindenstrauss_min_dim(1_000_000, 0.1).unwrap(),
        11841
    );
    assert_eq!(
        johnson_lindenstrauss_min_dim(1_000_000, 0.01).unwrap(),
        1112658
    );
    assert!(johnson_lindenstrauss_min_dim(10, 1.5).is_err());
}

#[test]
fn pairwise_distances_stay_within_the_jl_epsilon() {
    // 40 points in d = 500, eps = 0.5: k = 4 ln 40 / (1/8 − 1/24) = 177 dimensions. For Gaussian
    // entries a squared-distance ratio is χ²_k / k; by Wilson–Hilferty P(ratio > 1.5) ≈ 2e-5 and
    // P(ratio < 0.5) ≈ 4e-9, so all 780 pairs hold for about 98 % of seeds (the lemma itself
    // promises only "with good probability"). Rademacher entries concentrate at least as well.
    // Sparse entries (s = sqrt(d) ≈ 22) have heavier tails: the ratio's variance is
    // (2 + (s − 3) Σy⁴/‖y‖⁴)/k ≈ 2.1/k here, so a few pairs may exceed eps; we ask that 99 %
    // of pairs hold and that the typical (median) distortion is below 0.15 (its standard
    // deviation is ~0.11, the median of |N(0, 0.11)| 0.074).
    let gpu = gpu();
    let (n, d, eps) = (40, 500, 0.5);
    let k = johnson_lindenstrauss_min_dim(n, eps).unwrap();
    assert_eq!(k, 177);
    let x = random(n * d, 11);
    for kind in [
        Kind::Gaussian,
        Kind::Orthogonal,
        Kind::Rademacher,
        Kind::Sparse { s: None },
    ] {
        let y = transform(gpu, &fitted(kind, k, 5, d, Mode::Materialized), &x, n);
        let mut distortions = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                let dx: f64 = (0..d)
                    .map(|j| (f64::from(x[a * d + j]) - f64::from(x[b * d + j])).powi(2))
                    .sum();
                let dy: f64 = (0..k).map(|i| (y[a * k + i] - y[b * k + i]).powi(2)).sum();
                distortions.push((dy / dx - 1.0).abs());
            }
        }
        distortions.sort_by(f64::total_cmp);
        let within =
            distortions.iter().filter(|&&e| e < eps).count() as f64 / distortions.len() as f64;
        let median = distortions[distortions.len() / 2];
        let worst = distortions[distortions.len() - 1];
        assert!(
            median < 0.15,
            "{}: median distortion {median:.3}",
            kind.name()
        );
        if matches!(kind, Kind::Sparse { .. }) {
            assert!(
                within >= 0.99,
                "{}: {:.1} % of pairs within eps",
                kind.name(),
                100.0 * within
            );
        } else {
            assert!(
                worst < eps,
                "{}: worst distortion {worst:.3} at k = {k}",
                kind.name()
            );
        }
    }
}

#[test]
fn linear_kinds_keep_the_squared_norm_in_expectation() {
    // ‖R x‖²/‖x‖² averaged over 16 inputs with n_out = 2048: standard deviation
    // sqrt(2 / (16 · 2048)) = 0.008 for Gaussian entries (less for ±1, a little more for
    // sparse ones with s = 16): 0.05 is over 5 standard deviations.
    let gpu = gpu();
    let (batch, d, n_out) = (16, 256, 2048);
    let x = random(batch * d, 12);
    for kind in [
        Kind::Gaussian,
        Kind::Rademacher,
        Kind::Sparse { s: None },
        Kind::Sparse { s: Some(3.0) },
    ] {
        let y = transform(gpu, &fitted(kind, n_out, 6, d, Mode::MatrixFree), &x, batch);
        let ratio: f64 = (0..batch)
            .map(|b| {
                sq_norm(&y[b * n_out..(b + 1) * n_out]) / sq_norm(&widen(&x[b * d..(b + 1) * d]))
            })
            .sum::<f64>()
            / batch as f64;
        assert!(
            (ratio - 1.0).abs() < 0.05,
            "{kind:?}: E‖Rx‖²/‖x‖² = {ratio:.4}"
        );
    }
}

#[test]
fn optical_intensities_and_their_kernel() {
    let gpu = gpu();
    let (d, n_out) = (64, 16384);
    let mut x = random(2 * d, 13);
    // Unit inputs with cosine c between them.
    for b in 0..2 {
        let norm = x[b * d..(b + 1) * d]
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt();
        x[b * d..(b + 1) * d].iter_mut().for_each(|v| *v /= norm);
    }
    let c = dot(&widen(&x[..d]), &widen(&x[d..]));
    let y = transform(
        gpu,
        &fitted(Kind::Optical, n_out, 7, d, Mode::Materialized),
        &x,
        2,
    );
    assert!(y.iter().all(|&v| v >= 0.0), "intensities are non-negative");
    // y_i = |r_i · x|² is exponential with mean ‖x‖² = 1: the mean of 16384 has standard
    // deviation 1/128; 0.04 is 5 of them.
    let mean = y[..n_out].iter().sum::<f64>() / n_out as f64;
    assert!((mean - 1.0).abs() < 0.04, "E[y_i] = {mean:.4}");
    // E[y_i(x) y_i(x')] = ‖x‖²‖x'‖² + (x·x')² = 1 + c² for complex Gaussian rows. A product of
    // two unit exponentials has variance at most 8 (at c = 1), so the mean over 16384 rows has
    // standard deviation below 0.023: 0.12 is over 5.
    let kernel = dot(&y[..n_out], &y[n_out..]) / n_out as f64;
    assert!(
        (kernel - (1.0 + c * c)).abs() < 0.12,
        "E[y(x) y(x')] = {kernel:.4}, expected {:.4}",
        1.0 + c * c
    );

    // lightonml's convention: parts N(0, 1/d), E[y_i] = 2‖x‖²/d.
    let mut lighton = fitted(Kind::Optical, n_out, 7, d, Mode::Materialized);
    lighton.scaling = Scaling::Lightonml;
    let y = transform(gpu, &lighton, &x, 2);
    let mean = y[..n_out].iter().sum::<f64>() / n_out as f64;
    assert!(
        (mean * d as f64 / 2.0 - 1.0).abs() < 0.04,
        "lightonml E[y_i]·d/2 = {:.4}",
        mean * d as f64 / 2.0
    );
}

#[test]
fn structured_kinds_keep_their_conventions() {
    // srht with n_out < p: each output has E[y_i²] = ‖x‖²/n_out; over 8 inputs and 300 of
    // p = 512 rows of a block the mean of ‖y‖²/‖x‖² has a standard deviation of about
    // sqrt(2/2400) = 0.03 (less: rows of an orthogonal block are negatively correlated);
    // srht-optical: the mean intensity over 4096 outputs from 8 blocks, relative standard
    // deviation about 1/64 per input. 0.15 and 0.08 are 5 standard deviations.
    let gpu = gpu();
    let (batch, d) = (8, 300);
    let x = random(batch * d, 23);
    let norms: Vec<f64> = (0..batch)
        .map(|b| sq_norm(&widen(&x[b * d..(b + 1) * d])))
        .collect();
    let y = transform(
        gpu,
        &fitted(Kind::Srht, 300, 24, d, Mode::MatrixFree),
        &x,
        batch,
    );
    let ratio = (0..batch)
        .map(|b| sq_norm(&y[b * 300..(b + 1) * 300]) / norms[b])
        .sum::<f64>()
        / batch as f64;
    assert!((ratio - 1.0).abs() < 0.15, "srht E‖y‖²/‖x‖² = {ratio:.4}");
    let n_out = 4096;
    let y = transform(
        gpu,
        &fitted(Kind::SrhtOptical, n_out, 25, d, Mode::MatrixFree),
        &x,
        batch,
    );
    assert!(y.iter().all(|&v| v >= 0.0));
    for b in 0..batch {
        let mean = y[b * n_out..(b + 1) * n_out].iter().sum::<f64>() / n_out as f64 / norms[b];
        assert!(
            (mean - 1.0).abs() < 0.08,
            "srht-optical input {b}: E[y_i]/‖x‖² = {mean:.4}"
        );
    }
    let p = fitted(Kind::Srht, 10, 1, 6, Mode::Materialized);
    assert!(
        p.entry(0, 0).is_err(),
        "structured kinds have no dense entries"
    );
}

#[test]
fn random_fourier_features_approximate_the_rbf_kernel() {
    // z(x)·z(x') estimates exp(−γ‖x − x'‖²) with standard deviation about 1/sqrt(D). The mean
    // absolute error over 28 pairs shrinks with D: quadrupling D from 256 to 4096 should cut it
    // by ~4; we ask for 2, and at D = 4096 for less than 3/sqrt(D) = 0.047.
    let gpu = gpu();
    let (n, d, gamma) = (8, 16, 0.5);
    let x: Vec<f32> = random(n * d, 14).into_iter().map(|v| v * 0.5).collect();
    let mut errors = Vec::new();
    for n_out in [256, 1024, 4096] {
        let z = transform(
            gpu,
            &fitted(Kind::Rff { gamma }, n_out, 8, d, Mode::MatrixFree),
            &x,
            n,
        );
        let mut total = 0.0;
        let mut pairs = 0;
        for a in 0..n {
            for b in a + 1..n {
                let dist: f64 = (0..d)
                    .map(|j| (f64::from(x[a * d + j]) - f64::from(x[b * d + j])).powi(2))
                    .sum();
                let exact = (-gamma * dist).exp();
                total += (dot(
                    &z[a * n_out..(a + 1) * n_out],
                    &z[b * n_out..(b + 1) * n_out],
                ) - exact)
                    .abs();
                pairs += 1;
            }
        }
        errors.push(total / pairs as f64);
    }
    assert!(
        errors[2] < errors[0] / 2.0,
        "errors {errors:?} should shrink like 1/sqrt(D)"
    );
    assert!(errors[2] < 3.0 / 4096f64.sqrt(), "errors {errors:?}");
}

#[test]
fn relu_and_positive_features_keep_their_kernels() {
    let gpu = gpu();
    let (d, n_out) = (32, 8192);
    let x: Vec<f32> = random(2 * d, 15).into_iter().map(|v| v * 0.3).collect();
    // ReLU features: E‖z‖² = ‖x‖²; ‖z‖² averages 8192 terms of relative variance ≤ 5, so its
    // relative standard deviation is below 0.025: 0.125 is 5.
    let z = transform(
        gpu,
        &fitted(Kind::Relu, n_out, 9, d, Mode::MatrixFree),
        &x,
        2,
    );
    let ratio = sq_norm(&z[..n_out]) / sq_norm(&widen(&x[..d]));
    assert!((ratio - 1.0).abs() < 0.125, "relu E‖z‖²/‖x‖² = {ratio:.4}");
    // Positive features: E[φ(x)·φ(x')] = exp(x·x'). With ‖x‖ ≈ 1, each term exp(w·(x + x') −
    // ...) has relative variance exp(‖x + x'‖²) − 1 < e⁴: over 8192 terms the relative standard
    // deviation is below 0.08.
    let phi = transform(
        gpu,
        &fitted(Kind::Positive, n_out, 10, d, Mode::MatrixFree),
        &x,
        2,
    );
    assert!(
        phi.iter().all(|&v| v > 0.0),
        "positive features are positive"
    );
    let exact = dot(&widen(&x[..d]), &widen(&x[d..])).exp();
    let estimate = dot(&phi[..n_out], &phi[n_out..]);
    assert!(
        (estimate / exact - 1.0).abs() < 0.4,
        "positive: {estimate:.4} vs exp(x·x') = {exact:.4}"
    );
}

#[test]
fn matrix_free_equals_materialized_and_entries_match_the_cpu() {
    let gpu = gpu();
    let (batch, d, n_out) = (3, 77, 45);
    let x = random(batch * d, 16);
    for kind in [
        Kind::Gaussian,
        Kind::Rademacher,
        Kind::Sparse { s: None },
        Kind::Optical,
        Kind::Rff { gamma: 0.3 },
        Kind::Relu,
        Kind::Positive,
    ] {
        let materialized = transform(
            gpu,
            &fitted(kind, n_out, 17, d, Mode::Materialized),
            &x,
            batch,
        );
        let free = transform(
            gpu,
            &fitted(kind, n_out, 17, d, Mode::MatrixFree),
            &x,
            batch,
        );
        let free32: Vec<f32> = free.iter().map(|&v| v as f32).collect();
        // Same entries, sums in another order: f32 rounding of a length-77 dot product.
        common::assert_rel_close(
            &format!("{} modes", kind.name()),
            &free32,
            &materialized,
            1e-5,
        );
    }
    let p = fitted(Kind::Gaussian, n_out, 17, d, Mode::Materialized);
    let r = p.matrix(gpu).unwrap().re;
    let r = r.to_vec(gpu).unwrap();
    // f32 Box–Muller against f64: the error of cos θ is absolute, about 1e-7 of the
    // distribution's scale σ = 1/sqrt(n_out), so it is bounded relative to σ + |value|.
    let sigma = 1.0 / (n_out as f64).sqrt();
    for (i, j) in [(0, 0), (44, 76), (13, 41), (7, 3)] {
        let cpu = p.entry(i, j).unwrap();
        let gpu_value = f64::from(r[i * d + j]);
        assert!(
            (gpu_value - cpu).abs() <= 1e-6 * (sigma + cpu.abs()),
            "R[{i}, {j}]: GPU {gpu_value}, CPU {cpu}"
        );
    }
}

#[test]
fn seeds_repeat_and_differ() {
    let gpu = gpu();
    let x = random(2 * 50, 18);
    let p = fitted(Kind::Optical, 64, 19, 50, Mode::MatrixFree);
    let a = transform(gpu, &p, &x, 2);
    assert_eq!(
        a,
        transform(gpu, &p, &x, 2),
        "same seed and inputs: the same values"
    );
    let other = transform(
        gpu,
        &fitted(Kind::Optical, 64, 20, 50, Mode::MatrixFree),
        &x,
        2,
    );
    assert!(
        a.iter().zip(&other).all(|(u, v)| u != v),
        "another seed changes every output"
    );
}

#[test]
fn a_materialized_matrix_larger_than_one_binding_works() {
    // R of 9000 x 4000 floats is 144 MB, beyond lavapipe's 128 MiB binding: generation and
    // product both go through windows. Compared with the matrix-free result (tested against
    // the CPU above) on two inputs.
    let gpu = gpu();
    let (d, n_out) = (4000, 9000);
    if (d * n_out * 4) as u64 > gpu.limits().max_buffer_size {
        return; // an adapter whose buffers cannot hold R at all
    }
    let x = random(2 * d, 21);
    let materialized = transform(
        gpu,
        &fitted(Kind::Gaussian, n_out, 22, d, Mode::Materialized),
        &x,
        2,
    );
    let free = transform(
        gpu,
        &fitted(Kind::Gaussian, n_out, 22, d, Mode::MatrixFree),
        &x,
        2,
    );
    let free32: Vec<f32> = free.iter().map(|&v| v as f32).collect();
    common::assert_rel_close("144 MB materialized R", &free32, &materialized, 1e-5);
}

#[test]
fn one_dimensional_inputs_and_bad_inputs() {
    let gpu = gpu();
    let p = fitted(Kind::Gaussian, 10, 1, 6, Mode::MatrixFree);
    let x = Tensor::from_slice(gpu, &random(6, 1), &[6]).unwrap();
    assert_eq!(p.transform(gpu, &x).unwrap().shape(), &[10]);
    let wrong = Tensor::zeros(gpu, &[2, 7]).unwrap();
    let e = p.transform(gpu, &wrong).unwrap_err();
    assert!(
        e.to_string().contains("d = 6") && e.to_string().contains("[2, 7]"),
        "{e}"
    );
    let unfitted = Projection::new(Kind::Gaussian, 10, 1);
    assert!(unfitted.transform(gpu, &x).is_err());
    assert!(Projection::new(Kind::Rff { gamma: -1.0 }, 4, 1)
        .fit(3)
        .is_err());
    assert!(Kind::from_name("hadamard", 1.0, None).is_err());
    // Transpose inverse of a linear kind: Rᵀ R x ≈ x for n_out ≫ d.
    let p = fitted(Kind::Gaussian, 4000, 2, 6, Mode::Materialized);
    let y = p.transform(gpu, &x).unwrap();
    let back = p.inverse_transform(gpu, &y).unwrap().to_vec(gpu).unwrap();
    let x_host = x.to_vec(gpu).unwrap();
    let err = back
        .iter()
        .zip(&x_host)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f32>()
        .sqrt()
        / x_host.iter().map(|v| v * v).sum::<f32>().sqrt();
    // ‖RᵀR − I‖ ~ sqrt(d / n_out) = 0.04; 0.2 is 5 times that.
    assert!(err < 0.2, "relative error of Rᵀ R x: {err}");
    assert!(fitted(Kind::Optical, 4, 1, 6, Mode::Materialized)
        .inverse_transform(gpu, &y)
        .is_err());
}

#[test]
fn orthogonal_rows_are_orthogonal_in_blocks_and_keep_their_gaussian_norms() {
    use speckle::cpu::philox::{gaussian_entry, Stream};
    use speckle::projection::orthogonal;
    // d = 50, 120 rows: blocks of 50, 50 and 20. Gram–Schmidt twice leaves cosines at f64
    // rounding (~1e-15 · sqrt(d)); rows of different blocks are independent, with cosines of
    // order 1/sqrt(d) = 0.14.
    let (d, n, seed) = (50, 120, 21);
    let (w, norms) = orthogonal::rows(seed, d, 0, n);
    let row = |i: usize| &w[i * d..(i + 1) * d];
    let mut across = 0.0f64;
    for i in 0..n {
        let g: Vec<f64> = (0..d)
            .map(|j| gaussian_entry(seed, Stream::Matrix as u32, i as u32, j as u64))
            .collect();
        let gn = sq_norm(&g).sqrt();
        assert!(
            (norms[i] / gn - 1.0).abs() < 1e-12,
            "row {i}: norm {} vs ‖g‖ {gn}",
            norms[i]
        );
        assert!(
            (sq_norm(row(i)).sqrt() / gn - 1.0).abs() < 1e-12,
            "row {i} norm"
        );
        if i % d == 0 {
            // The first row of a block is its Gaussian row itself.
            for (j, (&a, &b)) in row(i).iter().zip(&g).enumerate() {
                assert!((a - b).abs() < 1e-12, "block start {i}, column {j}");
            }
        }
        for k in 0..i {
            let cos = dot(row(i), row(k)) / (norms[i] * norms[k]);
            if i / d == k / d {
                assert!(
                    cos.abs() < 1e-12,
                    "rows {i} and {k} of one block: cos = {cos:e}"
                );
            } else {
                across = across.max(cos.abs());
            }
        }
    }
    assert!(
        across > 0.1,
        "rows of different blocks are independent (max cos {across})"
    );
    // Any slice of rows is the same as the whole, and Projection::entry agrees.
    let (slice, _) = orthogonal::rows(seed, d, 47, 8);
    assert_eq!(slice, w[47 * d..55 * d].to_vec());
    let p = fitted(Kind::Orthogonal, n, seed, d, Mode::Materialized);
    for &(i, j) in &[(0, 0), (49, 3), (50, 49), (119, 10)] {
        // The scale is applied in f32, as on the GPU: relative 2⁻²⁴.
        let e = p.entry(i, j).unwrap();
        let want = w[i * d + j] / (n as f64).sqrt();
        assert!(
            (e - want).abs() < 1e-7 * want.abs(),
            "entry ({i}, {j}): {e} vs {want}"
        );
    }
    assert!(p.entry(n, 0).is_err());
}

#[test]
fn orthogonal_projections_transform_on_the_gpu_and_concentrate_the_norm() {
    use speckle::projection::orthogonal;
    let gpu = gpu();
    // The GPU product against the f64 rows: f32 entries and d-term sums, relative error
    // ~ sqrt(d) · 2⁻²⁴ ≈ 1e-6; 1e-5 leaves room.
    let (batch, d, n_out) = (3, 37, 90);
    let x = random(batch * d, 30);
    let y = transform(
        gpu,
        &fitted(Kind::Orthogonal, n_out, 31, d, Mode::Materialized),
        &x,
        batch,
    );
    let (w, _) = orthogonal::rows(31, d, 0, n_out);
    let scale = 1.0 / (n_out as f64).sqrt();
    let want: Vec<f64> = (0..batch)
        .flat_map(|b| {
            let (w, x) = (&w, &x);
            (0..n_out).map(move |i| {
                scale
                    * (0..d)
                        .map(|j| w[i * d + j] * f64::from(x[b * d + j]))
                        .sum::<f64>()
            })
        })
        .collect();
    let got: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    common::assert_rel_close("orthogonal projection", &got, &want, 1e-5);

    // ‖R x‖²/‖x‖² over 64 inputs, n_out = d = 256: independent Gaussian rows give a ratio of
    // standard deviation sqrt(2/256) = 0.088 (estimated within ~9 % from 64 samples); one
    // orthogonal block gives Σ (s_i²/d) c_i with Σ c_i = 1, standard deviation about
    // sqrt(2/d · 3/d) ≈ 0.01. Bounds: Gaussian above 0.05 (4 estimation errors below),
    // orthogonal below 0.03, and both means within 5 standard errors of 1.
    let (batch, d) = (64, 256);
    let x = random(batch * d, 32);
    let spread = |kind: Kind| {
        let y = transform(gpu, &fitted(kind, d, 33, d, Mode::Materialized), &x, batch);
        let ratios: Vec<f64> = (0..batch)
            .map(|b| sq_norm(&y[b * d..(b + 1) * d]) / sq_norm(&widen(&x[b * d..(b + 1) * d])))
            .collect();
        let mean = ratios.iter().sum::<f64>() / batch as f64;
        let var = ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (batch - 1) as f64;
        (mean, var.sqrt())
    };
    let (gm, gs) = spread(Kind::Gaussian);
    let (om, os) = spread(Kind::Orthogonal);
    assert!(
        gs > 0.05 && (gm - 1.0).abs() < 5.0 * 0.088 / 8.0,
        "gaussian: mean {gm}, sd {gs}"
    );
    assert!(
        os < 0.03 && (om - 1.0).abs() < 5.0 * 0.01 / 8.0 + 0.01,
        "orthogonal: mean {om}, sd {os}"
    );
}

#[test]
fn orthogonal_random_features_keep_their_kernels() {
    // As in the independent-row tests: rows keep their N(0, I) law, so the RBF estimate at
    // D = 4096 (256 blocks of 16) is within 3/sqrt(D) on average, and positive features
    // estimate exp(x·x') (relative standard deviation below 0.08; 0.4 is 5).
    let gpu = gpu();
    let (n, d, gamma, n_out) = (8, 16, 0.5, 4096);
    let x: Vec<f32> = random(n * d, 14).into_iter().map(|v| v * 0.5).collect();
    let mut p = Projection::new(Kind::Rff { gamma }, n_out, 8);
    p.orthogonal = true;
    p.fit(d).unwrap();
    let z = transform(gpu, &p, &x, n);
    let mut total = 0.0;
    let mut pairs = 0;
    for a in 0..n {
        for b in a + 1..n {
            let dist: f64 = (0..d)
                .map(|j| (f64::from(x[a * d + j]) - f64::from(x[b * d + j])).powi(2))
                .sum();
            total += (dot(
                &z[a * n_out..(a + 1) * n_out],
                &z[b * n_out..(b + 1) * n_out],
            ) - (-gamma * dist).exp())
            .abs();
            pairs += 1;
        }
    }
    assert!(
        total / (pairs as f64) < 3.0 / (n_out as f64).sqrt(),
        "orthogonal rff error {}",
        total / pairs as f64
    );
    let mut p = Projection::new(Kind::Positive, 8192, 10);
    p.orthogonal = true;
    p.fit(32).unwrap();
    let x: Vec<f32> = random(64, 15).into_iter().map(|v| v * 0.3).collect();
    let phi = transform(gpu, &p, &x, 2);
    let exact = dot(&widen(&x[..32]), &widen(&x[32..])).exp();
    let estimate = dot(&phi[..8192], &phi[8192..]);
    assert!(
        (estimate / exact - 1.0).abs() < 0.4,
        "orthogonal positive: {estimate} vs {exact}"
    );
    // Where orthogonal rows do not apply, a clear error.
    let mut bad = Projection::new(Kind::Rademacher, 10, 1);
    bad.orthogonal = true;
    let e = bad.fit(5).unwrap_err();
    assert!(e.to_string().contains("rademacher"), "{e}");
    let mut free = Projection::new(Kind::Orthogonal, 10, 1);
    free.mode = Mode::MatrixFree;
    free.fit(5).unwrap();
    let e = free
        .transform(gpu, &Tensor::zeros(gpu, &[5]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("materialized"), "{e}");
}

#[test]
fn inverse_transform_is_exact_for_the_orthogonal_kinds() {
    let gpu = gpu();
    let rel = |a: &[f32], b: &[f32]| {
        let num: f32 = a.iter().zip(b).map(|(u, v)| (u - v).powi(2)).sum();
        (num / b.iter().map(|v| v * v).sum::<f32>()).sqrt()
    };
    // Orthogonal, n_out = 2.5 d (two full blocks and a partial one): x back to f32 rounding
    // of two d-term products, ~1e-6; 1e-4 leaves room.
    let (batch, d) = (3, 40);
    let x_host = random(batch * d, 40);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, d]).unwrap();
    let p = fitted(Kind::Orthogonal, 100, 41, d, Mode::Materialized);
    let back = p
        .inverse_transform(gpu, &p.transform(gpu, &x).unwrap())
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    assert!(
        rel(&back, &x_host) < 1e-4,
        "orthogonal R⁺ R x: {}",
        rel(&back, &x_host)
    );
    // n_out < d: the minimum-norm solution, so R x̂ = y and ‖x̂‖ < ‖x‖.
    let p = fitted(Kind::Orthogonal, 25, 42, d, Mode::Materialized);
    let y = p.transform(gpu, &x).unwrap();
    let x_hat = p.inverse_transform(gpu, &y).unwrap();
    let y_again = p.transform(gpu, &x_hat).unwrap().to_vec(gpu).unwrap();
    let y_host = y.to_vec(gpu).unwrap();
    assert!(
        rel(&y_again, &y_host) < 1e-4,
        "R R⁺ y: {}",
        rel(&y_again, &y_host)
    );
    let x_hat = x_hat.to_vec(gpu).unwrap();
    assert!(x_hat.iter().map(|v| v * v).sum::<f32>() < x_host.iter().map(|v| v * v).sum::<f32>());
    // srht, n_out = 2 p: the transpose is the inverse (six transforms of rounding, ~1e-6).
    let p = fitted(Kind::Srht, 128, 43, d, Mode::Materialized);
    let back = p
        .inverse_transform(gpu, &p.transform(gpu, &x).unwrap())
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    assert!(
        rel(&back, &x_host) < 1e-4,
        "srht Rᵀ R x: {}",
        rel(&back, &x_host)
    );
    let one = p
        .inverse_transform(gpu, &Tensor::zeros(gpu, &[128]).unwrap())
        .unwrap();
    assert_eq!(one.shape(), &[d]);
    let e = p
        .inverse_transform(gpu, &Tensor::zeros(gpu, &[2, 127]).unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("128") && e.to_string().contains("127"),
        "{e}"
    );
}

#[test]
fn inverse_transform_of_a_linear_kind_is_the_product_with_r() {
    // x̂ = y R against the f64 product with the matrix's own values, whichever layout the
    // adapter keeps R in (transposed where its matmul prefers it): f32 rounding of 45-term
    // sums, ~1e-7.
    let gpu = gpu();
    let (batch, d, n_out) = (3, 77, 45);
    for kind in [Kind::Gaussian, Kind::Rademacher] {
        let p = fitted(kind, n_out, 44, d, Mode::Materialized);
        let y_host = random(batch * n_out, 45);
        let y = Tensor::from_slice(gpu, &y_host, &[batch, n_out]).unwrap();
        let got = p.inverse_transform(gpu, &y).unwrap();
        assert_eq!(got.shape(), &[batch, d]);
        let r = p.matrix(gpu).unwrap().re.to_vec(gpu).unwrap();
        let want = speckle::cpu::matmul::matmul(&speckle::cpu::matmul::Problem::new(
            &y_host,
            &[batch, n_out],
            &r,
            &[n_out, d],
        ))
        .unwrap();
        common::assert_rel_close(
            &format!("{} y R", kind.name()),
            &got.to_vec(gpu).unwrap(),
            &want,
            1e-5,
        );
    }
}

#[test]
fn a_camera_records_the_optical_intensities() {
    use speckle::ops::project_finish::Camera;
    // Without noise the camera is round(gain · y) clamped to 0 ..= 2^bits − 1, applied to the
    // camera-less intensities: equal except where gain · y falls within f32 rounding of a
    // half-integer (none expected here; at most one tolerated).
    let gpu = gpu();
    let (batch, d, n_out) = (2, 30, 200);
    let x = random(batch * d, 50);
    let exact = transform(
        gpu,
        &fitted(Kind::Optical, n_out, 51, d, Mode::Materialized),
        &x,
        batch,
    );
    let camera = Camera {
        gain: 3.0,
        bits: 6,
        noise: None,
    };
    let mut p = Projection::new(Kind::Optical, n_out, 51);
    p.camera = Some(camera);
    p.fit(d).unwrap();
    let recorded = transform(gpu, &p, &x, batch);
    let mut differ = 0;
    for (r, e) in recorded.iter().zip(&exact) {
        let want = (3.0 * e).round().clamp(0.0, 63.0);
        assert!((r - want).abs() <= 1.0, "recorded {r}, want {want}");
        differ += usize::from(*r != want);
    }
    assert!(differ <= 1, "{differ} values differ");
    assert!(recorded.contains(&63.0), "bright outputs saturate");
    // A camera on a linear kind is refused.
    let mut linear = Projection::new(Kind::Gaussian, 8, 1);
    linear.camera = Some(camera);
    assert!(linear.fit(4).unwrap_err().to_string().contains("camera"));
}

#[test]
fn f16_precision_computes_the_products_of_the_rounded_matrix_and_inputs() {
    // The f16 path must equal the exact product of the f16 values it holds (the GPU's rounding
    // of R and of x) to f32 accumulation accuracy, 1e-5 for d = 64 terms (see tests/matmul.rs);
    // and it stays within f16's rounding of the f32 result: each entry carries a relative
    // error <= 2^-11, about 2^-11 / sqrt(3) ~ 3e-4 rms, so 2e-3 on the output norm.
    let gpu = gpu();
    let (batch, d, n_out) = (5, 64, 96);
    for kind in [Kind::Gaussian, Kind::Optical] {
        let mut p = Projection::new(kind, n_out, 21);
        p.precision = Precision::F16;
        p.fit(d).unwrap();
        // Binary inputs (an optical processing unit's) are exact in f16.
        let x: Vec<f32> = random(batch * d, 22)
            .into_iter()
            .map(|v| f32::from(u8::from(v > 0.0)))
            .collect();
        let got = transform(gpu, &p, &x, batch);
        let m = p.matrix(gpu).unwrap();
        let (re16, im16) = m.half.as_ref().expect("f16 precision keeps an f16 matrix");
        let re = re16.to_vec(gpu).unwrap();
        let im = im16.as_ref().map(|t| t.to_vec(gpu).unwrap());
        let mut want = Vec::with_capacity(batch * n_out);
        for b in 0..batch {
            for i in 0..n_out {
                let row = |r: &[f32]| -> f64 {
                    (0..d)
                        .map(|j| f64::from(r[i * d + j]) * f64::from(x[b * d + j]))
                        .sum()
                };
                let real = row(&re);
                want.push(match &im {
                    Some(im) => real * real + row(im).powi(2),
                    None => real,
                });
            }
        }
        let err =
            speckle::cpu::relative_error(&got.iter().map(|&v| v as f32).collect::<Vec<_>>(), &want);
        assert!(
            err < 1e-5,
            "{}: f16 path vs its own f16 values: {err:.2e}",
            kind.name()
        );
        let mut exact = Projection::new(kind, n_out, 21);
        exact.fit(d).unwrap();
        let f32_result = transform(gpu, &exact, &x, batch);
        let err = speckle::cpu::relative_error(
            &got.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            &f32_result,
        );
        assert!(
            err < 2e-3,
            "{}: f16 vs f32 precision: {err:.2e}",
            kind.name()
        );
    }
    // What f16 precision refuses, with the reason.
    for (mode, kind, d, n_out, expected) in [
        (Mode::MatrixFree, Kind::Gaussian, 64, 96, "matrix-free"),
        (Mode::Materialized, Kind::Srht, 64, 96, "structured"),
        (Mode::Materialized, Kind::Gaussian, 62, 96, "multiples of 4"),
    ] {
        let mut p = Projection::new(kind, n_out, 1);
        p.mode = mode;
        p.precision = Precision::F16;
        let e = p.fit(d).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn one_projection_serves_two_devices_with_a_matrix_on_each() {
    // The materialized matrix is cached per device: a second device (its own wgpu instance,
    // whose buffer ids may equal the first's) gets its own, and the results agree.
    let other = common::gpu_with_binding_limit(1 << 20);
    // The optical kind both with its two matrices and with the fused pass's paired one.
    for (kind, fusion) in [
        (Kind::Gaussian, Fusion::Auto),
        (Kind::Optical, Fusion::Unfused),
        (Kind::Optical, Fusion::Fused),
    ] {
        let mut p = fitted(kind, 24, 5, 16, Mode::Materialized);
        p.fused = fusion;
        let x = random(3 * 16, 6);
        let first = transform(gpu(), &p, &x, 3);
        let second = transform(&other, &p, &x, 3);
        let again = transform(gpu(), &p, &x, 3);
        for (a, b) in first.iter().zip(&second) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{kind:?} {fusion:?}: {a} vs {b}"
            );
        }
        assert_eq!(first, again, "{kind:?} {fusion:?}");
    }
}
