//! f16-operand matmul (`ops::matmul_f16`) against the f64 product of the same f16 values:
//! every kernel (the texture one where the adapter has it), every layout, awkward aligned
//! shapes, batches, the epilogue, the split path, operands converted on the GPU, exact results
//! on binary data, and the refusal of shapes without whole vec4 rows. Tolerance: tests/common/matmul.rs (the accumulation is f32, as
//! in the f32 kernels; the reference takes the f16 values the GPU holds).

mod common;

use common::matmul::check_f16;
use common::{gpu, gpu_with_binding_limit, gpu_with_loop_limit, random};
use speckle::cpu::matmul::{matmul as reference, Problem};
use speckle::ops::matmul::MatmulKernel;
use speckle::ops::matmul_f16;
use speckle::{Activation, Gpu, HalfTensor, MatmulConfig, MatmulOptions, Tensor};

const VEC4: MatmulConfig = MatmulConfig::GPU;

fn tiled(t: u32) -> MatmulConfig {
    MatmulConfig {
        wg_x: t,
        wg_y: t,
        kernel: MatmulKernel::Tiled,
    }
}

fn check(gpu: &Gpu, a_shape: &[usize], b_shape: &[usize], o: &MatmulOptions<'_>, seed: u64) {
    check_f16(gpu, a_shape, b_shape, o, seed, 1.0);
}

#[test]
fn long_shared_dimensions_are_split_below_the_loop_limit() {
    // k blocks of 768 under a limit of 2,000 loop passes (see tests/matmul.rs).
    let gpu = gpu_with_loop_limit(2000);
    for config in [VEC4, tiled(8)] {
        let o = MatmulOptions {
            config: Some(config),
            ..Default::default()
        };
        check(&gpu, &[12, 3000], &[3000, 8], &o, 71);
        let a = HalfTensor::from_f32(&gpu, &random(12 * 3000, 1), &[12, 3000]).unwrap();
        let b = HalfTensor::from_f32(&gpu, &random(3000 * 8, 2), &[3000, 8]).unwrap();
        let c = Tensor::empty(&gpu, &[12, 8]).unwrap();
        assert_eq!(matmul_f16::plan(&gpu, &a, &b, &c, &o).unwrap().len(), 4);
    }
}

#[test]
fn every_kernel_matches_the_reference_in_every_layout() {
    // The vec4 and tiled kernels everywhere; the texture kernel where the adapter has 8-wide
    // subgroups (lavapipe: the operands widened to f32 as the pack kernel lays them out),
    // else its configuration falls back to the vec4 kernel.
    let gpu = gpu();
    for config in [VEC4, tiled(8), tiled(16), MatmulConfig::CPU] {
        for &(m, n, k) in &[(4, 4, 4), (36, 44, 252), (133, 132, 20)] {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                if trans_a && m % 4 != 0 {
                    continue;
                }
                let a_shape = if trans_a { [k, m] } else { [m, k] };
                let b_shape = if trans_b { [n, k] } else { [k, n] };
                let o = MatmulOptions {
                    trans_a,
                    trans_b,
                    config: Some(config),
                    ..Default::default()
                };
                check(gpu, &a_shape, &b_shape, &o, (m + 7 * n + k) as u64);
            }
        }
        let a = HalfTensor::from_f32(gpu, &random(64, 1), &[8, 8]).unwrap();
        let o = MatmulOptions {
            config: Some(config),
            ..Default::default()
        };
        let want = match config.kernel {
            MatmulKernel::Texture if !common::eight_wide(gpu) => MatmulKernel::Vec4,
            kernel => kernel,
        };
        assert_eq!(matmul_f16::kernel_for(gpu, &a, &a, &o).unwrap(), want);
    }
}

#[test]
fn batches_the_epilogue_and_the_split_path_match_the_reference() {
    let gpu = gpu();
    check(gpu, &[3, 20, 36], &[36, 12], &MatmulOptions::default(), 71);
    let epilogue = MatmulOptions {
        alpha: -1.5,
        activation: Activation::Gelu,
        config: Some(tiled(8)),
        ..Default::default()
    };
    check(gpu, &[2, 12, 40], &[2, 40, 16], &epilogue, 72);
    let texture_epilogue = MatmulOptions {
        alpha: 0.5,
        activation: Activation::Relu,
        config: Some(MatmulConfig::CPU),
        ..Default::default()
    };
    check(gpu, &[3, 20, 36], &[36, 12], &texture_epilogue, 75);
    let small = gpu_with_binding_limit(4096);
    for config in [VEC4, tiled(8)] {
        let o = MatmulOptions {
            config: Some(config),
            ..Default::default()
        };
        check(&small, &[40, 300], &[300, 36], &o, 73);
        let t = MatmulOptions {
            trans_a: true,
            trans_b: true,
            ..o
        };
        check(&small, &[300, 40], &[36, 300], &t, 74);
    }
}

#[test]
fn binary_operands_give_exact_integer_products() {
    // 0/1 inputs (an optical processing unit's) are exact in f16; the sums are integers below
    // 2^24, exact in f32: the GPU must match the integer product exactly.
    let gpu = gpu();
    let (m, n, k) = (20, 24, 516);
    let bits = |len: usize, seed: u64| -> Vec<f32> {
        random(len, seed)
            .into_iter()
            .map(|v| f32::from(u8::from(v > 0.0)))
            .collect()
    };
    let (a_host, b_host) = (bits(m * k, 75), bits(k * n, 76));
    // Converted on the GPU this time: 0 and 1 are exact whatever the rounding.
    let a32 = Tensor::from_slice(gpu, &a_host, &[m, k]).unwrap();
    let b32 = Tensor::from_slice(gpu, &b_host, &[k, n]).unwrap();
    let a = HalfTensor::from_tensor(gpu, &a32).unwrap();
    let b = HalfTensor::from_tensor(gpu, &b32).unwrap();
    for config in [VEC4, tiled(16)] {
        let c = matmul_f16::run(
            gpu,
            &a,
            &b,
            &MatmulOptions {
                config: Some(config),
                ..Default::default()
            },
        )
        .unwrap();
        let want = reference(&Problem::new(&a_host, &[m, k], &b_host, &[k, n])).unwrap();
        let got = c.to_vec(gpu).unwrap();
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(f64::from(g), w, "{config}: entry {i}");
        }
    }
}

#[test]
fn shapes_without_whole_vec4_rows_are_refused() {
    let gpu = gpu();
    let a = HalfTensor::from_f32(gpu, &random(7 * 6, 1), &[7, 6]).unwrap();
    let b = HalfTensor::from_f32(gpu, &random(6 * 8, 2), &[6, 8]).unwrap();
    let c = Tensor::zeros(gpu, &[7, 8]).unwrap();
    let e = matmul_f16::plan(gpu, &a, &b, &c, &MatmulOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("whole vec4s") && e.contains("k = 6"), "{e}");
    let b = HalfTensor::from_f32(gpu, &random(5 * 8, 2), &[5, 8]).unwrap();
    let e = matmul_f16::plan(gpu, &a, &b, &c, &MatmulOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("inner dimensions"), "{e}");
}
