//! The fused f16 attention (`shaders/attention_f16.wgsl`) against the f64 reference of the
//! f16-rounded operands (`cpu::attention_f16`).
//!
//! Without a GPU: naga turns the tensor-core build into SPIR-V with the cooperative-matrix
//! capability for every head dimension and block size the host uses. On every adapter: the
//! portable build (the same kernel with its two products one value per invocation) on query
//! and key counts that fill no tile, Nq != Nk with the causal mask, D = 16 .. 128, several
//! batches and heads, large scores and the split path. On an adapter with 16 × 16 × 16 f16 →
//! f32 cooperative matrices (NVIDIA's, not lavapipe's) the tensor-core build runs the same
//! problems. Then the build each adapter gets, what the op refuses, and the loop limit
//! (lavapipe ends an invocation's loops after 65,535 passes; unchecked, the portable build was
//! wrong from 960 keys on at D = 64): keys up to each build's bound run, one block more is
//! refused with the numbers, and on lavapipe itself 1,024 keys run and 40,000 are refused.
//!
//! Tolerance, per element: 1.1 · 2⁻¹⁰ · max |v| + 1e-5. The kernel rounds the probabilities to
//! f16 for the product with V, which moves an output by at most about 2⁻¹⁰ · max |v| (the
//! rounded weights are normalized by their own sum); f32 sums add ~1e-6. A wrong tile, key
//! or mask is off by O(max |v|).

mod common;

use common::coop::spirv_with;
use common::{
    gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, poisoned, random_scaled,
};
use speckle::cpu::attention_f16::attention_f16 as reference;
use speckle::ops::attention::AttentionDims;
use speckle::ops::attention_f16::{
    self, AttentionF16Kernel, AttentionF16Options, KEYS_PER_BLOCK, MAX_HEAD_DIM,
};
use speckle::ops::matmul_coop;
use speckle::{shaders, Gpu, HalfTensor};

/// One problem: B, Nq, Nk, H, D, the causal mask, the magnitude of Q and K.
#[derive(Clone, Copy, Debug)]
struct Case {
    b: usize,
    nq: usize,
    nk: usize,
    h: usize,
    d: usize,
    causal: bool,
    magnitude: f32,
}

const fn case(b: usize, nq: usize, nk: usize, h: usize, d: usize, causal: bool) -> Case {
    Case {
        b,
        nq,
        nk,
        h,
        d,
        causal,
        magnitude: 1.0,
    }
}

/// Problems that fill no tile of 32 queries or 16 keys, one that needs several key blocks, one
/// key block exactly, and every head dimension class.
const CASES: [Case; 7] = [
    case(1, 1, 16, 1, 16, false),
    case(2, 37, 70, 3, 32, false),
    case(1, 70, 37, 2, 64, true),
    case(1, 37, 100, 2, 64, true),
    case(2, 64, 64, 1, 48, false),
    case(1, 33, 150, 1, 128, false),
    case(1, 45, 45, 2, 128, true),
];

/// Runs `kernel` on `c` into a poisoned output and compares every element with the reference.
fn check(gpu: &Gpu, kernel: AttentionF16Kernel, c: Case) {
    let row = c.h * c.d;
    let seed = (c.b * 7 + c.nq * 13 + c.nk * 17 + c.h * 19 + c.d) as u64;
    let qh = random_scaled(c.b * c.nq * row, seed, c.magnitude);
    let kh = random_scaled(c.b * c.nk * row, seed + 1, c.magnitude);
    let vh = random_scaled(c.b * c.nk * row, seed + 2, 1.0);
    let q = HalfTensor::from_f32(gpu, &qh, &[c.b, c.nq, row]).unwrap();
    let k = HalfTensor::from_f32(gpu, &kh, &[c.b, c.nk, row]).unwrap();
    let v = HalfTensor::from_f32(gpu, &vh, &[c.b, c.nk, row]).unwrap();
    let out = poisoned(gpu, &[c.b, c.nq, row]);
    let options = AttentionF16Options {
        causal: c.causal,
        kernel,
        ..Default::default()
    };
    let what = format!("{} {c:?}", kernel.name());
    let plan = attention_f16::plan(gpu, &q, &k, &v, &out, c.h, &options)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    gpu.execute(&plan).unwrap();
    let dims = AttentionDims {
        batch: c.b,
        nq: c.nq,
        nk: c.nk,
        heads: c.h,
        head_dim: c.d,
    };
    let want = reference(
        &qh,
        &kh,
        &vh,
        &dims,
        f64::from(dims.default_scale()),
        c.causal,
    );
    let got = out.to_vec(gpu).unwrap();
    let v_max = vh.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
    let tol = 1.1 * v_max / 1024.0 + 1e-5;
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g.is_finite() && (f64::from(g) - w).abs() <= tol,
            "{what}: element {i} (row {}, column {}) is {g}, the reference {w} (tolerance {tol:.2e})",
            i / row,
            i % row
        );
    }
}

