//! The matrix-free projection kernel against its f64 reference (entries regenerated on the
//! CPU), for every distribution, complex kinds, batches beyond one group, and the chunked
//! paths.
//!
//! Tolerance: each output is a length-d dot product of f32 values; with entries of variance
//! ~1 and inputs in [-1, 1) its relative error is ~2⁻²⁴·sqrt(d) plus, for Gaussian entries,
//! the ~1e-6 relative error of f32 Box–Muller: 1e-5 + 1e-6·sqrt(d) bounds both.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random};
use speckle::cpu::project_dense::project_dense as reference;
use speckle::ops::project_dense::{self, DenseSpec};
use speckle::ops::random_fill::Distribution;
use speckle::{Gpu, Tensor};

fn check(gpu: &Gpu, spec: &DenseSpec, batch: usize, d: usize, n_out: usize) {
    let x_host = random(batch * d, (batch * 31 + d) as u64);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, d]).unwrap();
    let re = Tensor::filled(gpu, &[batch, n_out], f32::NAN).unwrap();
    let im = spec
        .complex
        .then(|| Tensor::filled(gpu, &[batch, n_out], f32::NAN).unwrap());
    let plan = project_dense::plan(gpu, &x, &re, im.as_ref(), spec).unwrap();
    gpu.execute(&plan).unwrap();
    let (want_re, want_im) = reference(spec, &x_host, batch, d, n_out);
    let tol = 1e-5 + 1e-6 * (d as f64).sqrt();
    let what = format!("{:?} batch {batch} d {d} n_out {n_out}", spec.distribution);
    assert_rel_close(
        &format!("{what} re"),
        &re.to_vec(gpu).unwrap(),
        &want_re,
        tol,
    );
    if let Some(im) = im {
        assert_rel_close(
            &format!("{what} im"),
            &im.to_vec(gpu).unwrap(),
            &want_im,
            tol,
        );
    }
}

fn spec(distribution: Distribution, complex: bool) -> DenseSpec {
    DenseSpec {
        distribution,
        scale: 0.5,
        seed: 2024,
        complex,
    }
}

#[test]
fn every_distribution_matches_the_reference() {
    let gpu = gpu();
    for distribution in [
        Distribution::Gaussian,
        Distribution::Rademacher,
        Distribution::Sparse { p: 0.1 },
    ] {
        check(gpu, &spec(distribution, false), 3, 33, 7);
    }
    check(gpu, &spec(Distribution::Gaussian, true), 2, 250, 31);
}

#[test]
fn awkward_sizes_and_batches_beyond_one_group() {
    let gpu = gpu();
    let s = spec(Distribution::Gaussian, false);
    for &(batch, d, n_out) in &[
        (1, 1, 1),
        (1, 7, 1),
        (9, 31, 33),
        (17, 5, 127),
        (1, 1001, 3),
    ] {
        check(gpu, &s, batch, d, n_out);
    }
}

#[test]
fn row_blocks_and_column_chunks_accumulate() {
    // 2 KiB bindings: x rows of 700 values and 300 outputs take several chunks and blocks.
    let gpu = gpu_with_binding_limit(2048);
    check(&gpu, &spec(Distribution::Gaussian, true), 3, 700, 300);
    check(&gpu, &spec(Distribution::Rademacher, false), 10, 130, 90);
    // More outputs than one binding holds: row blocks.
    check(&gpu, &spec(Distribution::Gaussian, false), 1, 20, 600);
}

#[test]
fn non_matrix_distributions_and_bad_shapes_are_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(gpu, &[2, 8]).unwrap();
    let re = Tensor::zeros(gpu, &[2, 4]).unwrap();
    assert!(project_dense::plan(gpu, &x, &re, None, &spec(Distribution::Uniform, false)).is_err());
    assert!(
        project_dense::plan(gpu, &x, &re, None, &spec(Distribution::Gaussian, true)).is_err(),
        "complex needs im"
    );
    let x3 = Tensor::zeros(gpu, &[1, 2, 8]).unwrap();
    assert!(
        project_dense::plan(gpu, &x3, &re, None, &spec(Distribution::Gaussian, false)).is_err()
    );
}
