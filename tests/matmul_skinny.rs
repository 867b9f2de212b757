//! The skinny matmul (`shaders/matmul_skinny.wgsl`) against the f64 reference: every row count
//! from 1 to 8, both layouts of B, awkward n, k split into slices (for the adapter's
//! parallelism and for a low loop limit), the whole epilogue with and without the slices'
//! combining pass, batches, lanes along k (B transposed), when it is the built-in choice, and
//! its configuration strings.
//!
//! Tolerance: as tests/matmul.rs, 1e-6·sqrt(k) of the reference's norm (a sum that drops or
//! repeats one term, or one slice, is off by far more).

mod common;

use common::matmul::{check, tolerance};
use common::{assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, random};
use speckle::cpu::matmul::{matmul as reference, Problem};
use speckle::ops::matmul::{self, MatmulDims, MatmulKernel};
use speckle::ops::matmul_skinny;
use speckle::{Activation, Gpu, MatmulConfig, MatmulOptions, Tensor};

/// The skinny kernel with 64 threads per workgroup, imposed.
const SKINNY: MatmulConfig = matmul_skinny::CONFIG;

/// The skinny kernel with `groups` groups of 4 columns per workgroup, `lanes` lanes each.
fn lanes(groups: u32, lanes: u32) -> MatmulConfig {
    MatmulConfig {
        wg_x: groups,
        wg_y: lanes,
        kernel: MatmulKernel::Skinny,
    }
}

/// Operand shapes of an m × n × k product with B transposed or not.
fn shapes(m: usize, n: usize, k: usize, trans_b: bool) -> ([usize; 2], [usize; 2]) {
    ([m, k], if trans_b { [n, k] } else { [k, n] })
}

/// Asserts that `o` runs the skinny kernel for these shapes, then checks the product.
fn check_skinny(gpu: &Gpu, a_shape: &[usize], b_shape: &[usize], o: &MatmulOptions<'_>, seed: u64) {
    let a = Tensor::zeros(gpu, a_shape).unwrap();
    let b = Tensor::zeros(gpu, b_shape).unwrap();
    let d = MatmulDims::new(a_shape, b_shape, o.trans_a, o.trans_b).unwrap();
    let c = Tensor::zeros(gpu, &d.output_shape()).unwrap();
    assert_eq!(
        matmul::kernel_for(gpu, &a, &b, &c, o).unwrap(),
        MatmulKernel::Skinny,
        "A{a_shape:?} B{b_shape:?} trans_b={}",
        o.trans_b
    );
    check(gpu, a_shape, b_shape, o, seed);
}

#[test]
fn every_row_count_and_both_layouts_match_the_reference() {
    let gpu = gpu();
    for m in 1..=8 {
        for trans_b in [true, false] {
            // n: below one vec4, odd, several workgroups' columns (NN needs whole vec4s).
            let ns: &[usize] = if trans_b {
                &[1, 3, 5, 33, 250, 300]
            } else {
                &[4, 36, 300]
            };
            for (i, &n) in ns.iter().enumerate() {
                for k in [4, 100] {
                    let (a_shape, b_shape) = shapes(m, n, k, trans_b);
                    let o = MatmulOptions {
                        trans_b,
                        config: Some(SKINNY),
                        ..Default::default()
                    };
                    check_skinny(gpu, &a_shape, &b_shape, &o, (m * 100 + i * 10 + k) as u64);
                }
            }
        }
    }
}

#[test]
fn workgroup_sizes_match_the_reference() {
    let gpu = gpu();
    for threads in [8, 32, 256] {
        let config = MatmulConfig {
            wg_x: threads,
            ..SKINNY
        };
        for trans_b in [true, false] {
            let (a_shape, b_shape) = shapes(5, 1028, 68, trans_b);
            let o = MatmulOptions {
                trans_b,
                config: Some(config),
                ..Default::default()
            };
            check_skinny(gpu, &a_shape, &b_shape, &o, u64::from(threads));
        }
    }
}

