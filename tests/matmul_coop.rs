//! The tensor-core matmul (`shaders/matmul_coop.wgsl`, cooperative matrices, f16 operands,
//! f32 accumulators).
//!
//! Without a GPU: naga turns the kernel into SPIR-V for every layout with the cooperative-
//! matrix capability (the naga 30 pitfall around coopStoreT would fail this). On an adapter
//! with a 16 × 16 × 16 f16 → f32 configuration (NVIDIA's, not lavapipe's): products in
//! multiples of 16 that fill no 64-tile, every layout, batches, k split over bindings, against
//! the f64 product of the f16 values. Elsewhere: the f16 path must not choose it and runs the
//! other kernels correctly.
//!
//! Tolerance: tests/common/matmul.rs times 4. The products of f16 values are exact in f32;
//! tensor cores accumulate in f32 but may round partial sums of a 16-wide step differently
//! from an FMA chain, which the margin covers; a wrong tile, stride or layout is off by O(1).

mod common;

use common::coop::{check_split_in_every_layout, spirv_in_every_layout, stored_shapes, LAYOUTS};
use common::matmul::check_f16;
use common::{gpu, gpu_with_binding_limit, random};
use speckle::ops::matmul::MatmulKernel;
use speckle::ops::{matmul_coop, matmul_f16};
use speckle::shaders;
use speckle::{Activation, Gpu, HalfTensor, MatmulOptions};

#[test]
fn the_kernel_compiles_to_spirv_in_every_layout() {
    spirv_in_every_layout(&shaders::MATMUL_COOP);
}

#[test]
fn the_paired_epilogue_compiles_to_spirv_in_every_layout() {
    // The fused optical projection's variant: stores to workgroup memory, then a barrier.
    spirv_in_every_layout(&shaders::MATMUL_COOP_PAIRED);
}

/// A·B with f16 operands on `gpu` (the kernel its options choose) against the reference,
/// with the margin of the module docs.
fn check(gpu: &Gpu, a_shape: &[usize], b_shape: &[usize], o: &MatmulOptions<'_>, seed: u64) {
    check_f16(gpu, a_shape, b_shape, o, seed, 4.0);
}

#[test]
fn products_match_the_reference_where_the_adapter_has_cooperative_matrices() {
    let gpu = gpu();
    let a = HalfTensor::from_f32(gpu, &random(256, 1), &[16, 16]).unwrap();
    let plain = MatmulOptions::default();
    if matmul_coop::subgroup_size(gpu).is_none() {
        // lavapipe: the f16 path must leave the tensor-core kernel alone and still be right.
        eprintln!(
            "note: adapter {:?} has no cooperative matrices; checking the fallback only",
            gpu.adapter_info().name
        );
        assert_ne!(
            matmul_f16::kernel_for(gpu, &a, &a, &plain).unwrap(),
            MatmulKernel::Coop
        );
        check(gpu, &[48, 32], &[32, 80], &plain, 81);
        return;
    }
    assert_eq!(
        matmul_f16::kernel_for(gpu, &a, &a, &plain).unwrap(),
        MatmulKernel::Coop
    );
    // One tile; tiles that fill no 64-tile of C; a longer k.
    for &(m, n, k) in &[(16, 16, 16), (80, 48, 32), (144, 208, 96), (64, 64, 1024)] {
        for (trans_a, trans_b) in LAYOUTS {
            let (a_shape, b_shape) = stored_shapes((m, n, k), trans_a, trans_b);
            let o = MatmulOptions {
                trans_a,
                trans_b,
                ..Default::default()
            };
            check(gpu, &a_shape, &b_shape, &o, (m + n + k) as u64);
        }
    }
    // Batches, one operand shared.
    check(gpu, &[3, 32, 48], &[48, 16], &plain, 82);
    check(
        gpu,
        &[2, 32, 48],
        &[2, 16, 48],
        &MatmulOptions {
            trans_b: true,
            ..plain
        },
        83,
    );
    // An epilogue is not the coop kernel's: the tiled or vec4 kernel runs it, correctly.
    let epilogue = MatmulOptions {
        activation: Activation::Relu,
        alpha: 0.5,
        ..plain
    };
    assert_ne!(
        matmul_f16::kernel_for(gpu, &a, &a, &epilogue).unwrap(),
        MatmulKernel::Coop
    );
    check(gpu, &[32, 48], &[48, 16], &epilogue, 84);
}

#[test]
fn split_products_accumulate_over_k_blocks() {
    // 16 KiB bindings: k = 2048 f16 values of one row take 4 KiB, so A's windows split k and
    // the later blocks start from C (FLAG_READ_C).
    let gpu = gpu_with_binding_limit(16 << 10);
    if matmul_coop::subgroup_size(&gpu).is_none() {
        eprintln!("note: no cooperative matrices on this adapter; skipping the split check");
        check(&gpu, &[32, 256], &[256, 16], &MatmulOptions::default(), 85);
        return;
    }
    let options = |trans_a, trans_b| MatmulOptions {
        trans_a,
        trans_b,
        ..Default::default()
    };
    check_split_in_every_layout(&gpu, (32, 48, 2048), options, 86);
}
