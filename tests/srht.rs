//! The structured projection against its f64 reference, and the exact norm identities that
//! orthogonality gives (one whole block: ‖y‖ = ‖x‖; optical: mean y_i = ‖x‖²); and the
//! transpose's block sums kept within the adapter's loop limit.
//!
//! Tolerance: three fast Walsh–Hadamard transforms of length p add log2(p) rounding steps
//! each, relative error ~ 3 log2(p) · 2⁻²⁴ per value: 1e-5 covers p up to 2²⁰.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, random,
};
use speckle::cpu::srht::{fwht, srht as reference, srht_transpose};
use speckle::ops::srht::{self, padded_len, LocalConfig};
use speckle::{Gpu, GpuOptions, Tensor, Tuning};

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
fn transforms_longer_than_a_tile_end_with_one_dispatch_per_pass() {
    // The passes of each H with strides below the local tile (at most 4,096 values) run in
    // one workgroup-memory dispatch, the rest up to four per dispatch. With a tile of 4,096:
    // p = 8,192, 16,384, 32,768 and 65,536 take one dispatch of 1, 2, 3 and 4 passes after
    // the tile, 131,072 one of 4 and one of 1; forward (both kinds) and transposed. (The
    // shorter shapes of the other tests take rounds of 1 to 4 passes inside the tile.)
    let gpu = gpu();
    for &(batch, d, n_out) in &[
        (2, 5000, 9000),
        (1, 10_000, 20_000),
        (1, 20_000, 40_000),
        (1, 40_000, 70_000),
        (1, 70_000, 70_000),
    ] {
        let x = random(batch * d, d as u64);
        for optical in [false, true] {
            assert_rel_close(
                &format!("srht {batch}x{d} -> {n_out} optical={optical}"),
                &run(gpu, &x, batch, d, n_out, optical),
                &reference(&x, batch, d, n_out, 31, optical),
                1e-5,
            );
        }
        let y = random(batch * n_out, n_out as u64);
        assert_rel_close(
            &format!("srht transpose {batch}x{n_out} -> {d}"),
            &run_transpose(gpu, &y, batch, d, n_out),
            &srht_transpose(&y, batch, d, n_out, 31),
            1e-5,
        );
    }
}

#[test]
fn every_local_configuration_matches_the_reference() {
    // What `speckle tune` may choose: every tile, thread count and layout this adapter
    // accepts, on p = 8,192, where the largest tile holds a whole transform and the smallest
    // (256 values) leaves five passes to the dispatches after it; both kinds, outputs
    // poisoned.
    let gpu = gpu();
    let (batch, d, n_out) = (2, 5000, 9000);
    let configs = LocalConfig::candidates(gpu, padded_len(d));
    let memory = gpu.limits().max_compute_workgroup_storage_size as usize;
    let fits = |padded: bool| configs.iter().any(|c| c.tile == 8192 && c.padded == padded);
    assert_eq!(fits(false), memory >= 8192 * 4, "{configs:?}");
    assert_eq!(fits(true), memory >= 8704 * 4, "{configs:?}");
    for padded in [false, true] {
        assert!(
            configs.iter().any(|c| c.tile == 256 && c.padded == padded),
            "{configs:?}"
        );
    }
    let x_host = random(batch * d, 77);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, d]).unwrap();
    for optical in [false, true] {
        let want = reference(&x_host, batch, d, n_out, 31, optical);
        for &config in &configs {
            assert_eq!(LocalConfig::parse(&config.name()).unwrap(), config);
            let y = Tensor::filled(gpu, &[batch, n_out], f32::NAN).unwrap();
            gpu.execute(&srht::plan_with(gpu, &x, &y, n_out, 31, optical, config).unwrap())
                .unwrap();
            assert_rel_close(
                &format!("srht {} optical={optical}", config.name()),
                &y.to_vec(gpu).unwrap(),
                &want,
                1e-5,
            );
        }
    }
}

