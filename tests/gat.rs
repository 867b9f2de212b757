//! Graph attention (GAT) against the f64 reference: random graphs of 1 to 300 nodes, isolated
//! nodes, duplicate edges, self loops, a hub with 10,000 incoming edges, 1 to 4 heads of 1 to
//! 16 features, concatenated and averaged heads, LeakyReLU slopes, large scores, the split
//! paths under a small binding limit, the errors, and the loop limit (lavapipe ends an
//! invocation's loops after 65,535 passes): hubs segmented below it, refusals that name the
//! numbers, and a hub past lavapipe's own limit.
//!
//! Tolerance. Each output is Σ_j α_ij Wh[j] with α = exp(e − max)/Σ exp(e − max). On the GPU Wh
//! is an f32 matmul over F inputs (relative error ~ 2⁻²⁴·sqrt(F) per entry, F ≤ 33 here) and
//! the scores are f32 dot products over F' ≤ 16 values; an absolute error δe in a score becomes
//! a relative error δe in its weight (d exp(e)/exp(e) = de). With inputs uniform in [−1, 1)
//! the scores are at most ~10 in size, so δe ≲ 10 · 2⁻²⁴ · sqrt(F + F') ≈ 4e-6; the online
//! softmax adds an f32 sum over the edges a thread walks (ε·sqrt(L) typically). 2e-5 relative
//! is therefore met with margin, while a wrong max, normaliser, head or edge is off by ≥ 1e-2.
//! The 10,000-edge hub has threads walking up to 1,250 edges each (at least 8 threads): an f32
//! running sum of that many terms has relative error ≲ 1,250 · 2⁻²⁴ ≈ 7.5e-5 in the worst
//! case (errors of numerator and denominator largely cancel in practice), so the hub is checked
//! at 1e-4. Measured on lavapipe: every case below 2.5e-7.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal, poisoned,
    random, random_scaled,
};
use speckle::cpu::gat::gat as reference;
use speckle::ops::gat::{self, Csr, GatDims, GatOptions};
use speckle::{Error, Gpu, Tensor};

/// Tolerance for unit-sized inputs (see the module docs).
const TOL: f64 = 2e-5;
/// Tolerance when one target has 10,000 incoming edges (see the module docs).
const HUB_TOL: f64 = 1e-4;

/// A GAT layer's inputs on the host.
struct Layer {
    nodes: usize,
    features: usize,
    heads: usize,
    fout: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    a: Vec<f32>,
}

impl Layer {
    /// Inputs uniform in [−scale, scale) (X) and [−1, 1) (W, A).
    fn random(nodes: usize, features: usize, heads: usize, fout: usize, seed: u64) -> Layer {
        Layer {
            nodes,
            features,
            heads,
            fout,
            x: random(nodes * features, seed),
            w: random(features * heads * fout, seed + 1),
            a: random(heads * 2 * fout, seed + 2),
        }
    }

    fn dims(&self) -> GatDims {
        GatDims {
            nodes: self.nodes,
            features: self.features,
            heads: self.heads,
            head_features: self.fout,
        }
    }

    /// Runs the layer on `gpu` into a NaN-poisoned output; returns it with the reference.
    fn run(&self, gpu: &Gpu, edges: &[[u32; 2]], options: &GatOptions) -> (Vec<f32>, Vec<f64>) {
        let x = Tensor::from_slice(gpu, &self.x, &[self.nodes, self.features]).unwrap();
        let w = Tensor::from_slice(gpu, &self.w, &[self.features, self.heads * self.fout]).unwrap();
        let a = Tensor::from_slice(gpu, &self.a, &[self.heads, 2 * self.fout]).unwrap();
        let y = poisoned(gpu, &self.dims().output_shape(options.average));
        let plan = gat::plan(gpu, &x, edges, &w, &a, self.heads, options, &y).unwrap();
        gpu.execute(&plan).unwrap();
        let want = reference(&self.x, edges, &self.w, &self.a, &self.dims(), options);
        (y.to_vec(gpu).unwrap(), want)
    }

