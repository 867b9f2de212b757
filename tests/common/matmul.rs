//! The matmul check shared by the matmul kernels' tests: A·B on the GPU into a poisoned C
//! against the f64 reference.
//!
//! Tolerance: a length-k f32 dot product of values in [-1, 1) has a relative error of about
//! 2⁻²⁴·sqrt(k) (random rounding errors), so ‖C − C_ref‖/‖C_ref‖ <= 1e-6·sqrt(k) leaves a margin
//! of ~15. A kernel that drops or repeats one term of k is off by ~1/sqrt(k) and fails.

use speckle::cpu::matmul::{matmul as reference, Problem};
use speckle::ops::matmul::{self, MatmulDims};
use speckle::ops::matmul_f16;
use speckle::{Activation, Gpu, HalfTensor, MatmulConfig, MatmulOptions, Tensor};

use super::{assert_rel_close, poisoned, random};

/// The tolerance of a product with shared dimension k (see the module docs).
pub fn tolerance(k: usize) -> f64 {
    1e-6 * (k as f64).sqrt().max(1.0)
}

/// Runs A·B (with `options`) on the GPU into a poisoned C and compares with the reference.
pub fn check(
    gpu: &Gpu,
    a_shape: &[usize],
    b_shape: &[usize],
    options: &MatmulOptions<'_>,
    seed: u64,
) {
    let a_host = random(a_shape.iter().product(), seed);
    let b_host = random(b_shape.iter().product(), seed + 1);
    let dims =
        MatmulDims::new(a_shape, b_shape, options.trans_a, options.trans_b).expect("valid shapes");
    let a = Tensor::from_slice(gpu, &a_host, a_shape).unwrap();
    let b = Tensor::from_slice(gpu, &b_host, b_shape).unwrap();
    let c = poisoned(gpu, &dims.output_shape());
    matmul::run_into(gpu, &a, &b, &c, options).unwrap();
    let got = c.to_vec(gpu).unwrap();
    let problem = Problem {
        trans_a: options.trans_a,
        trans_b: options.trans_b,
        alpha: f64::from(options.alpha),
        activation: options.activation,
        ..Problem::new(&a_host, a_shape, &b_host, b_shape)
    };
    let want = reference(&problem).unwrap();
    assert_rel_close(
        &format!(
            "matmul A{a_shape:?} B{b_shape:?} ta={} tb={}",
            options.trans_a, options.trans_b
        ),
        &got,
        &want,
        tolerance(dims.k),
    );
}

/// C = relu(2·A·B + 0.5·C0 + bias) for A [40, k], B [k, n] on `gpu` (a device with small
/// bindings or a low loop limit, so the product is split and the k blocks accumulate before
/// the epilogue runs once) with `config`; asserts the kernel that ran and that the split
/// happened.
pub fn check_chunked_epilogue(
    gpu: &Gpu,
    n: usize,
    k: usize,
    config: Option<MatmulConfig>,
    kernel: matmul::MatmulKernel,
) {
    let m = 40;
    let (a_shape, b_shape) = ([m, k], [k, n]);
    let a_host = random(m * k, 53);
    let b_host = random(k * n, 54);
    let c_host = random(m * n, 55);
    let bias_host = random(n, 56);
    let a = Tensor::from_slice(gpu, &a_host, &a_shape).unwrap();
    let b = Tensor::from_slice(gpu, &b_host, &b_shape).unwrap();
    let c = Tensor::from_slice(gpu, &c_host, &[m, n]).unwrap();
    let bias = Tensor::from_slice(gpu, &bias_host, &[n]).unwrap();
    let options = MatmulOptions {
        alpha: 2.0,
        beta: 0.5,
        bias: Some(&bias),
        activation: Activation::Relu,
        config,
        ..Default::default()
    };
    assert_eq!(
        matmul::kernel_for(gpu, &a, &b, &c, &options).unwrap(),
        kernel
    );
    let plan = matmul::plan(gpu, &a, &b, &c, &options).unwrap();
    assert!(
        plan.len() >= 4,
        "a small binding or loop limit must split this product (got {} dispatches)",
        plan.len()
    );
    gpu.execute(&plan).unwrap();
    let problem = Problem {
        alpha: 2.0,
        beta: 0.5,
        c: Some(&c_host),
        bias: Some(&bias_host),
        activation: Activation::Relu,
        ..Problem::new(&a_host, &a_shape, &b_host, &b_shape)
    };
    assert_rel_close(
        &format!("chunked epilogue, {kernel:?}"),
        &c.to_vec(gpu).unwrap(),
        &reference(&problem).unwrap(),
        tolerance(k),
    );
}

/// A·B with f16 operands (seeded values rounded on the host) by the kernel `o` leads
/// `matmul_f16` to, against the f64 product of the f16 values read back, within `slack`
/// times [`tolerance`].
pub fn check_f16(
    gpu: &Gpu,
    a_shape: &[usize],
    b_shape: &[usize],
    o: &MatmulOptions<'_>,
    seed: u64,
    slack: f64,
) {
    let a_host = random(a_shape.iter().product(), seed);
    let b_host = random(b_shape.iter().product(), seed + 1);
    let a = HalfTensor::from_f32(gpu, &a_host, a_shape).unwrap();
    let b = HalfTensor::from_f32(gpu, &b_host, b_shape).unwrap();
    let d = MatmulDims::new(a_shape, b_shape, o.trans_a, o.trans_b).unwrap();
    let c = poisoned(gpu, &d.output_shape());
    gpu.execute(&matmul_f16::plan(gpu, &a, &b, &c, o).unwrap())
        .unwrap();
    let (a16, b16) = (a.to_vec(gpu).unwrap(), b.to_vec(gpu).unwrap());
    let want = reference(&Problem {
        trans_a: o.trans_a,
        trans_b: o.trans_b,
        alpha: f64::from(o.alpha),
        activation: o.activation,
        ..Problem::new(&a16, a_shape, &b16, b_shape)
    })
    .unwrap();
    assert_rel_close(
        &format!(
            "f16 matmul A{a_shape:?} B{b_shape:?} ta={} tb={} {:?}",
            o.trans_a, o.trans_b, o.config
        ),
        &c.to_vec(gpu).unwrap(),
        &want,
        slack * tolerance(d.k),
    );
}
