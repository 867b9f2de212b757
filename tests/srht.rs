//! The structured projection against its f64 reference, and the exact norm identities that
//! orthogonality gives (one whole block: ‖y‖ = ‖x‖; optical: mean y_i = ‖x‖²).
//!
//! Tolerance: three fast Walsh–Hadamard transforms of length p add log2(p) rounding steps
//! each, relative error ~ 3 log2(p) · 2⁻²⁴ per value: 1e-5 covers p up to 2²⁰.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random};
use speckle::cpu::srht::{fwht, srht as reference};
use speckle::ops::srht::{self, padded_len};
use speckle::{Gpu, Tensor};

fn run(gpu: &Gpu, x_host: &[f32], batch: usize, d: usize, n_out: usize, optical: bool) -> Vec<f32> {
    let x = Tensor::from_slice(gpu, x_host, &[batch, d]).unwrap();
    let y = Tensor::filled(gpu, &[batch, n_out], f32::NAN).unwrap();
    gpu.execute(&srht::plan(gpu, &x, &y, n_out, 31, optical).unwrap())
        .unwrap();
    y.to_vec(gpu).unwrap()
}

#[test]
fn cpu_fwht_is_the_hadamard_transform() {
    // H applied twice is p times the identity; H of a unit vector is a row of ±1.
    let mut v: Vec<f64> = (0..16).map(|i| f64::from(i) - 3.5).collect();
    let original = v.clone();
    fwht(&mut v);
    fwht(&mut v);
    for (a, b) in v.iter().zip(&original) {
        assert!((a / 16.0 - b).abs() < 1e-12);
    }
    let mut e = vec![0.0; 8];
    e[0] = 1.0;
    fwht(&mut e);
    assert_eq!(e, vec![1.0; 8]);
}

#[test]
fn matches_the_reference_on_awkward_shapes() {
    let gpu = gpu();
    for &(batch, d, n_out) in &[
        (1, 1, 1),
        (1, 1, 5),
        (2, 7, 3),
        (3, 33, 64),
        (2, 33, 150),
        (1, 250, 700),
        (5, 129, 40),
    ] {
        let x = random(batch * d, (d * 7 + n_out) as u64);
        for optical in [false, true] {
            let got = run(gpu, &x, batch, d, n_out, optical);
            let want = reference(&x, batch, d, n_out, 31, optical);
            assert_rel_close(
                &format!("srht {batch}x{d} -> {n_out} optical={optical}"),
                &got,
                &want,
                1e-5,
            );
        }
    }
}

#[test]
fn a_whole_block_is_orthogonal() {
    let gpu = gpu();
    let (batch, d) = (4, 100);
    let p = padded_len(d);
    let x = random(batch * d, 3);
    let y = run(gpu, &x, batch, d, p, false);
    let intensities = run(gpu, &x, batch, d, p, true);
    for b in 0..batch {
        let nx: f64 = x[b * d..(b + 1) * d]
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum();
        let ny: f64 = y[b * p..(b + 1) * p]
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum();
        assert!(
            (ny / nx - 1.0).abs() < 1e-5,
            "input {b}: ‖y‖²/‖x‖² = {}",
            ny / nx
        );
        let mean: f64 = intensities[b * p..(b + 1) * p]
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / p as f64;
        assert!(
            (mean / nx - 1.0).abs() < 1e-5,
            "input {b}: mean intensity / ‖x‖² = {}",
            mean / nx
        );
    }
}

#[test]
fn inputs_are_grouped_to_fit_one_binding() {
    // 16 KiB bindings hold ~4000 values: 6 inputs of d = 300 (p = 512, 2 blocks for 900
    // outputs, 2 parts when optical) go through in groups of 3 (linear) or 1 (optical).
    let gpu = gpu_with_binding_limit(16384);
    let (batch, d, n_out) = (6, 300, 900);
    let x = random(batch * d, 4);
    for optical in [false, true] {
        let got = run(&gpu, &x, batch, d, n_out, optical);
        assert_rel_close(
            "grouped srht",
            &got,
            &reference(&x, batch, d, n_out, 31, optical),
            1e-5,
        );
    }
    let too_big = Tensor::zeros(&gpu, &[1, 5000]).unwrap();
    let y = Tensor::zeros(&gpu, &[1, 10]).unwrap();
    let e = srht::plan(&gpu, &too_big, &y, 10, 1, false).unwrap_err();
    assert!(e.to_string().contains("5000"), "{e}");
}
