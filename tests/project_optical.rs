//! The fused optical projection (`ops::project_optical`: `matmul_tiled` with PAIRED, and
//! `matmul_coop_paired` on tensor cores) against the f64 reference: the paired matrix's
//! layout and entries, both tile sizes over shapes that fill no tile, f16 operands, blocks
//! split over small bindings, the projection's choice of the fused path (against the unfused
//! path and the entries computed on the CPU), and the shapes it refuses; and the loop limit:
//! the fused pass cannot split d, so a d past the limit is refused by the kernels and by
//! `Fusion::Fused`, while `Fusion::Auto` falls back to the unfused path.
//!
//! Tolerance: y = re² + im² with re and im f32 sums of d products; their relative error
//! (tests/common/matmul.rs's bound for k = d) at most doubles in the square.

mod common;

use common::matmul::tolerance;
use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, poisoned,
    random,
};
use speckle::cpu::philox::Stream;
use speckle::cpu::project_dense::matrix_entry;
use speckle::cpu::project_optical::{paired_row, project_optical};
use speckle::ops::project_dense::DenseSpec;
use speckle::ops::project_optical::{self, OpticalKernel};
use speckle::ops::random_fill::Distribution;
use speckle::projection::{Fusion, Kind, Precision, Projection};
use speckle::{Error, Gpu, HalfTensor, Tensor};

fn spec(seed: u64) -> DenseSpec {
    DenseSpec {
        distribution: Distribution::Gaussian,
        scale: 0.5f32.sqrt(),
        seed,
        complex: true,
    }
}

fn as_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Runs the f32 fused product on a poisoned y and compares it with the f64 product of the
/// same (downloaded) matrix.
fn check_f32(gpu: &Gpu, batch: usize, d: usize, n_out: usize, kernel: Option<OpticalKernel>) {
    let what = format!("b{batch} d{d} n{n_out} {kernel:?}");
    let x_host = random(batch * d, (batch * 31 + d * 7 + n_out) as u64);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, d]).unwrap();
    let paired = project_optical::paired_matrix(gpu, &spec(3), n_out, d).unwrap();
    let y = poisoned(gpu, &[batch, n_out]);
    gpu.execute(&project_optical::plan(gpu, &x, &paired, &y, kernel).unwrap())
        .unwrap();
    let reference = project_optical(
        &as_f64(&x_host),
        &as_f64(&paired.to_vec(gpu).unwrap()),
        batch,
        d,
        n_out,
    );
    assert_rel_close(
        &what,
        &y.to_vec(gpu).unwrap(),
        &reference,
        2.0 * tolerance(d),
    );
}

#[test]
fn the_paired_matrix_interleaves_r_and_i_in_blocks_of_four() {
    let gpu = gpu();
    let (n_out, d) = (12, 10);
    let s = spec(11);
    let paired = project_optical::paired_matrix(gpu, &s, n_out, d)
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    let mut reference = Vec::new();
    for row in 0..2 * n_out {
        let (imaginary, i) = paired_row(row);
        let stream = if imaginary {
            Stream::MatrixImaginary
        } else {
            Stream::Matrix
        };
        reference.extend((0..d).map(|j| matrix_entry(&s, stream, i as u32, j as u64)));
    }
    assert_eq!(paired_row(3), (false, 3));
    assert_eq!(paired_row(4), (true, 0));
    assert_eq!(paired_row(13), (true, 5));
    assert_rel_close("paired matrix", &paired, &reference, 1e-5);
}

#[test]
fn both_tile_sizes_match_the_reference_on_shapes_that_fill_no_tile() {
    let gpu = gpu();
    // One block of pairs; partial tiles of inputs and outputs; 70 inputs span two 64-row
    // tiles (T = 8); 130 inputs and 2 · 68 paired columns span two 128-tiles (T = 16).
    for t in [8, 16] {
        for &(batch, d, n_out) in &[(1, 4, 4), (5, 12, 20), (70, 36, 36), (130, 100, 68)] {
            check_f32(gpu, batch, d, n_out, Some(OpticalKernel::Tiled(t)));
        }
    }
    check_f32(gpu, 3, 260, 132, None);
}