/// The builds to test on `gpu`: the portable one everywhere, the tensor-core one where the
/// adapter has it.
fn builds(gpu: &Gpu) -> Vec<AttentionF16Kernel> {
    let mut all = vec![AttentionF16Kernel::Portable];
    if matmul_coop::subgroup_size(gpu).is_some() {
        all.push(AttentionF16Kernel::Coop);
    } else {
        eprintln!(
            "note: adapter {:?} has no cooperative matrices; testing the portable build only",
            gpu.adapter_info().name
        );
    }
    all
}

#[test]
fn the_tensor_core_build_compiles_to_spirv_for_every_head_dimension_and_block() {
    for d in (16..=MAX_HEAD_DIM as u32).step_by(16) {
        for keys in [KEYS_PER_BLOCK, 32, 16] {
            spirv_with(
                &shaders::ATTENTION_F16,
                &[("SG", 32.0), ("D", f64::from(d)), ("BK", f64::from(keys))],
            );
        }
    }
}

#[test]
fn every_build_matches_the_reference() {
    let gpu = gpu();
    for kernel in builds(gpu) {
        for c in CASES {
            check(gpu, kernel, c);
        }
    }
}

#[test]
fn large_scores_stay_finite_and_correct() {
    // Scores up to ~50: the running maximum must rescale before exp2 overflows.
    let gpu = gpu();
    for kernel in builds(gpu) {
        for c in [case(1, 20, 90, 2, 32, false), case(1, 90, 90, 1, 32, true)] {
            check(
                gpu,
                kernel,
                Case {
                    magnitude: 3.0,
                    ..c
                },
            );
        }
    }
}

#[test]
fn the_split_path_matches_the_reference() {
    // 64 KiB bindings: the 300 query rows of 2 heads of D = 32 take several dispatches.
    let gpu = gpu_with_binding_limit(64 << 10);
    let c = case(2, 300, 60, 2, 32, true);
    for kernel in builds(&gpu) {
        let q = HalfTensor::from_f32(&gpu, &vec![0.0; 2 * 300 * 64], &[2, 300, 64]).unwrap();
        let kv = HalfTensor::from_f32(&gpu, &vec![0.0; 2 * 60 * 64], &[2, 60, 64]).unwrap();
        let out = poisoned(&gpu, &[2, 300, 64]);
        let options = AttentionF16Options {
            kernel,
            ..Default::default()
        };
        let plan = attention_f16::plan(&gpu, &q, &kv, &kv, &out, 2, &options).unwrap();
        assert!(
            plan.len() > 1,
            "{}: {} dispatches",
            kernel.name(),
            plan.len()
        );
        check(&gpu, kernel, c);
    }
}

#[test]
fn each_adapter_gets_its_build_and_bad_problems_are_refused() {
    let gpu = gpu();
    let has_coop = matmul_coop::subgroup_size(gpu).is_some();
    let auto = AttentionF16Kernel::Auto.resolve(gpu);
    assert_eq!(
        auto,
        if has_coop {
            AttentionF16Kernel::Coop
        } else {
            AttentionF16Kernel::Portable
        }
    );
    let half = |shape: &[usize]| {
        let n = shape.iter().product();
        HalfTensor::from_f32(gpu, &vec![0.5; n], shape).unwrap()
    };
    let run = |q: &[usize], kv: &[usize], heads: usize, o: &AttentionF16Options| {
        attention_f16::run(gpu, &half(q), &half(kv), &half(kv), heads, o)
            .err()
            .map(|e| e.to_string())
    };
    let plain = AttentionF16Options::default();
    if !has_coop {
        let forced = AttentionF16Options {
            kernel: AttentionF16Kernel::Coop,
            ..plain
        };
        let e = run(&[32, 64], &[32, 64], 1, &forced).expect("coop forced without tensor cores");
        assert!(e.contains("cooperative"), "{e}");
    }
    let e = run(&[8, 48], &[16, 48], 2, &plain).expect("D = 24");
    assert!(e.contains("D = 24") && e.contains("multiple of 16"), "{e}");
    let e = run(&[8, 144], &[16, 144], 1, &plain).expect("D = 144");
    assert!(e.contains("144"), "{e}");
    let e = run(&[8, 32], &[8, 32], 1, &plain).expect("Nk = 8");
    assert!(e.contains("Nk = 8") && e.contains("at least 16"), "{e}");
    let bad_scale = AttentionF16Options {
        scale: Some(f32::NAN),
        ..plain
    };
    let e = run(&[8, 32], &[16, 32], 1, &bad_scale).expect("NaN scale");
    assert!(e.contains("finite"), "{e}");
    let out = poisoned(gpu, &[8, 16]);
    let e = attention_f16::plan(
        gpu,
        &half(&[8, 32]),
        &half(&[16, 32]),
        &half(&[16, 32]),
        &out,
        1,
        &plain,
    )
    .map(|plan| plan.len())
    .expect_err("output shape")
    .to_string();
    assert!(e.contains("[8, 16]") && e.contains("[8, 32]"), "{e}");
}

