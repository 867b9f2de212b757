//! f64 reference of `shaders/softmax.wgsl`.

/// Row softmax of a row-major [rows, cols] matrix with `scale` and, when `causal_rows` is
/// `Some(q)`, the top-left causal mask (row r sees columns j <= r % q). Masked entries are 0.
pub fn softmax(x: &[f32], cols: usize, scale: f64, causal_rows: Option<usize>) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for (r, row) in x.chunks(cols).enumerate() {
        let visible = |j: usize| causal_rows.is_none_or(|q| j <= r % q);
        let max = (0..cols)
            .filter(|&j| visible(j))
            .map(|j| scale * f64::from(row[j]))
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = (0..cols)
            .filter(|&j| visible(j))
            .map(|j| (scale * f64::from(row[j]) - max).exp())
            .sum();
        for (j, &v) in row.iter().enumerate() {
            out.push(if visible(j) {
                (scale * f64::from(v) - max).exp() / sum
            } else {
                0.0
            });
        }
    }
    out
}
