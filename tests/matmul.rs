//! matmul against the f64 reference: awkward shapes, transposes, batches, the epilogue, both
//! workgroup configurations, the chunked path, and bad inputs.
//!
//! Tolerance: a length-k f32 dot product of values in [-1, 1) has a relative error of about
//! 2⁻²⁴·sqrt(k) (random rounding errors), so ‖C − C_ref‖/‖C_ref‖ <= 1e-6·sqrt(k) leaves a margin
//! of ~15. A kernel that drops or repeats one term of k is off by ~1/sqrt(k) and fails.

mod common;

use common::matmul::{check, check_chunked_epilogue, tolerance};
use common::{assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, random};
use speckle::cpu::matmul::{matmul as reference, Problem};
use speckle::ops::matmul::{self, MatmulDims, MatmulKernel};
use speckle::ops::matmul_texture;
use speckle::{Activation, Error, MatmulConfig, MatmulOptions, Tensor};

/// The vec4 kernel preferred, with the GPU workgroup.
const VEC4: MatmulConfig = MatmulConfig::GPU;
/// The scalar kernel, with the GPU workgroup.
const SCALAR: MatmulConfig = MatmulConfig {
    kernel: MatmulKernel::Scalar,
    ..MatmulConfig::GPU
};
/// The texture kernel preferred (it runs only where the adapter has 8-wide subgroups).
const TEXTURE: MatmulConfig = MatmulConfig::CPU;

#[test]
fn awkward_shapes_match_the_reference() {
    let gpu = gpu();
    for &(m, n, k) in &[
        (1, 1, 1),
        (7, 7, 7),
        (1, 33, 250),
        (33, 1, 7),
        (31, 33, 1),
        (127, 250, 33),
        (134, 242, 250),
    ] {
        check(
            gpu,
            &[m, k],
            &[k, n],
            &MatmulOptions::default(),
            (m * 1000 + n * 10 + k) as u64,
        );
    }
}

#[test]
fn transposed_operands_match_the_reference() {
    let gpu = gpu();
    let (m, n, k) = (33, 31, 250);
    for (trans_a, trans_b) in [(false, true), (true, false), (true, true)] {
        let a_shape = if trans_a { [k, m] } else { [m, k] };
        let b_shape = if trans_b { [n, k] } else { [k, n] };
        let options = MatmulOptions {
            trans_a,
            trans_b,
            ..Default::default()
        };
        check(gpu, &a_shape, &b_shape, &options, 7);
    }
}

#[test]
fn batches_and_broadcast_operands_match_the_reference() {
    let gpu = gpu();
    check(
        gpu,
        &[3, 7, 33],
        &[3, 33, 31],
        &MatmulOptions::default(),
        11,
    );
    // A shared by the batch (2-D and batch-1 forms), then B shared.
    check(gpu, &[7, 33], &[4, 33, 9], &MatmulOptions::default(), 12);
    check(gpu, &[1, 7, 33], &[4, 33, 9], &MatmulOptions::default(), 13);
    check(gpu, &[5, 9, 33], &[33, 7], &MatmulOptions::default(), 14);
    let transposed = MatmulOptions {
        trans_a: true,
        trans_b: true,
        ..Default::default()
    };
    check(gpu, &[2, 33, 7], &[2, 9, 33], &transposed, 15);
}

#[test]
fn alpha_beta_bias_and_activation_epilogue() {
    let gpu = gpu();
    let (m, n, k) = (31, 33, 7);
    let (a_shape, b_shape) = ([m, k], [k, n]);
    let a_host = random(m * k, 21);
    let b_host = random(k * n, 22);
    let c_host = random(m * n, 23);
    let bias_host = random(n, 24);
    let a = Tensor::from_slice(gpu, &a_host, &[m, k]).unwrap();
    let b = Tensor::from_slice(gpu, &b_host, &[k, n]).unwrap();
    let bias = Tensor::from_slice(gpu, &bias_host, &[n]).unwrap();
    for act in [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Gelu,
        Activation::Tanh,
    ] {
        let c = Tensor::from_slice(gpu, &c_host, &[m, n]).unwrap();
        let options = MatmulOptions {
            alpha: 0.5,
            beta: -2.0,
            bias: Some(&bias),
            activation: act,
            ..Default::default()
        };
        matmul::run_into(gpu, &a, &b, &c, &options).unwrap();
        let problem = Problem {
            alpha: 0.5,
            beta: -2.0,
            c: Some(&c_host),
            bias: Some(&bias_host),
            activation: act,
            ..Problem::new(&a_host, &a_shape, &b_host, &b_shape)
        };
        assert_rel_close(
            &format!("epilogue {}", act.name()),
            &c.to_vec(gpu).unwrap(),
            &reference(&problem).unwrap(),
            tolerance(k),
        );
    }
}

