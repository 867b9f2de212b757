//! Random tensors: GPU values against the CPU reference, and the statistics of each
//! distribution over a million draws.
//!
//! Tolerances: for n independent draws, the sample mean of a variable with variance σ² is
//! within 5σ/sqrt(n) of its expectation except with probability < 1e-6; with n = 2²⁰,
//! 5/sqrt(n) ≈ 0.005. The seeds are fixed, so the tests are deterministic; the bounds say they
//! would pass for almost any seed.

mod common;

use common::{assert_rel_close, gpu};
use speckle::cpu::random_fill::random_fill as reference;
use speckle::ops::random_fill::{self, Distribution, RandomSpec};

const N: usize = 1 << 20;

fn draws(distribution: Distribution, seed: u64) -> Vec<f64> {
    let spec = RandomSpec {
        distribution,
        ..RandomSpec::gaussian(seed, 0)
    };
    let t = random_fill::run(gpu(), &[1024, 1024], &spec).unwrap();
    t.to_vec(gpu())
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn values_match_the_cpu_reference() {
    let gpu = gpu();
    for distribution in [
        Distribution::Uniform,
        Distribution::UniformSymmetric,
        Distribution::Gaussian,
        Distribution::Rademacher,
        Distribution::Sparse { p: 1.0 / 64.0 },
    ] {
        let spec = RandomSpec {
            distribution,
            scale: 0.25,
            seed: 77,
            stream: 2,
            row0: 1000,
        };
        let got = random_fill::run(gpu, &[31, 33], &spec)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        let want = reference(&spec, 31, 33);
        // Uniform (both), signs and sparse are exact (the scale is a power of two); Gaussians
        // within f32 log/cos/sin accuracy.
        let tol = if distribution == Distribution::Gaussian {
            1e-6
        } else {
            0.0
        };
        assert_rel_close(&format!("{distribution:?}"), &got, &want, tol);
    }
}

#[test]
fn gaussian_draws_have_mean_zero_and_variance_one() {
    let v = draws(Distribution::Gaussian, 1);
    assert_eq!(v.len(), N);
    let m = mean(&v);
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / N as f64;
    let kurtosis = v.iter().map(|x| (x - m).powi(4)).sum::<f64>() / N as f64 / (var * var);
    assert!(m.abs() < 0.005, "mean {m}");
    // var has standard deviation sqrt(2/n) ≈ 0.0014; kurtosis sqrt(24/n) ≈ 0.005.
    assert!((var - 1.0).abs() < 0.007, "variance {var}");
    assert!((kurtosis - 3.0).abs() < 0.025, "kurtosis {kurtosis}");
    // Tails: P(|z| > 3) = 0.0027, standard deviation of the count sqrt(n·0.0027) ≈ 53.
    let tail = v.iter().filter(|x| x.abs() > 3.0).count() as f64;
    assert!(
        (tail - 0.0027 * N as f64).abs() < 5.0 * 53.0,
        "{tail} draws beyond 3 sigma"
    );
}

#[test]
fn uniform_rademacher_and_sparse_frequencies() {
    let u = draws(Distribution::Uniform, 2);
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    // Uniform: mean 1/2, σ² = 1/12.
    assert!((mean(&u) - 0.5).abs() < 5.0 * (1.0f64 / 12.0).sqrt() / (N as f64).sqrt());

    // Symmetric uniform: in [-1, 1), mean 0, σ² = 1/3; the sample variance of a uniform has
    // standard deviation sqrt((E[x⁴] − σ⁴)/n) = sqrt((1/5 − 1/9)/n) ≈ 2.9e-4.
    let w = draws(Distribution::UniformSymmetric, 7);
    assert!(w.iter().all(|&x| (-1.0..1.0).contains(&x)));
    // Both ends are reached: P(no draw within 0.001 of an end) = 0.9995^n ≈ e^-524.
    let (lo, hi) = w
        .iter()
        .fold((1.0f64, -1.0f64), |(l, h), &x| (l.min(x), h.max(x)));
    assert!(lo < -0.999 && hi > 0.999, "range [{lo}, {hi}]");
    assert!(mean(&w).abs() < 5.0 * (1.0f64 / 3.0).sqrt() / (N as f64).sqrt());
    let var = w.iter().map(|x| x * x).sum::<f64>() / N as f64;
    assert!((var - 1.0 / 3.0).abs() < 5.0 * 2.9e-4, "variance {var}");
    // The same words as the [0, 1) uniform: 2u − 1 exactly.
    let u2 = draws(Distribution::Uniform, 7);
    assert!(w.iter().zip(&u2).all(|(&x, &y)| x == 2.0 * y - 1.0));

    let s = draws(Distribution::Rademacher, 3);
    assert!(s.iter().all(|&x| x == 1.0 || x == -1.0));
    assert!(mean(&s).abs() < 0.005);

    let p = 1.0 / 32.0;
    let sp = draws(Distribution::Sparse { p }, 4);
    let plus = sp.iter().filter(|&&x| x == 1.0).count() as f64 / N as f64;
    let minus = sp.iter().filter(|&&x| x == -1.0).count() as f64 / N as f64;
    let zero = sp.iter().filter(|&&x| x == 0.0).count() as f64 / N as f64;
    assert_eq!(plus + minus + zero, 1.0);
    // Each frequency has standard deviation sqrt(p(1 − p)/n) ≈ 1.7e-4.
    let sd = (f64::from(p) * (1.0 - f64::from(p)) / N as f64).sqrt();
    assert!((plus - f64::from(p)).abs() < 5.0 * sd, "P(+1) = {plus}");
    assert!((minus - f64::from(p)).abs() < 5.0 * sd, "P(-1) = {minus}");
}

#[test]
fn seeds_and_streams_are_independent_and_repeatable() {
    let a = draws(Distribution::Gaussian, 5);
    let again = draws(Distribution::Gaussian, 5);
    let other = draws(Distribution::Gaussian, 6);
    assert_eq!(a, again, "same seed, same values");
    let equal = a.iter().zip(&other).filter(|(x, y)| x == y).count();
    assert!(equal < 10, "different seeds share {equal} values");
    // Correlation of two seeds: standard deviation 1/sqrt(n) ≈ 0.001.
    let corr = a.iter().zip(&other).map(|(x, y)| x * y).sum::<f64>() / N as f64;
    assert!(corr.abs() < 0.005, "correlation {corr}");
}

#[test]
fn bad_specs_are_errors() {
    let gpu = gpu();
    let sparse = RandomSpec {
        distribution: Distribution::Sparse { p: 0.75 },
        ..RandomSpec::gaussian(1, 0)
    };
    assert!(random_fill::run(gpu, &[4, 4], &sparse).is_err());
    let nan_scale = RandomSpec {
        scale: f32::NAN,
        ..RandomSpec::gaussian(1, 0)
    };
    assert!(random_fill::run(gpu, &[4, 4], &nan_scale).is_err());
}
