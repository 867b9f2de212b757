//! The multi-head attention layer (`layers::multi_head_attention`) against its f64 reference,
//! its Xavier initialization (statistics, seeds, the CPU counterpart), its `.npy` files and
//! its errors, the attention's loop-limit refusal among them.

mod common;

use std::path::PathBuf;

use common::{assert_rel_close, gpu, poisoned, random, random_scaled};
use speckle::cpu::multi_head_attention::{multi_head_attention as reference, Weights};
use speckle::init::{self, Init};
use speckle::layers::multi_head_attention::{self, MultiHeadAttention, STREAMS};
use speckle::ops::attention::{AttentionDims, AttentionOptions, AttentionVariant};
use speckle::{npy, Error, Tensor};

/// f32 unit roundoff 2⁻²⁴.
const U: f64 = 5.960_464_477_539_063e-8;

/// One forward problem.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    nq: usize,
    nk: usize,
    e: usize,
    heads: usize,
    causal: bool,
    mask: bool,
    biases: bool,
    /// 2-D inputs `[N, E]` (batch must be 1).
    flat: bool,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speckle-mha-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn upload(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(gpu(), data, shape).unwrap()
}

fn download(t: &Tensor) -> Vec<f32> {
    t.to_vec(gpu()).unwrap()
}

fn rows_shape(case: &Case, n: usize) -> Vec<usize> {
    if case.flat {
        vec![n, case.e]
    } else {
        vec![case.batch, n, case.e]
    }
}

/// Random biases of the layer's size (scaled so that they matter as much as the products).
fn add_biases(layer: &mut MultiHeadAttention, e: usize, seed: u64) {
    let b = |k: u64| Some(upload(&random_scaled(e, seed + k, 0.5), &[e]));
    layer.bq = b(1);
    layer.bk = b(2);
    layer.bv = b(3);
    layer.bo = b(4);
}

fn check(case: Case, seed: u64) {
    let gpu = gpu();
    let Case {
        batch, nq, nk, e, ..
    } = case;
    let mut layer = MultiHeadAttention::xavier(gpu, e, case.heads, seed).unwrap();
    if case.biases {
        add_biases(&mut layer, e, seed);
    }
    let query = random(batch * nq * e, seed + 10);
    let key = random(batch * nk * e, seed + 11);
    let value = random(batch * nk * e, seed + 12);
    // About a third of the keys masked, and key 0 of batch 0 always: with the causal mask its
    // query 0 sees no key, so that row of the output is bo alone.
    let mask: Vec<f32> = random(batch * nk, seed + 13)
        .iter()
        .enumerate()
        .map(|(i, &r)| if i == 0 || r < -0.35 { 0.0 } else { 1.0 })
        .collect();
    let mask_t = case.mask.then(|| {
        let shape: &[usize] = if case.flat { &[nk] } else { &[batch, nk] };
        upload(&mask, shape)
    });
    let (qt, kt, vt) = (
        upload(&query, &rows_shape(&case, nq)),
        upload(&key, &rows_shape(&case, nk)),
        upload(&value, &rows_shape(&case, nk)),
    );
    let options = AttentionOptions {
        causal: case.causal,
        ..Default::default()
    };
    let out = poisoned(gpu, qt.shape());
    layer
        .forward_into(gpu, &qt, &kt, &vt, mask_t.as_ref(), &out, &options)
        .unwrap();
    let got = download(&out);

    let w: Vec<Vec<f32>> = layer.weights().iter().map(|t| download(t)).collect();
    let b: Vec<Option<Vec<f32>>> = layer.biases().iter().map(|t| t.map(download)).collect();
    let weights = Weights {
        wq: &w[0],
        wk: &w[1],
        wv: &w[2],
        wo: &w[3],
        bq: b[0].as_deref(),
        bk: b[1].as_deref(),
        bv: b[2].as_deref(),
        bo: b[3].as_deref(),
    };
    let dims = AttentionDims {
        batch,
        nq,
        nk,
        heads: case.heads,
        head_dim: e / case.heads,
    };
    let want = reference(
        &query,
        &key,
        &value,
        case.mask.then_some(&mask[..]),
        &weights,
        &dims,
        &options,
    );
    // Tolerance: the GPU chains four f32 accumulations, the input projection (E terms), the
    // scores (D terms), the softmax-weighted sum of values (Nk terms, with exp and a division)
    // and the output projection (E terms). A sum of k terms has relative error at most k·u
    // (u = 2⁻²⁴); a relative error ε in Q or K moves a score s by |s|·ε, and the softmax
    // weights by about as much relatively. With U[−1, 1) inputs and Xavier weights (variance
    // 1/E) the entries of Q, K, V have variance 1/3 and the scores are O(1), so the sum of the
    // stage bounds, times 8 for that propagation, bounds the error:
    // 8·u·(2E + D + Nk) = 7.7e-5 for the largest case (E = 64, D = 16, Nk = 17); measured on
    // lavapipe: below 2e-7 in every case. A wrong head, bias, weight orientation or mask
    // gives errors of order 1.
    let tol = 8.0 * U * (2 * e + e / case.heads + nk) as f64;
    assert_rel_close(&format!("{case:?}"), &got, &want, tol);
    // The query that sees no key outputs bo (0 without biases).
    if case.causal && case.mask {
        let bo = b[3].clone().unwrap_or_else(|| vec![0.0; e]);
        for (j, (&g, &z)) in got[..e].iter().zip(&bo).enumerate() {
            assert!(
                (g - z).abs() <= 1e-6,
                "{case:?}: row 0 column {j}: got {g}, expected bo = {z}"
            );
        }
    }
}

