//! The matrix-free projection kernel against its f64 reference (entries regenerated on the
//! CPU), for every distribution, complex kinds, batches beyond one group, and the chunked
//! paths; and its transpose (the adjoint Rᵀ u + Iᵀ v) the same way; and both kept within the
//! adapter's loop limit (chunks split below a lowered limit, refusals where nothing fits, and
//! problems past lavapipe's own limit).
//!
//! Tolerance: each output is a length-d dot product of f32 values; with entries of variance
//! ~1 and inputs in [-1, 1) its relative error is ~2⁻²⁴·sqrt(d) plus, for Gaussian entries,
//! the ~1e-6 relative error of f32 Box–Muller: 1e-5 + 1e-6·sqrt(d) bounds both.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, random,
};
use speckle::cpu::project_dense::project_dense as reference;
use speckle::ops::project_dense::{self, DenseSpec};
use speckle::ops::random_fill::Distribution;
use speckle::{Error, Gpu, Tensor};

/// Checks the forward product against the reference; returns the number of dispatches.
fn check(gpu: &Gpu, spec: &DenseSpec, batch: usize, d: usize, n_out: usize) -> usize {
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
    plan.len()
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

/// The transpose against its reference: `out = Rᵀ u (+ Iᵀ v)`, into a poisoned output. Each
/// output is a length-n_out dot product, so the tolerance is the forward one with n_out for d.
/// Returns the number of dispatches.
fn check_transpose(gpu: &Gpu, spec: &DenseSpec, batch: usize, n_out: usize, d: usize) -> usize {
    use speckle::cpu::project_dense::project_dense_transpose;
    let u_host = random(batch * n_out, (batch * 17 + n_out) as u64);
    let v_host = if spec.complex {
        random(batch * n_out, (batch * 19 + n_out + 1) as u64)
    } else {
        Vec::new()
    };
    let u = Tensor::from_slice(gpu, &u_host, &[batch, n_out]).unwrap();
    let v = spec
        .complex
        .then(|| Tensor::from_slice(gpu, &v_host, &[batch, n_out]).unwrap());
    let out = Tensor::filled(gpu, &[batch, d], f32::NAN).unwrap();
    let plan = project_dense::plan_transpose(gpu, &u, v.as_ref(), &out, spec).unwrap();
    gpu.execute(&plan).unwrap();
    let want = project_dense_transpose(spec, &u_host, &v_host, batch, n_out, d);
    assert_rel_close(
        &format!(
            "transpose {:?} complex {} batch {batch} n_out {n_out} d {d}",
            spec.distribution, spec.complex
        ),
        &out.to_vec(gpu).unwrap(),
        &want,
        1e-5 + 1e-6 * (n_out as f64).sqrt(),
    );
    plan.len()
}

#[test]
fn transpose_matches_the_reference() {
    let gpu = gpu();
    for distribution in [
        Distribution::Gaussian,
        Distribution::Rademacher,
        Distribution::Sparse { p: 0.1 },
    ] {
        check_transpose(gpu, &spec(distribution, false), 3, 33, 7);
    }
    check_transpose(gpu, &spec(Distribution::Gaussian, true), 2, 250, 31);
    for &(batch, n_out, d) in &[
        (1, 1, 1),
        (1, 7, 1),
        (9, 31, 33),
        (17, 127, 5),
        (1, 3, 1001),
    ] {
        check_transpose(gpu, &spec(Distribution::Gaussian, false), batch, n_out, d);
    }
}

#[test]
fn transpose_is_the_adjoint_of_the_forward_product() {
    // <R x, u> + <I x, v> = <x, Rᵀ u + Iᵀ v> for the same seed: the two kernels draw the same
    // matrix. Sums of 300·40 products of values in [-1, 1): 1e-5 relative is ~100 ulp.
    let gpu = gpu();
    let s = spec(Distribution::Gaussian, true);
    let (d, n_out) = (40, 300);
    let x_host = random(d, 5);
    let (u_host, v_host) = (random(n_out, 6), random(n_out, 7));
    let x = Tensor::from_slice(gpu, &x_host, &[1, d]).unwrap();
    let (re, im) = (
        Tensor::zeros(gpu, &[1, n_out]).unwrap(),
        Tensor::zeros(gpu, &[1, n_out]).unwrap(),
    );
    gpu.execute(&project_dense::plan(gpu, &x, &re, Some(&im), &s).unwrap())
        .unwrap();
    let u = Tensor::from_slice(gpu, &u_host, &[1, n_out]).unwrap();
    let v = Tensor::from_slice(gpu, &v_host, &[1, n_out]).unwrap();
    let back = Tensor::zeros(gpu, &[1, d]).unwrap();
    gpu.execute(&project_dense::plan_transpose(gpu, &u, Some(&v), &back, &s).unwrap())
        .unwrap();
    let dot = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(&p, &q)| f64::from(p) * f64::from(q))
            .sum()
    };
    let lhs = dot(&re.to_vec(gpu).unwrap(), &u_host) + dot(&im.to_vec(gpu).unwrap(), &v_host);
    let rhs = dot(&x_host, &back.to_vec(gpu).unwrap());
    assert!(
        (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0),
        "<Rx, u> = {lhs} but <x, Rᵀu> = {rhs}"
    );
}

