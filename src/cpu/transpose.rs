//! Reference of `shaders/transpose.wgsl`: the last two dimensions swapped.

/// `x`, `layers` layers of `rows` × `cols` values, with each layer transposed (`cols` ×
/// `rows`); exact, as the GPU's must be.
pub fn transpose(x: &[f32], layers: usize, rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(
        x.len(),
        layers * rows * cols,
        "transpose: x has the wrong length"
    );
    let mut out = vec![0.0; x.len()];
    for l in 0..layers {
        let base = l * rows * cols;
        for r in 0..rows {
            for c in 0..cols {
                out[base + c * rows + r] = x[base + r * cols + c];
            }
        }
    }
    out
}
