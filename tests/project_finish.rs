//! The projection non-linearities against their f64 reference.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random, random_scaled};
use speckle::cpu::project_finish::{camera as camera_reference, project_finish as reference};
use speckle::ops::project_finish::{self, Camera, Finish};
use speckle::{Gpu, Tensor};

fn check(gpu: &Gpu, finish: Finish, batch: usize, n_out: usize) {
    let re_host = random_scaled(batch * n_out, 1, 3.0);
    let im_host = random_scaled(batch * n_out, 2, 3.0);
    let norms_host: Vec<f32> = (0..batch).map(|b| 0.5 + b as f32).collect();
    let re = Tensor::from_slice(gpu, &re_host, &[batch, n_out]).unwrap();
    let im = Tensor::from_slice(gpu, &im_host, &[batch, n_out]).unwrap();
    let norms = Tensor::from_slice(gpu, &norms_host, &[batch]).unwrap();
    let plan = project_finish::plan(
        gpu,
        finish,
        &re,
        (finish == Finish::Optical).then_some(&im),
        (finish == Finish::Positive).then_some(&norms),
        99,
        0.75,
    )
    .unwrap();
    gpu.execute(&plan).unwrap();
    let widen = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let want = reference(
        finish,
        &widen(&re_host),
        &widen(&im_host),
        &widen(&norms_host),
        n_out,
        99,
        0.75,
    );
    // One f32 evaluation of cos or exp per output: a few ulp.
    assert_rel_close(
        &format!("{finish:?}"),
        &re.to_vec(gpu).unwrap(),
        &want,
        1e-5,
    );
}

#[test]
fn every_finish_matches_the_reference() {
    for finish in [
        Finish::Optical,
        Finish::Fourier,
        Finish::Relu,
        Finish::Positive,
    ] {
        check(gpu(), finish, 3, 257);
    }
}

#[test]
fn outputs_larger_than_one_binding_are_chunked() {
    let gpu = gpu_with_binding_limit(1024);
    check(&gpu, Finish::Fourier, 4, 1000);
    check(&gpu, Finish::Optical, 2, 999);
}

#[test]
fn missing_inputs_are_errors() {
    let gpu = gpu();
    let re = Tensor::zeros(gpu, &[2, 3]).unwrap();
    assert!(project_finish::plan(gpu, Finish::Optical, &re, None, None, 1, 1.0).is_err());
    assert!(project_finish::plan(gpu, Finish::Positive, &re, None, None, 1, 1.0).is_err());
}

/// Runs the camera on `y_host` (`[batch, n_out]`) and returns the output.
fn run_camera(gpu: &Gpu, y_host: &[f32], shape: &[usize], camera: &Camera) -> Vec<f32> {
    let y = Tensor::from_slice(gpu, y_host, shape).unwrap();
    gpu.execute(&project_finish::plan_camera(gpu, &y, camera).unwrap())
        .unwrap();
    y.to_vec(gpu).unwrap()
}

/// Intensities over [-10, 90): some negative, most not integers (so an output equal to its
/// input means "not written": the camera works in place, and its outputs are integers).
fn intensities(len: usize, seed: u64) -> Vec<f32> {
    random(len, seed)
        .into_iter()
        .map(|u| 40.0 + 50.0 * u)
        .collect()
}

/// Compares quantized camera outputs with the f64 reference.
///
/// The GPU computes v = λ + √λ·z in f32 and the reference in f64; they differ by at most
/// δ ≈ 3u·λ (u = 2⁻²⁴: gain·y, the product and the sum each round once) plus √λ·|z|·2e-6 (the
/// GPU's log, cos and sin make z good to about 1e-6 relative; |z| < 5.8 by construction).
/// Rounding to an integer then differs only where v lies within δ of a .5 boundary, and by
/// exactly 1. With v spread over many integers that happens for a fraction ≈ 2δ of the
/// outputs. `lambda_max` bounds λ; the test allows four times the expected count plus 2
/// (for small outputs) and requires every other output to be equal.
fn assert_quantized_close(what: &str, out: &[f32], want: &[f64], lambda_max: f64) {
    assert_eq!(out.len(), want.len(), "{what}: lengths differ");
    let delta = 3.0 * lambda_max / 16_777_216.0 + lambda_max.sqrt() * 5.8 * 2e-6;
    let allowed = 2 + (4.0 * 2.0 * delta * out.len() as f64) as usize;
    let mut mismatches = 0;
    for (i, (&o, &w)) in out.iter().zip(want).enumerate() {
        let diff = (f64::from(o) - w).abs();
        assert!(
            diff <= 1.0,
            "{what}: flat index {i}: got {o}, expected {w} (at most 1 apart at a .5 boundary)"
        );
        if diff != 0.0 {
            mismatches += 1;
        }
    }
    assert!(
        mismatches <= allowed,
        "{what}: {mismatches} of {} outputs differ by 1; at most {allowed} may \
         (2·δ·n with δ = {delta:.2e}, times 4, plus 2)",
        out.len()
    );
}