#[test]
fn a_local_configuration_that_cannot_run_is_refused_with_its_numbers() {
    let gpu = gpu();
    for bad in [
        "tile100-wg8",
        "tile256-wg6",
        "tile256",
        "wg8-tile256",
        "tile-wg8",
        "tile256-wg8-padded",
    ] {
        let e = LocalConfig::parse(bad).unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains("tileT-wgW[-pad]"), "{e}");
    }
    let padded = LocalConfig::parse("tile512-wg16-pad").unwrap();
    assert!(padded.padded && padded.words() == 544);
    let config = |tile, threads| LocalConfig {
        tile,
        threads,
        padded: false,
    };
    let refusal = |c: LocalConfig, p: usize| c.check(gpu, p).unwrap_err().to_string();
    // Past the largest tile, longer than the transform, shorter than the least.
    let e = refusal(config(16_384, 64), 1 << 20);
    assert!(
        e.contains("tile16384-wg64") && e.contains("values for transforms of 1048576"),
        "{e}"
    );
    let e = refusal(config(2048, 64), 1024);
    assert!(e.contains("64 to 1024 values"), "{e}");
    assert!(refusal(config(32, 8), 1024).contains("64 to"));
    // A padded tile takes a sixteenth more memory: on an adapter with 32 KiB, 8,192 values fit
    // unpadded only.
    if gpu.limits().max_compute_workgroup_storage_size == 32768 {
        assert!(config(8192, 64).check(gpu, 1 << 20).is_ok());
        let e = refusal(
            LocalConfig {
                padded: true,
                ..config(8192, 64)
            },
            1 << 20,
        );
        assert!(e.contains("padded tile must hold 64 to 4096 values"), "{e}");
    }
    // More threads than a quarter of the tile.
    let e = refusal(config(256, 128), 1024);
    assert!(e.contains("1 to 64 threads"), "{e}");
    // plan_with refuses before anything runs.
    let x = Tensor::zeros(gpu, &[1, 1000]).unwrap();
    let y = Tensor::zeros(gpu, &[1, 1000]).unwrap();
    let e = srht::plan_with(gpu, &x, &y, 1000, 1, false, config(2048, 8)).unwrap_err();
    assert!(e.to_string().contains("64 to 1024 values"), "{e}");
    // The built-in configuration is one of the candidates wherever a tile applies.
    for p in [64, 1024, 1 << 16] {
        let builtin = LocalConfig::builtin(gpu, p).unwrap().unwrap();
        assert!(builtin.check(gpu, p).is_ok(), "{builtin:?}");
    }
    assert_eq!(LocalConfig::builtin(gpu, 32).unwrap(), None);
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
    // One padded row (p = 8192 values) larger than the binding cannot be split.
    let too_big = Tensor::zeros(&gpu, &[1, 5000]).unwrap();
    let y = Tensor::zeros(&gpu, &[1, 10]).unwrap();
    let e = srht::plan(&gpu, &too_big, &y, 10, 1, false).unwrap_err();
    assert!(e.to_string().contains("8192"), "{e}");
}

fn run_transpose(gpu: &Gpu, y_host: &[f32], batch: usize, d: usize, n_out: usize) -> Vec<f32> {
    let y = Tensor::from_slice(gpu, y_host, &[batch, n_out]).unwrap();
    let x = Tensor::filled(gpu, &[batch, d], f32::NAN).unwrap();
    gpu.execute(&srht::plan_transpose(gpu, &y, &x, n_out, 31).unwrap())
        .unwrap();
    x.to_vec(gpu).unwrap()
}

#[test]
fn the_transpose_matches_the_reference_and_is_the_adjoint() {
    let gpu = gpu();
    for &(batch, d, n_out) in &[
        (1, 1, 1),
        (2, 7, 3),
        (3, 33, 64),
        (2, 33, 150),
        (1, 250, 700),
    ] {
        let y = random(batch * n_out, (d * 5 + n_out) as u64);
        let got = run_transpose(gpu, &y, batch, d, n_out);
        assert_rel_close(
            &format!("srht transpose {batch}x{n_out} -> {d}"),
            &got,
            &srht_transpose(&y, batch, d, n_out, 31),
            1e-5,
        );
        // <R x, y> = <x, R^T y>, from the CPU forward reference alone.
        let x = random(batch * d, 9);
        let rx = reference(&x, batch, d, n_out, 31, false);
        let lhs: f64 = rx.iter().zip(&y).map(|(a, &b)| a * f64::from(b)).sum();
        let rty = srht_transpose(&y, batch, d, n_out, 31);
        let rhs: f64 = rty.iter().zip(&x).map(|(a, &b)| a * f64::from(b)).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-9 * lhs.abs().max(1.0),
            "adjoint identity {lhs} vs {rhs}"
        );
    }
}

#[test]
fn the_transpose_inverts_whole_blocks() {
    // n_out a multiple of p: the stacked blocks, each orthogonal, scaled by sqrt(p / n_out),
    // give R^T R = I, so R^T (R x) = x to the rounding of six transforms.
    let gpu = gpu();
    let (batch, d) = (3, 100);
    let n_out = 2 * padded_len(d);
    let x = random(batch * d, 12);
    let y = run(gpu, &x, batch, d, n_out, false);
    let back = run_transpose(gpu, &y, batch, d, n_out);
    let want: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    assert_rel_close("R^T R x", &back, &want, 2e-5);
}

