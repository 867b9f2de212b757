//! `speckle bench all` on the quick preset: every case runs (none skipped on the test
//! adapter), every result is checked against its f64 reference within a tolerance no wrong
//! kernel meets, the roofline fraction is what its definition gives from the row's own
//! figures, and the CLI's JSON and Markdown carry every case.

mod common;

use std::process::Command;

use common::gpu;
use speckle::bench::all::{self, AllOptions, Preset};

/// Worst error any correct quick-preset case may show: f32 kernels on inputs in [-1, 1) with
/// at most 256 terms per sum reach ~1e-6; a wrong tile, mask or normalization is off by 1e-2
/// or more.
const TOLERANCE: f64 = 1e-4;

#[test]
fn every_case_runs_and_reports_consistent_figures() {
    let report = all::bench_all(
        gpu(),
        &AllOptions {
            preset: Preset::Quick,
            warmup: 0,
            runs: 1,
            cpu_baseline: true,
        },
        |_| {},
    )
    .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    // The product of a few rows runs the skinny kernel, its default.
    let few_rows = report
        .results
        .iter()
        .find(|r| r.label == "matmul f32 2x64x32 B transposed")
        .expect("the few-rows matmul row");
    assert_eq!(few_rows.variant, "skinny");
    // Its alternative row forces 8 lanes along k per group of columns.
    let lanes = report
        .results
        .iter()
        .find(|r| r.label == "matmul f32 2x64x32 B transposed 8x8-skinny")
        .expect("the few-rows row with lanes along k");
    assert_eq!(lanes.variant, "skinny (8x8-skinny)");
    // Softmax and layernorm also with their rows read twice instead of held in registers.
    for op in ["softmax", "layernorm"] {
        let twice = report
            .results
            .iter()
            .find(|r| r.label == format!("{op} 8x256 read twice"))
            .expect("the row kernel read twice");
        assert_eq!(twice.variant, "row-wise, read twice");
    }
    let labels = all::case_labels(Preset::Quick);
    // The roofline's copy is a row too (its label differs from the "roofline" step's).
    assert_eq!(report.results.len(), labels.len());
    let roof = &report.roofline;
    assert!(roof.fma_gflops > 0.0 && roof.copy_gbps > 0.0);
    for row in &report.results {
        assert!(
            row.ms > 0.0 && row.ms.is_finite(),
            "{}: {} ms",
            row.label,
            row.ms
        );
        // f16 rounding (2^-11 relative at most, ~3e-4 rms) dominates the error of the f16
        // projection (each matrix entry, measured against the f32 matrix) and of the f16
        // attention (each softmax weight before the product with V, measured against the
        // attention of the rounded inputs; random V keeps the row error near that rms, 3.6e-4
        // seen). The f16 matmul is measured against the product of its rounded operands, which
        // it computes in f32: the f32 tolerance holds.
        let rounds_in_f16 = row.kernel == "project" || row.kernel == "attention";
        let tolerance = if rounds_in_f16 && row.label.contains("f16") {
            2e-3
        } else {
            TOLERANCE
        };
        if let Some(e) = row.error {
            assert!(e <= tolerance, "{}: error {e:.2e}", row.label);
        } else {
            assert_eq!(row.kernel, "roofline", "{} checks nothing", row.label);
        }
        let seconds = row.ms * 1e-3;
        let compute = row.flops.unwrap_or(0.0) / (roof.fma_gflops * 1e9);
        let memory = row.bytes / (roof.copy_gbps * 1e9);
        let fraction = compute.max(memory) / seconds;
        assert!(
            (row.roofline_fraction - fraction).abs() <= 1e-9 * fraction.max(1.0),
            "{}: fraction {} but the figures give {fraction}",
            row.label,
            row.roofline_fraction
        );
        assert_eq!(
            row.bound,
            if compute >= memory {
                "compute"
            } else {
                "memory"
            }
        );
        assert!((row.gbps - row.bytes / seconds * 1e-9).abs() <= 1e-9 * row.gbps.max(1.0));
    }
    let find = |prefix: &str| {
        report
            .results
            .iter()
            .find(|r| r.label.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row {prefix}"))
    };
    let mm = find("matmul f32 n=64");
    assert_eq!(mm.torch.as_ref().unwrap().op, "matmul_fp32");
    assert_eq!(mm.target, Some(0.8));
    assert!(mm.cpu_ms.is_some() && mm.vs_cpu.is_some());
    assert_eq!(
        find("attention f32 1,2,64,16").torch.as_ref().unwrap().op,
        "sdpa_fp32_efficient"
    );
    let attention_f16 = find("attention f16 in, f32 acc 1,2,64,16");
    assert_eq!(attention_f16.torch.as_ref().unwrap().op, "sdpa_f16_flash");
    assert_eq!(attention_f16.target, None);
    assert!(
        attention_f16.variant.starts_with("f16-"),
        "{}",
        attention_f16.variant
    );
    assert_eq!(
        find("project optical b4").torch.as_ref().unwrap().shape,
        vec![4, 32, 64]
    );
}

fn speckle(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_speckle"))
        .args(args)
        .env("SPECKLE_TUNE", "off")
        .output()
        .expect("the speckle binary runs")
}

#[test]
fn the_cli_writes_json_and_markdown_with_every_case() {
    let quick = [
        "bench", "all", "--preset", "quick", "--runs", "1", "--warmup", "0",
    ];
    let mut json_args = quick.to_vec();
    json_args.push("--json");
    let out = speckle(&json_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["preset"], "quick");
    assert!(v["roofline"]["fma_gflops"].as_f64().unwrap() > 0.0);
    let results = v["results"].as_array().unwrap();
    for label in all::case_labels(Preset::Quick).iter().skip(1) {
        assert!(
            results.iter().any(|r| r["label"] == label.as_str()),
            "{label} missing from the JSON"
        );
    }

    let mut md_args = quick.to_vec();
    md_args.push("--markdown");
    let out = speckle(&md_args);
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("| case | variant | ms |"), "{md}");
    assert!(md.contains("speckle bench all --preset quick"), "{md}");
    assert!(md.contains("| matmul f32 n=64 |"), "{md}");

    let out = speckle(&["bench", "all", "--preset", "huge"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown preset"),
        "{err}"
    );
}

#[test]
fn only_runs_the_cases_whose_labels_match() {
    // Case-insensitive substrings; the roofline's copy row always comes first.
    let only = ["RELU".to_owned(), "sum_rows".to_owned()];
    let report = all::bench_some(
        gpu(),
        &AllOptions {
            preset: Preset::Quick,
            warmup: 0,
            runs: 1,
            cpu_baseline: false,
        },
        &only,
        |_| {},
    )
    .unwrap();
    let labels: Vec<&str> = report.results.iter().map(|r| r.label.as_str()).collect();
    let want = all::selected_labels(Preset::Quick, &only).unwrap();
    assert_eq!(labels.len(), want.len(), "{labels:?} against {want:?}");
    assert_eq!(labels[0], "copy (roofline)");
    assert!(labels[1..]
        .iter()
        .all(|l| l.starts_with("relu") || l.starts_with("sum_rows")));
    assert_eq!(labels.len(), 3, "{labels:?}");
    // A pattern no case matches is an error that lists the cases.
    let e = all::selected_labels(Preset::Quick, &["no such case".to_owned()]).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("no such case") && message.contains("matmul f32 n=64"),
        "{message}"
    );
}