    /// Runs and compares with the reference at `tol`; returns the GPU output.
    fn check(
        &self,
        gpu: &Gpu,
        edges: &[[u32; 2]],
        options: &GatOptions,
        tol: f64,
        what: &str,
    ) -> Vec<f32> {
        let (got, want) = self.run(gpu, edges, options);
        let label = format!(
            "gat {what}: N={} F={} H={} F'={} E={} {options:?}",
            self.nodes,
            self.features,
            self.heads,
            self.fout,
            edges.len()
        );
        assert_rel_close(&label, &got, &want, tol);
        // Targets with no incoming edge must be exactly zero, not merely small.
        let cols = got.len() / self.nodes;
        let mut has_input = vec![options.self_loops; self.nodes];
        for &[_, i] in edges {
            has_input[i as usize] = true;
        }
        for (i, _) in has_input.iter().enumerate().filter(|(_, h)| !**h) {
            let row = &got[i * cols..(i + 1) * cols];
            assert!(
                row.iter().all(|&v| v == 0.0),
                "{label}: isolated node {i} got {row:?}"
            );
        }
        got
    }
}

/// A seeded index in 0..n from a value in [−1, 1).
fn index(v: f32, n: usize) -> u32 {
    ((((v + 1.0) * 0.5) * n as f32) as usize).min(n - 1) as u32
}

/// `count` random edges over `nodes` nodes, no edge into nodes ≡ 0 (mod 5) (isolated unless
/// self loops are added; all nodes may be sources), then the first tenth again (duplicates).
fn random_edges(nodes: usize, count: usize, seed: u64) -> Vec<[u32; 2]> {
    let r = random(2 * count, seed);
    let mut edges: Vec<[u32; 2]> = r
        .chunks_exact(2)
        .map(|p| {
            let mut target = index(p[1], nodes);
            if nodes > 1 && target.is_multiple_of(5) {
                target = if target as usize + 1 < nodes {
                    target + 1
                } else {
                    target - 1
                };
            }
            [index(p[0], nodes), target]
        })
        .collect();
    edges.extend_from_within(..count / 10);
    edges
}

#[test]
fn random_graphs_match_the_reference() {
    let gpu = gpu();
    // (nodes, edges, features, heads, F')
    let cases = [
        (1, 3, 5, 1, 1),
        (1, 0, 4, 2, 3),
        (7, 20, 5, 2, 3),
        (7, 0, 3, 4, 8),
        (50, 300, 16, 3, 8),
        (50, 120, 33, 4, 16),
        (300, 1500, 16, 1, 16),
        (300, 2000, 7, 4, 1),
        (300, 900, 33, 2, 3),
    ];
    for (k, &(nodes, count, features, heads, fout)) in cases.iter().enumerate() {
        let seed = 100 * k as u64;
        let layer = Layer::random(nodes, features, heads, fout, seed);
        let edges = random_edges(nodes, count, seed + 7);
        for (self_loops, average) in [(false, false), (true, false), (false, true), (true, true)] {
            let options = GatOptions {
                self_loops,
                average,
                ..Default::default()
            };
            layer.check(gpu, &edges, &options, TOL, "random graph");
        }
    }
}

#[test]
fn slopes_of_leaky_relu() {
    let gpu = gpu();
    let layer = Layer::random(50, 9, 2, 3, 11);
    let edges = random_edges(50, 400, 12);
    // 0: ReLU; 1: no non-linearity; negative: a reflected branch; 0.01: PyTorch's default.
    for slope in [0.0, 0.01, 0.2, 1.0, -0.5] {
        let options = GatOptions {
            negative_slope: slope,
            ..Default::default()
        };
        layer.check(gpu, &edges, &options, TOL, "slope");
    }
}