#[test]
fn beta_zero_never_reads_c() {
    // C starts as NaN: with beta = 0 it must not leak into the result.
    check(gpu(), &[9, 7], &[7, 5], &MatmulOptions::default(), 31);
}

#[test]
fn every_configuration_is_correct_here() {
    let gpu = gpu();
    let configs = [
        MatmulConfig::CPU,
        MatmulConfig::GPU,
        MatmulConfig {
            wg_x: 4,
            wg_y: 2,
            kernel: MatmulKernel::Vec4,
        },
        MatmulConfig {
            wg_x: 8,
            wg_y: 8,
            kernel: MatmulKernel::Scalar,
        },
    ];
    for config in configs {
        let options = MatmulOptions {
            config: Some(config),
            ..Default::default()
        };
        check(gpu, &[134, 250], &[250, 242], &options, 41);
        check(gpu, &[133, 252], &[252, 244], &options, 42);
    }
}

#[test]
fn vec4_kernel_covers_aligned_shapes_in_every_layout() {
    let gpu = gpu();
    // m, n, k multiples of 4 but not of any tile; m = 4 and n = 4 are single vec4s.
    for &(m, n, k) in &[(4, 4, 4), (36, 44, 252), (132, 4, 8), (12, 244, 36)] {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let dims = MatmulDims::new(&[m, k], &[k, n], false, false).unwrap();
            assert!(matmul::vec4_eligible(&dims, trans_a, trans_b));
            let a_shape = if trans_a { [k, m] } else { [m, k] };
            let b_shape = if trans_b { [n, k] } else { [k, n] };
            let options = MatmulOptions {
                trans_a,
                trans_b,
                config: Some(VEC4),
                ..Default::default()
            };
            check(gpu, &a_shape, &b_shape, &options, (m + n + k) as u64);
        }
    }
    let vec4 = MatmulOptions {
        config: Some(VEC4),
        ..Default::default()
    };
    check(gpu, &[3, 20, 36], &[36, 12], &vec4, 43);
    // Odd m is fine when A is not transposed; the vec4 kernel clamps rows one by one.
    check(gpu, &[7, 8], &[8, 12], &vec4, 44);
    let a = Tensor::zeros(gpu, &[7, 8]).unwrap();
    let b = Tensor::zeros(gpu, &[8, 12]).unwrap();
    let c = Tensor::zeros(gpu, &[7, 12]).unwrap();
    assert_eq!(
        matmul::kernel_for(gpu, &a, &b, &c, &vec4).unwrap(),
        MatmulKernel::Vec4
    );
    let odd_b = Tensor::zeros(gpu, &[8, 11]).unwrap();
    let odd_c = Tensor::zeros(gpu, &[7, 11]).unwrap();
    assert_eq!(
        matmul::kernel_for(gpu, &a, &odd_b, &odd_c, &vec4).unwrap(),
        MatmulKernel::Scalar
    );
}

#[test]
fn operands_larger_than_one_binding_are_chunked() {
    // 4 KiB bindings: A and B take many windows along every axis, and the k blocks accumulate
    // through beta = 1 before the epilogue runs once. (40, 36, 300) is vec4-aligned, so both
    // kernels take the chunked path.
    let gpu = gpu_with_binding_limit(4096);
    for (m, n, k) in [(40, 37, 301), (40, 36, 300)] {
        for (trans_a, trans_b) in [(false, false), (true, true), (false, true), (true, false)] {
            let options = MatmulOptions {
                trans_a,
                trans_b,
                ..Default::default()
            };
            let a_shape = if trans_a { [k, m] } else { [m, k] };
            let b_shape = if trans_b { [n, k] } else { [k, n] };
            check(&gpu, &a_shape, &b_shape, &options, 51);
        }
    }
    check(
        &gpu,
        &[3, 20, 300],
        &[3, 300, 9],
        &MatmulOptions::default(),
        52,
    );
    check(
        &gpu,
        &[3, 20, 300],
        &[3, 300, 12],
        &MatmulOptions::default(),
        52,
    );

    // The epilogue with k blocks accumulating; n = 37 takes the scalar kernel.
    check_chunked_epilogue(&gpu, 37, 300, None, MatmulKernel::Scalar);
}

