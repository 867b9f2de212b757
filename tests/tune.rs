//! Autotuning: the cache file (round trip, replacement, refusal of foreign or broken files),
//! class lookup (exact, nearest within reach, never across tags), a device reading a cache
//! and every op using the tuned configuration it finds — with results still equal to the f64
//! references — and ignoring entries it cannot use; and each tuner on small problems, whose
//! winner is a valid, correct candidate.
//!
//! Tolerances as in the ops' own tests: matmul 1e-6 relative for k ≤ 64 (f32 products of
//! length k in [-1, 1): error ≈ 2⁻²⁴·sqrt(k)), attention 1e-5 (see tests/attention.rs),
//! the matrix-free projection 1e-5 (d = 96 terms).

mod common;

use std::path::PathBuf;

use common::{assert_rel_close, gpu, random};
use speckle::cpu::matmul::{matmul as matmul_reference, Problem};
use speckle::ops::attention::{self, AttentionChoice, AttentionDims, AttentionOptions};
use speckle::ops::matmul::{self, MatmulConfig, MatmulDims, MatmulKernel, MatmulOptions};
use speckle::ops::project_dense::{self, DenseSpec};
use speckle::ops::random_fill::Distribution;
use speckle::tune::{
    attention::AttentionShape, matmul::MatmulShape, project::ProjectShape, AdapterKey, ShapeClass,
    TuneFile, TuneOptions, TuneTable, TunedEntry, FORMAT,
};
use speckle::{Gpu, GpuOptions, Tensor, Tuning};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speckle-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entry(adapter: &AdapterKey, op: &str, class: ShapeClass, config: &str) -> TunedEntry {
    TunedEntry {
        adapter: adapter.clone(),
        op: op.into(),
        class,
        shape: vec![1],
        config: config.into(),
        median_ms: 1.0,
        default_ms: 2.0,
        speckle: speckle::version().into(),
        date: "2026-12-02".into(),
    }
}

fn other_adapter() -> AdapterKey {
    AdapterKey {
        name: "Some Other GPU".into(),
        backend: "vulkan".into(),
        driver: "other".into(),
        driver_info: "1.0".into(),
        vendor: 1,
        device: 2,
    }
}

/// A device reading `file`.
fn gpu_with_cache(file: &TuneFile, name: &str) -> Gpu {
    let path = scratch(name).join("tune.json");
    file.save(&path).unwrap();
    Gpu::with_options(&GpuOptions {
        tuning: Tuning::File(path),
        ..Default::default()
    })
    .unwrap()
}

fn tune_file(entries: Vec<TunedEntry>) -> TuneFile {
    TuneFile {
        format: FORMAT,
        entries,
    }
}

#[test]
fn classes_round_sizes_to_octaves_and_keep_tags_apart() {
    let a = ShapeClass::new("NN", &[1024, 1024, 1024]);
    assert_eq!(a.log2, vec![10, 10, 10]);
    assert_eq!(a, ShapeClass::new("NN", &[1100, 1000, 1400]));
    assert_eq!(
        a.distance(&ShapeClass::new("NN", &[2048, 1024, 512])),
        Some(2)
    );
    assert_eq!(
        a.distance(&ShapeClass::new("NT", &[1024, 1024, 1024])),
        None
    );
    assert_eq!(a.label(), "NN 2^10 x 2^10 x 2^10");
}