#[test]
fn a_hub_with_10000_incoming_edges() {
    let gpu = gpu();
    let nodes = 300;
    let hub = 17;
    let layer = Layer::random(nodes, 12, 2, 8, 21);
    let mut edges = random_edges(nodes, 900, 22);
    // 10,000 edges into the hub from random sources (so with many duplicates).
    edges.extend(
        random(10_000, 23)
            .into_iter()
            .map(|v| [index(v, nodes), hub]),
    );
    for (self_loops, average) in [(false, false), (true, true)] {
        let options = GatOptions {
            self_loops,
            average,
            ..Default::default()
        };
        layer.check(gpu, &edges, &options, HUB_TOL, "hub");
    }
    // Heads of 16 features (4 tiles) and 4 heads over the same hub.
    let layer = Layer::random(nodes, 6, 4, 16, 24);
    layer.check(gpu, &edges, &GatOptions::default(), HUB_TOL, "hub 4x16");
}

/// X and W such that feature 0 of every head of Wh is exactly 1 and the others vary with
/// `scale`: output feature 0 of each head is then Σ_j α_ij, which must be 1 for every node
/// with an incoming edge (0 without), whatever the scores.
fn constant_feature_layer(nodes: usize, heads: usize, fout: usize, scale: f32, seed: u64) -> Layer {
    let features = 3;
    let hf = heads * fout;
    let mut x = random_scaled(nodes * features, seed, scale);
    for n in 0..nodes {
        x[n * features] = 1.0;
    }
    let mut w = random(features * hf, seed + 1);
    for h in 0..heads {
        // Column h·F' of W: 1 from the constant input, 0 from the others.
        w[h * fout] = 1.0;
        for k in 1..features {
            w[k * hf + h * fout] = 0.0;
        }
    }
    Layer {
        nodes,
        features,
        heads,
        fout,
        x,
        w,
        a: random(heads * 2 * fout, seed + 2),
    }
}

