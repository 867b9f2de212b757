//! f64 reference of `shaders/cross_entropy.wgsl`.

/// The reference outputs for a batch.
#[derive(Clone, Debug)]
pub struct CrossEntropyReference {
    /// −log softmax(z)_label per row (NaN for an invalid label).
    pub loss: Vec<f64>,
    /// grad_scale · (softmax(z) − onehot(label)), row-major (NaN rows for invalid labels).
    pub grad: Vec<f64>,
    /// 1 where the row's argmax (lowest index among ties) is its label, else 0.
    pub correct: Vec<f64>,
}

/// Cross-entropy of the rows of `z` (`cols` logits each) against `labels` (integers stored as
/// f32 in `[0, cols)`), with the gradient scaled by `grad_scale`.
pub fn cross_entropy(
    z: &[f32],
    cols: usize,
    labels: &[f32],
    grad_scale: f64,
) -> CrossEntropyReference {
    let mut out = CrossEntropyReference {
        loss: Vec::new(),
        grad: Vec::new(),
        correct: Vec::new(),
    };
    for (row, &lf) in z.chunks(cols).zip(labels) {
        let valid = lf >= 0.0 && (lf as f64) < cols as f64 && lf.floor() == lf;
        let label = if valid { lf as usize } else { 0 };
        let mut arg = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[arg] {
                arg = j;
            }
        }
        let max = f64::from(row[arg]);
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        if !valid {
            out.loss.push(f64::NAN);
            out.correct.push(0.0);
            out.grad.extend(std::iter::repeat_n(f64::NAN, cols));
            continue;
        }
        out.loss.push(sum.ln() + max - f64::from(row[label]));
        out.correct.push(if arg == label { 1.0 } else { 0.0 });
        for (j, &v) in row.iter().enumerate() {
            let p = (f64::from(v) - max).exp() / sum;
            out.grad
                .push(grad_scale * (p - if j == label { 1.0 } else { 0.0 }));
        }
    }
    out
}