#[test]
fn transpose_row_chunks_and_column_blocks_accumulate() {
    // 2 KiB bindings: 700 inputs per row and 300 outputs take several chunks and blocks.
    let gpu = gpu_with_binding_limit(2048);
    check_transpose(&gpu, &spec(Distribution::Gaussian, true), 3, 700, 300);
    check_transpose(&gpu, &spec(Distribution::Rademacher, false), 10, 90, 130);
    check_transpose(&gpu, &spec(Distribution::Gaussian, false), 1, 600, 20);
}

#[test]
fn transpose_shape_errors() {
    let gpu = gpu();
    let u = Tensor::zeros(gpu, &[2, 8]).unwrap();
    let out = Tensor::zeros(gpu, &[2, 4]).unwrap();
    let real = spec(Distribution::Gaussian, false);
    assert!(
        project_dense::plan_transpose(gpu, &u, None, &out, &spec(Distribution::Gaussian, true))
            .is_err(),
        "complex needs v"
    );
    let v = Tensor::zeros(gpu, &[2, 8]).unwrap();
    assert!(project_dense::plan_transpose(gpu, &u, Some(&v), &out, &real).is_err());
    let odd = Tensor::zeros(gpu, &[3, 3]).unwrap();
    assert!(project_dense::plan_transpose(gpu, &u, None, &odd, &real).is_err());
    let u3 = Tensor::zeros(gpu, &[1, 2, 8]).unwrap();
    assert!(project_dense::plan_transpose(gpu, &u3, None, &out, &real).is_err());
}

#[test]
fn chunks_are_split_below_the_loop_limit() {
    // A forward invocation loops 23 times per 4 columns (the column loop and the Philox
    // blocks of R and I, 11 each) and 21 besides; a transposed one 23 per row and 53 besides.
    // Under a limit of 300 that is at most 48 columns (12 blocks: 297 iterations) or 10 rows
    // (283) per dispatch. The chunks accumulate into the outputs.
    let gpu = gpu_with_loop_limit(300);
    assert_eq!(project_dense::forward_loops(48), 297);
    assert_eq!(project_dense::forward_loops(52), 320);
    assert_eq!(project_dense::transpose_loops(10), 283);
    assert_eq!(project_dense::transpose_loops(11), 306);
    let real = spec(Distribution::Gaussian, false);
    let complex = spec(Distribution::Gaussian, true);
    assert_eq!(check(&gpu, &real, 3, 700, 31), 700usize.div_ceil(48));
    assert_eq!(check(&gpu, &complex, 2, 250, 9), 250usize.div_ceil(48));
    // 9 inputs: two batch groups.
    let sparse = spec(Distribution::Sparse { p: 0.1 }, false);
    assert_eq!(check(&gpu, &sparse, 9, 105, 5), 2 * 105usize.div_ceil(48));
    // d = 32 and 12 columns: one column block each.
    assert_eq!(check_transpose(&gpu, &real, 3, 250, 32), 25);
    assert_eq!(check_transpose(&gpu, &complex, 2, 100, 12), 10);
    check_transpose(&gpu, &complex, 9, 37, 31);
}

#[test]
fn a_limit_too_low_for_one_chunk_is_refused_before_anything_runs() {
    // A forward invocation over 4 columns loops 23 + 21 = 44 times, a transposed one over 1
    // row 23 + 53 = 76: a limit of 43 leaves room for neither.
    let gpu = gpu_with_loop_limit(43);
    let x = Tensor::zeros(&gpu, &[2, 8]).unwrap();
    let re = Tensor::zeros(&gpu, &[2, 4]).unwrap();
    let refused = |e: Error, iterations: u64| {
        loop_refusal_of(e, iterations, 43, &[]);
    };
    let real = spec(Distribution::Gaussian, false);
    refused(
        project_dense::plan(&gpu, &x, &re, None, &real).unwrap_err(),
        44,
    );
    refused(
        project_dense::plan_transpose(&gpu, &re, None, &x, &real).unwrap_err(),
        76,
    );
}

#[test]
fn long_rows_and_columns_past_lavapipes_loop_limit_are_correct() {
    // lavapipe ends an invocation's loops after 65,535 iterations: unsplit, a forward
    // invocation over 300,000 columns (75,000 Philox blocks) summed only part of its row and
    // stored nothing for the second input, and a transposed one over 300,000 rows summed
    // only part of its column. Checked on the test adapter with its own limit, whatever it
    // is.
    let gpu = gpu();
    check(gpu, &spec(Distribution::Rademacher, false), 2, 300_000, 3);
    check_transpose(gpu, &spec(Distribution::Gaussian, false), 1, 300_000, 5);
}