#[test]
fn attention_weights_sum_to_one() {
    let gpu = gpu();
    let (nodes, heads, fout) = (50, 3, 4);
    let edges = random_edges(nodes, 400, 31);
    for scale in [1.0, 100.0] {
        let layer = constant_feature_layer(nodes, heads, fout, scale, 32);
        for self_loops in [false, true] {
            let options = GatOptions {
                self_loops,
                ..Default::default()
            };
            let (got, _) = layer.run(gpu, &edges, &options);
            let mut has_input = vec![self_loops; nodes];
            for &[_, i] in &edges {
                has_input[i as usize] = true;
            }
            for i in 0..nodes {
                for h in 0..heads {
                    let v = got[i * heads * fout + h * fout];
                    let want = if has_input[i] { 1.0 } else { 0.0 };
                    // Σα in f32 over ≤ 20 weights: a few ulp of 1.
                    assert!(
                        (v - want).abs() < 1e-5,
                        "scale {scale}, self loops {self_loops}: node {i} head {h}: Σα = {v}, \
                         expected {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn large_scores_stay_finite_and_accurate() {
    let gpu = gpu();
    let edges = random_edges(50, 400, 41);
    // X up to 1,000: Wh up to ~2,000, scores up to ~10⁴ (LeakyReLU makes the softmax nearly
    // one-hot). δe ≈ 2⁻²⁴ · |e| · sqrt(F + F') ≈ 2e-3 is now the dominant error of the
    // weights, so the tolerance is 2e-3 relative; NaN or infinity fails it.
    let mut layer = Layer::random(50, 4, 2, 4, 42);
    layer.x.iter_mut().for_each(|v| *v *= 1000.0);
    for average in [false, true] {
        let options = GatOptions {
            self_loops: true,
            average,
            ..Default::default()
        };
        layer.check(gpu, &edges, &options, 2e-3, "scores ~1e4");
    }
    // Scores ~1e30 (Wh ~1e15, A ~1e15): exp(e − max) must still never see inf − inf.
    let mut layer = Layer::random(50, 4, 2, 4, 43);
    layer.x.iter_mut().for_each(|v| *v *= 1e15);
    layer.a.iter_mut().for_each(|v| *v *= 1e15);
    let (got, want) = layer.run(gpu, &edges, &GatOptions::default());
    assert!(
        got.iter().all(|v| v.is_finite()),
        "scores ~1e30 gave non-finite outputs"
    );
    // With scores this far apart each softmax is one-hot up to ties: the output is the
    // Wh row of the best source, which the reference picks too.
    assert_rel_close("gat scores ~1e30", &got, &want, 1e-5);
}

#[test]
fn self_loops_alone_return_wh() {
    // With no edges but self loops each node attends only to itself (α = 1): Y = Wh, or the
    // mean of its heads.
    let gpu = gpu();
    let layer = Layer::random(31, 5, 3, 3, 51);
    for average in [false, true] {
        let options = GatOptions {
            self_loops: true,
            average,
            ..Default::default()
        };
        layer.check(gpu, &[], &options, TOL, "self loops only");
    }
    let (got, _) = layer.run(gpu, &[], &GatOptions::default());
    assert!(
        got.iter().all(|&v| v == 0.0),
        "no edges and no self loops must give zeros"
    );
}

#[test]
fn a_small_binding_limit_splits_targets_and_segments_hubs() {
    // 4 KiB bindings hold ~1,000 values: Wh (40 × 15 = 600) and the scores (240) still fit
    // whole, but the 2,300 sources are split over several target runs, and the hub's 2,500
    // incoming edges take three segments that carry the softmax state.
    let gpu = gpu_with_binding_limit(4096);
    let nodes = 40;
    let layer = Layer::random(nodes, 6, 3, 5, 61);
    let mut edges = random_edges(nodes, 2000, 62);
    edges.extend(random(2500, 63).into_iter().map(|v| [index(v, nodes), 9]));
    for (self_loops, average) in [(false, false), (true, true), (true, false)] {
        let options = GatOptions {
            self_loops,
            average,
            ..Default::default()
        };
        layer.check(&gpu, &edges, &options, HUB_TOL, "binding limit");
    }
    // Wh of 250 × 4 = 1,000 values just fits; the offsets (251) and output rows (1,000) fit
    // too, and the 1,320 sources split the targets into runs (no segments: mean degree ~5).
    let layer = Layer::random(250, 3, 1, 4, 64);
    let edges = random_edges(250, 1200, 65);
    layer.check(
        &gpu,
        &edges,
        &GatOptions::default(),
        TOL,
        "binding limit, 250 nodes",
    );
}

#[test]
fn wh_larger_than_one_binding_is_a_clear_error() {
    let gpu = gpu_with_binding_limit(4096);
    let layer = Layer::random(300, 2, 2, 8, 71); // Wh: 300 × 16 = 4,800 values
    let x = Tensor::from_slice(&gpu, &layer.x, &[300, 2]).unwrap();
    let w = Tensor::from_slice(&gpu, &layer.w, &[2, 16]).unwrap();
    let a = Tensor::from_slice(&gpu, &layer.a, &[2, 16]).unwrap();
    let e = gat::run(&gpu, &x, &[[0, 1]], &w, &a, 2, &GatOptions::default()).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, Error::Limit { .. }), "{message}");
    assert!(
        message.contains("[300, 16]") && message.contains("19200"),
        "{message}"
    );
}

/// Runs `gat::run` on zero-filled tensors of the given shapes and returns the error message.
fn error_of(
    x: &[usize],
    w: &[usize],
    a: &[usize],
    heads: usize,
    edges: &[[u32; 2]],
    options: GatOptions,
) -> String {
    let gpu = gpu();
    let t = |s: &[usize]| Tensor::zeros(gpu, s).unwrap();
    gat::run(gpu, &t(x), edges, &t(w), &t(a), heads, &options)
        .map(|_| ())
        .expect_err("must be an error")
        .to_string()
}

#[test]
fn bad_arguments_are_errors_naming_the_numbers() {
    let ok = GatOptions::default();
    let m = error_of(&[5, 3], &[4, 8], &[2, 8], 2, &[], ok);
    assert!(
        m.contains("W has 4 rows") && m.contains("3 features"),
        "{m}"
    );
    let m = error_of(&[5, 3], &[3, 7], &[2, 8], 2, &[], ok);
    assert!(m.contains("7 columns") && m.contains("2 heads"), "{m}");
    let m = error_of(&[5, 3], &[3, 8], &[2, 4], 2, &[], ok);
    assert!(m.contains("[2, 4]") && m.contains("[2, 8]"), "{m}");
    let m = error_of(&[5, 3], &[3, 8], &[8], 1, &[], ok);
    assert!(m.contains("[8]") && m.contains("[1, 16]"), "{m}");
    let m = error_of(&[5, 3], &[3, 8], &[2, 8], 0, &[], ok);
    assert!(m.contains("heads"), "{m}");
    let m = error_of(&[15], &[3, 8], &[2, 8], 2, &[], ok);
    assert!(m.contains("X must be [nodes, features]"), "{m}");
    let m = error_of(&[5, 3], &[3, 8], &[2, 8], 2, &[[0, 1], [2, 3], [4, 5]], ok);
    assert!(
        m.contains("edge 2") && m.contains("target 5") && m.contains("0..5"),
        "{m}"
    );
    let m = error_of(&[5, 3], &[3, 8], &[2, 8], 2, &[[7, 1]], ok);
    assert!(
        m.contains("edge 0") && m.contains("source 7") && m.contains("0..5"),
        "{m}"
    );
    let nan_slope = GatOptions {
        negative_slope: f32::NAN,
        ..ok
    };
    let m = error_of(&[5, 3], &[3, 8], &[2, 8], 2, &[], nan_slope);
    assert!(m.contains("negative_slope"), "{m}");

    // plan checks the output's shape.
    let gpu = gpu();
    let x = Tensor::zeros(gpu, &[5, 3]).unwrap();
    let w = Tensor::zeros(gpu, &[3, 8]).unwrap();
    let a = Tensor::zeros(gpu, &[2, 8]).unwrap();
    let y = Tensor::zeros(gpu, &[5, 8]).unwrap();
    let average = GatOptions {
        average: true,
        ..ok
    };
    let m = gat::plan(gpu, &x, &[], &w, &a, 2, &average, &y)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(m.contains("[5, 8]") && m.contains("[5, 4]"), "{m}");
}

#[test]
fn csr_by_target_keeps_edge_order_and_adds_self_loops() {
    let edges = [[2, 1], [0, 1], [1, 0], [2, 1], [1, 2]];
    let csr = Csr::by_target(&edges, 4, false).unwrap();
    assert_eq!(csr.offsets, vec![0, 1, 4, 5, 5]);
    assert_eq!(csr.sources, vec![1, 2, 0, 2, 1]);
    assert_eq!(csr.degree(3), 0);
    let csr = Csr::by_target(&edges, 4, true).unwrap();
    assert_eq!(csr.offsets, vec![0, 2, 6, 8, 9]);
    assert_eq!(csr.sources, vec![1, 0, 2, 0, 2, 1, 1, 2, 3]);
    let m = Csr::by_target(&edges, 2, false).unwrap_err().to_string();
    assert!(
        m.contains("edge 0") && m.contains("source 2") && m.contains("0..2"),
        "{m}"
    );
}

#[test]
fn edges_from_npy_values_checks_shape_and_range() {
    let edges = gat::edges_from_npy_values(&[0, 1, 2, 1, 1, 1], &[3, 2], 3).unwrap();
    assert_eq!(edges, vec![[0, 1], [2, 1], [1, 1]]);
    assert!(gat::edges_from_npy_values(&[], &[0, 2], 3)
        .unwrap()
        .is_empty());
    let m = gat::edges_from_npy_values(&[0, 1, 2, 1, 1, 1], &[2, 3], 3)
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("[num_edges, 2]") && m.contains("transpose"),
        "{m}"
    );
    let m = gat::edges_from_npy_values(&[0, 1, 2], &[3], 3)
        .unwrap_err()
        .to_string();
    assert!(m.contains("[3]"), "{m}");
    let m = gat::edges_from_npy_values(&[0, 1, 2, -4], &[2, 2], 3)
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("edge 1") && m.contains("target -4") && m.contains("0..3"),
        "{m}"
    );
    let m = gat::edges_from_npy_values(&[0, 1, 5_000_000_000, 0], &[2, 2], 3)
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("edge 1") && m.contains("source 5000000000"),
        "{m}"
    );
    let m = gat::edges_from_npy_values(&[0, 1], &[2, 2], 3)
        .unwrap_err()
        .to_string();
    assert!(m.contains("4 values") && m.contains("2 were given"), "{m}");
}

