//! The `speckle` binary end to end: info, ops on .npy files, and the refusals (shape
//! mismatch, non-finite input, bad files) that must exit non-zero without writing output.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::random;
use speckle::cpu::matmul::{matmul as reference, Problem};
use speckle::npy;

/// Runs the binary with the built-in kernel configurations (never the user's tuning cache).
fn speckle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_speckle"))
        .args(args)
        .env("SPECKLE_TUNE", "off")
        .output()
        .expect("the speckle binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speckle-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `base` + `--out out_dir` + each case's extra arguments and asserts that each fails with
/// a message containing its expected text, without creating `out_dir`.
fn assert_refused_before_work(base: &[&str], out_dir: &Path, cases: &[(Vec<&str>, &str)]) {
    for (extra, expected) in cases {
        let mut args = base.to_vec();
        args.extend(["--out", s(out_dir)]);
        args.extend(extra);
        let out = speckle(&args);
        assert!(!out.status.success(), "{extra:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(!out_dir.exists(), "{extra:?}: nothing created");
    }
}

#[test]
fn version_names_the_commit() {
    let out = speckle(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")) && text.contains("commit"),
        "{text}"
    );
}

#[test]
fn info_json_describes_the_adapter() {
    let out = speckle(&["info", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    for key in ["name", "backend", "device_type"] {
        assert!(v["adapter"][key].is_string(), "adapter.{key} missing: {v}");
    }
    assert!(v["features"].is_array());
    assert!(
        v["limits"]["max_storage_buffer_binding_size"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(v["adapters"].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn matmul_writes_the_product() {
    let dir = scratch("matmul");
    let (a_path, b_path, c_path) = (dir.join("a.npy"), dir.join("b.npy"), dir.join("c.npy"));
    let (a, b) = (random(7 * 33, 1), random(33 * 5, 2));
    npy::write_f32(&a_path, &a, &[7, 33]).unwrap();
    npy::write_f32(&b_path, &b, &[33, 5]).unwrap();
    let out = speckle(&["op", "matmul", s(&a_path), s(&b_path), "-o", s(&c_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (c, shape) = npy::read_f32(&c_path).unwrap();
    assert_eq!(shape, vec![7, 5]);
    let want = reference(&Problem::new(&a, &[7, 33], &b, &[33, 5])).unwrap();
    common::assert_rel_close("cli matmul", &c, &want, 1e-5);

    // Bᵀ stored [5, 33] with --transpose-b gives the product with B.
    let bt: Vec<f32> = (0..5)
        .flat_map(|j| (0..33).map(move |k| (k, j)))
        .map(|(k, j)| b[k * 5 + j])
        .collect();
    let bt_path = dir.join("bt.npy");
    npy::write_f32(&bt_path, &bt, &[5, 33]).unwrap();
    let c2_path = dir.join("c2.npy");
    let out = speckle(&[
        "op",
        "matmul",
        s(&a_path),
        s(&bt_path),
        "--transpose-b",
        "-o",
        s(&c2_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::assert_rel_close(
        "cli matmul Bᵀ",
        &npy::read_f32(&c2_path).unwrap().0,
        &want,
        1e-5,
    );
}

#[test]
fn shape_mismatch_names_both_shapes_and_writes_nothing() {
    let dir = scratch("mismatch");
    let (a_path, b_path, c_path) = (dir.join("a.npy"), dir.join("b.npy"), dir.join("c.npy"));
    npy::write_f32(&a_path, &random(12, 1), &[3, 4]).unwrap();
    npy::write_f32(&b_path, &random(30, 2), &[5, 6]).unwrap();
    let out = speckle(&["op", "matmul", s(&a_path), s(&b_path), "-o", s(&c_path)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("[3, 4]") && err.contains("[5, 6]"), "{err}");
    assert!(!c_path.exists(), "no output after a failure");
}

#[test]
fn a_failed_run_keeps_the_previous_output() {
    let dir = scratch("keep");
    let (x_path, bad_path, y_path) = (dir.join("x.npy"), dir.join("bad.npy"), dir.join("y.npy"));
    npy::write_f32(&x_path, &[1.0, -1.0], &[2]).unwrap();
    let out = speckle(&["op", "relu", s(&x_path), "-o", s(&y_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(&bad_path, b"\x93NUMPY garbage").unwrap();
    let out = speckle(&["op", "relu", s(&bad_path), "-o", s(&y_path)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.npy"), "{}", stderr(&out));
    assert_eq!(
        npy::read_f32(&y_path).unwrap().0,
        vec![1.0, 0.0],
        "the good output is intact"
    );
}

#[test]
fn non_finite_inputs_are_refused_unless_allowed() {
    let dir = scratch("nonfinite");
    let (x_path, y_path) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write_f32(&x_path, &[1.0, f32::NAN, -2.0], &[3]).unwrap();
    let out = speckle(&["op", "abs", s(&x_path), "-o", s(&y_path)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("non-finite") && stderr(&out).contains("--allow-nonfinite"),
        "{}",
        stderr(&out)
    );
    assert!(!y_path.exists());
    let out = speckle(&[
        "op",
        "abs",
        s(&x_path),
        "-o",
        s(&y_path),
        "--allow-nonfinite",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let y = npy::read_f32(&y_path).unwrap().0;
    assert_eq!((y[0], y[2]), (1.0, 2.0));
}

#[test]
fn activations_softmax_and_reductions_run_by_name() {
    let dir = scratch("unary");
    let x_path = dir.join("x.npy");
    let x = random(4 * 9, 3);
    npy::write_f32(&x_path, &x, &[4, 9]).unwrap();
    for (op, extra) in [
        ("relu", vec![]),
        ("leaky_relu", vec!["--slope", "0.2"]),
        ("gelu", vec![]),
        ("selu", vec![]),
        ("tanh", vec![]),
        ("square", vec![]),
        ("abs", vec![]),
        ("threshold", vec!["--level", "-0.5"]),
        ("softmax", vec!["--scale", "2", "--causal"]),
        ("sum", vec![]),
        ("sum_squares", vec![]),
        ("norm", vec![]),
        ("max", vec![]),
    ] {
        let y_path = dir.join(format!("{op}.npy"));
        let mut args = vec!["op", op, s(&x_path), "-o", s(&y_path)];
        args.extend(extra);
        let out = speckle(&args);
        assert!(out.status.success(), "{op}: {}", stderr(&out));
        let (y, shape) = npy::read_f32(&y_path).unwrap();
        let reduces = ["sum", "sum_squares", "norm", "max"].contains(&op);
        assert_eq!(shape, if reduces { vec![4] } else { vec![4, 9] }, "{op}");
        assert!(y.iter().all(|v| v.is_finite()), "{op}");
    }
    let (y, _) = npy::read_f32(&dir.join("leaky_relu.npy")).unwrap();
    let expected: Vec<f64> = x
        .iter()
        .map(|&v| {
            if v > 0.0 {
                f64::from(v)
            } else {
                0.2 * f64::from(v)
            }
        })
        .collect();
    common::assert_rel_close("leaky_relu --slope 0.2", &y, &expected, 1e-6);
}

#[test]
fn transpose_swaps_the_last_two_axes() {
    let dir = scratch("transpose");
    let (x_path, y_path) = (dir.join("x.npy"), dir.join("y.npy"));
    let x = random(2 * 3 * 5, 4);
    npy::write_f32(&x_path, &x, &[2, 3, 5]).unwrap();
    let out = speckle(&["op", "transpose", s(&x_path), "-o", s(&y_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (y, shape) = npy::read_f32(&y_path).unwrap();
    assert_eq!(shape, [2, 5, 3]);
    assert_eq!(y, speckle::cpu::transpose::transpose(&x, 2, 3, 5));
    // A vector has no two axes to swap: refused, naming its shape, and nothing written.
    let v_path = dir.join("v.npy");
    npy::write_f32(&v_path, &x[..7], &[7]).unwrap();
    let w_path = dir.join("w.npy");
    let out = speckle(&["op", "transpose", s(&v_path), "-o", s(&w_path)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("[7]"), "{}", stderr(&out));
    assert!(!w_path.exists());
}

#[test]
fn bench_matmul_reports_json() {
    let out = speckle(&[
        "bench", "matmul", "--sizes", "33,64", "--runs", "2", "--warmup", "1", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert!(v["adapter"]["name"].is_string());
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["op"], "matmul");
        for key in ["gpu_gflops", "cpu_gflops", "vs_cpu", "max_rel_err"] {
            assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key} in {r}");
        }
        assert!(r["max_rel_err"].as_f64().unwrap() < 1e-5, "{r}");
        assert!(r["timing"]["method"].is_string());
    }
}

#[test]
fn unknown_adapter_lists_the_ones_present() {
    let out = Command::new(env!("CARGO_BIN_EXE_speckle"))
        .arg("info")
        .env("SPECKLE_ADAPTER", "no-such-adapter-xyz")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no-such-adapter-xyz") && err.contains("present"),
        "{err}"
    );
}

#[test]
fn project_writes_features_and_repeats_bytes_for_a_seed() {
    let dir = scratch("project");
    let x_path = dir.join("x.npy");
    npy::write_f32(&x_path, &random(3 * 40, 5), &[3, 40]).unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "project",
            "--kind",
            "optical",
            "--n-out",
            "64",
            s(&x_path),
            "-o",
            s(out),
        ];
        args.extend(extra);
        speckle(&args)
    };
    let (a, b, c) = (dir.join("a.npy"), dir.join("b.npy"), dir.join("c.npy"));
    for (path, extra) in [(&a, vec![]), (&b, vec![]), (&c, vec!["--matrix-free"])] {
        let out = run(path, &extra);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (ya, shape) = npy::read_f32(&a).unwrap();
    assert_eq!(shape, vec![3, 64]);
    assert!(
        ya.iter().all(|&v| v >= 0.0),
        "optical intensities are non-negative"
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same seed and input: same bytes"
    );
    let yc = npy::read_f32(&c).unwrap().0;
    let want: Vec<f64> = ya.iter().map(|&v| f64::from(v)).collect();
    common::assert_rel_close("matrix-free vs materialized", &yc, &want, 1e-5);

    let seeded = dir.join("seeded.npy");
    let out = run(&seeded, &["--seed", "7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(&seeded).unwrap(), std::fs::read(&a).unwrap());

    // f16 precision: the f32 result to f16 rounding (tests/projection.rs derives 2e-3).
    let half = dir.join("half.npy");
    let out = run(&half, &["--precision", "f16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::assert_rel_close("f16 vs f32", &npy::read_f32(&half).unwrap().0, &want, 2e-3);
    let refused = dir.join("refused.npy");
    let out = run(&refused, &["--precision", "f16", "--matrix-free"]);
    assert!(
        !out.status.success() && stderr(&out).contains("f16"),
        "{}",
        stderr(&out)
    );
    assert!(!refused.exists());

    // The fused |R x|² pass and the two products agree to rounding; asking for both is refused.
    for (name, flag) in [("fused.npy", "--fused"), ("unfused.npy", "--unfused")] {
        let path = dir.join(name);
        let out = run(&path, &[flag]);
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        common::assert_rel_close(flag, &npy::read_f32(&path).unwrap().0, &want, 1e-5);
    }
    let both = dir.join("both.npy");
    let out = run(&both, &["--fused", "--unfused"]);
    assert!(
        !out.status.success() && stderr(&out).contains("--unfused"),
        "{}",
        stderr(&out)
    );
    assert!(!both.exists());
}

#[test]
fn project_refuses_bad_arguments() {
    let dir = scratch("project-bad");
    let x_path = dir.join("x.npy");
    npy::write_f32(&x_path, &random(10, 5), &[10]).unwrap();
    let y_path = dir.join("y.npy");
    for (extra, expected) in [
        (vec!["--kind", "hadamard", "--n-out", "4"], "hadamard"),
        (
            vec!["--kind", "optical", "--n-out", "4", "--scaling", "odd"],
            "odd",
        ),
        (
            vec!["--kind", "rff", "--n-out", "4", "--gamma", "-1"],
            "gamma",
        ),
    ] {
        let mut args = vec!["project", s(&x_path), "-o", s(&y_path)];
        args.extend(extra);
        let out = speckle(&args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert!(!y_path.exists());
    }
    let out = speckle(&["project", "--n-out", "5", s(&x_path), "-o", s(&y_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        npy::read_f32(&y_path).unwrap().1,
        vec![5],
        "a 1-D input gives a 1-D output"
    );
}

#[test]
fn project_encodes_decodes_and_records_with_a_camera() {
    let dir = scratch("project-encode");
    let run = |x: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec!["project", "--n-out", "64", s(x), "-o", s(out)];
        args.extend(extra);
        let o = speckle(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        npy::read_f32(out).unwrap()
    };
    // 8-bit integer data: the gaussian projections of its bit planes, decoded, are R x.
    let pixels: Vec<f32> = random(2 * 30, 8)
        .iter()
        .map(|v| ((v + 1.0) * 127.9).floor())
        .collect();
    let x_path = dir.join("pixels.npy");
    npy::write_f32(&x_path, &pixels, &[2, 30]).unwrap();
    let (direct, _) = run(&x_path, &dir.join("direct.npy"), &[]);
    let (decoded, shape) = run(
        &x_path,
        &dir.join("decoded.npy"),
        &["--encoder", "bitplane"],
    );
    assert_eq!(shape, vec![2, 64]);
    let want: Vec<f64> = direct.iter().map(|&v| f64::from(v)).collect();
    // Eight projections of 0/1 planes recombined: f32 rounding of 30-term sums, ~1e-6.
    common::assert_rel_close("decoded bit planes", &decoded, &want, 1e-5);
    // A non-linear kind keeps the planes apart.
    let (_, shape) = run(
        &x_path,
        &dir.join("planes.npy"),
        &["--kind", "optical", "--encoder", "bitplane"],
    );
    assert_eq!(shape, vec![2, 8, 64]);
    // The threshold encoder is the projection of the binarized data.
    let binary: Vec<f32> = pixels
        .iter()
        .map(|&v| f32::from(u8::from(v > 100.0)))
        .collect();
    let b_path = dir.join("binary.npy");
    npy::write_f32(&b_path, &binary, &[2, 30]).unwrap();
    let optical = ["--kind", "optical"];
    let (from_binary, _) = run(&b_path, &dir.join("from-binary.npy"), &optical);
    let (thresholded, _) = run(
        &x_path,
        &dir.join("thresholded.npy"),
        &[
            "--kind",
            "optical",
            "--encoder",
            "threshold",
            "--threshold",
            "100",
        ],
    );
    assert_eq!(from_binary, thresholded);
    // A camera: integers in 0 ..= 255, the same bytes for the same noise seed.
    let camera = [
        "--kind",
        "srht-optical",
        "--camera",
        "gain=0.02,bits=8,noise=3",
    ];
    let (a, _) = run(&x_path, &dir.join("camera-a.npy"), &camera);
    let (b, _) = run(&x_path, &dir.join("camera-b.npy"), &camera);
    assert_eq!(a, b);
    assert!(
        a.iter()
            .all(|&v| v == v.round() && (0.0..=255.0).contains(&v)),
        "{a:?}"
    );
    assert!(a.iter().any(|&v| v > 0.0 && v < 255.0), "{a:?}");
}

#[test]
fn project_refuses_bad_encoders_cameras_and_orthogonal_uses() {
    let dir = scratch("project-bad-encoder");
    let x_path = dir.join("x.npy");
    npy::write_f32(&x_path, &[1.0, 2.5, 3.0], &[3]).unwrap();
    let y_path = dir.join("y.npy");
    for (extra, expected) in [
        (vec!["--encoder", "bitplane"], "flat index 1"),
        (vec!["--encoder", "bitplane", "--bits", "17"], "17"),
        (vec!["--encoder", "gray"], "gray"),
        (vec!["--camera", "gain=2"], "camera"),
        (vec!["--kind", "optical", "--camera", "gain=-1"], "gain"),
        (vec!["--kind", "optical", "--camera", "iso=100"], "iso"),
        (vec!["--kind", "rademacher", "--orthogonal"], "orthogonal"),
        (
            vec!["--kind", "orthogonal", "--matrix-free"],
            "materialized",
        ),
    ] {
        let mut args = vec!["project", "--n-out", "4", s(&x_path), "-o", s(&y_path)];
        args.extend(&extra);
        let out = speckle(&args);
        assert!(!out.status.success(), "{extra:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(!y_path.exists());
    }
}

#[test]
fn attention_and_gat_run_on_npy_files() {
    use speckle::ops::attention::AttentionDims;
    use speckle::ops::gat::{GatDims, GatOptions};
    let dir = scratch("attention");
    // Attention: B = 2, Nq = 5, Nk = 7, H = 2, D = 3, causal, a key mask hiding key 0 of
    // batch 1.
    let (b, nq, nk, h, d) = (2, 5, 7, 2, 3);
    let q = random(b * nq * h * d, 60);
    let k = random(b * nk * h * d, 61);
    let v = random(b * nk * h * d, 62);
    let mut mask = vec![1.0f32; b * nk];
    mask[nk] = 0.0;
    let paths: Vec<PathBuf> = ["q", "k", "v", "m", "o"]
        .iter()
        .map(|n| dir.join(format!("{n}.npy")))
        .collect();
    npy::write_f32(&paths[0], &q, &[b, nq, h * d]).unwrap();
    npy::write_f32(&paths[1], &k, &[b, nk, h * d]).unwrap();
    npy::write_f32(&paths[2], &v, &[b, nk, h * d]).unwrap();
    npy::write_f32(&paths[3], &mask, &[b, nk]).unwrap();
    let out = speckle(&[
        "op",
        "attention",
        s(&paths[0]),
        s(&paths[1]),
        s(&paths[2]),
        "--heads",
        "2",
        "--causal",
        "--key-mask",
        s(&paths[3]),
        "-o",
        s(&paths[4]),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, shape) = npy::read_f32(&paths[4]).unwrap();
    assert_eq!(shape, vec![b, nq, h * d]);
    let dims = AttentionDims::new(&[b, nq, h * d], &[b, nk, h * d], &[b, nk, h * d], h).unwrap();
    let want =
        speckle::cpu::attention::attention(&q, &k, &v, Some(&mask), &dims, 1.0 / 3f64.sqrt(), true);
    // Query 0 of batch 1 sees no key (causal: key 0 only, masked): zeros.
    assert!(o[nq * h * d..nq * h * d + h * d].iter().all(|&x| x == 0.0));
    common::assert_rel_close("op attention", &o, &want, 1e-5);
    // Heads that do not divide the row: a clear error, no output.
    std::fs::remove_file(&paths[4]).unwrap();
    let out = speckle(&[
        "op",
        "attention",
        s(&paths[0]),
        s(&paths[1]),
        s(&paths[2]),
        "--heads",
        "4",
        "-o",
        s(&paths[4]),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains('6') && stderr(&out).contains('4'),
        "{}",
        stderr(&out)
    );
    assert!(!paths[4].exists());

    // GAT: 6 nodes, 4 features, 2 heads of 3, a node without incoming edges, self loops.
    let (n, f, heads, fp) = (6, 4, 2, 3);
    let x = random(n * f, 63);
    let w = random(f * heads * fp, 64);
    let a = random(heads * 2 * fp, 65);
    let edges: Vec<i64> = vec![0, 1, 2, 1, 3, 1, 1, 0, 4, 5, 5, 4, 0, 2];
    let files: Vec<PathBuf> = ["x", "e", "w", "a", "y"]
        .iter()
        .map(|name| dir.join(format!("gat-{name}.npy")))
        .collect();
    npy::write_f32(&files[0], &x, &[n, f]).unwrap();
    npy::write_i64(&files[1], &edges, &[7, 2]).unwrap();
    npy::write_f32(&files[2], &w, &[f, heads * fp]).unwrap();
    npy::write_f32(&files[3], &a, &[heads, 2 * fp]).unwrap();
    let out = speckle(&[
        "op",
        "gat",
        s(&files[0]),
        "--edges",
        s(&files[1]),
        "--weight",
        s(&files[2]),
        "--attn",
        s(&files[3]),
        "--heads",
        "2",
        "--self-loops",
        "-o",
        s(&files[4]),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (y, shape) = npy::read_f32(&files[4]).unwrap();
    assert_eq!(shape, vec![n, heads * fp]);
    let pairs: Vec<[u32; 2]> = edges
        .chunks(2)
        .map(|p| [p[0] as u32, p[1] as u32])
        .collect();
    let options = GatOptions {
        self_loops: true,
        ..Default::default()
    };
    let gat_dims = GatDims::new(&[n, f], &[f, heads * fp], &[heads, 2 * fp], heads).unwrap();
    let want = speckle::cpu::gat::gat(&x, &pairs, &w, &a, &gat_dims, &options);
    common::assert_rel_close("op gat", &y, &want, 1e-5);
    // An edge to a node that does not exist: the error names it.
    npy::write_i64(&files[1], &[0, 9], &[1, 2]).unwrap();
    let out = speckle(&[
        "op",
        "gat",
        s(&files[0]),
        "--edges",
        s(&files[1]),
        "--weight",
        s(&files[2]),
        "--attn",
        s(&files[3]),
        "--heads",
        "2",
        "-o",
        s(&dir.join("gat-bad.npy")),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains('9') && stderr(&out).contains('6'),
        "{}",
        stderr(&out)
    );
}

/// The result of `speckle bench attention --runs 2 --json` with `args`, checked to succeed.
fn bench_attention_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench", "attention", "--runs", "2", "--json"];
    all.extend(args);
    let out = speckle(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["results"][0].clone()
}

#[test]
fn bench_attention_reports_fused_and_unfused() {
    let r = &bench_attention_json(&["--shape", "2,2,40,16", "--causal"]);
    assert_eq!(r["shape"], serde_json::json!([2, 2, 40, 16]));
    assert_eq!(r["causal"], true);
    // 4·B·H·N²·D, halved for the causal mask.
    assert_eq!(
        r["flops"].as_f64().unwrap(),
        2.0 * 2.0 * 2.0 * 40.0 * 40.0 * 16.0
    );
    for key in ["fused_tflops", "unfused_tflops", "speedup"] {
        assert!(r[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {r}");
    }
    for key in ["fused_max_rel_err", "unfused_max_rel_err"] {
        assert!(r[key].as_f64().unwrap() < 1e-5, "{key}: {r}");
    }
    let out = speckle(&["bench", "attention", "--shape", "1,2,3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("B,H,N,D"), "{}", stderr(&out));

    // Fewer queries than keys: 3 query rows over 40 keys, both kernels checked.
    let r = &bench_attention_json(&["--shape", "2,2,40,16", "--queries", "3"]);
    assert_eq!(r["queries"], 3);
    assert_eq!(r["checked_rows"], 3);
    // 4·B·H·Nq·N·D.
    assert_eq!(
        r["flops"].as_f64().unwrap(),
        4.0 * 2.0 * 2.0 * 3.0 * 40.0 * 16.0
    );
    for key in ["fused_max_rel_err", "unfused_max_rel_err"] {
        assert!(r[key].as_f64().unwrap() < 1e-5, "{key}: {r}");
    }
    for (extra, needle) in [
        ("--causal", "top-left"),
        ("--approx=performer", "--queries"),
    ] {
        let out = speckle(&[
            "bench",
            "attention",
            "--shape",
            "1,2,40,16",
            "--queries",
            "3",
            extra,
        ]);
        assert!(!out.status.success(), "{extra}");
        assert!(stderr(&out).contains(needle), "{extra}: {}", stderr(&out));
    }
}

/// Seeded Q, K and V of `shape` (uniform in [-1, 1), seeds `seed`, `seed + 1`, `seed + 2`)
/// written to q.npy, k.npy and v.npy in `dir`; with the paths of those files followed by
/// those of `more` (`<name>.npy` in `dir`).
fn attention_files(
    dir: &Path,
    shape: [usize; 3],
    seed: u64,
    more: &[&str],
) -> ([Vec<f32>; 3], Vec<PathBuf>) {
    let len = shape.iter().product();
    let data = [
        random(len, seed),
        random(len, seed + 1),
        random(len, seed + 2),
    ];
    let paths: Vec<PathBuf> = ["q", "k", "v"]
        .iter()
        .chain(more)
        .map(|name| dir.join(format!("{name}.npy")))
        .collect();
    for (path, x) in paths.iter().zip(&data) {
        npy::write_f32(path, x, &shape).unwrap();
    }
    (data, paths)
}

#[test]
fn attention_in_f16_runs_from_the_command_line() {
    use speckle::ops::attention::AttentionDims;
    let dir = scratch("attention_f16");
    // B = 1, N = 40, H = 2, D = 16, causal, a custom scale.
    let (b, n, h, d) = (1, 40, 2, 16);
    let row = h * d;
    let ([q, k, v], paths) = attention_files(&dir, [b, n, row], 80, &["o", "m"]);
    let (qs, ks, vs, os) = (s(&paths[0]), s(&paths[1]), s(&paths[2]), s(&paths[3]));
    let out = speckle(&[
        "op",
        "attention",
        qs,
        ks,
        vs,
        "--heads",
        "2",
        "--causal",
        "--scale",
        "0.4",
        "--precision",
        "f16",
        "-o",
        os,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, shape) = npy::read_f32(&paths[3]).unwrap();
    assert_eq!(shape, vec![b, n, row]);
    let dims = AttentionDims::new(&[b, n, row], &[b, n, row], &[b, n, row], h).unwrap();
    let want = speckle::cpu::attention_f16::attention_f16(&q, &k, &v, &dims, 0.4, true);
    // tests/attention_f16.rs: 1.1 · 2⁻¹⁰ · max |v| + 1e-5 per element (|v| < 1 here).
    for (i, (&got, &w)) in o.iter().zip(&want).enumerate() {
        assert!(
            (f64::from(got) - w).abs() <= 1.1e-3,
            "element {i}: {got} against {w}"
        );
    }

    // What f16 cannot do is refused before anything is written.
    npy::write_f32(&paths[4], &vec![1.0; n], &[b, n]).unwrap();
    let out = speckle(&[
        "op",
        "attention",
        qs,
        ks,
        vs,
        "--heads",
        "2",
        "--key-mask",
        s(&paths[4]),
        "--precision",
        "f16",
        "-o",
        s(&dir.join("masked.npy")),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("key mask"), "{}", stderr(&out));
    assert!(!dir.join("masked.npy").exists());
    let out = speckle(&["bench", "attention", "--precision", "f64"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("f64"), "{}", stderr(&out));

    let r = &bench_attention_json(&["--shape", "1,2,40,16", "--precision", "f16"]);
    assert_eq!(r["precision"], "f16");
    assert!(r["variant"].as_str().unwrap().starts_with("f16-"), "{r}");
    // The sampled check compares with the attention of the f16 values (P rounded: ~1e-3).
    assert!(r["fused_max_rel_err"].as_f64().unwrap() < 3e-3, "{r}");
}

#[test]
fn study_propagation_writes_plots_and_json() {
    let dir = scratch("propagation");
    let out_dir = dir.join("out");
    let out = speckle(&[
        "study",
        "propagation",
        "--depth",
        "4",
        "--widths",
        "16,32",
        "--batch",
        "8",
        "--inits",
        "he,xavier",
        "--activations",
        "relu",
        "--out",
        s(&out_dir),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    // 2 inits x 1 activation x 1 gain x 2 widths.
    assert_eq!(results.len(), 4);
    for r in results {
        for key in [
            "norm_ratio",
            "norm_spread",
            "activation_variance",
            "jacobian_ratio",
            "jacobian_spread",
        ] {
            let list = r[key].as_array().unwrap_or_else(|| panic!("{key}: {r}"));
            assert_eq!(list.len(), 4, "{key}: one entry per layer");
        }
        assert!(r["init"].is_string() && r["activation"] == "relu" && r["gain"] == 1.0);
    }
    for name in ["norms.png", "jacobian.png", "results.json"] {
        assert!(out_dir.join(name).is_file(), "{name} written");
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved["results"], v["results"]);

    // Bad arguments: clear errors and nothing written.
    let fresh = dir.join("fresh");
    assert_refused_before_work(
        &["study", "propagation", "--depth", "2"],
        &fresh,
        &[
            (vec!["--widths", "0"], "width"),
            (vec!["--inits", "gauss"], "gauss"),
            (vec!["--gains", "-1"], "gain"),
        ],
    );
}

#[test]
fn reconstruct_writes_the_grid_the_plot_and_the_report() {
    let dir = scratch("reconstruct");
    let out_dir = dir.join("out");
    let out = speckle(&[
        "reconstruct",
        "--size",
        "8",
        "--ratios",
        "1,2",
        "--encoders",
        "linear,relu",
        "--out",
        s(&out_dir),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["size"], 8);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        for key in ["psnr_db", "ssim", "rel_error", "seconds"] {
            assert!(r[key].is_number(), "{key}: {r}");
        }
        assert!(r["iterations"].as_u64().unwrap() >= 1, "{r}");
    }
    // The linear encoder at m/n = 2 recovers the image essentially exactly.
    let linear2 = results
        .iter()
        .find(|r| r["encoder"] == "linear" && r["ratio"] == 2.0)
        .unwrap();
    assert!(linear2["psnr_db"].as_f64().unwrap() >= 60.0, "{linear2}");
    for name in ["grid.png", "psnr.png", "report.json"] {
        assert!(out_dir.join(name).is_file(), "{name}");
    }
    // The same with the matrices regenerated inside the kernels, never stored.
    let out = speckle(&[
        "reconstruct",
        "--size",
        "8",
        "--ratios",
        "2",
        "--encoders",
        "linear",
        "--matrix-free",
        "--out",
        s(&dir.join("matrix-free")),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["matrix_free"], true);
    assert!(v["results"][0]["psnr_db"].as_f64().unwrap() >= 60.0, "{v}");
}

#[test]
fn reconstruct_refuses_bad_input_without_leaving_files() {
    let dir = scratch("reconstruct-bad");
    let text = dir.join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let blocker = dir.join("file-not-folder");
    std::fs::write(&blocker, "x").unwrap();
    let fresh = dir.join("fresh");
    assert_refused_before_work(
        &["reconstruct", "--size", "4"],
        &fresh,
        &[
            (vec!["--image", s(&dir.join("missing.png"))], "missing.png"),
            (vec!["--image", s(&text)], "not a readable"),
            (vec!["--ratios", "0,2"], "ratio"),
            (vec!["--ratios", "-1"], "ratio"),
            (vec!["--encoders", "sigmoid"], "sigmoid"),
            (vec!["--size", "0"], "size"),
        ],
    );
    // An output path that is a file: refused before any work.
    let out = speckle(&["reconstruct", "--size", "4", "--out", s(&blocker)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("file-not-folder"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
}

#[test]
fn bench_project_reports_json() {
    let out = speckle(&[
        "bench",
        "project",
        "--kind",
        "gaussian",
        "--matrix-free",
        "--shape",
        "2,64,96",
        "--runs",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["shape"], serde_json::json!([2, 64, 96]));
    for key in ["vectors_per_s", "gpu_gflops", "cpu_reference_vectors_per_s"] {
        assert!(r[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {r}");
    }
    assert!(r["rel_err"].as_f64().unwrap() < 1e-5, "{r}");
    // The optical kind names the path it ran: --fused and --unfused choose it.
    for (flag, mode) in [
        ("--fused", "materialized, fused"),
        ("--unfused", "materialized"),
    ] {
        let out = speckle(&[
            "bench", "project", "--kind", "optical", "--shape", "2,8,16", "--runs", "1", flag,
            "--json",
        ]);
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["results"][0]["mode"], mode, "{flag}");
    }
}

#[test]
fn op_attention_performer_approximates_exact_attention() {
    use speckle::ops::attention::AttentionDims;
    let dir = scratch("performer");
    // B = 1, N = 24, H = 2, D = 8; Q and K uniform in [-1, 1), V in [-1, 1).
    let (b, n, h, d) = (1, 24, 2, 8);
    let row = h * d;
    let ([q, k, v], paths) = attention_files(&dir, [b, n, row], 70, &["m", "o", "o2"]);
    npy::write_f32(&paths[3], &vec![1.0; b * n], &[b, n]).unwrap();
    let base = [s(&paths[0]), s(&paths[1]), s(&paths[2]), "--heads", "2"];
    let run = |extra: &[&str], output: &Path| {
        let mut args = vec!["op", "attention"];
        args.extend(base);
        args.extend(extra);
        args.extend(["-o", s(output)]);
        speckle(&args)
    };
    let dims = AttentionDims::new(&[b, n, row], &[b, n, row], &[b, n, row], h).unwrap();
    let scale = 1.0 / (d as f64).sqrt();
    let exact = speckle::cpu::attention::attention(&q, &k, &v, None, &dims, scale, false);

    // Many features: close to exact attention. The error of the estimate is c/sqrt(m) with
    // c ≈ 3.1 for these inputs (measured over 20 seeds at m = 256, 1024, 4096; at m = 4096:
    // mean 0.050, largest 0.072, coefficient of variation ≈ 0.2). 0.15 is twice the largest
    // of 20 draws; the answer "mean of V" (uniform attention) is off by 0.36, so the bound
    // still tells attention from averaging.
    let out = run(&["--approx", "performer", "--features", "4096"], &paths[4]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, shape) = npy::read_f32(&paths[4]).unwrap();
    assert_eq!(shape, vec![b, n, row]);
    let err = speckle::cpu::relative_error(&o, &exact);
    let uniform: Vec<f32> = (0..n * row)
        .map(|e| (0..n).map(|j| v[j * row + e % row]).sum::<f32>() / n as f32)
        .collect();
    let uniform_err = speckle::cpu::relative_error(&uniform, &exact);
    assert!(
        err < 0.15 && uniform_err > 0.3,
        "performer m=4096: relative error {err:.4} against exact attention (bound 0.15); \
         uniform attention {uniform_err:.3}"
    );

    // --causal, --scale, --seed and --features reach the library: the output is the f64
    // Performer reference from the same W (f32 rounding: 2e-5, tests/performer.rs).
    let out = run(
        &[
            "--approx",
            "performer",
            "--features",
            "48",
            "--seed",
            "5",
            "--causal",
            "--scale",
            "0.3",
        ],
        &paths[5],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let w = speckle::cpu::performer::projection_matrix(48, d, 5, true).unwrap();
    let want = speckle::cpu::performer::performer(&q, &k, &v, &dims, &w, 48, 0.3, true);
    common::assert_rel_close(
        "op attention --approx performer --causal --scale 0.3 --seed 5",
        &npy::read_f32(&paths[5]).unwrap().0,
        &want,
        2e-5,
    );

    // Refusals: a clear message and no output.
    let fresh = dir.join("fresh.npy");
    for (extra, expected) in [
        (
            vec!["--approx", "performer", "--key-mask", s(&paths[3])],
            "--key-mask",
        ),
        (vec!["--approx", "performer", "--features", "0"], "features"),
        (vec!["--features", "64"], "--approx performer"),
        (vec!["--approx", "linear"], "linear"),
    ] {
        let out = run(&extra, &fresh);
        assert!(!out.status.success(), "{extra:?}");
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(!fresh.exists(), "{extra:?}: nothing written");
    }
}

#[test]
fn bench_attention_performer_reports_json() {
    use speckle::ops::attention::AttentionDims;
    let out = speckle(&[
        "bench",
        "attention",
        "--shape",
        "1,2,64,16",
        "--approx",
        "performer",
        "--features",
        "32",
        "--causal",
        "--runs",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["op"], "attention-performer");
    assert_eq!(r["shape"], serde_json::json!([1, 2, 64, 16]));
    assert_eq!(r["features"], 32);
    assert_eq!(r["causal"], true);
    assert_eq!(r["reference"], "exact-fused");
    let dims = AttentionDims::new(&[1, 64, 32], &[1, 64, 32], &[1, 64, 32], 2).unwrap();
    assert_eq!(
        r["flops"].as_f64().unwrap(),
        speckle::ops::performer::flops(&dims, 32, true)
    );
    assert_eq!(r["exact_flops"].as_f64().unwrap(), 0.5 * dims.flops());
    for key in ["performer_tflops", "exact_tflops", "speedup"] {
        assert!(r[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {r}");
    }
    assert!(r["performer"]["median_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["exact"]["median_ms"].as_f64().unwrap() > 0.0, "{r}");
    // An approximation: not exact, but far from useless (m = 32 on these inputs: ~0.2).
    for key in ["rel_error", "rel_error_sampled"] {
        let e = r[key].as_f64().unwrap();
        assert!(e > 1e-4 && e < 0.6, "{key} = {e}: {r}");
    }
    assert!(r["exact_max_rel_err"].as_f64().unwrap() < 1e-5, "{r}");
    assert!(r["input"].as_str().unwrap().contains("0.5"), "{r}");
    // Performer's options without --approx performer are refused.
    let out = speckle(&["bench", "attention", "--shape", "1,1,8,8", "--seed", "3"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--approx performer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn study_performer_writes_plots_and_json() {
    let dir = scratch("study-performer");
    let out_dir = dir.join("out");
    let small = [
        "study",
        "performer",
        "--features",
        "8,16",
        "--lengths",
        "32,64",
        "--seeds",
        "2",
        "--shape-error",
        "1,2,32,8",
        "--heads",
        "2",
        "--head-dim",
        "8",
        "--time-features",
        "8,16",
        "--runs",
        "1",
        "--warmup",
        "0",
    ];
    let mut args = small.to_vec();
    args.extend(["--out", s(&out_dir), "--json"]);
    let out = speckle(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = v["error_vs_features"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    for (e, m) in errors.iter().zip([8, 16]) {
        assert_eq!(e["features"], m);
        let mean = e["rel_error_mean"].as_f64().unwrap();
        let std = e["rel_error_std"].as_f64().unwrap();
        assert!(mean > 0.0 && mean < 1.0 && std >= 0.0, "{e}");
        assert_eq!(e["rel_errors"].as_array().unwrap().len(), 2);
    }
    let times = v["time_vs_length"].as_array().unwrap();
    assert_eq!(times.len(), 2);
    for (t, n) in times.iter().zip([32, 64]) {
        assert_eq!(t["n"], n);
        for key in ["exact_ms", "performer_ms"] {
            assert!(t[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {t}");
        }
        assert_eq!(t["performer"].as_array().unwrap().len(), 2, "{t}");
        assert_eq!(t["performer_ms"], t["performer"][0]["ms"]);
    }
    let crossovers = v["crossover"].as_array().unwrap();
    assert_eq!(crossovers.len(), 2);
    for c in crossovers {
        let status = c["status"].as_str().unwrap();
        assert!(
            ["crossed", "performer-faster-throughout", "not-reached"].contains(&status),
            "{c}"
        );
        assert_eq!(c["n"].is_number(), status == "crossed", "{c}");
    }
    assert!(v["input"].as_str().unwrap().contains("[-0.5, 0.5)"), "{v}");
    for name in ["error.png", "time.png", "results.json"] {
        assert!(out_dir.join(name).is_file(), "{name} written");
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved, v);

    // Bad arguments: clear errors before any work, nothing created.
    let fresh = dir.join("fresh");
    assert_refused_before_work(
        &["study", "performer"],
        &fresh,
        &[
            (vec!["--features", "0,8"], "--features"),
            (vec!["--lengths", "32,0"], "--lengths"),
            (vec!["--seeds", "0"], "--seeds"),
            (vec!["--shape-error", "1,2,32"], "B,H,N,D"),
            (vec!["--shape-error", "1,0,32,8"], "zero"),
            (vec!["--head-dim", "300"], "300"),
            (vec!["--time-features", "0"], "--time-features"),
            (vec!["--amplitude", "0"], "amplitude"),
        ],
    );
    // An output path that is a file: refused, the file untouched.
    let blocker = dir.join("file-not-folder");
    std::fs::write(&blocker, "x").unwrap();
    let mut args = small.to_vec();
    args.extend(["--out", s(&blocker)]);
    let out = speckle(&args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("file-not-folder"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
}

#[test]
fn study_trained_vs_random_writes_the_grid_the_history_and_json() {
    let dir = scratch("study-trained-vs-random");
    let out_dir = dir.join("out");
    let small = [
        "study",
        "trained-vs-random",
        "--widths",
        "24,16",
        "--expanding-widths",
        "64",
        "--steps",
        "30",
        "--checkpoints",
        "2",
        "--train-count",
        "128",
        "--held-out-count",
        "32",
        "--examples",
        "4",
        "--batch",
        "32",
        "--iterations",
        "10",
    ];
    let mut args = small.to_vec();
    args.extend(["--out", s(&out_dir), "--json"]);
    let out = speckle(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{v}");
    assert!((v["chance_accuracy"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    let regimes = v["regimes"].as_array().unwrap();
    // The widths, their one-layer variant and the expanding regime.
    assert_eq!(regimes.len(), 3, "{v}");
    for (r, widths) in regimes.iter().zip([vec![24, 16], vec![24], vec![64]]) {
        assert_eq!(r["widths"], serde_json::json!(widths));
        for key in ["psnr_random_db", "psnr_trained_db"] {
            assert!(r[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {r}");
        }
    }
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{v}");
    for (c, step) in history.iter().zip([0, 15, 30]) {
        assert_eq!(c["step"], step);
        assert!(c["accuracy"].as_f64().is_some(), "{c}");
        assert!(c["psnr_trained_db"].as_f64().is_some(), "{c}");
    }
    for name in ["grid.png", "history.png", "results.json"] {
        assert!(out_dir.join(name).is_file(), "{name} written");
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved, v);

    // Bad arguments: clear errors before any work, nothing created.
    let fresh = dir.join("fresh");
    assert_refused_before_work(
        &["study", "trained-vs-random"],
        &fresh,
        &[
            (vec!["--steps", "0"], "--steps"),
            (vec!["--widths", "24,0"], "--widths"),
            (vec!["--checkpoints", "0"], "--checkpoints"),
            (vec!["--examples", "0"], "--examples"),
            (vec!["--batch", "0"], "--batch"),
        ],
    );
}
