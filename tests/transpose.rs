//! Transposition: the GPU (`shaders/transpose.wgsl`) against the reference, exactly, on
//! awkward shapes (partial tiles, one row, one column, layers), through blocks when a matrix
//! exceeds a binding, and the shape errors.

mod common;

use common::{gpu, gpu_with_binding_limit, poisoned, random};
use speckle::cpu::transpose::transpose;
use speckle::ops::transpose as gpu_transpose;
use speckle::{Gpu, Tensor};

/// Transposes random `shape` on `gpu` into a poisoned output and asserts every value equals
/// the reference's.
fn assert_transposes(gpu: &Gpu, shape: &[usize], seed: u64) {
    let n = shape.len();
    let (rows, cols) = (shape[n - 2], shape[n - 1]);
    let len: usize = shape.iter().product();
    let data = random(len, seed);
    let x = Tensor::from_slice(gpu, &data, shape).unwrap();
    let want_shape = gpu_transpose::transposed_shape(shape).unwrap();
    let out = poisoned(gpu, &want_shape);
    let plan = gpu_transpose::plan(gpu, &x, &out).unwrap();
    gpu.execute(&plan).unwrap();
    let got = out.to_vec(gpu).unwrap();
    let want = transpose(&data, len / (rows * cols), rows, cols);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{shape:?} in {} dispatch(es): value {i} is {g}, expected {w}",
            plan.len()
        );
    }
}

#[test]
fn matrices_of_awkward_shapes_transpose_exactly() {
    let gpu = gpu();
    for (i, shape) in [
        vec![1, 1],
        vec![16, 16],
        vec![17, 33],
        vec![1, 100],
        vec![100, 1],
        vec![5, 300],
        vec![257, 31],
        vec![64, 1024],
    ]
    .iter()
    .enumerate()
    {
        assert_transposes(gpu, shape, 10 + i as u64);
    }
}

#[test]
fn leading_dimensions_are_layers_transposed_alike() {
    let gpu = gpu();
    assert_transposes(gpu, &[3, 17, 5], 30);
    assert_transposes(gpu, &[2, 3, 40, 18], 31);
}

#[test]
fn matrices_larger_than_a_binding_transpose_in_blocks() {
    // 4 KiB bindings hold about 1000 values: a 90 x 70 matrix (6,300) goes in blocks of rows,
    // a 3 x 5000 one in blocks of columns, and 6 layers of 20 x 20 in groups of whole layers;
    // 64 x 64, 140 x 8 and 8 x 132 in blocks of whole vec4s (CPU adapters move those by 4 x 4
    // blocks), the last two with windows of x, then of out, starting mid-alignment (first = 4).
    let gpu = gpu_with_binding_limit(4096);
    for (i, shape) in [
        vec![90, 70],
        vec![3, 5000],
        vec![5000, 3],
        vec![6, 20, 20],
        vec![64, 64],
        vec![140, 8],
        vec![8, 132],
    ]
    .iter()
    .enumerate()
    {
        assert_transposes(&gpu, shape, 40 + i as u64);
    }
    let x = Tensor::from_slice(&gpu, &random(6300, 1), &[90, 70]).unwrap();
    let out = Tensor::empty(&gpu, &[70, 90]).unwrap();
    assert!(
        gpu_transpose::plan(&gpu, &x, &out).unwrap().len() > 1,
        "a matrix over a binding must take several dispatches"
    );
}

#[test]
fn wrong_shapes_are_refused_with_both_shapes() {
    let gpu = gpu();
    let x = Tensor::from_slice(gpu, &random(12, 1), &[3, 4]).unwrap();
    let out = Tensor::empty(gpu, &[3, 4]).unwrap();
    let e = gpu_transpose::plan(gpu, &x, &out).unwrap_err().to_string();
    assert!(
        e.contains("[3, 4]") && e.contains("[4, 3]"),
        "the error must name both shapes: {e}"
    );
    let v = Tensor::from_slice(gpu, &random(5, 1), &[5]).unwrap();
    let e = gpu_transpose::run(gpu, &v).unwrap_err().to_string();
    assert!(e.contains("[5]"), "the error must name the shape: {e}");
}
