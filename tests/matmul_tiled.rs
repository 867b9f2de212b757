//! The workgroup-memory matmul (`shaders/matmul_tiled.wgsl`) against the f64 reference: both
//! tile sizes, every layout, shapes that fill no tile and k not a multiple of the slice (the
//! zeroed tail), batches with a shared operand, the epilogue, the chunked path, k blocks
//! under a loop limit, the choice of kernel, and configurations the kernel refuses.
//! Tolerance: tests/common/matmul.rs.

mod common;

use common::matmul::{check, check_chunked_epilogue};
use common::{gpu, gpu_with_binding_limit, gpu_with_loop_limit};
use speckle::ops::matmul::{self, MatmulKernel};
use speckle::{MatmulConfig, MatmulOptions, Tensor};

fn tiled(t: u32) -> MatmulConfig {
    MatmulConfig {
        wg_x: t,
        wg_y: t,
        kernel: MatmulKernel::Tiled,
    }
}

fn options(t: u32, trans_a: bool, trans_b: bool) -> MatmulOptions<'static> {
    MatmulOptions {
        trans_a,
        trans_b,
        config: Some(tiled(t)),
        ..Default::default()
    }
}

#[test]
fn every_layout_and_tile_size_matches_the_reference() {
    let gpu = gpu();
    // (m, n, k): one vec4 each; partial tiles in m and n; k = 36 leaves a slice of 4 (T = 16)
    // or 4 (T = 8) zeroed values; 136 x 132 spans two 128-tiles with remainders.
    for t in [8, 16] {
        for &(m, n, k) in &[(4, 4, 4), (36, 44, 36), (136, 132, 100), (12, 260, 20)] {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_shape = if trans_a { [k, m] } else { [m, k] };
                let b_shape = if trans_b { [n, k] } else { [k, n] };
                check(
                    gpu,
                    &a_shape,
                    &b_shape,
                    &options(t, trans_a, trans_b),
                    (m * n + k) as u64,
                );
            }
        }
    }
    // With A transposed and B not, k needs no alignment: the tail slice is zeroed per value.
    check(gpu, &[37, 8], &[37, 12], &options(16, true, false), 61);
    // Odd m with A not transposed: rows are clamped one by one.
    check(gpu, &[7, 8], &[8, 12], &options(8, false, false), 62);
}

#[test]
fn batches_with_a_shared_operand_match_the_reference() {
    let gpu = gpu();
    check(gpu, &[3, 20, 36], &[36, 12], &options(8, false, false), 63);
    check(gpu, &[20, 36], &[3, 36, 12], &options(16, false, false), 64);
    check(gpu, &[2, 36, 20], &[2, 12, 36], &options(8, true, true), 65);
}

#[test]
fn the_epilogue_and_the_chunked_path_match_the_reference() {
    // 4 KiB bindings split the operands into many windows; k blocks accumulate before the
    // epilogue (alpha, beta, bias, relu) runs once.
    let gpu = gpu_with_binding_limit(4096);
    check_chunked_epilogue(&gpu, 36, 300, Some(tiled(8)), MatmulKernel::Tiled);
    // Under a loop limit of 2,000 passes the k blocks are 768 long (tests/matmul.rs); the last
    // of k = 3,000 (696) ends in a partial slice, which is zeroed.
    let gpu = gpu_with_loop_limit(2000);
    check_chunked_epilogue(&gpu, 36, 3000, Some(tiled(8)), MatmulKernel::Tiled);
    check(
        &gpu,
        &[20, 3000],
        &[3000, 36],
        &options(16, false, false),
        66,
    );
    check(&gpu, &[3000, 20], &[36, 3000], &options(16, true, true), 67);
}

#[test]
fn a_shared_dimension_past_lavapipes_loop_limit_is_correct() {
    // T = 8 makes 10 loop passes per 8 values of k (its slice loop around T + 1 passes of the
    // step loop): unsplit, k = 64,000 summed only 52,429 terms on lavapipe.
    let gpu = gpu();
    check(
        gpu,
        &[8, 64_000],
        &[64_000, 8],
        &options(8, false, false),
        68,
    );
}

#[test]
fn unaligned_operands_fall_back_and_bad_tiles_are_refused() {
    let gpu = gpu();
    // n = 11 is not a whole number of vec4s: the scalar kernel runs, correctly.
    let a = Tensor::zeros(gpu, &[7, 8]).unwrap();
    let b = Tensor::zeros(gpu, &[8, 11]).unwrap();
    let c = Tensor::zeros(gpu, &[7, 11]).unwrap();
    let o = options(16, false, false);
    assert_eq!(
        matmul::kernel_for(gpu, &a, &b, &c, &o).unwrap(),
        MatmulKernel::Scalar
    );
    check(gpu, &[7, 8], &[8, 11], &o, 70);
    for (bad, expected) in [
        ("16x8-tiled", "square"),
        ("4x4-tiled", "square"),
        ("32x32-tiled", "square"),
    ] {
        let config: MatmulConfig = bad.parse().unwrap();
        let e = config.check(gpu).unwrap_err().to_string();
        assert!(e.contains(expected), "{bad}: {e}");
    }
    assert_eq!("16x16-tiled".parse::<MatmulConfig>().unwrap(), tiled(16));
    assert_eq!(tiled(16).to_string(), "16x16-tiled");
}