#[test]
fn the_block_size_fits_workgroup_memory() {
    let gpu = gpu();
    let limit = u64::from(gpu.limits().max_compute_workgroup_storage_size);
    for d in (16..=MAX_HEAD_DIM as u32).step_by(16) {
        let keys = attention_f16::keys_per_block(gpu, d).unwrap();
        assert!(attention_f16::workgroup_bytes(d, keys) <= limit);
        if keys < KEYS_PER_BLOCK {
            assert!(attention_f16::workgroup_bytes(d, 2 * keys) > limit);
        }
    }
}

fn dims_of(c: Case) -> AttentionDims {
    AttentionDims {
        batch: c.b,
        nq: c.nq,
        nk: c.nk,
        heads: c.h,
        head_dim: c.d,
    }
}

/// Plans `c` with `kernel` on `gpu` and checks the refusal: `Error::LoopLimit` with the bound
/// and the adapter's limit, both named in the message. Returns the remedy.
fn refusal(gpu: &Gpu, kernel: AttentionF16Kernel, c: Case, limit: u64) -> String {
    let row = c.h * c.d;
    let half = |n: usize| HalfTensor::from_f32(gpu, &vec![0.5; c.b * n * row], &[c.b, n, row]);
    let (q, kv) = (half(c.nq).unwrap(), half(c.nk).unwrap());
    let out = poisoned(gpu, &[c.b, c.nq, row]);
    let options = AttentionF16Options {
        kernel,
        causal: c.causal,
        ..Default::default()
    };
    let e = attention_f16::plan(gpu, &q, &kv, &kv, &out, c.h, &options)
        .map(|plan| plan.len())
        .expect_err("past the loop limit");
    let bound = attention_f16::loop_iterations(gpu, &dims_of(c), kernel).unwrap();
    let remedy = loop_refusal_of(e, bound, limit, &[&format!("Nk = {}", c.nk)]).remedy;
    assert!(remedy.contains("f32 attention"), "{remedy}");
    remedy
}

#[test]
fn keys_past_the_loop_limit_run_in_ranges_and_below_one_block_are_refused() {
    // The limit lowered to each build's bound for 100 keys (two blocks of 64, or more blocks
    // of fewer keys where workgroup memory is short): 100 keys run in one range; 300 keys run
    // in ranges of those blocks, merged by attention_combine (causal, Nq != Nk, several heads
    // and batches; causal query blocks that see nothing of a range); a limit below one block
    // is refused before anything runs, with the numbers.
    let real = gpu();
    for kernel in builds(real) {
        let c = case(1, 37, 100, 2, 32, true);
        let limit = attention_f16::loop_iterations(real, &dims_of(c), kernel).unwrap();
        let keys = attention_f16::keys_per_block(real, 32).unwrap() as usize;
        let lowered = gpu_with_loop_limit(limit);
        let one = attention_f16::key_split(&lowered, &dims_of(c), kernel).unwrap();
        assert_eq!(one.splits, 1, "{}: {one:?}", kernel.name());
        check(&lowered, kernel, c);
        check(&lowered, kernel, case(1, 5, 100, 2, 32, false));
        for more in [case(2, 37, 300, 2, 32, true), case(1, 5, 300, 3, 32, false)] {
            let split = attention_f16::key_split(&lowered, &dims_of(more), kernel).unwrap();
            let per_range = 100usize.next_multiple_of(keys);
            assert_eq!(
                (split.splits, split.keys % keys),
                (300usize.div_ceil(per_range), 0),
                "{}: {split:?}",
                kernel.name()
            );
            assert!(split.keys <= per_range, "{}: {split:?}", kernel.name());
            check(&lowered, kernel, more);
        }
        // Below one block nothing can be cut: refused.
        let tiny = case(1, 37, 1, 2, 32, true);
        let below = attention_f16::loop_iterations(real, &dims_of(tiny), kernel).unwrap() - 1;
        let refused = gpu_with_loop_limit(below);
        let remedy = refusal(&refused, kernel, c, below);
        assert!(remedy.contains("at most 0 keys"), "{remedy}");
    }
}

#[test]
fn keys_past_lavapipes_loop_limit_run_in_ranges() {
    // lavapipe's own limit, 65,535 passes: the portable build at D = 64 was right with 896
    // keys and wrong from 960 on before it spelled out its sums and counted its loops; its
    // bound now allows about 34,000 keys in one range, and 40,000 run in two ranges (in one,
    // they would be wrong from 39,936 on: measured). Adapters without a limit run them in one
    // range, or in ranges for parallelism on GPUs.
    let gpu = gpu();
    for nk in [896, 1024] {
        check(gpu, AttentionF16Kernel::Auto, case(1, 5, nk, 1, 64, false));
    }
    let far = case(1, 5, 40_000, 1, 64, false);
    if let Some(limit) = gpu.loop_limit().unwrap() {
        let split = attention_f16::key_split(gpu, &dims_of(far), AttentionF16Kernel::Auto).unwrap();
        let bound =
            attention_f16::loop_iterations(gpu, &dims_of(far), AttentionF16Kernel::Auto).unwrap();
        assert!(bound <= limit, "{split:?}: {bound} passes past {limit}");
    }
    check(gpu, AttentionF16Kernel::Auto, far);
}
