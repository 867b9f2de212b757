//! Fused attention against the f64 reference: every head dimension class (1, 3, 16, 32, 64,
//! 100, 128, 256), shapes that are multiples of no tile, causal masks with Nq != Nk, key masks
//! (a batch fully masked, causal and mask leaving queries with no key), large scores, both
//! variants forced, the unfused pipeline, the split path under a small binding limit, shape
//! errors that name the numbers, and the loop limit (lavapipe ends an invocation's loops after
//! 65,535 passes): Auto passing over a variant that would loop too often, refusals that name
//! the numbers, and keys past lavapipe's own limit.
//!
//! Tolerance. An output is sum_j w_j v_j / sum_j w_j with w_j = exp(s_j - m). In f32 the score
//! s_j = (scale*q).k is a D-term dot product whose error is about u*sqrt(D)*S typically
//! (u = 2^-24, S = scale * sum_d |q_d k_d|, at worst u*D*S); an error δ in a score scales its
//! weight by e^δ ≈ 1 + δ, so it moves the output by about δ relative. exp adds a few ulp, the
//! sums over at most ~150 keys about u*sqrt(Nk) < 1e-6, the final division one ulp. With
//! inputs in [-1, 1), S ≈ sqrt(D)/4 <= 4 and δ <= 4e-6 even at D = 256, so 1e-5 leaves a
//! margin of 2 or more over the bound (errors measured on lavapipe: 0.3e-7 to 2e-7) while a
//! wrong max, mask, rescale or head offset is off by 1e-2 or far more. For large inputs the
//! bound is computed from the data (`large_input_tolerance`).

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, poisoned,
    random_scaled,
};
use speckle::cpu::attention::attention as reference;
use speckle::ops::attention::{
    self, AttentionChoice, AttentionConfig, AttentionDims, AttentionOptions, AttentionParams,
    AttentionVariant,
};
use speckle::ops::attention_texture::{self, QueryLayout};
use speckle::{Gpu, Tensor};

const TOL: f64 = 1e-5;

/// One problem: batch, query rows, key rows, heads, head dimension.
#[derive(Clone, Copy, Debug)]
struct Case {
    b: usize,
    nq: usize,
    nk: usize,
    h: usize,
    d: usize,
}

impl Case {
    const fn new(b: usize, nq: usize, nk: usize, h: usize, d: usize) -> Case {
        Case { b, nq, nk, h, d }
    }

    fn dims(&self) -> AttentionDims {
        AttentionDims {
            batch: self.b,
            nq: self.nq,
            nk: self.nk,
            heads: self.h,
            head_dim: self.d,
        }
    }
}

struct Inputs {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

fn inputs(c: Case, seed: u64, magnitude: f32) -> Inputs {
    let row = c.h * c.d;
    Inputs {
        q: random_scaled(c.b * c.nq * row, seed, magnitude),
        k: random_scaled(c.b * c.nk * row, seed + 1000, magnitude),
        v: random_scaled(c.b * c.nk * row, seed + 2000, 1.0),
    }
}

/// The variants to test on this adapter: always the workgroup one, the subgroup one where the
/// adapter has subgroups, the texture one where they are 8 wide (a note is printed otherwise).
fn variants(gpu: &Gpu) -> Vec<AttentionVariant> {
    let mut v = vec![AttentionVariant::Workgroup];
    let info = gpu.adapter_info();
    if gpu.features().contains(wgpu::Features::SUBGROUP) {
        v.push(AttentionVariant::Subgroup);
        if common::eight_wide(gpu) {
            v.push(AttentionVariant::Texture);
        } else {
            println!(
                "note: adapter {:?} has subgroups of {}..{}, not 8; the texture variant is not tested",
                info.name, info.subgroup_min_size, info.subgroup_max_size
            );
        }
    } else {
        println!(
            "note: adapter {:?} has no SUBGROUP feature; the subgroup and texture variants are not tested",
            info.name
        );
    }
    v
}

/// Runs the fused kernel on `c` into a poisoned output and compares with the reference.
/// Returns the output.
fn check(
    gpu: &Gpu,
    c: Case,
    data: &Inputs,
    mask: Option<&[f32]>,
    options: AttentionOptions,
    tol: f64,
) -> Vec<f32> {
    let scale = options.scale.unwrap_or_else(|| c.dims().default_scale());
    let label = format!("attention {c:?} {options:?}");
    let plan = |q: &Tensor, k: &Tensor, v: &Tensor, m: Option<&Tensor>, out: &Tensor| {
        attention::plan(gpu, q, k, v, m, out, c.h, &options)
    };
    check_planned(
        gpu,
        c,
        data,
        mask,
        (scale, options.causal),
        &label,
        plan,
        tol,
    )
}

/// Plans `c` with `plan` (from Q, K, V, the key mask and a poisoned output), runs it, and
/// compares the output, all finite, with the reference at `scale` (causal where `causal`).
/// Returns the output.
#[expect(
    clippy::too_many_arguments,
    reason = "the problem, its inputs and how it is planned and checked, all named"
)]
fn check_planned(
    gpu: &Gpu,
    c: Case,
    data: &Inputs,
    mask: Option<&[f32]>,
    (scale, causal): (f32, bool),
    label: &str,
    plan: impl FnOnce(
        &Tensor,
        &Tensor,
        &Tensor,
        Option<&Tensor>,
        &Tensor,
    ) -> speckle::Result<Vec<speckle::Dispatch>>,
    tol: f64,
) -> Vec<f32> {
    let row = c.h * c.d;
    let q = Tensor::from_slice(gpu, &data.q, &[c.b, c.nq, row]).unwrap();
    let k = Tensor::from_slice(gpu, &data.k, &[c.b, c.nk, row]).unwrap();
    let v = Tensor::from_slice(gpu, &data.v, &[c.b, c.nk, row]).unwrap();
    let m = mask.map(|m| Tensor::from_slice(gpu, m, &[c.b, c.nk]).unwrap());
    let out = poisoned(gpu, &[c.b, c.nq, row]);
    let plan = plan(&q, &k, &v, m.as_ref(), &out).unwrap_or_else(|e| panic!("{label}: {e}"));
    gpu.execute(&plan).unwrap();
    let got = out.to_vec(gpu).unwrap();
    let want = reference(
        &data.q,
        &data.k,
        &data.v,
        mask,
        &c.dims(),
        f64::from(scale),
        causal,
    );
    assert!(
        got.iter().all(|x| x.is_finite()),
        "{label}: non-finite output"
    );
    assert_rel_close(label, &got, &want, tol);
    got
}

