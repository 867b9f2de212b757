//! Reference of the fused optical projection (`ops::project_optical`): the paired layout of
//! its matrix and y = |(R + iI) x|² in f64.

/// Where row `row` of the paired matrix comes from: `(imaginary, i)`, row i of I when
/// `imaginary`, else of R. Rows come in blocks of 8: R_{4q .. 4q+3}, then I_{4q .. 4q+3}.
pub fn paired_row(row: usize) -> (bool, usize) {
    (row % 8 >= 4, 4 * (row / 8) + row % 4)
}

/// The rows of the paired matrix that hold output o: its real row, then its imaginary row
/// (the inverse of [`paired_row`]).
pub fn output_rows(o: usize) -> [usize; 2] {
    let re = 8 * (o / 4) + o % 4;
    [re, re + 4]
}

/// The paired matrix (`[2·n_out, d]`) of R and I (`[n_out, d]` each, row-major).
pub fn pair(re: &[f64], im: &[f64], n_out: usize, d: usize) -> Vec<f64> {
    assert!(re.len() == n_out * d && im.len() == n_out * d && n_out.is_multiple_of(4));
    (0..2 * n_out)
        .flat_map(|row| {
            let (imaginary, i) = paired_row(row);
            let source = if imaginary { im } else { re };
            source[i * d..(i + 1) * d].iter().copied()
        })
        .collect()
}

/// y\[b, o\] = (Σ_j R\[o, j\] x\[b, j\])² + (Σ_j I\[o, j\] x\[b, j\])² for `x` (`[batch, d]`) and
/// the paired matrix `paired` (`[2·n_out, d]`), summed in f64.
pub fn project_optical(
    x: &[f64],
    paired: &[f64],
    batch: usize,
    d: usize,
    n_out: usize,
) -> Vec<f64> {
    assert!(x.len() == batch * d && paired.len() == 2 * n_out * d);
    let dot = |b: usize, row: usize| -> f64 {
        x[b * d..(b + 1) * d]
            .iter()
            .zip(&paired[row * d..(row + 1) * d])
            .map(|(u, v)| u * v)
            .sum()
    };
    let mut y = vec![0.0; batch * n_out];
    for b in 0..batch {
        for row in 0..2 * n_out {
            let (_, o) = paired_row(row);
            let v = dot(b, row);
            y[b * n_out + o] += v * v;
        }
    }
    y
}
