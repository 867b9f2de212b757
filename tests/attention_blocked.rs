//! The register-blocked fused attention (`shaders/attention_blocked.wgsl`) against the f64
//! reference: D = 32 and 64, every TY the adapter allows, query and key counts that fill no
//! tile (and Nq != Nk with the causal mask, aligned top-left), several batches and heads per
//! dispatch, large scores, the split path under a small binding limit, the choice of kernel
//! (on GPUs by default, never with a key mask or another D), configurations it refuses, and
//! the loop limit (lavapipe ends an invocation's loops after 65,535 passes): keys up to the
//! bound run, one tile more is refused with the numbers.
//!
//! Tolerance: as tests/attention.rs (1e-5 relative; the kernel sums the same products in
//! another order).

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, poisoned,
    random_scaled,
};
use speckle::cpu::attention::attention as reference;
use speckle::ops::attention::{
    self, AttentionChoice, AttentionDims, AttentionOptions, AttentionVariant,
};
use speckle::ops::attention_blocked::{self, BlockedConfig, THREADS_Y};
use speckle::{Gpu, Tensor};

const TOL: f64 = 1e-5;

/// Runs the kernel with `config` on B, Nq, Nk, H (D from the config) into a poisoned output
/// and compares with the reference.
#[expect(clippy::too_many_arguments, reason = "the problem's sizes and options")]
fn check(
    gpu: &Gpu,
    config: BlockedConfig,
    b: usize,
    nq: usize,
    nk: usize,
    h: usize,
    causal: bool,
    magnitude: f32,
) {
    let d = config.head_dim as usize;
    let row = h * d;
    let seed = (b * 7 + nq * 13 + nk * 17 + h * 19 + d) as u64;
    let qh = random_scaled(b * nq * row, seed, magnitude);
    let kh = random_scaled(b * nk * row, seed + 1, magnitude);
    let vh = random_scaled(b * nk * row, seed + 2, 1.0);
    let q = Tensor::from_slice(gpu, &qh, &[b, nq, row]).unwrap();
    let k = Tensor::from_slice(gpu, &kh, &[b, nk, row]).unwrap();
    let v = Tensor::from_slice(gpu, &vh, &[b, nk, row]).unwrap();
    let out = poisoned(gpu, &[b, nq, row]);
    let options = AttentionOptions {
        causal,
        ..Default::default()
    };
    let what = format!("{config} b{b} nq{nq} nk{nk} h{h} d{d} causal={causal}");
    let plan = attention::plan_with(
        gpu,
        &q,
        &k,
        &v,
        None,
        &out,
        h,
        &options,
        AttentionChoice::Blocked(config),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    gpu.execute(&plan).unwrap();
    let dims = AttentionDims {
        batch: b,
        nq,
        nk,
        heads: h,
        head_dim: d,
    };
    let want = reference(
        &qh,
        &kh,
        &vh,
        None,
        &dims,
        f64::from(dims.default_scale()),
        causal,
    );
    assert_rel_close(&what, &out.to_vec(gpu).unwrap(), &want, TOL);
}

/// Every TY the adapter allows for `head_dim`.
fn configs(gpu: &Gpu, head_dim: u32) -> Vec<BlockedConfig> {
    let all: Vec<BlockedConfig> = THREADS_Y
        .iter()
        .map(|&threads_y| BlockedConfig {
            head_dim,
            threads_y,
        })
        .collect();
    let ok: Vec<BlockedConfig> = all
        .iter()
        .copied()
        .filter(|c| c.check(gpu).is_ok())
        .collect();
    assert!(!ok.is_empty(), "no TY fits D = {head_dim} on this adapter");
    ok
}

#[test]
fn both_head_dimensions_and_every_tile_height_match_the_reference() {
    let gpu = gpu();
    for d in [32, 64] {
        for config in configs(gpu, d) {
            // One query and one key; partial query and key tiles; Nq != Nk both ways.
            check(gpu, config, 1, 1, 1, 1, false, 1.0);
            check(gpu, config, 2, 37, 70, 3, false, 1.0);
            check(gpu, config, 1, 70, 37, 2, true, 1.0);
            check(gpu, config, 1, 37, 100, 2, true, 1.0);
        }
    }
}

#[test]
fn large_scores_stay_finite_and_correct() {
    // Scores up to ~50: the running maximum must rescale before exp overflows.
    let gpu = gpu();
    let config = BlockedConfig::for_gpu(gpu, 32).unwrap();
    check(gpu, config, 1, 20, 90, 2, false, 3.0);
    check(gpu, config, 1, 90, 90, 1, true, 3.0);
}

#[test]
fn the_split_path_matches_the_reference() {
    // 64 KiB bindings: the 300 query rows of 2 heads of D = 32 take several dispatches.
    let gpu = gpu_with_binding_limit(64 << 10);
    let config = BlockedConfig::for_gpu(&gpu, 32).unwrap();
    check(&gpu, config, 2, 300, 60, 2, true, 1.0);
}

#[test]
fn the_kernel_is_chosen_where_it_applies_and_refuses_what_it_cannot_do() {
    let gpu = gpu();
    let dims = |d: usize| AttentionDims {
        batch: 1,
        nq: 8,
        nk: 8,
        heads: 1,
        head_dim: d,
    };
    let t = Tensor::zeros(gpu, &[1, 8, 64]).unwrap();
    let plain = [&t, &t, &t, &t];
    let masked = [&t, &t, &t, &t, &t];
    let auto = attention::builtin_choice(gpu, &dims(64), &plain, AttentionVariant::Auto).unwrap();
    if gpu.is_cpu() {
        assert_ne!(
            auto.variant(),
            AttentionVariant::Blocked,
            "CPU adapters keep their kernel"
        );
    } else {
        assert_eq!(auto.variant(), AttentionVariant::Blocked);
        let with_mask =
            attention::builtin_choice(gpu, &dims(64), &masked, AttentionVariant::Auto).unwrap();
        assert_ne!(with_mask.variant(), AttentionVariant::Blocked);
        let other_d = Tensor::zeros(gpu, &[1, 8, 48]).unwrap();
        let d48 = [&other_d, &other_d, &other_d, &other_d];
        let choice =
            attention::builtin_choice(gpu, &dims(48), &d48, AttentionVariant::Auto).unwrap();
        assert_ne!(choice.variant(), AttentionVariant::Blocked);
    }
    assert!(attention_blocked::eligible(gpu, 64, false));
    assert!(!attention_blocked::eligible(gpu, 64, true));
    assert!(!attention_blocked::eligible(gpu, 48, false));

    // Forced: a head dimension it does not take and a key mask are errors that say so.
    let e = attention::builtin_choice(gpu, &dims(48), &plain, AttentionVariant::Blocked)
        .expect_err("D = 48")
        .to_string();
    assert!(e.contains("D in [32, 64]"), "{e}");
    let q = Tensor::zeros(gpu, &[1, 8, 32]).unwrap();
    let mask = Tensor::filled(gpu, &[1, 8], 1.0).unwrap();
    let out = Tensor::zeros(gpu, &[1, 8, 32]).unwrap();
    let e = attention::plan_with(
        gpu,
        &q,
        &q,
        &q,
        Some(&mask),
        &out,
        1,
        &AttentionOptions::default(),
        AttentionChoice::Blocked(BlockedConfig::for_gpu(gpu, 32).unwrap()),
    )
    .expect_err("a key mask")
    .to_string();
    assert!(e.contains("no key mask"), "{e}");
    // A configuration for another D, and notations it does not know.
    let e = attention::plan_with(
        gpu,
        &q,
        &q,
        &q,
        None,
        &out,
        1,
        &AttentionOptions::default(),
        AttentionChoice::Blocked(BlockedConfig::for_gpu(gpu, 64).unwrap()),
    )
    .expect_err("D = 64 config for D = 32 heads")
    .to_string();
    assert!(e.contains("D = 64") && e.contains("D = 32"), "{e}");
    assert!(BlockedConfig::parse(gpu, 32, "blocked-ty3").is_err());
    assert!(BlockedConfig::parse(gpu, 32, "blocked-8").is_err());
    let parsed = AttentionChoice::parse(gpu, 32, "blocked-ty2").unwrap();
    assert_eq!(parsed.name(), "blocked-ty2");
    let too_big = BlockedConfig {
        head_dim: 64,
        threads_y: 16,
    };
    if too_big.workgroup_bytes() > u64::from(gpu.limits().max_compute_workgroup_storage_size) {
        let e = too_big.check(gpu).unwrap_err().to_string();
        assert!(e.contains("bytes of workgroup memory"), "{e}");
    }
}

#[test]
fn keys_past_the_loop_limit_run_in_ranges_and_below_one_tile_are_refused() {
    // A limit of exactly the bound for 100 keys (two tiles of D = 32): 100 and 128 keys run
    // in one range, 300 in ranges of two tiles merged by attention_combine (causal, Nq != Nk,
    // two batches), each within the limit; a limit below one tile is refused before anything
    // runs, with the numbers. Then lavapipe's own limit: unchecked, the kernel was wrong from
    // 21,312 keys on at D = 64 (measured); they now run in ranges.
    let real = gpu();
    let config = BlockedConfig::for_gpu(real, 32).unwrap();
    let limit = config.loop_iterations(100);
    assert_eq!(config.loop_iterations(128), limit);
    assert!(config.loop_iterations(129) > limit);
    let lowered = gpu_with_loop_limit(limit);
    check(&lowered, config, 1, 37, 100, 2, false, 1.0);
    check(&lowered, config, 1, 150, 128, 2, true, 1.0);
    let dims = |b, nq, nk, h| AttentionDims {
        batch: b,
        nq,
        nk,
        heads: h,
        head_dim: 32,
    };
    let blocked = AttentionChoice::Blocked(config);
    for causal in [false, true] {
        assert!(
            blocked
                .loop_iterations(&lowered, &dims(2, 45, 300, 2))
                .unwrap()
                <= limit
        );
        check(&lowered, config, 2, 45, 300, 2, causal, 1.0);
    }
    let tiny = config.loop_iterations(1) - 1;
    let refused = gpu_with_loop_limit(tiny);
    let d = config.head_dim as usize;
    let q = Tensor::zeros(&refused, &[1, 5, 2 * d]).unwrap();
    let k = Tensor::zeros(&refused, &[1, 129, 2 * d]).unwrap();
    let out = poisoned(&refused, &[1, 5, 2 * d]);
    let e = attention::plan_with(
        &refused,
        &q,
        &k,
        &k,
        None,
        &out,
        2,
        &AttentionOptions::default(),
        blocked,
    )
    .map(|plan| plan.len())
    .expect_err("below one tile");
    let r = loop_refusal_of(e, config.loop_iterations(129), tiny, &[]);
    assert!(r.remedy.contains("at most 0 keys"), "{}", r.remedy);
    if real.loop_limit().unwrap().is_some() {
        let config = BlockedConfig::for_gpu(real, 64).unwrap();
        check(real, config, 1, 5, 21_312, 2, false, 1.0);
    }
}