fn with(variant: AttentionVariant, causal: bool) -> AttentionOptions {
    AttentionOptions {
        scale: None,
        causal,
        variant,
    }
}

#[test]
fn params_struct_matches_the_wgsl_layout() {
    let module = speckle::shaders::validate(&speckle::shaders::ATTENTION).unwrap();
    let span = module
        .types
        .iter()
        .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
            (Some(name), naga::TypeInner::Struct { span, .. }) if name == "Params" => Some(*span),
            _ => None,
        })
        .expect("attention.wgsl has a struct Params");
    assert_eq!(span as usize, size_of::<AttentionParams>());
    assert_eq!(size_of::<AttentionParams>() % 16, 0);
}

#[test]
fn the_workgroup_variant_compiles_without_subgroups() {
    let no_subgroups = naga::valid::Capabilities::all()
        - naga::valid::Capabilities::SUBGROUP
        - naga::valid::Capabilities::SUBGROUP_BARRIER
        - naga::valid::Capabilities::SUBGROUP_VERTEX_STAGE;
    let validate = |source: &str| {
        let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), no_subgroups)
            .validate(&module)
            .map(|_| ())
            .map_err(|e| e.emit_to_string(source))
    };
    let portable = attention::portable_source();
    if let Err(e) = validate(portable) {
        panic!("the portable attention shader needs subgroups: {e}");
    }
    // No subgroup built-in is left outside comments.
    let mut code = portable.lines().map(|l| l.split("//").next().unwrap_or(""));
    assert!(code.all(|l| !l.contains("subgroup")), "{portable}");
    // The full shader does need them: that is why the portable copy exists.
    assert!(validate(&speckle::shaders::ATTENTION.source()).is_err());
}

#[test]
fn configurations_fit_the_adapter_for_every_head_dim() {
    let gpu = gpu();
    let limit = u64::from(gpu.limits().max_compute_workgroup_storage_size);
    let sg_min = gpu.adapter_info().subgroup_min_size;
    // The texture variant has no tiles: one query row per invocation, any D.
    for variant in variants(gpu)
        .into_iter()
        .filter(|&v| v != AttentionVariant::Texture)
    {
        for d in 1..=256usize {
            let c = AttentionConfig::for_gpu(gpu, d, variant)
                .unwrap_or_else(|e| panic!("D = {d} {variant:?}: {e}"));
            assert_eq!(c.variant, variant);
            let t = c.threads_per_query;
            assert!(t.is_power_of_two() && c.vec4s_per_thread <= 8, "{c:?}");
            assert!((t * c.vec4s_per_thread * 4) as usize >= d, "{c:?}");
            assert!(c.workgroup_bytes() <= limit, "{c:?}");
            assert!(c.keys_per_tile.is_multiple_of(4), "{c:?}");
            assert!(c.workgroup_size.is_multiple_of(t), "{c:?}");
            if variant == AttentionVariant::Subgroup {
                assert!(t <= sg_min, "{c:?}: T > smallest subgroup {sg_min}");
                assert!(
                    c.workgroup_size
                        .is_multiple_of(gpu.adapter_info().subgroup_max_size),
                    "{c:?}"
                );
            }
        }
    }
    for d in [0, 257] {
        let e = AttentionConfig::for_gpu(gpu, d, AttentionVariant::Auto).unwrap_err();
        assert!(e.to_string().contains(&d.to_string()), "{e}");
    }
}

#[test]
fn every_head_dim_and_awkward_shapes_match_the_reference() {
    let gpu = gpu();
    let cases = [
        Case::new(1, 1, 1, 1, 1),
        Case::new(2, 37, 53, 3, 1),
        Case::new(3, 7, 5, 2, 3),
        Case::new(2, 37, 53, 4, 16),
        Case::new(1, 1, 53, 2, 32),
        Case::new(3, 37, 1, 1, 64),
        Case::new(2, 20, 33, 2, 100),
        Case::new(2, 9, 31, 1, 128),
        Case::new(1, 5, 19, 1, 256),
        Case::new(4, 9, 11, 16, 8), // B·H = 64
    ];
    for variant in variants(gpu) {
        for (i, &c) in cases.iter().enumerate() {
            let data = inputs(c, 10 + i as u64, 1.0);
            check(gpu, c, &data, None, with(variant, false), TOL);
        }
    }
}

#[test]
fn two_dimensional_inputs_are_one_batch() {
    let gpu = gpu();
    let c = Case::new(1, 13, 21, 2, 16);
    let data = inputs(c, 30, 1.0);
    let row = c.h * c.d;
    let q = Tensor::from_slice(gpu, &data.q, &[c.nq, row]).unwrap();
    let k = Tensor::from_slice(gpu, &data.k, &[c.nk, row]).unwrap();
    let v = Tensor::from_slice(gpu, &data.v, &[c.nk, row]).unwrap();
    // A 1-D key mask is accepted for one batch.
    let mask: Vec<f32> = (0..c.nk).map(|j| f32::from(j % 3 != 1)).collect();
    let m = Tensor::from_slice(gpu, &mask, &[c.nk]).unwrap();
    let out = attention::run(gpu, &q, &k, &v, Some(&m), c.h, &AttentionOptions::default()).unwrap();
    assert_eq!(out.shape(), &[c.nq, row]);
    let scale = f64::from(c.dims().default_scale());
    let want = reference(
        &data.q,
        &data.k,
        &data.v,
        Some(&mask),
        &c.dims(),
        scale,
        false,
    );
    assert_rel_close("2-D attention", &out.to_vec(gpu).unwrap(), &want, TOL);
}