#[test]
fn long_shared_dimensions_are_split_below_the_loop_limit() {
    // A limit of 2,000 loop passes per invocation leaves k blocks of 768 (4/5 of 2,000 less
    // the kernels' 1,024 for stores, rounded down to 64; see matmul::loop_passes): k = 3,001
    // takes four dispatches that accumulate through β = 1, the epilogue on the last. The
    // texture kernel covers k in one dispatch (750 passes here, within the limit); past
    // 4 · 768 it gives way to vec4.
    let gpu = gpu_with_loop_limit(2000);
    for (config, shapes) in [
        (SCALAR, [(9, 13, 3001), (9, 12, 3000)]),
        (MatmulConfig::GPU, [(9, 12, 3000), (5, 8, 5004)]),
        (TEXTURE, [(9, 12, 3000), (5, 8, 5004)]),
    ] {
        for (m, n, k) in shapes {
            for trans_b in [false, true] {
                let options = MatmulOptions {
                    trans_b,
                    config: Some(config),
                    ..Default::default()
                };
                let b_shape = if trans_b { [n, k] } else { [k, n] };
                check(&gpu, &[m, k], &b_shape, &options, (m + n + k) as u64);
            }
        }
    }
    check_chunked_epilogue(&gpu, 37, 3001, Some(SCALAR), MatmulKernel::Scalar);
    check_chunked_epilogue(&gpu, 36, 3000, Some(MatmulConfig::GPU), MatmulKernel::Vec4);
    let a = Tensor::from_slice(&gpu, &random(5 * 5004, 1), &[5, 5004]).unwrap();
    let b = Tensor::from_slice(&gpu, &random(5004 * 8, 2), &[5004, 8]).unwrap();
    let c = Tensor::empty(&gpu, &[5, 8]).unwrap();
    let options = MatmulOptions::default();
    assert_eq!(matmul::plan(&gpu, &a, &b, &c, &options).unwrap().len(), 7);
}

#[test]
fn a_shared_dimension_past_lavapipes_loop_limit_is_correct() {
    // lavapipe ends an invocation's loops after 65,535 iterations; unsplit, a k of 150,000
    // summed only its first 65,535 terms (scalar) or 262,140 (vec4). Checked on the test
    // adapter with its own limit, whatever it is.
    let gpu = gpu();
    check(
        gpu,
        &[2, 150_001],
        &[150_001, 3],
        &MatmulOptions::default(),
        61,
    );
    check(
        gpu,
        &[2, 150_000],
        &[150_000, 4],
        &MatmulOptions::default(),
        62,
    );
}

#[test]
fn texture_kernel_runs_where_the_adapter_allows_it() {
    let gpu = gpu();
    let (m, n, k) = (33, 31, 250);
    let a = Tensor::zeros(gpu, &[m, k]).unwrap();
    let b = Tensor::zeros(gpu, &[k, n]).unwrap();
    let c = Tensor::zeros(gpu, &[m, n]).unwrap();
    let texture = MatmulOptions {
        config: Some(TEXTURE),
        ..Default::default()
    };
    let dims = MatmulDims::new(&[m, k], &[k, n], false, false).unwrap();
    let eligible = matmul_texture::eligible(gpu, &dims, &a, &b, &c);
    let chosen = matmul::kernel_for(gpu, &a, &b, &c, &texture).unwrap();
    assert_eq!(
        chosen == MatmulKernel::Texture,
        eligible,
        "texture preferred: used exactly when eligible"
    );
    assert_eq!(
        eligible,
        common::eight_wide(gpu),
        "small operands are eligible exactly on 8-wide subgroups"
    );
    // Correct in every layout, with batches, broadcasts and the epilogue, whichever kernel runs.
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let a_shape = if trans_a { [k, m] } else { [m, k] };
        let b_shape = if trans_b { [n, k] } else { [k, n] };
        let options = MatmulOptions {
            trans_a,
            trans_b,
            config: Some(TEXTURE),
            ..Default::default()
        };
        check(gpu, &a_shape, &b_shape, &options, 71);
    }
    check(gpu, &[1, 1], &[1, 1], &texture, 72);
    check(gpu, &[3, 17, 9], &[9, 5], &texture, 73);
    check(gpu, &[17, 9], &[2, 9, 35], &texture, 74);
    check(gpu, &[2, 17, 9], &[2, 9, 35], &texture, 75);
}