/// C = relu(α·A·op(B) + β·C0 + bias) by the skinny kernel on `gpu` with `config`, against
/// the reference; returns the number of dispatches (2 where k was split into slices).
fn check_epilogue(
    gpu: &Gpu,
    config: MatmulConfig,
    (m, n, k): (usize, usize, usize),
    trans_b: bool,
    seed: u64,
) -> usize {
    let (a_shape, b_shape) = shapes(m, n, k, trans_b);
    let a_host = random(m * k, seed);
    let b_host = random(n * k, seed + 1);
    let c_host = random(m * n, seed + 2);
    let bias_host = random(n, seed + 3);
    let a = Tensor::from_slice(gpu, &a_host, &a_shape).unwrap();
    let b = Tensor::from_slice(gpu, &b_host, &b_shape).unwrap();
    let c = Tensor::from_slice(gpu, &c_host, &[m, n]).unwrap();
    let bias = Tensor::from_slice(gpu, &bias_host, &[n]).unwrap();
    let o = MatmulOptions {
        trans_b,
        alpha: -1.5,
        beta: 0.5,
        bias: Some(&bias),
        activation: Activation::LeakyRelu { slope: 0.1 },
        config: Some(config),
        ..Default::default()
    };
    assert_eq!(
        matmul::kernel_for(gpu, &a, &b, &c, &o).unwrap(),
        MatmulKernel::Skinny
    );
    let plan = matmul::plan(gpu, &a, &b, &c, &o).unwrap();
    gpu.execute(&plan).unwrap();
    let want = reference(&Problem {
        trans_b,
        alpha: -1.5,
        beta: 0.5,
        c: Some(&c_host),
        bias: Some(&bias_host),
        activation: Activation::LeakyRelu { slope: 0.1 },
        ..Problem::new(&a_host, &a_shape, &b_host, &b_shape)
    })
    .unwrap();
    assert_rel_close(
        &format!(
            "skinny {config} epilogue {m}x{n}x{k} trans_b={trans_b}, {} dispatches",
            plan.len()
        ),
        &c.to_vec(gpu).unwrap(),
        &want,
        tolerance(k),
    );
    plan.len()
}

#[test]
fn the_epilogue_runs_once_with_and_without_slices() {
    let gpu = gpu();
    for trans_b in [true, false] {
        // Many columns: one slice, the epilogue in the product's own pass.
        assert_eq!(check_epilogue(gpu, SKINNY, (3, 2048, 64), trans_b, 1), 1);
        // Few columns and a long k: slices, then the combining pass finishes C.
        assert_eq!(check_epilogue(gpu, SKINNY, (7, 12, 8192), trans_b, 2), 2);
    }
}

#[test]
fn a_low_loop_limit_splits_k_into_shorter_slices() {
    // 3000 loop passes leave room for slices of 1,536 values of k: 65,536 needs 43 of them,
    // and each must still add up exactly once.
    let gpu = gpu_with_loop_limit(3000);
    for trans_b in [true, false] {
        let slices = check_epilogue(&gpu, SKINNY, (2, 256, 65_536), trans_b, 3);
        assert_eq!(slices, 2, "the loop limit must split k");
    }
    let slices = check_epilogue(&gpu, lanes(8, 8), (2, 256, 65_536), true, 4);
    assert_eq!(slices, 2, "the loop limit must split k with lanes too");
}

#[test]
fn lanes_along_k_match_the_reference() {
    let gpu = gpu();
    // 5 lanes: not a power of two; with k = 4 and 8 lanes, all lanes but the first add nothing.
    for (groups, lanes_per_group) in [(16, 4), (8, 8), (4, 16), (3, 5)] {
        let config = lanes(groups, lanes_per_group);
        for m in [1, 3, 8] {
            for (i, n) in [1, 5, 33, 300].into_iter().enumerate() {
                for k in [4, 100, 260] {
                    let (a_shape, b_shape) = shapes(m, n, k, true);
                    let o = MatmulOptions {
                        trans_b: true,
                        config: Some(config),
                        ..Default::default()
                    };
                    let seed = u64::from(groups * lanes_per_group) * 1000 + (m * 10 + i) as u64;
                    check_skinny(gpu, &a_shape, &b_shape, &o, seed + k as u64);
                }
            }
        }
    }
    // The whole epilogue, in the product's own pass and after the slices' combining pass.
    for config in [lanes(8, 8), lanes(3, 5)] {
        assert_eq!(check_epilogue(gpu, config, (5, 700, 64), true, 5), 1);
        assert_eq!(check_epilogue(gpu, config, (8, 12, 8192), true, 6), 2);
    }
    // Batches, and a B shared by them.
    let o = MatmulOptions {
        trans_b: true,
        config: Some(lanes(4, 16)),
        ..Default::default()
    };
    check_skinny(gpu, &[3, 6, 68], &[3, 40, 68], &o, 24);
    check_skinny(gpu, &[3, 6, 68], &[40, 68], &o, 25);
}

#[test]
fn batches_and_shared_operands_match_the_reference() {
    let gpu = gpu();
    for trans_b in [true, false] {
        let b_shape = if trans_b { [3, 40, 68] } else { [3, 68, 40] };
        let shared_b = if trans_b { [40, 68] } else { [68, 40] };
        let o = MatmulOptions {
            trans_b,
            config: Some(SKINNY),
            ..Default::default()
        };
        check_skinny(gpu, &[3, 6, 68], &b_shape, &o, 21);
        check_skinny(gpu, &[3, 6, 68], &shared_b, &o, 22);
        check_skinny(gpu, &[6, 68], &b_shape, &o, 23);
    }
}