#[test]
fn causal_mask_is_top_left_also_when_nq_differs_from_nk() {
    let gpu = gpu();
    let cases = [
        Case::new(2, 37, 53, 2, 16), // more keys: query i still sees keys 0..=i only
        Case::new(2, 53, 37, 2, 16), // more queries: queries i >= 37 see every key
        Case::new(1, 150, 140, 1, 8), // several query blocks per head, causal key ranges
        Case::new(1, 1, 9, 3, 64),   // one query, which sees key 0 only
        Case::new(3, 33, 33, 2, 100),
    ];
    for variant in variants(gpu) {
        for (i, &c) in cases.iter().enumerate() {
            let data = inputs(c, 40 + i as u64, 1.0);
            check(gpu, c, &data, None, with(variant, true), TOL);
        }
    }
}

#[test]
fn key_masks_and_queries_that_see_no_key_give_zeros() {
    let gpu = gpu();
    let c = Case::new(3, 37, 29, 2, 32);
    let data = inputs(c, 50, 1.0);
    let row = c.h * c.d;
    // Batch 0: a random half of the keys, key 0 masked (so causal query 0 sees nothing);
    // batch 1: every key masked; batch 2: only the last key (causal queries < 28 see nothing).
    let flags = random_scaled(c.nk, 51, 1.0);
    let mut mask = vec![0.0f32; c.b * c.nk];
    for j in 1..c.nk {
        mask[j] = if flags[j] > 0.0 { 1.0 } else { 0.0 };
    }
    mask[2 * c.nk + c.nk - 1] = 0.5; // any non-zero value attends
    for variant in variants(gpu) {
        for causal in [false, true] {
            let got = check(gpu, c, &data, Some(&mask), with(variant, causal), TOL);
            let batch = |b: usize| &got[b * c.nq * row..(b + 1) * c.nq * row];
            assert!(
                batch(1).iter().all(|&x| x == 0.0),
                "{variant:?} causal {causal}: a fully masked batch must give zeros"
            );
            if causal {
                assert!(
                    batch(0)[..row].iter().all(|&x| x == 0.0),
                    "query 0 of batch 0"
                );
                assert!(
                    batch(2)[..(c.nk - 1) * row].iter().all(|&x| x == 0.0),
                    "queries before the only key of batch 2"
                );
                assert!(batch(2)[(c.nk - 1) * row..].iter().any(|&x| x != 0.0));
            }
        }
    }
}

/// The tolerance for inputs whose scores are large, from the first-order error of the output:
/// score errors δ_j move output d of a query by sum_j w_j δ_j (v_jd - o_d) (w the softmax
/// weights), with |δ_j| <= u * (4 sqrt(D) S_j + |s_j - m|): the dot product's error with a
/// factor 4 over its typical size (S_j = scale * sum_d |q_d k_d|), plus the rounding of
/// s_j - m before exp. The bound is summed over outputs like the relative error, over the
/// reference's norm, and added to the base tolerance. Without the causal mask; it is also a
/// bound with it (fewer keys, the same terms).
fn large_input_tolerance(c: Case, data: &Inputs, scale: f64) -> f64 {
    let u = f64::from(f32::EPSILON) / 2.0;
    let row = c.h * c.d;
    let want = reference(&data.q, &data.k, &data.v, None, &c.dims(), scale, false);
    let (mut bound, mut norm) = (0.0f64, 0.0f64);
    for b in 0..c.b {
        for h in 0..c.h {
            for i in 0..c.nq {
                let qi = &data.q[(b * c.nq + i) * row + h * c.d..][..c.d];
                let key = |j: usize| &data.k[(b * c.nk + j) * row + h * c.d..][..c.d];
                let value = |j: usize| &data.v[(b * c.nk + j) * row + h * c.d..][..c.d];
                let terms = |j: usize| {
                    qi.iter()
                        .zip(key(j))
                        .map(|(&x, &y)| f64::from(x) * f64::from(y))
                };
                let s: Vec<f64> = (0..c.nk).map(|j| scale * terms(j).sum::<f64>()).collect();
                let big: Vec<f64> = (0..c.nk)
                    .map(|j| scale.abs() * terms(j).map(f64::abs).sum::<f64>())
                    .collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
                let total: f64 = w.iter().sum();
                let o = &want[(b * c.nq + i) * row + h * c.d..][..c.d];
                for (d, &od) in o.iter().enumerate() {
                    let e: f64 = (0..c.nk)
                        .map(|j| {
                            let delta = u * (4.0 * (c.d as f64).sqrt() * big[j] + (s[j] - m).abs());
                            w[j] / total * delta * (f64::from(value(j)[d]) - od).abs()
                        })
                        .sum();
                    bound += e * e;
                    norm += od * od;
                }
            }
        }
    }
    TOL + (bound / norm).sqrt()
}

#[test]
fn large_scores_stay_finite_and_accurate() {
    let gpu = gpu();
    // Inputs x30: scores in the hundreds, so exp(s) overflows f32 unless the running max is
    // subtracted; the first tile's rescale from -FLT_MAX must not make NaN.
    let cases = [Case::new(2, 37, 53, 2, 64), Case::new(1, 9, 70, 1, 256)];
    for variant in variants(gpu) {
        for (i, &c) in cases.iter().enumerate() {
            let data = inputs(c, 60 + i as u64, 30.0);
            let tol = large_input_tolerance(c, &data, f64::from(c.dims().default_scale()));
            for causal in [false, true] {
                check(gpu, c, &data, None, with(variant, causal), tol);
            }
        }
    }
}

#[test]
fn an_explicit_scale_is_used() {
    let gpu = gpu();
    let c = Case::new(2, 11, 17, 2, 32);
    let data = inputs(c, 70, 1.0);
    for scale in [0.3f32, 0.0, -1.5] {
        for variant in variants(gpu) {
            let options = AttentionOptions {
                scale: Some(scale),
                causal: false,
                variant,
            };
            check(gpu, c, &data, None, options, TOL);
        }
    }
}