#[test]
fn f16_operands_match_the_product_of_the_rounded_values() {
    let gpu = gpu();
    let (batch, d, n_out) = (33, 68, 40);
    // Binary inputs, as an optical processing unit takes them: exact in f16.
    let x_host: Vec<f32> = random(batch * d, 5)
        .into_iter()
        .map(|v| if v > 0.0 { 1.0 } else { 0.0 })
        .collect();
    let x = HalfTensor::from_f32(gpu, &x_host, &[batch, d]).unwrap();
    let paired32 = project_optical::paired_matrix(gpu, &spec(4), n_out, d).unwrap();
    let paired = HalfTensor::from_tensor(gpu, &paired32).unwrap();
    let reference = project_optical(
        &as_f64(&x_host),
        &as_f64(&paired.to_vec(gpu).unwrap()),
        batch,
        d,
        n_out,
    );
    for kernel in [
        Some(OpticalKernel::Tiled(8)),
        Some(OpticalKernel::Tiled(16)),
        None,
    ] {
        let y = poisoned(gpu, &[batch, n_out]);
        gpu.execute(&project_optical::plan_f16(gpu, &x, &paired, &y, kernel).unwrap())
            .unwrap();
        assert_rel_close(
            &format!("f16 {kernel:?}"),
            &y.to_vec(gpu).unwrap(),
            &reference,
            2.0 * tolerance(d),
        );
    }
}

#[test]
fn blocks_split_over_small_bindings_match_the_reference() {
    // 16 KiB bindings: 300 inputs of 16 values, 2 · 200 paired rows and y's 300 × 200 values
    // all need several windows, and y's rows fewer than one tile per block.
    let gpu = gpu_with_binding_limit(16 << 10);
    check_f32(&gpu, 300, 16, 200, Some(OpticalKernel::Tiled(8)));
    check_f32(&gpu, 70, 32, 36, Some(OpticalKernel::Tiled(16)));
}

#[test]
fn the_tensor_core_kernels_match_where_the_adapter_has_them() {
    let gpu = gpu();
    check_coop(gpu, OpticalKernel::Coop, (80, 48, 40), 9);
    check_coop(gpu, OpticalKernel::CoopStaged, (256, 96, 128), 10);
    // Off the staged kernel's 128-tiles: refused with the numbers.
    let e = plan_coop(gpu, OpticalKernel::CoopStaged, (80, 48, 40), 11)
        .expect_err("batch 80 is not whole 128-tiles")
        .to_string();
    assert!(e.contains("80"), "{e}");
    // Small bindings: the staged kernel's blocks stay whole tiles (4 dispatches here).
    let small = gpu_with_binding_limit(64 << 10);
    check_coop(&small, OpticalKernel::CoopStaged, (256, 96, 128), 12);
}

/// Plans the f16 product of `kernel` for (batch, d, n_out) into a poisoned y; returns the
/// inputs, the paired matrix, y and the plan.
fn plan_coop(
    gpu: &Gpu,
    kernel: OpticalKernel,
    (batch, d, n_out): (usize, usize, usize),
    seed: u64,
) -> speckle::Result<(HalfTensor, HalfTensor, Tensor, Vec<speckle::Dispatch>)> {
    let x = HalfTensor::from_f32(gpu, &random(batch * d, seed), &[batch, d]).unwrap();
    let paired32 = project_optical::paired_matrix(gpu, &spec(seed), n_out, d).unwrap();
    let paired = HalfTensor::from_tensor(gpu, &paired32).unwrap();
    let y = poisoned(gpu, &[batch, n_out]);
    let plan = project_optical::plan_f16(gpu, &x, &paired, &y, Some(kernel))?;
    Ok((x, paired, y, plan))
}

/// `kernel` against the f64 reference where the adapter has it; elsewhere, the refusal names
/// the cooperative matrices and the default kernel is another.
fn check_coop(gpu: &Gpu, kernel: OpticalKernel, dims: (usize, usize, usize), seed: u64) {
    let (batch, d, n_out) = dims;
    let planned = plan_coop(gpu, kernel, dims, seed);
    if !project_optical::usable(gpu, kernel, batch, d, n_out, true) {
        let e = planned
            .expect_err("no cooperative matrices here")
            .to_string();
        assert!(e.contains("cooperative matrices"), "{e}");
        assert_ne!(
            project_optical::default_kernel(gpu, batch, d, n_out, true),
            kernel
        );
        return;
    }
    let (x, paired, y, plan) = planned.unwrap();
    gpu.execute(&plan).unwrap();
    let reference = project_optical(
        &as_f64(&x.to_vec(gpu).unwrap()),
        &as_f64(&paired.to_vec(gpu).unwrap()),
        batch,
        d,
        n_out,
    );
    // Tensor cores may round the partial sums of a 16-wide step differently.
    assert_rel_close(
        &kernel.name(),
        &y.to_vec(gpu).unwrap(),
        &reference,
        8.0 * tolerance(d),
    );
}