/// The texture path fills an operand's texture by buffer-to-texture copies (one per layer)
/// when its rows are contiguous whole texels 256 bytes apart; otherwise the pack kernel lays
/// it out that way in a staging buffer, one copy per piece that fits a binding (all the
/// layers of a small operand in one). Both give
/// the reference's product, and a plan's copies read the operands anew each run.
#[test]
fn texture_operands_are_copied_where_their_layout_allows() {
    let gpu = gpu();
    let texture = MatmulOptions {
        config: Some(TEXTURE),
        ..Default::default()
    };
    let transposed_b = MatmulOptions {
        trans_b: true,
        ..texture
    };
    // (A shape, B shape, options, copies when the texture path runs): rows of 64 and 128
    // values are 256 and 512 bytes; rows of 68 (272 bytes) and transposed operands are packed
    // (one copy each, from the staging buffer). B's rows past k = 66 (up to 68, a whole texel
    // of A) stay as wgpu zeroed them.
    let cases: [(&[usize], &[usize], &MatmulOptions<'_>, usize); 8] = [
        (&[33, 128], &[128, 64], &texture, 2),
        (&[2, 17, 64], &[2, 64, 128], &texture, 4),
        (&[3, 17, 64], &[64, 64], &texture, 4),
        (&[33, 128], &[64, 128], &transposed_b, 2),
        (&[5, 68], &[68, 64], &texture, 2),
        (&[5, 66], &[66, 64], &texture, 2),
        (&[5, 66], &[66, 30], &texture, 2),
        (&[3, 5, 66], &[3, 66, 30], &texture, 2),
    ];
    for (i, &(a_shape, b_shape, options, copies)) in cases.iter().enumerate() {
        check(gpu, a_shape, b_shape, options, 80 + i as u64);
        let a = Tensor::zeros(gpu, a_shape).unwrap();
        let b = Tensor::zeros(gpu, b_shape).unwrap();
        let dims = MatmulDims::new(a_shape, b_shape, false, options.trans_b).unwrap();
        let c = Tensor::zeros(gpu, &dims.output_shape()).unwrap();
        let plan = matmul::plan(gpu, &a, &b, &c, options).unwrap();
        let found = plan.iter().filter(|d| d.is_copy()).count();
        let on_texture =
            matmul::kernel_for(gpu, &a, &b, &c, options).unwrap() == MatmulKernel::Texture;
        let want = if on_texture { copies } else { 0 };
        assert_eq!(found, want, "copies planned for A{a_shape:?} B{b_shape:?}");
    }

    // One plan run twice, the operands rewritten in between: the copies take the new values.
    let (m, k, n) = (19, 64, 128);
    let a = Tensor::zeros(gpu, &[m, k]).unwrap();
    let b = Tensor::zeros(gpu, &[k, n]).unwrap();
    let c = common::poisoned(gpu, &[m, n]);
    let plan = matmul::plan(gpu, &a, &b, &c, &texture).unwrap();
    for seed in [90, 92] {
        let (a_host, b_host) = (random(m * k, seed), random(k * n, seed + 1));
        a.write(gpu, &a_host).unwrap();
        b.write(gpu, &b_host).unwrap();
        gpu.execute(&plan).unwrap();
        let want = reference(&Problem::new(&a_host, &[m, k], &b_host, &[k, n])).unwrap();
        assert_rel_close("rerun plan", &c.to_vec(gpu).unwrap(), &want, tolerance(k));
    }
}

#[test]
fn packed_operands_are_staged_in_pieces_that_fit_one_binding() {
    // 4 KiB bindings hold about 1,000 values, and a staged row of at most 16 texels (256
    // bytes) is 64 values: 15 rows per piece. 100 rows of 5 values (500 values, one binding)
    // are staged in ranges of rows; 6 layers of 4 rows in groups of 3 layers; the transposed
    // operands the same way along their other axis. One staging buffer of one piece serves
    // them all, each piece copied before the next overwrites it.
    let gpu = common::gpu_with_binding_limit(4096);
    let texture = MatmulOptions {
        config: Some(TEXTURE),
        ..Default::default()
    };
    check(&gpu, &[100, 5], &[5, 9], &texture, 110);
    check(&gpu, &[6, 4, 5], &[6, 5, 7], &texture, 111);
    let transposed = MatmulOptions {
        trans_a: true,
        trans_b: true,
        ..texture
    };
    check(&gpu, &[5, 100], &[9, 5], &transposed, 112);
    check(&gpu, &[6, 5, 4], &[6, 7, 5], &transposed, 113);
    let a = Tensor::zeros(&gpu, &[100, 5]).unwrap();
    let b = Tensor::zeros(&gpu, &[5, 9]).unwrap();
    let c = Tensor::zeros(&gpu, &[100, 9]).unwrap();
    if matmul::kernel_for(&gpu, &a, &b, &c, &texture).unwrap() == MatmulKernel::Texture {
        let plan = matmul::plan(&gpu, &a, &b, &c, &texture).unwrap();
        let kernels = plan.iter().filter(|d| !d.is_copy()).count();
        // A: ceil(100 / 15) = 7 pack dispatches, each followed by its copy; B: 1 and 1; the
        // product: 1.
        assert_eq!(kernels, 9, "dispatches of the staged packs and the product");
        assert_eq!(plan.len() - kernels, 8, "one copy per staged piece");
    }
}

#[test]
fn bad_shapes_are_errors_that_name_the_shapes() {
    let gpu = gpu();
    let a = Tensor::zeros(gpu, &[3, 4]).unwrap();
    let b = Tensor::zeros(gpu, &[5, 6]).unwrap();
    let e = matmul::run(gpu, &a, &b, &MatmulOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("[3, 4]") && message.contains("[5, 6]"),
        "{message}"
    );

    let batched_a = Tensor::zeros(gpu, &[2, 3, 4]).unwrap();
    let batched_b = Tensor::zeros(gpu, &[3, 4, 5]).unwrap();
    let e = matmul::run(gpu, &batched_a, &batched_b, &MatmulOptions::default()).unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");

    let four_d = Tensor::zeros(gpu, &[1, 1, 3, 4]).unwrap();
    assert!(matmul::run(gpu, &four_d, &a, &MatmulOptions::default()).is_err());

    let good_b = Tensor::zeros(gpu, &[4, 5]).unwrap();
    let wrong_c = Tensor::zeros(gpu, &[3, 6]).unwrap();
    let e = matmul::run_into(gpu, &a, &good_b, &wrong_c, &MatmulOptions::default()).unwrap_err();
    assert!(e.to_string().contains("[3, 6]"), "{e}");

    let bias = Tensor::zeros(gpu, &[4]).unwrap();
    let options = MatmulOptions {
        bias: Some(&bias),
        ..Default::default()
    };
    let e = matmul::run(gpu, &a, &good_b, &options).unwrap_err();
    assert!(e.to_string().contains("bias"), "{e}");

    let nan_alpha = MatmulOptions {
        alpha: f32::NAN,
        ..Default::default()
    };
    assert!(matmul::run(gpu, &a, &good_b, &nan_alpha).is_err());

    assert!(MatmulDims::new(&[0, 4], &[4, 5], false, false).is_err());
}

#[test]
fn oversized_workgroups_are_rejected_before_compiling() {
    let gpu = gpu();
    let limit = gpu.limits().max_compute_invocations_per_workgroup;
    let config = MatmulConfig {
        wg_x: limit,
        wg_y: 2,
        kernel: MatmulKernel::Scalar,
    };
    let e = config.check(gpu).unwrap_err();
    assert!(e.to_string().contains(&limit.to_string()), "{e}");
    let parsed: MatmulConfig = "16x4".parse().unwrap();
    assert_eq!(
        (parsed.wg_x, parsed.wg_y, parsed.kernel),
        (16, 4, MatmulKernel::Vec4)
    );
    for s in ["8x8-scalar", "8x1-texture", "8x8-vec4"] {
        assert_eq!(s.parse::<MatmulConfig>().unwrap().to_string(), s);
    }
    assert!("8x8-fast".parse::<MatmulConfig>().is_err());
    assert!("16".parse::<MatmulConfig>().is_err());
}

#[test]
fn pipelines_are_compiled_once_per_configuration() {
    let gpu = gpu_with_binding_limit(1 << 20);
    let scalar = MatmulOptions {
        config: Some(SCALAR),
        ..Default::default()
    };
    check(&gpu, &[5, 6], &[6, 7], &scalar, 61);
    let after_first = gpu.cached_pipelines();
    check(&gpu, &[9, 3], &[3, 4], &scalar, 62);
    assert_eq!(
        gpu.cached_pipelines(),
        after_first,
        "same configuration, same pipeline"
    );
    let transposed = MatmulOptions {
        trans_a: true,
        ..scalar
    };
    check(&gpu, &[3, 9], &[3, 4], &transposed, 63);
    assert_eq!(
        gpu.cached_pipelines(),
        after_first + 1,
        "TRANS_A is part of the key"
    );
}