#[test]
fn the_variants_agree() {
    let gpu = gpu();
    if !gpu.features().contains(wgpu::Features::SUBGROUP) {
        println!(
            "note: adapter {:?} has no SUBGROUP feature; skipping the subgroup variant",
            gpu.adapter_info().name
        );
        return;
    }
    let c = Case::new(2, 37, 53, 3, 64);
    let data = inputs(c, 80, 1.0);
    let sub = check(
        gpu,
        c,
        &data,
        None,
        with(AttentionVariant::Subgroup, true),
        TOL,
    );
    let wg = check(
        gpu,
        c,
        &data,
        None,
        with(AttentionVariant::Workgroup, true),
        TOL,
    );
    let wide: Vec<f64> = wg.iter().map(|&x| f64::from(x)).collect();
    assert_rel_close("subgroup vs workgroup", &sub, &wide, TOL);
    if variants(gpu).contains(&AttentionVariant::Texture) {
        let tex = check(
            gpu,
            c,
            &data,
            None,
            with(AttentionVariant::Texture, true),
            TOL,
        );
        assert_rel_close("texture vs workgroup", &tex, &wide, TOL);
        // On a CPU adapter with 8-wide subgroups, Auto runs the texture variant.
        let dims = c.dims();
        let t = Tensor::zeros(gpu, &[c.b, c.nq.max(c.nk), c.h * c.d]).unwrap();
        let auto = with(AttentionVariant::Auto, false);
        let chosen = attention::chosen_variant(gpu, &dims, &[&t], &auto).unwrap();
        if gpu.is_cpu() {
            assert_eq!(chosen, AttentionVariant::Texture);
        }
    }
    // Auto is one of the two.
    let auto = AttentionConfig::for_gpu(gpu, 64, AttentionVariant::Auto).unwrap();
    assert_eq!(auto.variant, AttentionVariant::Subgroup);
}

#[test]
fn the_unfused_pipeline_matches_the_reference_and_the_fused_kernel() {
    let gpu = gpu();
    let cases = [
        Case::new(2, 37, 53, 3, 16),
        Case::new(1, 7, 1, 2, 3),
        Case::new(3, 21, 13, 1, 64),
    ];
    for (i, &c) in cases.iter().enumerate() {
        let data = inputs(c, 90 + i as u64, 1.0);
        let row = c.h * c.d;
        let q = Tensor::from_slice(gpu, &data.q, &[c.b, c.nq, row]).unwrap();
        let k = Tensor::from_slice(gpu, &data.k, &[c.b, c.nk, row]).unwrap();
        let v = Tensor::from_slice(gpu, &data.v, &[c.b, c.nk, row]).unwrap();
        for causal in [false, true] {
            let options = with(AttentionVariant::Auto, causal);
            let unfused = attention::unfused(gpu, &q, &k, &v, None, c.h, &options)
                .unwrap()
                .to_vec(gpu)
                .unwrap();
            let scale = f64::from(c.dims().default_scale());
            let want = reference(&data.q, &data.k, &data.v, None, &c.dims(), scale, causal);
            assert_rel_close(
                &format!("unfused {c:?} causal {causal}"),
                &unfused,
                &want,
                TOL,
            );
            let fused = check(gpu, c, &data, None, options, TOL);
            let fused: Vec<f64> = fused.iter().map(|&x| f64::from(x)).collect();
            assert_rel_close("unfused vs fused", &unfused, &fused, 2.0 * TOL);
        }
        let mask = Tensor::filled(gpu, &[c.b, c.nk], 1.0).unwrap();
        let e =
            attention::unfused(gpu, &q, &k, &v, Some(&mask), c.h, &Default::default()).unwrap_err();
        assert!(e.to_string().contains("key mask"), "{e}");
    }
}

#[test]
fn a_small_binding_limit_splits_batches_and_query_rows() {
    // 4 KiB bindings hold ~1000 values. H*D = 3*5 = 15: windows start off alignment.
    let gpu = gpu_with_binding_limit(4096);
    let cases = [
        // (case, dispatches): several whole batches per dispatch; one batch per dispatch;
        // query rows split (Nq*H*D = 1500 > ~1000), causal ranges starting mid-batch.
        (Case::new(3, 5, 7, 3, 5), 1),
        (Case::new(3, 37, 20, 3, 5), 3),
        (Case::new(2, 100, 30, 3, 5), 4),
    ];
    for variant in variants(&gpu) {
        for (i, &(c, dispatches)) in cases.iter().enumerate() {
            let data = inputs(c, 100 + i as u64, 1.0);
            let mask: Vec<f32> = random_scaled(c.b * c.nk, 110 + i as u64, 1.0)
                .iter()
                .map(|&x| f32::from(x > -0.5))
                .collect();
            let fits = c.b * c.nq * c.h * c.d <= 1000;
            if variant != AttentionVariant::Texture || fits {
                for causal in [false, true] {
                    check(&gpu, c, &data, Some(&mask), with(variant, causal), TOL);
                }
            }
            let row = c.h * c.d;
            let q = Tensor::zeros(&gpu, &[c.b, c.nq, row]).unwrap();
            let k = Tensor::zeros(&gpu, &[c.b, c.nk, row]).unwrap();
            let out = Tensor::zeros(&gpu, &[c.b, c.nq, row]).unwrap();
            let plan = attention::plan(&gpu, &q, &k, &k, None, &out, c.h, &with(variant, false));
            if variant == AttentionVariant::Texture {
                // Whole operands in one binding or an error; two packs (rows of H·D values,
                // not whole 256-byte rows: pieces of a staging buffer cut to the binding, each
                // laid out by a kernel, then copied) and one pass.
                match plan {
                    Ok(plan) => {
                        let (pass, packs) = plan.split_last().unwrap();
                        assert!(!pass.is_copy(), "{c:?}");
                        assert!(packs.len() >= 4, "{c:?}");
                        for piece in packs.chunks(2) {
                            assert!(!piece[0].is_copy() && piece[1].is_copy(), "{c:?}");
                        }
                    }
                    Err(e) => assert!(e.to_string().contains("one binding"), "{c:?}: {e}"),
                }
            } else {
                assert_eq!(plan.unwrap().len(), dispatches, "{c:?}");
            }
        }
    }
}

