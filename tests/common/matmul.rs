//! The matmul check shared by the matmul kernels' tests: A·B on the GPU into a poisoned C
//! against the f64 reference.
//!
//! Tolerance: a length-k f32 dot product of values in [-1, 1) has a relative error of about
//! 2⁻²⁴·sqrt(k) (random rounding errors), so ‖C − C_ref‖/‖C_ref‖ <= 1e-6·sqrt(k) leaves a margin
//! of ~15. A kernel that drops or repeats one term of k is off by ~1/sqrt(k) and fails.

use speckle::cpu::matmul::{matmul as reference, Problem};
use speckle::ops::matmul::{self, MatmulDims};
use speckle::{Gpu, MatmulOptions, Tensor};

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