#[test]
fn the_built_in_choice_and_its_fallbacks() {
    let gpu = gpu();
    let kernel = |m: usize, n: usize, k: usize, trans_b: bool, config: Option<MatmulConfig>| {
        let (a_shape, b_shape) = shapes(m, n, k, trans_b);
        let a = Tensor::zeros(gpu, &a_shape).unwrap();
        let b = Tensor::zeros(gpu, &b_shape).unwrap();
        let c = Tensor::zeros(gpu, &[m, n]).unwrap();
        let o = MatmulOptions {
            trans_b,
            config,
            ..Default::default()
        };
        matmul::kernel_for(gpu, &a, &b, &c, &o).unwrap()
    };
    // Up to 8 rows with B transposed: skinny on every adapter, not from 9 rows on.
    assert_eq!(kernel(8, 4096, 1024, true, None), MatmulKernel::Skinny);
    assert_ne!(kernel(9, 4096, 1024, true, None), MatmulKernel::Skinny);
    // B untransposed: skinny on GPUs only (on CPUs the walk down B's columns is slower).
    assert_eq!(
        kernel(3, 1024, 4096, false, None) == MatmulKernel::Skinny,
        !gpu.is_cpu()
    );
    // k not a multiple of 4: an imposed skinny configuration runs another kernel, correctly.
    assert_ne!(kernel(3, 64, 33, true, Some(SKINNY)), MatmulKernel::Skinny);
    let o = MatmulOptions {
        trans_b: true,
        config: Some(SKINNY),
        ..Default::default()
    };
    check(gpu, &[3, 33], &[64, 33], &o, 31);
    // B larger than one binding: the adapter's own configuration runs it, in blocks.
    let small = gpu_with_binding_limit(4096);
    let (a_shape, b_shape) = shapes(3, 300, 100, true);
    let plain = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    let (a, b) = (
        Tensor::zeros(&small, &a_shape).unwrap(),
        Tensor::zeros(&small, &b_shape).unwrap(),
    );
    let c = Tensor::zeros(&small, &[3, 300]).unwrap();
    assert_ne!(
        matmul::kernel_for(&small, &a, &b, &c, &plain).unwrap(),
        MatmulKernel::Skinny
    );
    check(&small, &a_shape, &b_shape, &plain, 33);
    // Lanes along k with B untransposed: the adapter's own configuration, correctly.
    assert_ne!(
        kernel(3, 64, 32, false, Some(lanes(8, 8))),
        MatmulKernel::Skinny
    );
    let nn = MatmulOptions {
        config: Some(lanes(8, 8)),
        ..Default::default()
    };
    check(gpu, &[3, 32], &[32, 64], &nn, 34);
    // Lanes' sums over the adapter's workgroup memory (ROWS × (threads + 1) vec4s): the
    // largest workgroup the adapter allows, with all 8 rows, gives way; fewer rows may fit.
    let limits = gpu.limits();
    let threads = limits.max_compute_invocations_per_workgroup;
    let memory = limits.max_compute_workgroup_storage_size as usize;
    let big = lanes(threads / 8, 8);
    assert!(
        matmul_skinny::workgroup_bytes(&big, 8) > memory,
        "{big} with 8 rows must exceed {memory} bytes for this test"
    );
    assert_ne!(kernel(8, 64, 32, true, Some(big)), MatmulKernel::Skinny);
    check(
        gpu,
        &[8, 32],
        &[64, 32],
        &MatmulOptions {
            trans_b: true,
            config: Some(big),
            ..Default::default()
        },
        35,
    );
    let rows = (1..=8)
        .rev()
        .find(|&m| matmul_skinny::workgroup_bytes(&big, m) <= memory);
    if let Some(m) = rows {
        assert_eq!(kernel(m, 64, 32, true, Some(big)), MatmulKernel::Skinny);
    }
    // A transposed is not the skinny kernel's either.
    let t = MatmulOptions {
        trans_a: true,
        config: Some(SKINNY),
        ..Default::default()
    };
    check(gpu, &[36, 3], &[36, 64], &t, 32);
}

#[test]
fn configuration_strings_name_the_skinny_kernel() {
    let c: MatmulConfig = "128x1-skinny".parse().unwrap();
    assert_eq!(
        c,
        MatmulConfig {
            wg_x: 128,
            wg_y: 1,
            kernel: MatmulKernel::Skinny
        }
    );
    assert_eq!(c.to_string(), "128x1-skinny");
    let lanes_config: MatmulConfig = "8x8-skinny".parse().unwrap();
    assert_eq!(lanes_config, lanes(8, 8));
    assert!(lanes_config.check(gpu()).is_ok());
    // The workgroup is one row of groups × lanes threads, within the adapter's limits.
    let threads = gpu().limits().max_compute_invocations_per_workgroup;
    let e = lanes(threads, 2).check(gpu()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{}x2", threads)) && e.contains("threads"),
        "{e}"
    );
}