#[test]
fn keys_larger_than_one_binding_are_an_error() {
    let gpu = gpu_with_binding_limit(4096);
    let q = Tensor::zeros(&gpu, &[1, 4, 16]).unwrap();
    let k = Tensor::zeros(&gpu, &[1, 100, 16]).unwrap();
    let out = Tensor::zeros(&gpu, &[1, 4, 16]).unwrap();
    let e = attention::plan(&gpu, &q, &k, &k, None, &out, 2, &Default::default())
        .unwrap_err()
        .to_string();
    for needle in ["[100, 16]", "1600 values", "6400 bytes"] {
        assert!(e.contains(needle), "{needle:?} not in: {e}");
    }
}

#[test]
fn bad_shapes_are_errors_that_name_the_numbers() {
    let gpu = gpu();
    let t = |shape: &[usize]| Tensor::zeros(gpu, shape).unwrap();
    let opts = AttentionOptions::default();
    let err = |q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, heads: usize| {
        attention::run(gpu, q, k, v, mask, heads, &opts)
            .unwrap_err()
            .to_string()
    };
    let expect = |e: String, needles: &[&str]| {
        for n in needles {
            assert!(e.contains(n), "{n:?} not in: {e}");
        }
    };
    let (q, kv) = (t(&[2, 5, 12]), t(&[2, 7, 12]));
    expect(err(&q, &kv, &kv, None, 5), &["12", "heads = 5"]);
    expect(err(&q, &kv, &kv, None, 0), &["0"]);
    expect(err(&q, &t(&[3, 7, 12]), &kv, None, 2), &["2", "3"]);
    expect(err(&q, &kv, &t(&[2, 8, 12]), None, 2), &["7", "8"]);
    expect(err(&q, &t(&[2, 7, 10]), &kv, None, 2), &["12", "10"]);
    expect(
        err(&t(&[5, 12]), &kv, &kv, None, 2),
        &["[5, 12]", "[2, 7, 12]"],
    );
    expect(
        err(
            &t(&[1, 2, 514]),
            &t(&[1, 3, 514]),
            &t(&[1, 3, 514]),
            None,
            2,
        ),
        &["257", "256"],
    );
    expect(
        err(&q, &kv, &kv, Some(&t(&[2, 6])), 2),
        &["[2, 6]", "[2, 7]"],
    );
    expect(err(&q, &kv, &kv, Some(&t(&[7])), 2), &["[7]", "[2, 7]"]);
    let out = t(&[2, 5, 6]);
    let e = attention::plan(gpu, &q, &kv, &kv, None, &out, 2, &opts)
        .unwrap_err()
        .to_string();
    expect(e, &["[2, 5, 6]", "[2, 5, 12]"]);
    let e = attention::plan(gpu, &q, &kv, &kv, None, &q, 2, &opts)
        .unwrap_err()
        .to_string();
    expect(e, &["share a buffer"]);
    let bad_scale = AttentionOptions {
        scale: Some(f32::NAN),
        ..opts
    };
    let e = attention::run(gpu, &q, &kv, &kv, None, 2, &bad_scale)
        .unwrap_err()
        .to_string();
    expect(e, &["NaN"]);
}

/// Q, K, V and an output of `c`'s shapes on `gpu` (zeros: for planning only).
fn zero_operands(gpu: &Gpu, c: Case) -> [Tensor; 4] {
    let row = c.h * c.d;
    let t = |n: usize| Tensor::zeros(gpu, &[c.b, n, row]).unwrap();
    [t(c.nq), t(c.nk), t(c.nk), t(c.nq)]
}

/// The loop-limit refusal of planning `c` with `options` on `gpu`, checked to be
/// `Error::LoopLimit` with `iterations` and the adapter's `limit`, both named in the message.
/// Returns the remedy.
fn refusal(gpu: &Gpu, c: Case, options: AttentionOptions, iterations: u64, limit: u64) -> String {
    let [q, k, v, out] = zero_operands(gpu, c);
    let e = attention::plan(gpu, &q, &k, &v, None, &out, c.h, &options)
        .map(|plan| plan.len())
        .expect_err("past the loop limit");
    loop_refusal_of(e, iterations, limit, &[]).remedy
}

#[test]
fn auto_passes_over_a_variant_past_the_loop_limit_for_one_that_fits() {
    // With the limit lowered to the bound of the built-in tiled variant, the variant Auto
    // prefers (texture on lavapipe, register-blocked on GPUs at D = 64; both loop more for
    // these few keys: the texture variant's row loads and stores, the blocked kernel's 2 x D
    // steps per tile) does not fit: Auto runs a variant that does, matching the reference, and
    // the preferred one forced is refused with its numbers.
    let real = gpu();
    let mut exercised = 0;
    for d in [256, 64] {
        let c = Case::new(1, 9, 13, 2, d);
        let dims = c.dims();
        let operands = zero_operands(real, c);
        let tensors: Vec<&Tensor> = operands.iter().collect();
        let preferred =
            attention::builtin_choice(real, &dims, &tensors, AttentionVariant::Auto).unwrap();
        let tiled = AttentionChoice::Tiled(
            AttentionConfig::for_gpu(real, d, AttentionVariant::Auto).unwrap(),
        );
        let (preferred_bound, limit) = (
            preferred.loop_iterations(real, &dims).unwrap(),
            tiled.loop_iterations(real, &dims).unwrap(),
        );
        if limit >= preferred_bound {
            println!(
                "note: D = {d}: Auto prefers {} here, which loops no more than {}",
                preferred.name(),
                tiled.name()
            );
            continue;
        }
        exercised += 1;
        let lowered = gpu_with_loop_limit(limit);
        let operands = zero_operands(&lowered, c);
        let tensors: Vec<&Tensor> = operands.iter().collect();
        let chosen =
            attention::builtin_choice(&lowered, &dims, &tensors, AttentionVariant::Auto).unwrap();
        assert_ne!(chosen, preferred, "D = {d}");
        assert!(
            chosen.loop_iterations(&lowered, &dims).unwrap() <= limit,
            "D = {d}: {}",
            chosen.name()
        );
        let data = inputs(c, 120 + d as u64, 1.0);
        for causal in [false, true] {
            check(
                &lowered,
                c,
                &data,
                None,
                with(AttentionVariant::Auto, causal),
                TOL,
            );
        }
        let remedy = refusal(
            &lowered,
            c,
            with(preferred.variant(), false),
            preferred.loop_iterations(&lowered, &dims).unwrap(),
            limit,
        );
        assert!(
            remedy.contains(&chosen.name()) && remedy.contains("Auto"),
            "D = {d}: {remedy}"
        );
    }
    assert!(exercised > 0, "no head dimension exercised the choice");
}