#[test]
fn the_projection_fuses_and_agrees_with_the_unfused_path_and_the_entries() {
    let gpu = gpu();
    let (batch, d, n_out) = (6, 36, 44);
    let x_host = random(batch * d, 21);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, d]).unwrap();
    for precision in [Precision::F32, Precision::F16] {
        let mut fused = Projection::new(Kind::Optical, n_out, 13);
        fused.precision = precision;
        fused.fit(d).unwrap();
        // By default fused on GPUs only (lavapipe's texture matmuls run the unfused path).
        assert_eq!(fused.uses_fused(gpu), !gpu.is_cpu());
        fused.fused = Fusion::Fused;
        assert!(fused.uses_fused(gpu));
        let mut unfused = fused.clone();
        unfused.fused = Fusion::Unfused;
        assert!(!unfused.uses_fused(gpu));
        let got = fused.transform(gpu, &x).unwrap().to_vec(gpu).unwrap();
        let want = unfused.transform(gpu, &x).unwrap().to_vec(gpu).unwrap();
        assert_rel_close(
            &format!("fused vs unfused {precision:?}"),
            &got,
            &as_f64(&want),
            2.0 * tolerance(d),
        );
        if precision == Precision::F32 {
            // |Σ_j (R + iI)(o, j) x_j|² from the entries computed on the CPU.
            let s = fused.spec().unwrap().dense;
            let mut reference = Vec::new();
            for b in 0..batch {
                for o in 0..n_out {
                    let part = |stream| -> f64 {
                        (0..d)
                            .map(|j| {
                                matrix_entry(&s, stream, o as u32, j as u64)
                                    * f64::from(x_host[b * d + j])
                            })
                            .sum()
                    };
                    reference
                        .push(part(Stream::Matrix).powi(2) + part(Stream::MatrixImaginary).powi(2));
                }
            }
            assert_rel_close("fused vs CPU entries", &got, &reference, 1e-4);
        }
    }
}

#[test]
fn shapes_off_the_vec4_grid_are_refused_and_the_projection_runs_unfused() {
    let gpu = gpu();
    let x = Tensor::zeros(gpu, &[2, 6]).unwrap();
    let paired = Tensor::zeros(gpu, &[16, 6]).unwrap();
    let y = Tensor::zeros(gpu, &[2, 8]).unwrap();
    let e = project_optical::plan(gpu, &x, &paired, &y, None)
        .expect_err("d = 6 is not a multiple of 4")
        .to_string();
    assert!(e.contains("multiples of 4") && e.contains("d = 6"), "{e}");
    let bad_y = Tensor::zeros(gpu, &[2, 4]).unwrap();
    let x8 = Tensor::zeros(gpu, &[2, 8]).unwrap();
    let paired8 = Tensor::zeros(gpu, &[16, 8]).unwrap();
    let e = project_optical::plan(gpu, &x8, &paired8, &bad_y, None)
        .expect_err("y has 4 outputs, the matrix 8")
        .to_string();
    assert!(e.contains("disagree"), "{e}");
    assert!(OpticalKernel::parse("tiled12").is_err());
    assert_eq!(
        OpticalKernel::parse("tiled16").unwrap(),
        OpticalKernel::Tiled(16)
    );
    assert_eq!(OpticalKernel::parse("coop").unwrap().name(), "coop");

    let mut p = Projection::new(Kind::Optical, 8, 2);
    p.fit(6).unwrap();
    assert!(!p.uses_fused(gpu));
    let y = p
        .transform(gpu, &Tensor::filled(gpu, &[2, 6], 1.0).unwrap())
        .unwrap();
    assert!(y
        .to_vec(gpu)
        .unwrap()
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0));
}

/// Asserts a loop-limit refusal with these numbers, named in the message with the remedy.
fn assert_loop_limit(e: Error, iterations: u64, limit: u64) {
    loop_refusal_of(e, iterations, limit, &["unfused"]);
}

#[test]
fn the_fused_kernels_refuse_a_d_past_the_loop_limit_before_anything_runs() {
    // tiled8 over d = 400: 50 slices of 8, each a pass of the slice loop and 8 + 1 of the
    // inner loop, and 2 besides: 502 iterations. Within a limit of 502 it runs (and is
    // right), under 501 it is refused.
    assert_eq!(project_optical::loops(OpticalKernel::Tiled(8), 400), 502);
    assert_eq!(project_optical::loops(OpticalKernel::Tiled(16), 400), 452);
    assert_eq!(project_optical::loops(OpticalKernel::Coop, 400), 1424);
    assert_eq!(project_optical::max_loops(400), 1424);
    let tiled8 = Some(OpticalKernel::Tiled(8));
    check_f32(&gpu_with_loop_limit(502), 3, 400, 8, tiled8);
    let gpu = gpu_with_loop_limit(501);
    let x = Tensor::zeros(&gpu, &[3, 400]).unwrap();
    let paired = Tensor::zeros(&gpu, &[16, 400]).unwrap();
    let y = Tensor::zeros(&gpu, &[3, 8]).unwrap();
    let e = project_optical::plan(&gpu, &x, &paired, &y, tiled8).unwrap_err();
    assert_loop_limit(e, 502, 501);
}