#[test]
fn camera_matches_the_reference() {
    let gpu = gpu();
    // gain 3.7 maps y < 90 to λ < 333: 8 bits saturate at 255 near the top; 12 bits with gain
    // 40 reach λ = 3600 below 4095.
    for (gain, bits) in [(3.7f32, 8u32), (40.0, 12)] {
        for noise in [None, Some(7)] {
            for (batch, n_out) in [(3, 257), (1, 1), (2, 7)] {
                let camera = Camera { gain, bits, noise };
                let y = intensities(batch * n_out, 5 + n_out as u64);
                let out = run_camera(gpu, &y, &[batch, n_out], &camera);
                assert_quantized_close(
                    &format!("{camera} on [{batch}, {n_out}]"),
                    &out,
                    &camera_reference(&y, n_out, &camera),
                    f64::from(gain) * 90.0,
                );
            }
        }
    }
}

#[test]
fn camera_outputs_larger_than_one_binding_are_chunked() {
    let gpu = gpu_with_binding_limit(1024);
    let camera = Camera {
        gain: 2.9,
        bits: 10,
        noise: Some(99),
    };
    let (batch, n_out) = (4, 1000);
    let y_host = intensities(batch * n_out, 8);
    let y = Tensor::from_slice(&gpu, &y_host, &[batch, n_out]).unwrap();
    let plan = project_finish::plan_camera(&gpu, &y, &camera).unwrap();
    assert!(plan.len() > 1, "1 KiB bindings must split 4000 values");
    gpu.execute(&plan).unwrap();
    assert_quantized_close(
        "chunked camera",
        &y.to_vec(&gpu).unwrap(),
        &camera_reference(&y_host, n_out, &camera),
        2.9 * 90.0,
    );
}