#[test]
fn keys_no_variant_takes_are_refused_with_the_numbers() {
    // 4 passes per invocation: not even one tile of keys fits any variant (one pass of a key
    // loop around a body with loops of its own counts at least 5), so neither key ranges nor
    // another variant take the problem.
    const LIMIT: u64 = 4;
    let gpu = gpu_with_loop_limit(LIMIT);
    let c = Case::new(1, 5, 200, 2, 16);
    let dims = c.dims();
    let operands = zero_operands(&gpu, c);
    let tensors: Vec<&Tensor> = operands.iter().collect();
    let auto = attention::builtin_choice(&gpu, &dims, &tensors, AttentionVariant::Auto).unwrap();
    let remedy = refusal(
        &gpu,
        c,
        with(AttentionVariant::Auto, false),
        auto.loop_iterations(&gpu, &dims).unwrap(),
        LIMIT,
    );
    for needle in ["Nk = 200", "D = 16", "attention::unfused"] {
        assert!(remedy.contains(needle), "{needle:?} not in: {remedy}");
    }
    // Every forced variant too, before anything is planned.
    for variant in variants(&gpu) {
        let choice = attention::builtin_choice(&gpu, &dims, &tensors, variant).unwrap();
        refusal(
            &gpu,
            c,
            with(variant, true),
            choice.loop_iterations(&gpu, &dims).unwrap(),
            LIMIT,
        );
    }
}

/// A key mask `[3, Nk]` for the key-range tests: batch 0 sees a random half of the keys,
/// batch 1 none, batch 2 only the keys of `only` (which lie inside one range).
fn range_mask(c: Case, seed: u64, only: std::ops::Range<usize>) -> Vec<f32> {
    assert_eq!(c.b, 3, "{c:?}");
    let flags = random_scaled(c.nk, seed, 1.0);
    let mut mask = vec![0.0f32; c.b * c.nk];
    for j in 0..c.nk {
        mask[j] = f32::from(flags[j] > 0.0);
    }
    for j in only {
        mask[2 * c.nk + j] = 1.0;
    }
    mask
}

/// Whether the texture variant runs here; prints a note where it does not.
fn texture_variant_runs(gpu: &Gpu) -> bool {
    let runs = variants(gpu).contains(&AttentionVariant::Texture);
    if !runs {
        println!("note: no texture variant on this adapter; its key ranges are not tested");
    }
    runs
}

#[test]
fn the_texture_variant_takes_keys_in_ranges_merged_by_their_log_sum_exp() {
    // A loop limit lowered to what 64 keys at D = 40 take (CHUNKS = 2: 320 passes for the row
    // loads and stores of two queries, 17 for the keys) gives ranges of 60 keys for Nk = 300, so that every
    // merge case is small: ranges whose rows see no key (causal queries before the range, a
    // batch masked throughout, a batch whose only keys are in one middle range) must weigh
    // nothing, and a row that sees no key in any range gives zeros.
    let real = gpu();
    if !texture_variant_runs(real) {
        return;
    }
    let d = 40;
    let gpu = gpu_with_loop_limit(attention_texture::loop_iterations(d, 64));
    assert_eq!(attention_texture::keys_per_dispatch(&gpu, d).unwrap(), 64);
    let texture = |causal| with(AttentionVariant::Texture, causal);
    let starts = |c: Case, causal: bool| -> Vec<usize> {
        attention_texture::key_ranges(&gpu, &c.dims(), causal)
            .unwrap()
            .iter()
            .map(|&(k0, n)| {
                assert_eq!(n, 60.min(c.nk - k0), "{c:?}");
                k0
            })
            .collect()
    };
    let c = Case::new(3, 250, 300, 2, d);
    assert_eq!(starts(c, false), [0, 60, 120, 180, 240]);
    assert_eq!(starts(c, true), [0, 60, 120, 180, 240]);
    // Causal: no query sees keys from Nq = 100 on, so only two ranges run.
    assert_eq!(starts(Case::new(3, 100, 300, 2, d), true), [0, 60]);

    let row = c.h * c.d;
    let data = inputs(c, 140, 1.0);
    let mask = range_mask(c, 141, 190..210);
    for causal in [false, true] {
        let got = check(&gpu, c, &data, Some(&mask), texture(causal), TOL);
        let batch = |b: usize| &got[b * c.nq * row..(b + 1) * c.nq * row];
        assert!(batch(1).iter().all(|&x| x == 0.0), "causal {causal}");
        if causal {
            assert!(batch(2)[..190 * row].iter().all(|&x| x == 0.0));
            assert!(batch(2)[190 * row..].iter().all(|&x| x != 0.0));
        }
    }
    check(&gpu, c, &data, None, texture(true), TOL);
    for (nq, seed) in [(100, 142), (7, 143)] {
        let c = Case::new(2, nq, 300, 3, d);
        let data = inputs(c, seed, 1.0);
        for causal in [false, true] {
            check(&gpu, c, &data, None, texture(causal), TOL);
        }
    }
    // Scores in the hundreds: each range's log-sum-exp is far from the others'.
    let c = Case::new(1, 20, 300, 2, d);
    let data = inputs(c, 144, 30.0);
    let tol = large_input_tolerance(c, &data, f64::from(c.dims().default_scale()));
    check(&gpu, c, &data, None, texture(false), tol);
}