#[test]
fn one_input_larger_than_a_binding_is_split_by_blocks() {
    // 4 KiB bindings hold ~1000 values: d = 200 (p = 256) to 1500 outputs is 6 blocks, 1536
    // work values per input (3072 optical), so each input goes through in groups of blocks,
    // and the transpose sums its blocks over several dispatches.
    let gpu = gpu_with_binding_limit(4096);
    let (batch, d, n_out) = (2, 200, 1500);
    let x = random(batch * d, 5);
    for optical in [false, true] {
        let got = run(&gpu, &x, batch, d, n_out, optical);
        assert_rel_close(
            &format!("block-split srht optical={optical}"),
            &got,
            &reference(&x, batch, d, n_out, 31, optical),
            1e-5,
        );
    }
    let y = random(batch * n_out, 6);
    let got = run_transpose(&gpu, &y, batch, d, n_out);
    assert_rel_close(
        "block-split transpose",
        &got,
        &srht_transpose(&y, batch, d, n_out, 31),
        1e-5,
    );
}

/// The transpose's dispatches and result (into a poisoned output).
fn transpose_plan(
    gpu: &Gpu,
    y_host: &[f32],
    batch: usize,
    d: usize,
    n_out: usize,
) -> (usize, Vec<f32>) {
    let y = Tensor::from_slice(gpu, y_host, &[batch, n_out]).unwrap();
    let x = Tensor::filled(gpu, &[batch, d], f32::NAN).unwrap();
    let plan = srht::plan_transpose(gpu, &y, &x, n_out, 31).unwrap();
    gpu.execute(&plan).unwrap();
    (plan.len(), x.to_vec(gpu).unwrap())
}

#[test]
fn the_transposes_block_sums_are_split_below_the_loop_limit() {
    // A limit of 40 iterations lets one output invocation sum 3 blocks (12 iterations each:
    // the block loop and a Philox block for the sign, and 2 besides). d = 7 (p = 8) to 80
    // outputs is 10 blocks: 9 butterfly passes, then 4 output dispatches that accumulate.
    assert_eq!(srht::transpose_output_loops(3), 38);
    assert_eq!(srht::transpose_output_loops(4), 50);
    let gpu = gpu_with_loop_limit(40);
    let (batch, d, n_out) = (3, 7, 80);
    let y = random(batch * n_out, 21);
    let (dispatches, got) = transpose_plan(&gpu, &y, batch, d, n_out);
    assert_eq!(dispatches, 9 + 4);
    let want = srht_transpose(&y, batch, d, n_out, 31);
    assert_rel_close("srht transpose, limit 40", &got, &want, 1e-5);
    // With 4 KiB bindings as well, one input's blocks (d = 200, p = 256, 1500 outputs: 6
    // blocks) come in groups, each group's output pass in ranges of 3 blocks.
    let gpu = speckle::Gpu::with_options(&GpuOptions {
        max_binding_bytes: Some(4096),
        max_loop_iterations: Some(40),
        tuning: Tuning::Off,
        ..Default::default()
    })
    .unwrap();
    let (batch, d, n_out) = (2, 200, 1500);
    let y = random(batch * n_out, 22);
    let (_, got) = transpose_plan(&gpu, &y, batch, d, n_out);
    let want = srht_transpose(&y, batch, d, n_out, 31);
    assert_rel_close("srht transpose, 4 KiB and limit 40", &got, &want, 1e-5);
    // The forward path loops a constant 22 per invocation: unchanged.
    let x = random(2 * 33, 23);
    assert_rel_close(
        "srht forward, limit 40",
        &run(&gpu, &x, 2, 33, 150, true),
        &reference(&x, 2, 33, 150, 31, true),
        1e-5,
    );
}

#[test]
fn a_limit_below_one_butterfly_pass_is_refused_before_anything_runs() {
    // A butterfly invocation may draw two signs (two Philox blocks of 11 iterations): 22.
    let gpu = gpu_with_loop_limit(21);
    let x = Tensor::zeros(&gpu, &[2, 7]).unwrap();
    let y = Tensor::zeros(&gpu, &[2, 20]).unwrap();
    for e in [
        srht::plan(&gpu, &x, &y, 20, 1, false).unwrap_err(),
        srht::plan_transpose(&gpu, &y, &x, 20, 1).unwrap_err(),
    ] {
        loop_refusal_of(e, 22, 21, &[]);
    }
}

#[test]
fn a_transpose_of_more_blocks_than_lavapipes_loop_limit_is_correct() {
    // d = 2 (p = 2) to 140,000 outputs is 70,000 blocks; unsplit, lavapipe's output
    // invocations stopped summing after 65,535 of them (and their results were off by tens of
    // percent). Each output sums 70,000 terms in f32: 1e-5 + 1e-6 sqrt(blocks) bounds the
    // rounding. Checked on the test adapter with its own limit, whatever it is.
    let gpu = gpu();
    let (d, n_out) = (2, 140_000);
    let y = random(n_out, 24);
    let (_, got) = transpose_plan(gpu, &y, 1, d, n_out);
    let want = srht_transpose(&y, 1, d, n_out, 31);
    let tol = 1e-5 + 1e-6 * (70_000f64).sqrt();
    assert_rel_close("srht transpose of 70,000 blocks", &got, &want, tol);
}