#[test]
fn lookup_takes_the_exact_class_else_the_nearest_within_reach() {
    let me = other_adapter();
    let file = tune_file(vec![
        entry(
            &me,
            "matmul",
            ShapeClass::new("NN", &[1024, 1024, 1024]),
            "near",
        ),
        entry(
            &me,
            "matmul",
            ShapeClass::new("NN", &[4096, 4096, 4096]),
            "far",
        ),
        entry(&me, "matmul", ShapeClass::new("NT", &[256, 256, 256]), "nt"),
        entry(
            &me,
            "attention",
            ShapeClass::new("NN", &[256, 256, 256]),
            "other op",
        ),
    ]);
    let table = TuneTable::for_adapter(file, &me, None);
    let config = |class: ShapeClass| table.lookup("matmul", &class).map(|e| e.config.as_str());
    assert_eq!(
        config(ShapeClass::new("NN", &[1024, 1024, 1024])),
        Some("near")
    );
    assert_eq!(
        config(ShapeClass::new("NN", &[2048, 2048, 1024])),
        Some("near")
    );
    assert_eq!(
        config(ShapeClass::new("NN", &[4096, 4096, 8192])),
        Some("far")
    );
    // Three octaves from the nearest: the default applies.
    assert_eq!(config(ShapeClass::new("NN", &[128, 1024, 1024])), None);
    assert_eq!(config(ShapeClass::new("NT", &[256, 256, 512])), Some("nt"));
    assert_eq!(config(ShapeClass::new("TN", &[256, 256, 256])), None);
}