#[test]
fn the_texture_variant_in_every_query_layout_matches_the_reference() {
    // Every layout whatever the rule would choose: one or two query rows per lane, or one per
    // workgroup with its keys split over the lanes; query counts around the 16 rows of a
    // paired workgroup (the second row of some invocations past Nq), every head dimension's
    // chunk count, the causal mask, a key mask, and key ranges merged by their log-sum-exp.
    let real = gpu();
    if !texture_variant_runs(real) {
        return;
    }
    let layouts = [
        QueryLayout::OnePerLane,
        QueryLayout::TwoPerLane,
        QueryLayout::KeysSplit,
    ];
    let run = |gpu: &Gpu, c: Case, data: &Inputs, mask: Option<&[f32]>, causal, layout| {
        let scale = c.dims().default_scale();
        let label = format!("texture {c:?} causal {causal} {layout:?}");
        let plan = |q: &Tensor, k: &Tensor, v: &Tensor, m: Option<&Tensor>, out: &Tensor| {
            let dims = c.dims();
            attention_texture::plan(gpu, &dims, q, k, v, m, out, scale, causal, layout)
        };
        check_planned(gpu, c, data, mask, (scale, causal), &label, plan, TOL);
    };
    let cases = [
        Case::new(1, 9, 20, 1, 8),
        Case::new(2, 16, 33, 2, 32),
        Case::new(1, 17, 17, 3, 64),
        Case::new(2, 23, 41, 1, 100),
        Case::new(1, 40, 12, 1, 256),
        Case::new(1, 3, 30, 2, 16),
        Case::new(2, 1, 45, 3, 64),
        Case::new(1, 1, 5, 1, 100),
    ];
    for (i, &c) in cases.iter().enumerate() {
        let data = inputs(c, 150 + i as u64, 1.0);
        let flags = random_scaled(c.b * c.nk, 160 + i as u64, 1.0);
        let mask: Vec<f32> = flags.iter().map(|&f| f32::from(f > -0.5)).collect();
        for layout in layouts {
            for causal in [false, true] {
                run(real, c, &data, None, causal, layout);
            }
            run(real, c, &data, Some(&mask), true, layout);
        }
    }
    // Ranges of 60 keys (as in the test above), in every layout.
    let d = 40;
    let small = gpu_with_loop_limit(attention_texture::loop_iterations(d, 64));
    for (c, seed) in [
        (Case::new(2, 37, 200, 2, d), 170),
        (Case::new(2, 1, 200, 2, d), 171),
    ] {
        let data = inputs(c, seed, 1.0);
        for layout in layouts {
            for causal in [false, true] {
                run(&small, c, &data, None, causal, layout);
            }
        }
    }
}

#[test]
fn texture_pairs_queries_where_enough_workgroups_remain() {
    let dims = |b, nq, h| Case::new(b, nq, 100, h, 64).dims();
    // 8 rows or fewer: one subgroup's worth, never paired.
    assert!(!attention_texture::pairs_on(&dims(4, 8, 16), 1));
    // 9 rows: paired where one paired workgroup per (batch, head) covers the cores.
    assert!(attention_texture::pairs_on(&dims(1, 9, 2), 2));
    assert!(!attention_texture::pairs_on(&dims(1, 9, 1), 2));
    // 16 rows of one head: 1 paired workgroup against 2 unpaired on 2 cores.
    assert!(!attention_texture::pairs_on(&dims(1, 16, 1), 2));
    assert!(attention_texture::pairs_on(&dims(1, 32, 1), 2));
    assert!(attention_texture::pairs_on(&dims(1, 1024, 4), 16));
    assert!(!attention_texture::pairs_on(&dims(1, 48, 4), 16));
    // One query row: its keys split over the lanes, whatever the cores.
    assert_eq!(
        attention_texture::layout(&dims(3, 1, 16)),
        QueryLayout::KeysSplit
    );
}

#[test]
fn keys_past_one_texture_run_in_ranges_at_the_adapters_own_limits() {
    // lavapipe's textures hold 16,380 keys: 100 more take a second range, with the key mask
    // read from the key's place in its batch.
    let gpu = gpu();
    if !texture_variant_runs(gpu) {
        return;
    }
    let nk = attention_texture::texture_keys(gpu) + 100;
    let c = Case::new(2, 9, nk, 2, 64);
    let ranges = attention_texture::key_ranges(gpu, &c.dims(), false).unwrap();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    let data = inputs(c, 150, 1.0);
    let flags = random_scaled(c.b * c.nk, 151, 1.0);
    let mask: Vec<f32> = flags.iter().map(|&x| f32::from(x > -0.5)).collect();
    let tol = 1e-5 + 2.0 * 5.96e-8 * (nk as f64).sqrt();
    check(
        gpu,
        c,
        &data,
        Some(&mask),
        with(AttentionVariant::Auto, false),
        tol,
    );
    let chosen = attention::builtin_choice(
        gpu,
        &c.dims(),
        &zero_operands(gpu, c).iter().collect::<Vec<_>>(),
        AttentionVariant::Auto,
    )
    .unwrap();
    if gpu.is_cpu() {
        assert_eq!(chosen, AttentionChoice::Texture);
    }
}

#[test]
fn keys_past_lavapipes_loop_limit_run_in_ranges() {
    // lavapipe ends an invocation's loops after 65,535 passes. Unchecked, the subgroup variant
    // at D = 64 was wrong from 49,952 keys on and the register-blocked kernel from 21,312
    // (measured). At 50,000 keys every variant, forced or chosen by Auto, takes them in key
    // ranges that each fit (the texture variant in ranges that fit its textures), merged by
    // their log-sum-exps. On adapters without a limit all of it runs too. Tolerance: the 1e-5
    // of short rows plus the f32 sums over 50,000 keys, u · sqrt(Nk) ≈ 1.3e-5 each for the
    // numerator and the normalizer.
    let gpu = gpu();
    let tol = 1e-5 + 2.0 * 5.96e-8 * (50_000f64).sqrt();
    let c = Case::new(1, 3, 50_000, 1, 64);
    let data = inputs(c, 131, 1.0);
    let dims = c.dims();
    let operands = zero_operands(gpu, c);
    let tensors: Vec<&Tensor> = operands.iter().collect();
    let mut forced = variants(gpu);
    forced.extend([AttentionVariant::Blocked, AttentionVariant::Auto]);
    for variant in forced {
        let choice = attention::builtin_choice(gpu, &dims, &tensors, variant).unwrap();
        if let Some(limit) = gpu.loop_limit().unwrap() {
            let bound = choice.loop_iterations(gpu, &dims).unwrap();
            assert!(
                bound <= limit,
                "{}: {bound} passes past {limit}",
                choice.name()
            );
        }
        let causal = variant == AttentionVariant::Workgroup;
        check(gpu, c, &data, None, with(variant, causal), tol);
    }
    let Some(limit) = gpu.loop_limit().unwrap() else {
        return;
    };
    for variant in [AttentionVariant::Subgroup, AttentionVariant::Workgroup] {
        let Ok(config) = AttentionConfig::for_gpu(gpu, c.d, variant) else {
            continue;
        };
        // Whole, the keys would not fit; in ranges, each does.
        assert!(config.loop_iterations(c.nk) > limit, "{config}");
        let split = attention::key_split(gpu, &dims, &config).unwrap();
        assert!(split.splits > 1, "{config}: {split:?}");
        assert!(
            config.loop_iterations(split.keys) <= limit,
            "{config}: {split:?}"
        );
    }
}