#[test]
fn edges_read_from_an_npy_file_run() {
    // An int64 [E, 2] file as NumPy writes it, through npy::read_indices.
    let edges: [[i64; 2]; 4] = [[0, 1], [1, 2], [2, 0], [1, 1]];
    let path = std::env::temp_dir().join(format!("speckle-gat-edges-{}.npy", std::process::id()));
    let flat: Vec<i64> = edges.iter().flatten().copied().collect();
    speckle::npy::write_i64(&path, &flat, &[4, 2]).unwrap();
    let (values, shape) = speckle::npy::read_indices(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let pairs = gat::edges_from_npy_values(&values, &shape, 3).unwrap();
    assert_eq!(pairs, vec![[0, 1], [1, 2], [2, 0], [1, 1]]);
    Layer::random(3, 2, 2, 2, 81).check(gpu(), &pairs, &GatOptions::default(), TOL, "npy edges");
}

/// Gives node `s` the source score 6 in head 0 (others are O(1)): a target it sends edges to
/// weighs them about e^5 times its other edges, so a walk that stopped before them would give
/// another output. X's row `s` becomes 6 u / ‖u‖² with u = W_h0 a_src, the direction in which
/// the score x · u grows fastest: a short row whose score has no cancellation in it.
fn dominant_source(layer: &mut Layer, s: usize) {
    let (f, h, fo) = (layer.features, layer.heads, layer.fout);
    let u: Vec<f32> = (0..f)
        .map(|i| {
            (0..fo)
                .map(|c| layer.w[i * h * fo + c] * layer.a[fo + c])
                .sum()
        })
        .collect();
    let norm2: f32 = u.iter().map(|v| v * v).sum();
    for (x, ui) in layer.x[s * f..(s + 1) * f].iter_mut().zip(&u) {
        *x = 6.0 * ui / norm2;
    }
}

#[test]
fn hubs_are_segmented_below_the_loop_limit() {
    // A limit of 1,200 passes (Wh's matmul needs 1,088): with 2 heads and 8 threads (mean
    // degree ~6.5 on CPU adapters; 32 threads on GPUs), a dispatch may take at most 4,672
    // edges of a target (with 32 threads 18,624), so the hub's 30,000 edges take segments
    // that carry the softmax state; the last 1,000 come from one source that dominates them.
    // Matches the reference, and plans more dispatches than without the limit.
    let lowered = gpu_with_loop_limit(1200);
    let (nodes, hub, source) = (5000, 11, 4999);
    let mut layer = Layer::random(nodes, 5, 2, 3, 81);
    dominant_source(&mut layer, source);
    let mut edges = random_edges(nodes, 2000, 82);
    edges.extend(
        random(29_000, 83)
            .into_iter()
            .map(|v| [index(v, 4900), hub]),
    );
    edges.extend((0..1000).map(|_| [source as u32, hub]));
    for average in [false, true] {
        let options = GatOptions {
            average,
            ..Default::default()
        };
        layer.check(&lowered, &edges, &options, HUB_TOL, "loop limit");
    }
    let plan_len = |gpu: &Gpu| {
        let x = Tensor::from_slice(gpu, &layer.x, &[nodes, 5]).unwrap();
        let w = Tensor::from_slice(gpu, &layer.w, &[5, 6]).unwrap();
        let a = Tensor::from_slice(gpu, &layer.a, &[2, 6]).unwrap();
        let y = Tensor::zeros(gpu, &[nodes, 6]).unwrap();
        gat::plan(gpu, &x, &edges, &w, &a, 2, &GatOptions::default(), &y)
            .unwrap()
            .len()
    };
    let (segmented, whole) = (plan_len(&lowered), plan_len(gpu()));
    assert!(segmented >= whole + 2, "{segmented} vs {whole} dispatches");
}

#[test]
fn heads_and_features_past_the_loop_limit_are_refused_with_the_numbers() {
    // 1,200 passes: 120 heads leave no room for one edge per thread (each head's walk,
    // reduction and store take 11 passes or more), and the scores of F' = 1,300 features
    // loop 1,301 times. Both refused before anything runs, with the numbers.
    let lowered = gpu_with_loop_limit(1200);
    let t = |s: &[usize]| Tensor::zeros(&lowered, s).unwrap();
    let edges = [[0, 1], [1, 2], [2, 0]];
    let refusal = |heads: usize, fout: usize| {
        let y = t(&[3, heads * fout]);
        let e = gat::plan(
            &lowered,
            &t(&[3, 2]),
            &edges,
            &t(&[2, heads * fout]),
            &t(&[heads, 2 * fout]),
            heads,
            &GatOptions::default(),
            &y,
        )
        .map(|plan| plan.len())
        .expect_err("past the loop limit");
        let r = loop_refusal(e);
        assert!(r.iterations > r.limit && r.limit == 1200, "{}", r.message);
        (r.kernel, r.iterations, r.message)
    };
    let (kernel, _, message) = refusal(120, 1);
    assert_eq!(kernel, "gat (aggregation)");
    assert!(message.contains("120 heads"), "{message}");
    let (kernel, iterations, message) = refusal(1, 1300);
    assert_eq!((kernel.as_str(), iterations), ("gat (scores)", 1301));
    assert!(message.contains("F' = 1300"), "{message}");
}

#[test]
fn a_hub_past_lavapipes_loop_limit_is_right() {
    // 100,000 nodes with a mean degree of 6 take aggregation workgroups of 8 threads on CPU
    // adapters; the hub's 600,000 edges made each walk 75,000 of them, which lavapipe cut
    // after 65,535 passes: the last 60,000 edges, from a source that dominates the others,
    // were lost. Now the hub takes segments that fit (one on adapters without a limit).
    // Tolerance: each thread's f32 running sums add up to 37,500 terms (2 segments); their
    // rounding errors could reach u · 37,500 ≈ 2e-3 with every rounding in one direction but
    // grow far slower in practice: measured 1.9e-5 on lavapipe, so HUB_TOL leaves a margin of
    // 5, while the lost edges moved the output by 1.0 (relative).
    let (nodes, hub, source) = (100_000, 5, 99_999);
    let mut layer = Layer::random(nodes, 3, 1, 4, 91);
    dominant_source(&mut layer, source);
    let mut edges: Vec<[u32; 2]> = random(540_000, 92)
        .into_iter()
        .map(|v| [index(v, 90_000), hub])
        .collect();
    edges.extend((0..60_000).map(|_| [source as u32, hub]));
    layer.check(
        gpu(),
        &edges,
        &GatOptions::default(),
        HUB_TOL,
        "600,000-edge hub",
    );
}
