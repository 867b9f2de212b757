//! The roofline kernel: the FMA mode against the f64 reference, the copy bit for bit, and
//! `measure` on a tiny configuration; rounds past the adapter's loop limit refused and the
//! copy split below it.
//!
//! Tolerance of the FMA mode, derived: every chain starts in [0, 2) and a ↦ a·MUL + ADD maps
//! [0, 2] into itself, so |a| ≤ A = 2. One f32 round (fused or not) errs by at most
//! 2u·(A·|MUL| + |ADD|), u = 2⁻²⁴, and earlier errors shrink by |MUL| each round, so a chain's
//! error stays below 2u·(A·|MUL| + |ADD|) / (1 − |MUL|) however long it is. The sum of the
//! ACC chains adds ACC − 1 roundings of at most u·ACC·A each.

mod common;

use common::{
    gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal, loop_refusal_of, poisoned,
    random,
};
use speckle::cpu::roofline as reference;
use speckle::ops::roofline::{self, RooflineOptions, ACCUMULATORS, ADD, MUL};
use speckle::Tensor;

fn fma_tolerance() -> f64 {
    let u = f64::powi(2.0, -24);
    let (a, m, c) = (2.0, f64::from(MUL).abs(), f64::from(ADD).abs());
    let chain = 2.0 * u * (a * m + c) / (1.0 - m);
    let acc = ACCUMULATORS as f64;
    acc * chain + (acc - 1.0) * u * acc * a
}

fn check_fma(gpu: &speckle::Gpu, invocations: usize, iters: u32) {
    let out = poisoned(gpu, &[invocations, 4]);
    gpu.execute(&roofline::plan_fma(gpu, invocations, iters, &out).unwrap())
        .unwrap();
    let got = out.to_vec(gpu).unwrap();
    let want = reference::fma_chains(invocations, iters, MUL, ADD);
    let tol = fma_tolerance();
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= tol,
            "fma {invocations}x{iters}: value {i}: got {g}, expected {w}, error {err:.2e} > {tol:.2e}"
        );
    }
}

#[test]
fn fma_mode_matches_the_reference() {
    let gpu = gpu();
    check_fma(gpu, 1, 0);
    check_fma(gpu, 300, 1);
    check_fma(gpu, 1000, 37);
    check_fma(gpu, 70_000, 3); // seeds wrap at 2^16
}

#[test]
fn fma_mode_is_split_beyond_one_binding() {
    let gpu = gpu_with_binding_limit(4096);
    let out = poisoned(&gpu, &[2000, 4]);
    assert!(roofline::plan_fma(&gpu, 2000, 5, &out).unwrap().len() > 1);
    check_fma(&gpu, 2000, 5);
}

fn check_copy(gpu: &speckle::Gpu, len: usize, seed: u64) {
    let mut host = random(len, seed);
    host[0] = f32::from_bits(0x7fc0_1234); // a NaN payload, copied bit for bit
    if len > 1 {
        host[1] = -0.0;
    }
    let src = Tensor::from_slice(gpu, &host, &[len]).unwrap();
    let dst = poisoned(gpu, &[len]);
    gpu.execute(&roofline::plan_copy(gpu, &src, &dst).unwrap())
        .unwrap();
    let got = dst.to_vec(gpu).unwrap();
    let want = reference::copy(&host);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "copy of {len}: value {i} differs");
    }
}

#[test]
fn copy_mode_is_exact() {
    let gpu = gpu();
    check_copy(gpu, 4, 1);
    check_copy(gpu, 1000, 2);
    check_copy(gpu, 3 << 20, 3);
    let small = gpu_with_binding_limit(4096);
    let (a, b) = (poisoned(&small, &[10_000]), poisoned(&small, &[10_000]));
    assert!(roofline::plan_copy(&small, &a, &b).unwrap().len() > 1);
    check_copy(&small, 10_000, 4);
    let (a, b) = (poisoned(gpu, &[8]), poisoned(gpu, &[6]));
    assert!(roofline::plan_copy(gpu, &a, &b).is_err());
    let c = poisoned(gpu, &[6]);
    assert!(roofline::plan_copy(gpu, &c, &c).is_err());
}

#[test]
fn measure_returns_positive_finite_figures() {
    let gpu = gpu();
    let r = roofline::measure(
        gpu,
        &RooflineOptions {
            fma_invocations: Some(1024),
            fma_iters: Some(16),
            copy_bytes: Some(1 << 16),
            warmup: 1,
            runs: 3,
            wall_clock: false,
        },
    )
    .unwrap();
    for (name, v) in [
        ("fma_gflops", r.fma_gflops),
        ("copy_gbps", r.copy_gbps),
        ("ridge", r.ridge_flops_per_byte),
    ] {
        assert!(v.is_finite() && v > 0.0, "{name} = {v}");
    }
    assert_eq!(r.fma.runs, 3);
    assert_eq!(r.fma_flops, 1024.0 * 16.0 * roofline::FLOPS_PER_ROUND);
    assert!(roofline::measure(
        gpu,
        &RooflineOptions {
            copy_bytes: Some(10),
            ..Default::default()
        }
    )
    .is_err());
}

/// Asserts that `iters` rounds are refused on `gpu` (limit `limit`), naming the numbers and
/// the option that lowers them (one round fewer than the limit: the loop's exit counts too).
fn assert_rounds_refused(gpu: &speckle::Gpu, iters: u32, limit: u64) {
    let out = poisoned(gpu, &[8, 4]);
    let e = roofline::plan_fma(gpu, 8, iters, &out).unwrap_err();
    let most = format!("--fma-iters {}", limit - 1);
    loop_refusal_of(e, u64::from(iters) + 1, limit, &[&most]);
}

#[test]
fn fma_rounds_past_the_loop_limit_are_refused_before_anything_runs() {
    // One invocation runs all its rounds in one loop, which counts one pass more than its
    // rounds: 99 fit a limit of 100, 100 do not, neither in plan_fma nor in measure.
    assert_eq!(roofline::fma_loops(99), 100);
    let low = gpu_with_loop_limit(100);
    check_fma(&low, 300, 99);
    assert_rounds_refused(&low, 100, 100);
    let e = roofline::measure(
        &low,
        &RooflineOptions {
            fma_invocations: Some(64),
            fma_iters: Some(100),
            copy_bytes: Some(1 << 12),
            ..Default::default()
        },
    )
    .unwrap_err();
    loop_refusal(e);
    // The test adapter: 70,000 rounds pass lavapipe's 65,535 (the chains converge, so the
    // values alone would not show it; the flops counted would not have run).
    let gpu = gpu();
    match gpu.loop_limit().unwrap() {
        Some(limit) => assert_rounds_refused(gpu, 70_000, limit),
        None => check_fma(gpu, 8, 70_000),
    }
}

#[test]
fn the_copy_has_no_loop() {
    // One vec4 per invocation: under a loop limit of 1, which no loop passes, the copy runs
    // and is exact.
    let low = gpu_with_loop_limit(1);
    check_copy(&low, 1_000_004, 5);
}