#[test]
fn the_tiled_kernel_takes_keys_in_ranges_merged_by_their_log_sum_exp() {
    // A loop limit lowered to what two key tiles take cuts 300 keys into ranges of 2 tiles,
    // each range a workgroup per query block writing its partial output and log-sum-exp, and
    // attention_combine merging them. Every merge case is small: ranges whose rows see no key
    // (causal queries before the range, a batch masked throughout, a batch whose only keys lie
    // in one middle range), Nq != Nk, heads of awkward D, large scores.
    let real = gpu();
    for variant in variants(real) {
        if variant == AttentionVariant::Texture {
            continue;
        }
        let d = 40;
        let config = AttentionConfig::for_gpu(real, d, variant).unwrap();
        let bk = config.keys_per_tile as usize;
        let gpu = gpu_with_loop_limit(config.loop_iterations(2 * bk));
        let c = Case::new(3, 45, 300, 2, d);
        let split = attention::key_split(&gpu, &c.dims(), &config).unwrap();
        assert_eq!(split.keys, 2 * bk, "{config}: {split:?}");
        assert_eq!(
            split.splits,
            300usize.div_ceil(2 * bk),
            "{config}: {split:?}"
        );
        let options = |causal| with(variant, causal);
        let row = c.h * c.d;
        let data = inputs(c, 160, 1.0);
        let mask = range_mask(c, 161, 70..90);
        for causal in [false, true] {
            let got = check(&gpu, c, &data, Some(&mask), options(causal), TOL);
            let batch = |b: usize| &got[b * c.nq * row..(b + 1) * c.nq * row];
            assert!(
                batch(1).iter().all(|&x| x == 0.0),
                "{config} causal {causal}"
            );
            let unseen = if causal { c.nq } else { 0 };
            assert!(batch(2)[..unseen * row].iter().all(|&x| x == 0.0));
            check(&gpu, c, &data, None, options(causal), TOL);
        }
        let c = Case::new(1, 20, 300, 2, d);
        let data = inputs(c, 162, 30.0);
        let tol = large_input_tolerance(c, &data, f64::from(c.dims().default_scale()));
        check(&gpu, c, &data, None, options(false), tol);
    }
}

#[test]
fn key_ranges_follow_the_loop_limit_parallelism_and_bindings() {
    let real = gpu();
    let config = AttentionConfig::for_gpu(real, 64, AttentionVariant::Auto).unwrap();
    let bk = config.keys_per_tile as usize;
    // Within the limit and with many query blocks: one range, the whole sequence.
    let many = Case::new(8, 4096, 300, 16, 64);
    let whole = attention::key_split(real, &many.dims(), &config).unwrap();
    assert_eq!((whole.splits, whole.keys), (1, 300));
    // A decoding step over 100,000 keys: on GPUs ranges of at least MIN_KEYS_PER_SPLIT keys for
    // about SPLIT_TARGET_WORKGROUPS workgroups; on CPU adapters only what the loop limit needs.
    let decode = Case::new(1, 1, 100_000, 4, 64);
    let split = attention::key_split(real, &decode.dims(), &config).unwrap();
    assert_eq!(split.keys % bk, 0, "{split:?}");
    assert!(split.splits * split.keys >= decode.nk, "{split:?}");
    assert!((split.splits - 1) * split.keys < decode.nk, "{split:?}");
    let limit = real.loop_limit().unwrap();
    if let Some(limit) = limit {
        assert!(config.loop_iterations(split.keys) <= limit, "{split:?}");
    }
    if real.is_cpu() {
        let needed = limit.map_or(1, |l| {
            let mut s = 1;
            while config.loop_iterations(decode.nk.div_ceil(s).next_multiple_of(bk)) > l {
                s += 1;
            }
            s
        });
        assert_eq!(split.splits, needed, "{split:?}");
    } else {
        assert!(split.splits > 1, "{split:?}");
        assert!(split.keys >= attention::MIN_KEYS_PER_SPLIT, "{split:?}");
        // 4 query blocks (one query row of 4 heads), so about SPLIT_TARGET_WORKGROUPS / 4 ranges.
        assert!(
            split.splits * 4 <= 2 * attention::SPLIT_TARGET_WORKGROUPS,
            "{split:?}"
        );
    }
    // Partial outputs that would not fit one binding keep the keys whole: under a lowered loop
    // limit the problem is then refused, not cut. 64 KiB bindings hold K ([1000, 16]) and O
    // ([200, 16]) but not 16 partial outputs of O.
    let config = AttentionConfig::for_gpu(real, 16, AttentionVariant::Auto).unwrap();
    let bk = config.keys_per_tile as usize;
    let limit = config.loop_iterations(2 * bk);
    let tight = Gpu::with_options(&speckle::GpuOptions {
        max_binding_bytes: Some(64 * 1024),
        max_loop_iterations: Some(limit),
        tuning: speckle::Tuning::Off,
        ..Default::default()
    })
    .unwrap();
    let wide = Case::new(1, 200, 1000, 1, 16);
    assert!(1000usize.div_ceil(2 * bk) * 200 * 16 > 16 * 1024);
    let whole = attention::key_split(&tight, &wide.dims(), &config).unwrap();
    assert_eq!(whole.splits, 1, "{whole:?}");
    refusal(
        &tight,
        wide,
        with(config.variant, false),
        config.loop_iterations(wide.nk),
        limit,
    );
}