#[test]
fn forward_matches_the_f64_reference() {
    let base = Case {
        batch: 1,
        nq: 7,
        nk: 7,
        e: 8,
        heads: 1,
        causal: false,
        mask: false,
        biases: false,
        flat: true,
    };
    let cases = [
        // 2-D inputs (B = 1), one head of D = 8.
        base,
        // B = 2, Nq != Nk, three heads of D = 4, a key mask, biases.
        Case {
            batch: 2,
            nq: 7,
            nk: 31,
            e: 12,
            heads: 3,
            mask: true,
            biases: true,
            flat: false,
            ..base
        },
        // B = 2, four heads of D = 16, causal with Nq > Nk, biases.
        Case {
            batch: 2,
            nq: 33,
            nk: 17,
            e: 64,
            heads: 4,
            causal: true,
            biases: true,
            flat: false,
            ..base
        },
        // B = 1 as a 3-D batch, causal and key mask together (a query that sees nothing).
        Case {
            nq: 5,
            nk: 9,
            e: 12,
            heads: 3,
            causal: true,
            mask: true,
            biases: true,
            flat: false,
            ..base
        },
        // 2-D with a [Nk] mask, causal, no biases, Nq < Nk.
        Case {
            nq: 3,
            nk: 10,
            e: 64,
            heads: 4,
            causal: true,
            mask: true,
            ..base
        },
        // One query, one key.
        Case {
            batch: 2,
            nq: 1,
            nk: 1,
            e: 8,
            heads: 1,
            biases: true,
            flat: false,
            ..base
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        check(case, 100 + 20 * i as u64);
    }
}

#[test]
fn forward_allocates_the_query_shape_and_an_explicit_scale_is_used() {
    let gpu = gpu();
    let layer = MultiHeadAttention::xavier(gpu, 12, 3, 5).unwrap();
    let (nq, nk, e) = (4, 6, 12);
    let (query, key, value) = (random(nq * e, 1), random(nk * e, 2), random(nk * e, 3));
    let (qt, kt, vt) = (
        upload(&query, &[nq, e]),
        upload(&key, &[nk, e]),
        upload(&value, &[nk, e]),
    );
    let options = AttentionOptions {
        scale: Some(1.7),
        ..Default::default()
    };
    let out = layer.forward(gpu, &qt, &kt, &vt, None, &options).unwrap();
    assert_eq!(out.shape(), [nq, e]);
    let w: Vec<Vec<f32>> = layer.weights().iter().map(|t| download(t)).collect();
    let weights = Weights {
        wq: &w[0],
        wk: &w[1],
        wv: &w[2],
        wo: &w[3],
        bq: None,
        bk: None,
        bv: None,
        bo: None,
    };
    let dims = AttentionDims {
        batch: 1,
        nq,
        nk,
        heads: 3,
        head_dim: 4,
    };
    let want = reference(&query, &key, &value, None, &weights, &dims, &options);
    // Same bound as above: 8·u·(2E + D + Nk).
    assert_rel_close("scale 1.7", &download(&out), &want, 8.0 * U * 34.0);
}

/// Mean, variance (about the true mean 0) and kurtosis of `v`.
fn moments(v: &[f32]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n;
    let m4 = v.iter().map(|&x| f64::from(x).powi(4)).sum::<f64>() / n;
    (mean, var, m4 / (var * var))
}

#[test]
fn xavier_statistics() {
    let gpu = gpu();
    // n = 786 432 draws of a [512, 1536] weight; 2/(fan_in + fan_out) = 2/2048.
    let shape = [512, 1536];
    let n = (shape[0] * shape[1]) as f64;
    let fans = (shape[0] + shape[1]) as f64;

    // Uniform, gain 1: a = sqrt(6/2048), σ² = a²/3. The sample mean has standard deviation
    // σ/sqrt(n); the sample second moment sqrt((E[x⁴] − σ⁴)/n) = σ²·sqrt(0.8/n) ≈ 1.0e-3·σ²
    // (E[x⁴] = a⁴/5 = 9σ⁴/5); the kurtosis is 9/5. Bounds at 5 standard deviations.
    let w = init::weight(gpu, shape, Init::XavierUniform, 1.0, 7, 0)
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    let a = Init::XavierUniform.bound(shape[0], shape[1], 1.0).unwrap();
    let var = Init::XavierUniform.variance(shape[0], shape[1], 1.0);
    assert!((a - (6.0 / fans).sqrt()).abs() < 1e-15 && (var - 2.0 / fans).abs() < 1e-15);
    assert!((a * a / 3.0 - var).abs() < 1e-15, "uniform variance a²/3");
    let (m, v, k) = moments(&w);
    assert!(m.abs() < 5.0 * var.sqrt() / n.sqrt(), "uniform mean {m}");
    assert!(
        (v / var - 1.0).abs() < 5.0 * (0.8 / n).sqrt(),
        "uniform variance {v}, expected {var}"
    );
    assert!((k - 1.8).abs() < 0.02, "uniform kurtosis {k}, expected 1.8");
    // Every value within ±a (the f32 bound the GPU scales by), and both ends approached:
    // P(no draw within 0.001·a of an end) = 0.9995^n ≈ e^-393.
    let a32 = f64::from(a as f32);
    let (lo, hi) = w.iter().fold((0.0f64, 0.0f64), |(l, h), &x| {
        (l.min(f64::from(x)), h.max(f64::from(x)))
    });
    assert!(lo >= -a32 && hi <= a32, "range [{lo}, {hi}] exceeds ±{a32}");
    assert!(
        lo < -0.999 * a && hi > 0.999 * a,
        "range [{lo}, {hi}], a = {a}"
    );

    // Normal, gain sqrt(2): σ² = 2·2/2048. The sample variance has relative standard deviation
    // sqrt(2/n) ≈ 1.6e-3, the kurtosis (3) sqrt(24/n) ≈ 5.5e-3.
    let gain = std::f32::consts::SQRT_2;
    let w = init::weight(gpu, shape, Init::XavierNormal, gain, 8, 0)
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    let var = Init::XavierNormal.variance(shape[0], shape[1], gain);
    assert!((var - 4.0 / fans).abs() < 1e-9);
    assert!(Init::XavierNormal.bound(shape[0], shape[1], gain).is_none());
    let (m, v, k) = moments(&w);
    assert!(m.abs() < 5.0 * var.sqrt() / n.sqrt(), "normal mean {m}");
    assert!(
        (v / var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
        "normal variance {v}, expected {var}"
    );
    assert!(
        (k - 3.0).abs() < 5.0 * (24.0 / n).sqrt(),
        "normal kurtosis {k}"
    );
}

#[test]
fn gpu_init_equals_the_cpu_counterpart() {
    let gpu = gpu();
    for (shape, gain, seed, stream) in [([31, 33], 1.0, 3, 0), ([7, 250], 0.7, 4, 5)] {
        let got: Vec<f64> = init::weight(gpu, shape, Init::XavierUniform, gain, seed, stream)
            .unwrap()
            .to_vec(gpu)
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let want = init::weight_reference(shape, Init::XavierUniform, gain, seed, stream).unwrap();
        assert_eq!(got, want, "uniform {shape:?}: bit for bit");

        let got = init::weight(gpu, shape, Init::XavierNormal, gain, seed, stream)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        let want = init::weight_reference(shape, Init::XavierNormal, gain, seed, stream).unwrap();
        // Box–Muller with the GPU's f32 log, cos and sin: about 1e-6 relative.
        assert_rel_close(&format!("normal {shape:?}"), &got, &want, 2e-6);
    }
    // The layer's weights are these, one stream each.
    let layer = MultiHeadAttention::xavier(gpu, 12, 3, 9).unwrap();
    for (w, stream) in layer.weights().into_iter().zip(STREAMS) {
        let got: Vec<f64> = download(w).into_iter().map(f64::from).collect();
        let want = init::weight_reference([12, 12], Init::XavierUniform, 1.0, 9, stream).unwrap();
        assert_eq!(got, want, "stream {stream}");
    }
    assert!(layer.biases().iter().all(Option::is_none));
}

#[test]
fn seeds_and_streams_repeat_and_differ() {
    let gpu = gpu();
    let draw = |seed, stream| {
        init::weight(gpu, [64, 48], Init::XavierNormal, 1.0, seed, stream)
            .unwrap()
            .to_vec(gpu)
            .unwrap()
    };
    let a = draw(1, 0);
    assert_eq!(a, draw(1, 0), "same seed and stream, same values");
    for (what, other) in [("seed", draw(2, 0)), ("stream", draw(1, 1))] {
        let equal = a.iter().zip(&other).filter(|(x, y)| x == y).count();
        assert!(
            equal < 3,
            "another {what} shares {equal} of {} values",
            a.len()
        );
    }
    let l1 = MultiHeadAttention::xavier(gpu, 8, 2, 42).unwrap();
    let l2 = MultiHeadAttention::xavier(gpu, 8, 2, 42).unwrap();
    let l3 = MultiHeadAttention::xavier(gpu, 8, 2, 43).unwrap();
    let ws = |l: &MultiHeadAttention| -> Vec<Vec<f32>> {
        l.weights().iter().map(|t| download(t)).collect()
    };
    let (w1, w2, w3) = (ws(&l1), ws(&l2), ws(&l3));
    assert_eq!(w1, w2, "same seed, same layer");
    for i in 0..4 {
        assert_ne!(w1[i], w3[i], "weight {i}: another seed gives other values");
        for j in 0..i {
            assert_ne!(w1[i], w1[j], "weights {j} and {i} share a stream");
        }
    }
}

#[test]
fn npy_round_trip() {
    let gpu = gpu();
    let dir = temp_dir("round-trip");
    let (e, heads) = (12, 3);
    let mut layer = MultiHeadAttention::xavier(gpu, e, heads, 11).unwrap();
    layer.bq = Some(upload(&random(e, 1), &[e]));
    layer.bo = Some(upload(&random(e, 2), &[e]));
    layer.save_npy(gpu, &dir).unwrap();
    let loaded = MultiHeadAttention::from_npy(gpu, &dir, heads).unwrap();
    assert_eq!(loaded.heads, heads);
    for (a, b) in layer.weights().iter().zip(loaded.weights()) {
        assert_eq!(b.shape(), [e, e]);
        assert_eq!(download(a), download(b));
    }
    for (i, (a, b)) in layer.biases().iter().zip(loaded.biases()).enumerate() {
        assert_eq!(a.map(download), b.map(download), "bias {i}");
    }
    // The same weights give the same output, bit for bit.
    let x = upload(&random(2 * 5 * e, 3), &[2, 5, e]);
    let options = AttentionOptions::default();
    let y1 = layer.forward(gpu, &x, &x, &x, None, &options).unwrap();
    let y2 = loaded.forward(gpu, &x, &x, &x, None, &options).unwrap();
    assert_eq!(download(&y1), download(&y2));
    // Saving a layer without a bias removes that bias's stale file.
    layer.bo = None;
    layer.save_npy(gpu, &dir).unwrap();
    let loaded = MultiHeadAttention::from_npy(gpu, &dir, heads).unwrap();
    assert!(loaded.bo.is_none() && loaded.bq.is_some());
    assert!(!dir.join("bo.npy").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The error's message, which must contain every one of `parts`.
fn expect_err<T: std::fmt::Debug>(result: speckle::Result<T>, parts: &[&str]) -> String {
    let message = result.expect_err("expected an error").to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
    message
}

#[test]
fn npy_shape_errors_name_the_file_and_shapes() {
    let gpu = gpu();
    let dir = temp_dir("errors");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, shape: &[usize]| {
        let len = shape.iter().product();
        npy::write_f32(&dir.join(name), &random(len, 1), shape).unwrap();
    };
    for name in multi_head_attention::WEIGHT_FILES {
        write(name, &[12, 12]);
    }
    assert!(MultiHeadAttention::from_npy(gpu, &dir, 3).is_ok());
    expect_err(
        MultiHeadAttention::from_npy(gpu, &dir, 5),
        &["wq.npy", "[12, 12]", "heads = 5"],
    );
    write("wk.npy", &[12, 8]);
    expect_err(
        MultiHeadAttention::from_npy(gpu, &dir, 3),
        &["wk.npy", "[12, 8]", "[12, 12]"],
    );
    write("wk.npy", &[12, 12]);
    write("bv.npy", &[13]);
    expect_err(
        MultiHeadAttention::from_npy(gpu, &dir, 3),
        &["bv.npy", "[13]", "[12]"],
    );
    std::fs::remove_file(dir.join("bv.npy")).unwrap();
    write("wq.npy", &[12, 8]);
    expect_err(
        MultiHeadAttention::from_npy(gpu, &dir, 3),
        &["wq.npy", "[12, 8]", "square"],
    );
    std::fs::remove_file(dir.join("wq.npy")).unwrap();
    expect_err(MultiHeadAttention::from_npy(gpu, &dir, 3), &["wq.npy"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shape_errors_name_the_numbers() {
    let gpu = gpu();
    let layer = MultiHeadAttention::xavier(gpu, 12, 3, 1).unwrap();
    let t = |shape: &[usize]| upload(&random(shape.iter().product(), 2), shape);
    let o = AttentionOptions::default();
    let (q, kv) = (t(&[2, 5, 12]), t(&[2, 4, 12]));
    let cases: Vec<(Tensor, Tensor, Tensor, Vec<&str>)> = vec![
        (
            t(&[2, 5, 10]),
            t(&[2, 4, 12]),
            t(&[2, 4, 12]),
            vec!["[2, 5, 10]", "E = 12"],
        ),
        (
            t(&[2, 5, 12]),
            t(&[3, 4, 12]),
            t(&[3, 4, 12]),
            vec!["[3, 4, 12]", "has 2", "has 3"],
        ),
        (
            t(&[2, 5, 12]),
            t(&[2, 4, 12]),
            t(&[2, 6, 12]),
            vec!["[2, 6, 12]", "[2, 4, 12]"],
        ),
        (
            t(&[1, 2, 5, 12]),
            t(&[2, 4, 12]),
            t(&[2, 4, 12]),
            vec!["[1, 2, 5, 12]"],
        ),
        (
            t(&[5, 12]),
            t(&[1, 4, 12]),
            t(&[1, 4, 12]),
            vec!["[5, 12]", "[1, 4, 12]"],
        ),
    ];
    for (q, k, v, parts) in &cases {
        expect_err(layer.forward(gpu, q, k, v, None, &o), parts);
    }
    // A key mask of the wrong shape (checked by the attention kernel's host side).
    expect_err(
        layer.forward(gpu, &q, &kv, &kv, Some(&t(&[2, 5])), &o),
        &["[2, 5]", "[2, 4]"],
    );
    // An output of the wrong shape, or one that aliases an input.
    let out = poisoned(gpu, &[2, 4, 12]);
    expect_err(
        layer.forward_into(gpu, &q, &kv, &kv, None, &out, &o),
        &["[2, 4, 12]", "[2, 5, 12]"],
    );
    expect_err(
        layer.forward_into(gpu, &q, &kv, &kv, None, &q.view(&[2, 5, 12]).unwrap(), &o),
        &["share a buffer"],
    );

    // Weights set through the public fields are checked at every call.
    let mut bad = MultiHeadAttention::xavier(gpu, 12, 3, 1).unwrap();
    bad.bq = Some(t(&[11]));
    expect_err(
        bad.forward(gpu, &q, &kv, &kv, None, &o),
        &["bq", "[11]", "[12]"],
    );
    bad.bq = None;
    bad.wv = t(&[12, 8]);
    expect_err(
        bad.forward(gpu, &q, &kv, &kv, None, &o),
        &["Wv", "[12, 8]", "[12, 12]"],
    );
    expect_err(
        MultiHeadAttention::new(t(&[12, 12]), t(&[12, 12]), t(&[12, 12]), t(&[8, 8]), 3),
        &["Wo", "[8, 8]"],
    );
    expect_err(
        MultiHeadAttention::new(t(&[12, 8]), t(&[12, 8]), t(&[12, 8]), t(&[12, 8]), 3),
        &["Wq", "[12, 8]", "square"],
    );
    expect_err(
        MultiHeadAttention::xavier(gpu, 12, 5, 1),
        &["E = 12", "heads = 5"],
    );
    expect_err(MultiHeadAttention::xavier(gpu, 12, 0, 1), &["head"]);
    expect_err(
        MultiHeadAttention::xavier(gpu, 520, 2, 1),
        &["D = 260", "256"],
    );
}

#[test]
fn init_errors_and_names() {
    let gpu = gpu();
    expect_err(
        init::weight(gpu, [0, 5], Init::XavierUniform, 1.0, 1, 0),
        &["[0, 5]"],
    );
    for gain in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let r = init::weight(gpu, [3, 5], Init::XavierNormal, gain, 1, 0);
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "gain {gain}");
        assert!(init::weight_reference([3, 5], Init::XavierNormal, gain, 1, 0).is_err());
    }
    for &name in Init::NAMES {
        assert_eq!(Init::from_name(name).unwrap().name(), name);
    }
    assert_eq!(Init::from_name("he_uniform").unwrap(), Init::KaimingUniform);
    expect_err(
        Init::from_name("uniform_he"),
        &["uniform_he", "xavier_uniform"],
    );
}

#[test]
fn keys_past_the_loop_limit_are_refused_before_anything_runs() {
    // A limit of 1,200 passes per invocation: the projections' matmuls fit (they need 1,104
    // for k = 64), but the register-blocked attention kernel (forced) walks about 320 keys
    // within it, so 5,000 keys need 16 ranges, whose partial outputs (16 times O's 1.2 MiB)
    // do not fit the 1.5 MiB bindings: the keys cannot be cut. The layer returns attention's
    // Error::LoopLimit, and its output is untouched: the five kernels run in one submission,
    // after all are planned.
    let gpu = speckle::Gpu::with_options(&speckle::GpuOptions {
        max_binding_bytes: Some(3 << 19),
        max_loop_iterations: Some(1200),
        tuning: speckle::Tuning::Off,
        ..Default::default()
    })
    .unwrap();
    let (e, heads, nq, nk) = (64, 2, 5000, 5000);
    let layer = MultiHeadAttention::xavier(&gpu, e, heads, 5).unwrap();
    let tensor =
        |n: usize, seed: u64| Tensor::from_slice(&gpu, &random(n * e, seed), &[1, n, e]).unwrap();
    let (query, key, value) = (tensor(nq, 6), tensor(nk, 7), tensor(nk, 8));
    let out = poisoned(&gpu, &[1, nq, e]);
    let result = layer.forward_into(
        &gpu,
        &query,
        &key,
        &value,
        None,
        &out,
        &AttentionOptions {
            variant: AttentionVariant::Blocked,
            ..Default::default()
        },
    );
    match result {
        Err(Error::LoopLimit {
            kernel,
            iterations,
            limit,
            remedy,
            ..
        }) => {
            assert!(kernel.starts_with("attention"), "{kernel}");
            assert!(
                iterations > limit && limit == 1200,
                "{iterations} > {limit}"
            );
            assert!(remedy.contains("Nk = 5000"), "{remedy}");
        }
        other => panic!("expected a loop-limit error, got {other:?}"),
    }
    assert!(out.to_vec(&gpu).unwrap().iter().all(|x| x.is_nan()));
}