#[test]
fn camera_saturates_and_keeps_zero_and_negative_dark() {
    let gpu = gpu();
    // f32::MAX · gain overflows f32: the cap on λ keeps the arithmetic finite.
    let y = [1e30, f32::MAX, 300.0, 0.0, -0.0, -5.0, -1e30, 1e-30];
    let want = [255.0, 255.0, 255.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    for noise in [None, Some(3)] {
        let camera = Camera {
            gain: 2.0,
            bits: 8,
            noise,
        };
        let out = run_camera(gpu, &y, &[2, 4], &camera);
        assert_eq!(out, want, "{camera}");
        let reference: Vec<f32> = camera_reference(&y, 4, &camera)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        assert_eq!(reference, want, "reference, {camera}");
    }
}

#[test]
fn shot_noise_has_the_poisson_mean_and_variance() {
    // λ = 2.5 · 40 = 100 everywhere, 10^5 outputs. out = round(λ + 10 z): by Sheppard's
    // correction (exact to far below the tolerance for a Gaussian of σ = 10 ≫ 1), the mean of
    // out − λ is 0 and the variance λ + 1/12. Standard errors: σ/√n = 10/√1e5 = 0.032 for the
    // mean; σ²·√(2/(n−1)) = 0.45 for the variance. Tolerances: 5 standard errors (a fixed seed,
    // so the test is deterministic; 5σ keeps it robust to changing the seed).
    let gpu = gpu();
    let (batch, n_out) = (100, 1000);
    let n = (batch * n_out) as f64;
    let y = vec![40.0f32; batch * n_out];
    let camera = Camera {
        gain: 2.5,
        bits: 8,
        noise: Some(2024),
    };
    let out = run_camera(gpu, &y, &[batch, n_out], &camera);
    let mean = out.iter().map(|&v| f64::from(v) - 100.0).sum::<f64>() / n;
    let var = out
        .iter()
        .map(|&v| (f64::from(v) - 100.0 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    assert!(
        mean.abs() <= 5.0 * 10.0 / n.sqrt(),
        "mean of out − λ is {mean:.4}, expected 0 ± {:.4}",
        5.0 * 10.0 / n.sqrt()
    );
    let want = 100.0 + 1.0 / 12.0;
    let tol = 5.0 * want * (2.0 / (n - 1.0)).sqrt();
    assert!(
        (var - want).abs() <= tol,
        "variance {var:.3}, expected {want:.3} ± {tol:.3}"
    );
    // Without noise every output is λ.
    let quiet = Camera {
        noise: None,
        ..camera
    };
    let out = run_camera(gpu, &y, &[batch, n_out], &quiet);
    assert!(out.iter().all(|&v| v == 100.0), "noiseless λ = 100");
}

#[test]
fn camera_noise_is_reproducible_and_seeded() {
    let gpu = gpu();
    let (batch, n_out) = (3, 500);
    let y = intensities(batch * n_out, 11);
    let camera = |seed| Camera {
        gain: 3.0,
        bits: 8,
        noise: Some(seed),
    };
    let bytes = |out: Vec<f32>| out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let a = bytes(run_camera(gpu, &y, &[batch, n_out], &camera(5)));
    let b = bytes(run_camera(gpu, &y, &[batch, n_out], &camera(5)));
    assert_eq!(a, b, "the same seed must give identical bytes");
    let c = bytes(run_camera(gpu, &y, &[batch, n_out], &camera(6)));
    // λ averages about 120 here (σ ≈ 11): two independent draws round to the same integer
    // for a few percent of the outputs only; most must differ.
    let differ = a.iter().zip(&c).filter(|(x, y)| x != y).count();
    assert!(
        differ > a.len() / 2,
        "seeds 5 and 6 differ in only {differ} of {} outputs",
        a.len()
    );
    // Every frame (batch row) gets fresh noise: the same intensities in two rows give
    // different outputs.
    let row = intensities(n_out, 12);
    let twice: Vec<f32> = row.iter().chain(&row).copied().collect();
    let out = run_camera(gpu, &twice, &[2, n_out], &camera(5));
    let same = (0..n_out).filter(|&i| out[i] == out[n_out + i]).count();
    assert!(
        same < n_out / 2,
        "rows 0 and 1 share {same} of {n_out} outputs"
    );
}

#[test]
fn camera_parse_and_display() {
    assert_eq!(Camera::parse("").unwrap(), Camera::default());
    assert_eq!(
        Camera::default(),
        Camera {
            gain: 1.0,
            bits: 8,
            noise: None
        }
    );
    assert_eq!(
        Camera::parse("noise=5").unwrap(),
        Camera {
            noise: Some(5),
            ..Camera::default()
        }
    );
    assert_eq!(
        Camera::parse(" bits = 12 , gain=0.5 ").unwrap(),
        Camera {
            gain: 0.5,
            bits: 12,
            noise: None
        }
    );
    for camera in [
        Camera::default(),
        Camera {
            gain: 0.1,
            bits: 16,
            noise: Some(u64::MAX),
        },
        Camera {
            gain: 3.7e-5,
            bits: 1,
            noise: Some(0),
        },
    ] {
        let text = camera.to_string();
        assert_eq!(Camera::parse(&text).unwrap(), camera, "{text}");
    }
    assert_eq!(
        Camera {
            gain: 2.0,
            bits: 10,
            noise: Some(42)
        }
        .to_string(),
        "gain=2,bits=10,noise=42"
    );
    for (spec, words) in [
        (
            "gain=2,foo=1",
            &["\"foo=1\"", "unknown key", "gain, bits, noise"][..],
        ),
        ("gain=2,bits=8,gain=3", &["\"gain=3\"", "repeats", "gain"]),
        ("gain=abc", &["\"abc\"", "not a number"]),
        ("gain=0", &["gain", "finite and > 0", "got 0"]),
        ("gain=-1", &["gain", "got -1"]),
        ("gain=inf", &["gain", "got inf"]),
        ("gain=NaN", &["gain", "got NaN"]),
        ("bits=0", &["bits", "1..=16", "got 0"]),
        ("bits=17", &["bits", "1..=16", "got 17"]),
        ("bits=8.5", &["\"8.5\"", "whole number"]),
        ("noise=-1", &["\"-1\"", "noise seed"]),
        ("noise", &["\"noise\"", "key=value"]),
        ("gain=2,", &["\"\"", "key=value"]),
    ] {
        let e = Camera::parse(spec)
            .expect_err(&format!("{spec:?} must be refused"))
            .to_string();
        for word in words {
            assert!(e.contains(word), "{spec:?}: {e:?} should mention {word}");
        }
    }
}

#[test]
fn invalid_cameras_are_errors() {
    let gpu = gpu();
    let y = Tensor::zeros(gpu, &[2, 3]).unwrap();
    for camera in [
        Camera {
            gain: 0.0,
            ..Camera::default()
        },
        Camera {
            gain: f32::NAN,
            ..Camera::default()
        },
        Camera {
            bits: 0,
            ..Camera::default()
        },
        Camera {
            bits: 17,
            ..Camera::default()
        },
    ] {
        assert!(
            project_finish::plan_camera(gpu, &y, &camera).is_err(),
            "{camera:?}"
        );
    }
}
