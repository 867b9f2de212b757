//! The staged tensor-core matmul (`shaders/matmul_coop_staged.wgsl`: four subgroups per
//! 128 × 128 tile of C, operands through double-buffered workgroup memory), the f16 path's
//! configuration `2x2-coop`.
//!
//! Without a GPU: naga validates the kernel (cooperative operations only in uniform control
//! flow) and turns it into SPIR-V in every layout; the configuration names why it cannot run
//! and the f16 path runs another kernel correctly. On an adapter with 16 × 16 × 16 f16 → f32
//! cooperative matrices and subgroups (NVIDIA's, not lavapipe's): products over several
//! 128-tiles and slabs in every layout, batches with a shared operand, k split over bindings
//! (the later blocks read C), and shapes off the 128-grid, which run `matmul_coop`, against
//! the f64 product of the f16 values.
//!
//! Tolerance: as tests/matmul_coop.rs (tests/common/matmul.rs times 4): the products of f16
//! values are exact in f32, tensor cores may round the partial sums of a 16-wide step
//! differently from an FMA chain; a wrong slab, buffer or subgroup quarter is off by O(1).

mod common;

use common::coop::{check_split_in_every_layout, spirv_in_every_layout, stored_shapes, LAYOUTS};
use common::matmul::check_f16;
use common::{gpu, gpu_with_binding_limit, random};
use speckle::ops::matmul::MatmulDims;
use speckle::ops::{matmul_coop, matmul_coop_staged, matmul_f16};
use speckle::shaders;
use speckle::{Gpu, HalfTensor, MatmulOptions};

#[test]
fn the_kernel_compiles_to_spirv_in_every_layout() {
    spirv_in_every_layout(&shaders::MATMUL_COOP_STAGED);
}

#[test]
fn the_paired_epilogue_compiles_to_spirv_in_every_layout() {
    // The fused optical projection's variant: barriers inside the 16 stores.
    spirv_in_every_layout(&shaders::MATMUL_COOP_STAGED_PAIRED);
}

#[test]
fn its_workgroup_memory_is_what_the_shaders_declare() {
    // The host checks these sizes against the adapter's limit: they must be the shaders'.
    let declared = |kernel: &shaders::Kernel| -> u32 {
        let module = shaders::validate(kernel).unwrap();
        module
            .global_variables
            .iter()
            .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
            .map(|(_, v)| module.types[v.ty].inner.size(module.to_ctx()))
            .sum()
    };
    assert_eq!(
        declared(&shaders::MATMUL_COOP_STAGED),
        matmul_coop_staged::WORKGROUP_BYTES
    );
    assert_eq!(
        declared(&shaders::MATMUL_COOP_STAGED_PAIRED),
        matmul_coop_staged::WORKGROUP_BYTES_PAIRED
    );
}

fn staged(trans_a: bool, trans_b: bool) -> MatmulOptions<'static> {
    MatmulOptions {
        trans_a,
        trans_b,
        config: Some(matmul_coop_staged::LAYOUT),
        ..Default::default()
    }
}

/// Whether the f16 path runs the staged kernel for these shapes and options.
fn runs_staged(gpu: &Gpu, a_shape: &[usize], b_shape: &[usize], o: &MatmulOptions<'_>) -> bool {
    let a = HalfTensor::from_f32(gpu, &random(a_shape.iter().product(), 1), a_shape).unwrap();
    let b = HalfTensor::from_f32(gpu, &random(b_shape.iter().product(), 2), b_shape).unwrap();
    matmul_f16::runs_staged(gpu, &a, &b, o).unwrap()
}

#[test]
fn products_match_the_reference_where_the_adapter_has_cooperative_matrices() {
    let gpu = gpu();
    let d = MatmulDims::new(&[128, 32], &[32, 128], false, false).unwrap();
    if let Some(why) = matmul_coop_staged::ineligibility(gpu, &d, &staged(false, false)) {
        // lavapipe: the reason is named, and the configuration runs another kernel, correctly.
        eprintln!(
            "note: adapter {:?}: {why}; checking the fallback only",
            gpu.adapter_info().name
        );
        if matmul_coop::subgroup_size(gpu).is_none() {
            assert!(why.contains("cooperative matrices"), "{why}");
        }
        let o = staged(false, false);
        assert!(!runs_staged(gpu, &[128, 32], &[32, 128], &o));
        check_f16(gpu, &[128, 32], &[32, 128], &o, 91, 4.0);
        return;
    }
    // One workgroup and one slab; several tiles and slabs; a long k.
    for &(m, n, k) in &[(128, 128, 32), (256, 384, 96), (128, 256, 1024)] {
        for (trans_a, trans_b) in LAYOUTS {
            let o = staged(trans_a, trans_b);
            let (a_shape, b_shape) = stored_shapes((m, n, k), trans_a, trans_b);
            assert!(runs_staged(gpu, &a_shape, &b_shape, &o), "{m}x{n}x{k}");
            check_f16(gpu, &a_shape, &b_shape, &o, (m + n + k) as u64, 4.0);
        }
    }
    // Batches, B shared by every batch of A; both operands batched with B transposed.
    let o = staged(false, false);
    assert!(runs_staged(gpu, &[3, 128, 64], &[64, 128], &o));
    check_f16(gpu, &[3, 128, 64], &[64, 128], &o, 92, 4.0);
    check_f16(
        gpu,
        &[2, 256, 64],
        &[2, 128, 64],
        &staged(false, true),
        93,
        4.0,
    );
    // Off the 128-grid or the 32-slabs: matmul_coop runs them.
    for (a_shape, b_shape) in [([144, 32], [32, 128]), ([128, 48], [48, 128])] {
        assert!(!runs_staged(gpu, &a_shape, &b_shape, &o));
        check_f16(gpu, &a_shape, &b_shape, &o, 94, 4.0);
    }
}

#[test]
fn split_products_accumulate_over_k_blocks() {
    // 64 KiB bindings: a 128-row block of A with k = 1024 halves takes 256 KiB, so A's windows
    // split k (in blocks of whole 128s) and the later blocks start from C (FLAG_READ_C).
    let gpu = gpu_with_binding_limit(64 << 10);
    let o = staged(false, false);
    let (m, n, k) = (128, 128, 1024);
    if !runs_staged(&gpu, &[m, k], &[k, n], &o) {
        eprintln!("note: the staged kernel does not run on this adapter; checking the fallback");
        check_f16(&gpu, &[m, k], &[k, n], &o, 97, 4.0);
        return;
    }
    check_split_in_every_layout(&gpu, (m, n, k), staged, 95);
}