#[test]
fn cache_files_round_trip_replace_and_refuse_what_they_cannot_read() {
    let dir = scratch("file");
    let path = dir.join("sub").join("tune.json");
    // A missing file is an empty cache.
    assert!(TuneFile::load(&path).unwrap().entries.is_empty());
    let me = other_adapter();
    let class = ShapeClass::new("NN", &[64, 64, 64]);
    let mut file = tune_file(vec![entry(&me, "matmul", class.clone(), "8x8-vec4")]);
    file.insert(entry(&me, "matmul", class.clone(), "16x8-vec4"));
    file.insert(entry(&me, "attention", class.clone(), "texture"));
    assert_eq!(file.entries.len(), 2, "same adapter, op and class replace");
    file.save(&path).unwrap();
    let back = TuneFile::load(&path).unwrap();
    assert_eq!(back.entries, file.entries);
    let mut back = back;
    assert_eq!(back.remove(&me, Some("matmul")), 1);
    assert_eq!(back.entries.len(), 1);

    std::fs::write(&path, b"{ not json").unwrap();
    let e = TuneFile::load(&path).unwrap_err().to_string();
    assert!(e.contains("tune.json") && e.contains("not valid"), "{e}");
    std::fs::write(&path, br#"{"format": 99, "entries": []}"#).unwrap();
    let e = TuneFile::load(&path).unwrap_err().to_string();
    assert!(e.contains("format 99"), "{e}");
    // A device given a broken cache still opens, with the defaults.
    let gpu = Gpu::with_options(&GpuOptions {
        tuning: Tuning::File(path),
        ..Default::default()
    })
    .unwrap();
    assert!(gpu.tune_table().entries().is_empty());
}

/// C = A·B for seeded A [m, k], B [k, n] on `gpu` with its own configuration choice.
fn matmul_check(gpu: &Gpu, m: usize, n: usize, k: usize) -> MatmulKernel {
    let a_host = random(m * k, 1);
    let b_host = random(k * n, 2);
    let a = Tensor::from_slice(gpu, &a_host, &[m, k]).unwrap();
    let b = Tensor::from_slice(gpu, &b_host, &[k, n]).unwrap();
    let c = Tensor::filled(gpu, &[m, n], f32::NAN).unwrap();
    let o = MatmulOptions::default();
    let kernel = matmul::kernel_for(gpu, &a, &b, &c, &o).unwrap();
    matmul::run_into(gpu, &a, &b, &c, &o).unwrap();
    let reference = matmul_reference(&Problem::new(&a_host, &[m, k], &b_host, &[k, n])).unwrap();
    assert_rel_close("tuned matmul", &c.to_vec(gpu).unwrap(), &reference, 1e-6);
    kernel
}

#[test]
fn a_tuned_matmul_configuration_is_used_and_unusable_ones_are_ignored() {
    let me = AdapterKey::of(gpu());
    let builtin = MatmulConfig::builtin(gpu());
    // The scalar kernel is never the built-in one, so seeing it proves the cache was read.
    assert_ne!(builtin.kernel, MatmulKernel::Scalar);
    let d = MatmulDims::new(&[64, 48], &[48, 40], false, false).unwrap();
    let class = matmul::shape_class(&d, false, false);
    let tuned = gpu_with_cache(
        &tune_file(vec![
            entry(&me, "matmul", class.clone(), "8x8-scalar"),
            // Another adapter's entry for a neighbouring class must not leak in.
            entry(
                &other_adapter(),
                "matmul",
                ShapeClass::new("NN", &[256, 256, 256]),
                "4x4-scalar",
            ),
        ]),
        "matmul-used",
    );
    assert_eq!(tuned.tune_table().entries().len(), 1);
    assert_eq!(matmul_check(&tuned, 64, 40, 48), MatmulKernel::Scalar);
    // A nearby class takes the tuned entry; a far one keeps the built-in kernel.
    assert_eq!(matmul_check(&tuned, 128, 40, 48), MatmulKernel::Scalar);
    assert_ne!(matmul_check(&tuned, 256, 256, 256), MatmulKernel::Scalar);
    // The tests' own device never reads a cache.
    assert_ne!(matmul_check(gpu(), 64, 40, 48), MatmulKernel::Scalar);
    // An entry the adapter cannot run (too many threads) or cannot parse is ignored.
    for bad in ["4096x4096-vec4", "not-a-config"] {
        let g = gpu_with_cache(
            &tune_file(vec![entry(&me, "matmul", class.clone(), bad)]),
            "matmul-bad",
        );
        assert_eq!(
            MatmulConfig::for_problem(&g, &d, false, false).unwrap(),
            builtin,
            "{bad}"
        );
        assert_ne!(matmul_check(&g, 64, 40, 48), MatmulKernel::Scalar);
    }
    // Forgetting the entries restores the default; remembering one (as a tuner in the same
    // process would) applies it at once.
    tuned.forget_tuned(Some("matmul"));
    assert_ne!(matmul_check(&tuned, 64, 40, 48), MatmulKernel::Scalar);
    tuned.remember_tuned(entry(&me, "matmul", class.clone(), "8x8-scalar"));
    assert_eq!(matmul_check(&tuned, 64, 40, 48), MatmulKernel::Scalar);
}

#[test]
fn a_tuned_attention_configuration_is_used() {
    let me = AdapterKey::of(gpu());
    let (b, n, h, dh) = (2, 37, 2, 16);
    let shape = [b, n, h * dh];
    let dims = AttentionDims::new(&shape, &shape, &shape, h).unwrap();
    let wanted = "workgroup-t2-wg64-bk16";
    let g = gpu_with_cache(
        &tune_file(vec![entry(
            &me,
            "attention",
            attention::shape_class(&dims, true),
            wanted,
        )]),
        "attention",
    );
    let len = b * n * h * dh;
    let (qh, kh, vh) = (random(len, 4), random(len, 5), random(len, 6));
    let q = Tensor::from_slice(&g, &qh, &shape).unwrap();
    let k = Tensor::from_slice(&g, &kh, &shape).unwrap();
    let v = Tensor::from_slice(&g, &vh, &shape).unwrap();
    let out = Tensor::filled(&g, &shape, f32::NAN).unwrap();
    let causal = AttentionOptions {
        causal: true,
        ..Default::default()
    };
    let choice = attention::choose(&g, &dims, &[&q, &k, &v, &out], &causal).unwrap();
    assert_eq!(choice.name(), wanted);
    // The class includes the mask: without it, the built-in choice applies.
    let plain = attention::choose(&g, &dims, &[&q, &k, &v, &out], &Default::default()).unwrap();
    assert_ne!(plain.name(), wanted);
    g.execute(&attention::plan(&g, &q, &k, &v, None, &out, h, &causal).unwrap())
        .unwrap();
    let reference = speckle::cpu::attention::attention(
        &qh,
        &kh,
        &vh,
        None,
        &dims,
        f64::from(dims.default_scale()),
        true,
    );
    assert_rel_close(
        "tuned attention",
        &out.to_vec(&g).unwrap(),
        &reference,
        1e-5,
    );
    // Configurations parse back from their names and refuse what breaks the rules.
    assert_eq!(
        AttentionChoice::parse(&g, dh, wanted).unwrap(),
        AttentionChoice::Tiled(choice_config(choice))
    );
    for bad in [
        "workgroup-t3-wg64-bk16",
        "workgroup-t2-wg48-bk16",
        "workgroup-t2-wg64-bk6",
        "workgroup-t2-wg64-bk0",
        "tiled",
    ] {
        let e = AttentionChoice::parse(&g, dh, bad).unwrap_err().to_string();
        assert!(e.contains("attention config"), "{bad}: {e}");
    }
}

fn choice_config(c: AttentionChoice) -> speckle::ops::attention::AttentionConfig {
    match c {
        AttentionChoice::Tiled(config) => config,
        other => panic!("expected a tiled configuration, got {}", other.name()),
    }
}

#[test]
fn a_tuned_projection_workgroup_is_used() {
    let me = AdapterKey::of(gpu());
    let (batch, d, n_out) = (3, 96, 300);
    let g = gpu_with_cache(
        &tune_file(vec![entry(
            &me,
            "project_dense",
            project_dense::shape_class(d, n_out, true, false),
            "wg128",
        )]),
        "project",
    );
    let spec = DenseSpec {
        distribution: Distribution::Gaussian,
        scale: 0.1,
        seed: 9,
        complex: true,
    };
    let x_host = random(batch * d, 7);
    let x = Tensor::from_slice(&g, &x_host, &[batch, d]).unwrap();
    let re = Tensor::filled(&g, &[batch, n_out], f32::NAN).unwrap();
    let im = Tensor::filled(&g, &[batch, n_out], f32::NAN).unwrap();
    let plan = project_dense::plan(&g, &x, &re, Some(&im), &spec).unwrap();
    // 300 rows in workgroups of 128: 3 workgroups per dispatch (5 with the default 64).
    assert_eq!(plan[0].workgroups()[0], 3);
    g.execute(&plan).unwrap();
    let (re_ref, im_ref) =
        speckle::cpu::project_dense::project_dense(&spec, &x_host, batch, d, n_out);
    assert_rel_close(
        "tuned projection (re)",
        &re.to_vec(&g).unwrap(),
        &re_ref,
        1e-5,
    );
    assert_rel_close(
        "tuned projection (im)",
        &im.to_vec(&g).unwrap(),
        &im_ref,
        1e-5,
    );
    g.forget_tuned(Some("project_dense"));
    let default = project_dense::plan(&g, &x, &re, Some(&im), &spec).unwrap();
    assert_eq!(default[0].workgroups()[0], 5);
}

/// A tuning outcome is sound: the default was measured, the winner is a candidate that ran
/// and was correct, and the entry to cache names it.
fn assert_sound(outcomes: &[(speckle::tune::ClassResult, Option<TunedEntry>)], op: &str) {
    assert!(!outcomes.is_empty());
    for (result, entry) in outcomes {
        assert_eq!(result.op, op);
        let default = result
            .candidates
            .iter()
            .find(|c| c.is_default)
            .unwrap_or_else(|| panic!("{op}: the default was not measured"));
        assert!(default.rejected.is_none(), "{op}: default {default:?}");
        let best = result.best.as_deref().expect("a winner");
        let winner = result.candidates.iter().find(|c| c.config == best).unwrap();
        assert!(winner.rejected.is_none() && winner.median_ms.is_finite());
        assert!(winner.median_ms <= default.median_ms);
        assert!(result.speedup >= 1.0, "{op}: speedup {}", result.speedup);
        for c in result.candidates.iter().filter(|c| c.rejected.is_none()) {
            assert!(c.error.is_finite(), "{op} {}: error {}", c.config, c.error);
        }
        let entry = entry.as_ref().expect("an entry to cache");
        assert_eq!(entry.config, best);
        assert_eq!(entry.class, result.class);
        assert_eq!(entry.adapter, AdapterKey::of(gpu()));
    }
}

const QUICK: TuneOptions = TuneOptions { warmup: 0, runs: 1 };

#[test]
fn the_matmul_tuner_finds_a_correct_winner() {
    let shapes: Vec<MatmulShape> = ["33,20,17", "40,24,36,NT"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let outcomes = speckle::tune::matmul::tune(gpu(), &shapes, &QUICK, |_| {}).unwrap();
    assert_sound(&outcomes, "matmul");
    assert_eq!(outcomes[1].0.class.tag, "NT");
    assert!("1,2".parse::<MatmulShape>().is_err());
    assert!("0,2,3".parse::<MatmulShape>().is_err());
    assert!("1,2,3,NX".parse::<MatmulShape>().is_err());
}

#[test]
fn the_f16_matmul_tuner_finds_a_correct_winner_and_its_choice_is_used() {
    let shapes: Vec<MatmulShape> = ["32,24,36", "40,24,36,NT"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let outcomes = speckle::tune::matmul::tune_operands(
        gpu(),
        &shapes,
        speckle::tune::matmul::Operands::F16,
        &QUICK,
        |_| {},
    )
    .unwrap();
    assert_sound(&outcomes, "matmul_f16");
    // A tuned tiled configuration replaces the f16 path's default vec4 kernel.
    let me = AdapterKey::of(gpu());
    let d = MatmulDims::new(&[32, 36], &[36, 24], false, false).unwrap();
    let g = gpu_with_cache(
        &tune_file(vec![entry(
            &me,
            "matmul_f16",
            matmul::shape_class(&d, false, false),
            "8x8-tiled",
        )]),
        "matmul-f16",
    );
    let plain = MatmulOptions::default();
    // kernel_for reads only the shapes: the same operands serve both devices.
    let a = speckle::HalfTensor::from_f32(&g, &random(32 * 36, 1), &[32, 36]).unwrap();
    let b = speckle::HalfTensor::from_f32(&g, &random(36 * 24, 2), &[36, 24]).unwrap();
    assert_eq!(
        speckle::ops::matmul_f16::kernel_for(&g, &a, &b, &plain).unwrap(),
        MatmulKernel::Tiled
    );
    assert_ne!(
        speckle::ops::matmul_f16::kernel_for(gpu(), &a, &b, &plain).unwrap(),
        MatmulKernel::Tiled
    );
}

#[test]
fn the_attention_tuner_finds_a_correct_winner() {
    // A causal square problem and a decoding step (3 queries against 70 keys), whose class
    // keeps Nq and Nk apart.
    let shapes: Vec<AttentionShape> = ["1,2,40,16,causal", "1,2,3,70,16"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(shapes[0].causal && (shapes[0].nq, shapes[0].nk) == (40, 40));
    assert_eq!(
        (shapes[1].nq, shapes[1].nk, shapes[1].head_dim),
        (3, 70, 16)
    );
    for (shape, text) in shapes.iter().zip(["1,2,40,16,causal", "1,2,3,70,16"]) {
        assert_eq!(shape.to_string(), text);
    }
    let outcomes = speckle::tune::attention::tune(gpu(), &shapes, &QUICK, |_| {}).unwrap();
    assert_sound(&outcomes, "attention");
    assert_eq!(outcomes[1].0.shape, vec![1, 2, 3, 70, 16]);
    assert_ne!(outcomes[0].0.class.log2[..2], outcomes[1].0.class.log2[..2]);
    assert!(
        "1,2,3,70,16,causal"
            .parse::<AttentionShape>()
            .unwrap()
            .causal
    );
    for bad in [
        "1,2,40",
        "1,2,40,16,acausal",
        "1,2,3,4,5,6",
        "1,2,0,70,16",
        "causal",
    ] {
        let e = bad.parse::<AttentionShape>().unwrap_err().to_string();
        assert!(e.contains("B,H,Nq,Nk,D"), "{bad}: {e}");
    }
}

#[test]
fn the_projection_tuner_finds_a_correct_winner() {
    let shapes: Vec<ProjectShape> = ["2,100,130,complex", "2,100,130,complex,transpose"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let outcomes = speckle::tune::project::tune(gpu(), &shapes, &QUICK, |_| {}).unwrap();
    assert_sound(&outcomes, "project_dense");
    assert!("2,100".parse::<ProjectShape>().is_err());
    assert!("2,100,130,sideways".parse::<ProjectShape>().is_err());
}

#[test]
fn the_optical_tuner_finds_a_correct_winner_and_its_choice_is_used() {
    use speckle::ops::project_optical::{self, OpticalKernel};
    use speckle::tune::project_optical::OpticalShape;
    let shapes: Vec<OpticalShape> = ["20,36,44", "20,36,44,f16"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(shapes[1].half);
    let outcomes = speckle::tune::project_optical::tune(gpu(), &shapes, &QUICK, |_| {}).unwrap();
    assert_sound(&outcomes, "project_optical");
    assert_eq!(outcomes[1].0.class.tag, "f16");
    assert!("20,36".parse::<OpticalShape>().is_err());
    assert!(
        "20,36,42".parse::<OpticalShape>().is_err(),
        "n_out not a multiple of 4"
    );
    assert!("20,36,44,f8".parse::<OpticalShape>().is_err());
    // A tuned T = 16 replaces the CPU adapter's default T = 8: 88 paired columns take one
    // 128-wide workgroup instead of two 64-wide ones.
    let me = AdapterKey::of(gpu());
    let g = gpu_with_cache(
        &tune_file(vec![entry(
            &me,
            "project_optical",
            project_optical::shape_class(20, 36, 44, false),
            "tiled16",
        )]),
        "optical",
    );
    assert_eq!(
        project_optical::tuned_kernel(&g, 20, 36, 44, false),
        Some(OpticalKernel::Tiled(16))
    );
    assert_eq!(
        project_optical::tuned_kernel(gpu(), 20, 36, 44, false),
        None
    );
    let mut p = speckle::projection::Projection::new(speckle::projection::Kind::Optical, 44, 3);
    // The tuned kernel is the fused pass's, which CPU adapters run only when asked.
    p.fused = speckle::projection::Fusion::Fused;
    p.fit(36).unwrap();
    let x = Tensor::from_slice(&g, &random(20 * 36, 4), &[20, 36]).unwrap();
    let ws = p.prepare(&g, 20).unwrap();
    let plan = p.plan(&g, &x, &ws).unwrap();
    assert_eq!(plan[0].workgroups()[0], 1);
    let ws_default = p.prepare(gpu(), 20).unwrap();
    let x_default = Tensor::from_slice(gpu(), &random(20 * 36, 4), &[20, 36]).unwrap();
    let plan = p.plan(gpu(), &x_default, &ws_default).unwrap();
    assert_eq!(plan[0].workgroups()[0], 2);
}

#[test]
fn the_srht_tuner_finds_a_correct_winner_and_its_choice_is_used() {
    use speckle::cpu::srht::{srht as srht_reference, srht_transpose};
    use speckle::ops::srht::{self, LocalConfig};
    use speckle::tune::srht::SrhtShape;
    let shape: SrhtShape = "2,1000,3000".parse().unwrap();
    let outcomes = speckle::tune::srht::tune(gpu(), &[shape], &QUICK, |_| {}).unwrap();
    assert_sound(&outcomes, "srht");
    assert!(outcomes[0].0.candidates.len() >= 6);
    for bad in ["2,1000", "2,1000,3000,optical", "0,1000,3000"] {
        assert!(bad.parse::<SrhtShape>().is_err(), "{bad}");
    }
    // p = 1,024, 3 blocks, 2 inputs: 6 work rows. A tuned tile of 256 values replaces the
    // built-in 1,024: the first (local) dispatch takes 24 workgroups instead of 6, forward
    // and transposed, with results still equal to the references.
    let (batch, d, n_out) = (2, 1000, 3000);
    let tuned = LocalConfig {
        tile: 256,
        threads: 16,
        padded: true,
    };
    let me = AdapterKey::of(gpu());
    let class = srht::class_of(gpu(), batch, d, n_out, false).unwrap();
    let g = gpu_with_cache(
        &tune_file(vec![entry(&me, "srht", class, &tuned.name())]),
        "srht",
    );
    // What runs, and what the benchmark reports as its variant.
    let builtin = LocalConfig::builtin(gpu(), 1024).unwrap();
    for (device, local) in [(&g, Some(tuned)), (gpu(), builtin)] {
        assert_eq!(
            srht::chosen_local(device, batch, d, n_out, false).unwrap(),
            local
        );
        let mut projection =
            speckle::projection::Projection::new(speckle::projection::Kind::Srht, n_out, 5);
        projection.fit(d).unwrap();
        let bench = speckle::bench::bench_project(device, &projection, batch, 0, 1).unwrap();
        assert_eq!(bench.mode, format!("structured, {}", local.unwrap().name()));
        assert!(bench.rel_err < 1e-5, "{}", bench.rel_err);
    }
    let x_host = random(batch * d, 3);
    let y_host = random(batch * n_out, 4);
    for (device, workgroups) in [(&g, 24), (gpu(), 6)] {
        let x = Tensor::from_slice(device, &x_host, &[batch, d]).unwrap();
        let y = Tensor::filled(device, &[batch, n_out], f32::NAN).unwrap();
        let plan = srht::plan(device, &x, &y, n_out, 5, false).unwrap();
        assert_eq!(plan[0].workgroups()[0], workgroups);
        device.execute(&plan).unwrap();
        assert_rel_close(
            &format!("srht forward, {workgroups} tiles"),
            &y.to_vec(device).unwrap(),
            &srht_reference(&x_host, batch, d, n_out, 5, false),
            1e-5,
        );
        let yt = Tensor::from_slice(device, &y_host, &[batch, n_out]).unwrap();
        let xt = Tensor::filled(device, &[batch, d], f32::NAN).unwrap();
        let plan = srht::plan_transpose(device, &yt, &xt, n_out, 5).unwrap();
        assert_eq!(plan[0].workgroups()[0], workgroups);
        device.execute(&plan).unwrap();
        assert_rel_close(
            &format!("srht transpose, {workgroups} tiles"),
            &xt.to_vec(device).unwrap(),
            &srht_transpose(&y_host, batch, d, n_out, 5),
            1e-5,
        );
    }
}

/// Runs the binary with `cache` as the cache folder.
fn speckle(cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_speckle"))
        .args(args)
        .env("SPECKLE_CACHE_DIR", cache)
        .env_remove("SPECKLE_TUNE")
        .output()
        .expect("the speckle binary runs")
}

#[test]
fn speckle_tune_writes_shows_uses_and_clears_the_cache() {
    let dir = scratch("cli");
    let cache = dir.join("cache");
    let file = cache.join("tune.json");
    let quick = ["--runs", "1", "--warmup", "0"];
    let mut args = vec![
        "tune",
        "--ops",
        "matmul",
        "--matmul-shapes",
        "40,24,36;17,9,5,NT",
    ];
    args.extend(quick);
    args.push("--json");
    let out = speckle(&cache, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["written"], 2);
    assert_eq!(report["results"].as_array().unwrap().len(), 2);
    let written = TuneFile::load(&file).unwrap();
    assert_eq!(written.entries.len(), 2);
    assert!(written.entries.iter().all(|e| e.op == "matmul"));

    // `speckle info` reports the cache; `--show` lists it.
    let info = speckle(&cache, &["info", "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["tuning"]["entries"], 2);
    let show = speckle(&cache, &["tune", "--show"]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success() && text.matches("matmul").count() >= 2,
        "{text}"
    );

    // A dry run measures but writes nothing; a second tuning of the same class replaces.
    let mut dry = args.clone();
    dry.push("--dry-run");
    assert!(speckle(&cache, &dry).status.success());
    assert!(speckle(&cache, &args).status.success());
    assert_eq!(TuneFile::load(&file).unwrap().entries.len(), 2);

    // Refusals before any work: unknown op, bad shape, zero runs. The cache is untouched.
    let before = std::fs::read(&file).unwrap();
    for (bad, expected) in [
        (vec!["tune", "--ops", "fft"], "unknown op"),
        (vec!["tune", "--ops", "fft,all"], "or all"),
        (vec!["tune", "--matmul-shapes", "0,3,4"], "matmul shape"),
        (vec!["tune", "--runs", "0"], "--runs"),
        (
            vec!["tune", "--srht-shapes", "1,2"],
            "structured projection shape",
        ),
    ] {
        let out = speckle(&cache, &bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expected),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // A cache that cannot be written is refused before measuring.
    let blocked = dir.join("blocked");
    std::fs::write(&blocked, b"a file, not a folder").unwrap();
    let out = speckle(
        &blocked,
        &["tune", "--ops", "matmul", "--matmul-shapes", "8,8,8"],
    );
    assert!(!out.status.success());

    let out = speckle(&cache, &["tune", "--clear"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(TuneFile::load(&file).unwrap().entries.is_empty());
}

/// `speckle tune --json-lines` of the matmul problems `shapes`, one quick run per candidate.
fn tune_matmul_lines(cache: &std::path::Path, shapes: &str) -> std::process::Output {
    let quick = ["--runs", "1", "--warmup", "0", "--json-lines"];
    let mut args = vec!["tune", "--ops", "matmul", "--matmul-shapes", shapes];
    args.extend(quick);
    speckle(cache, &args)
}

/// Standard output as JSON values, one per line.
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn speckle_tune_keeps_the_classes_it_finished_when_a_later_one_fails() {
    // The second problem's output (10¹⁰ values) exceeds any binding: the run fails there, says
    // which problem, and the first class's winner is already in the cache.
    let dir = scratch("partial");
    let cache = dir.join("cache");
    let out = tune_matmul_lines(&cache, "40,24,36;100000,100000,8");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("tuning matmul on 100000,100000,8") && err.contains("saved in"),
        "{err}"
    );
    let file = TuneFile::load(&cache.join("tune.json")).unwrap();
    assert_eq!(file.entries.len(), 1);
    assert_eq!(file.entries[0].shape, vec![40, 24, 36]);
    // The finished class's result was printed as it was measured, as one JSON line.
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["shape"], serde_json::json!([40, 24, 36]));
    assert!(!lines[0]["candidates"].as_array().unwrap().is_empty());
}

#[test]
fn speckle_tune_json_lines_print_each_class_then_a_summary() {
    let dir = scratch("lines");
    let cache = dir.join("cache");
    let out = tune_matmul_lines(&cache, "40,24,36;17,9,5,NT");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["shape"], serde_json::json!([40, 24, 36]));
    assert_eq!(lines[1]["shape"], serde_json::json!([17, 9, 5]));
    assert_eq!(lines[2]["written"], 2);
    assert_eq!(lines[2]["classes"], 2);
    assert!(lines[2]["adapter"]["name"].is_string());
    // Not with --json (one document) or --show.
    for other in ["--json", "--show"] {
        let out = speckle(&cache, &["tune", "--json-lines", other]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--json-lines"),
            "{err}"
        );
    }
}
