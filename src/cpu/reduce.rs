//! f64 reference of `shaders/reduce.wgsl`.

use crate::ops::reduce::Reduction;

/// `reduction` of each row of a row-major [rows, cols] matrix.
pub fn reduce(reduction: Reduction, x: &[f32], cols: usize) -> Vec<f64> {
    x.chunks(cols)
        .map(|row| {
            let values = row.iter().map(|&v| f64::from(v));
            match reduction {
                Reduction::Sum => values.sum(),
                Reduction::SumSquares => values.map(|v| v * v).sum(),
                Reduction::Norm => values.map(|v| v * v).sum::<f64>().sqrt(),
                Reduction::Max => values.fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect()
}