/// The optical projection of `d` inputs to 8 outputs with `fusion`.
fn optical(d: usize, fusion: Fusion) -> Projection {
    let mut p = Projection::new(Kind::Optical, 8, 17);
    p.fused = fusion;
    p.fit(d).unwrap();
    p
}

#[test]
fn forced_fusion_past_the_loop_limit_is_refused_and_auto_runs_unfused() {
    // d = 1,000: the fused kernels loop at most 1,000 + 1,024 = 2,024 times (the tensor
    // cores' bound; tiled8 1,252). Under a limit of 2,000, Fusion::Fused is refused before
    // the matrix is generated, Fusion::Auto runs the unfused path (whose products split d
    // into blocks of 960), and both agree with the unfused path on the test adapter; within
    // 2,024, Fusion::Fused runs fused.
    let d = 1000;
    let x_host = random(3 * d, 31);
    let reference = {
        let gpu = gpu();
        let x = Tensor::from_slice(gpu, &x_host, &[3, d]).unwrap();
        let p = optical(d, Fusion::Unfused);
        p.transform(gpu, &x).unwrap().to_vec(gpu).unwrap()
    };
    let low = gpu_with_loop_limit(2000);
    let x = Tensor::from_slice(&low, &x_host, &[3, d]).unwrap();
    let forced = optical(d, Fusion::Fused);
    assert!(!forced.uses_fused(&low));
    assert_loop_limit(forced.prepare(&low, 3).unwrap_err(), 2024, 2000);
    assert_loop_limit(forced.transform(&low, &x).unwrap_err(), 2024, 2000);
    let auto = optical(d, Fusion::Auto);
    assert!(!auto.uses_fused(&low));
    let got = auto.transform(&low, &x).unwrap().to_vec(&low).unwrap();
    assert_rel_close(
        "auto under 2,000",
        &got,
        &as_f64(&reference),
        2.0 * tolerance(d),
    );

    let enough = gpu_with_loop_limit(2024);
    let x = Tensor::from_slice(&enough, &x_host, &[3, d]).unwrap();
    let forced = optical(d, Fusion::Fused);
    assert!(forced.uses_fused(&enough));
    let got = forced
        .transform(&enough, &x)
        .unwrap()
        .to_vec(&enough)
        .unwrap();
    assert_rel_close(
        "fused within 2,024",
        &got,
        &as_f64(&reference),
        2.0 * tolerance(d),
    );
    let auto = optical(d, Fusion::Auto);
    assert_eq!(auto.uses_fused(&enough), !enough.is_cpu());
}

#[test]
fn a_d_past_lavapipes_loop_limit_is_refused_fused_and_right_unfused() {
    // d = 70,000: tiled8 loops 8,750 · 10 + 2 = 87,502 times, past lavapipe's 65,535 (forced
    // through, its invocations stopped after 52,429 values of d). Where the adapter has a
    // limit that low, forced fusion is refused and Auto runs unfused (its products split d);
    // everywhere, Auto's result matches the CPU entries. Rounding: sums of 70,000 products,
    // squared (tests/common/matmul.rs's bound, doubled).
    let gpu = gpu();
    let d = 70_000;
    let x_host = random(d, 32);
    let x = Tensor::from_slice(gpu, &x_host, &[1, d]).unwrap();
    let limit = gpu.loop_limit().unwrap();
    let forced = optical(d, Fusion::Fused);
    match limit {
        Some(l) if l < project_optical::max_loops(d) => {
            assert_loop_limit(
                forced.transform(gpu, &x).unwrap_err(),
                project_optical::max_loops(d),
                l,
            );
        }
        _ => assert!(forced.uses_fused(gpu)),
    }
    let auto = optical(d, Fusion::Auto);
    let got = auto.transform(gpu, &x).unwrap().to_vec(gpu).unwrap();
    let s = auto.spec().unwrap().dense;
    let reference: Vec<f64> = (0..8)
        .map(|o| {
            let part = |stream| -> f64 {
                (0..d)
                    .map(|j| matrix_entry(&s, stream, o, j as u64) * f64::from(x_host[j]))
                    .sum()
            };
            part(Stream::Matrix).powi(2) + part(Stream::MatrixImaginary).powi(2)
        })
        .collect();
    assert_rel_close("auto, d = 70,000", &got, &reference, 2.0 * tolerance(d));
}
