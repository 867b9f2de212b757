//! Orthogonal random features (Yu et al., "Orthogonal Random Features", 2016): a Gaussian
//! matrix whose rows are orthogonalized in blocks of d, each row keeping a chi(d)-distributed
//! norm, so that every row is still marginally N(0, I_d) (the kernel estimates stay unbiased)
//! while the rows of a block are exactly orthogonal (lower variance than independent rows).
//!
//! Construction, for n_out rows of length d: block b holds rows b·d … min(b·d + d, n_out) − 1.
//! Row i starts as g_i, row i of the plain Gaussian matrix of the seed (Philox stream
//! `Matrix`, the entries of the `gaussian` kind before scaling). In each block, in order, g_i
//! is orthogonalized against the block's earlier rows by classical Gram–Schmidt applied twice
//! ("twice is enough": orthogonal to f64 rounding), normalized to q_i, and rescaled to
//! w_i = ‖g_i‖ q_i. The direction q_i depends only on the directions of g_1 … g_i, and ‖g_i‖,
//! chi(d)-distributed, is independent of all directions, so the rows have the law of
//! S·Q with Q Haar-distributed and S an independent diagonal of chi(d) norms.
//!
//! The work is O(d · k²) per block of k rows, in f64 on the CPU (blocks in parallel), since
//! the orthogonalization of a block needs the whole block: there is no matrix-free form. The
//! structured `srht` kind is the O(p log p) matrix-free alternative.

use crate::cpu::philox::{self, Stream};

/// Rows `row0 .. row0 + rows` of the unscaled n × d orthogonal Gaussian matrix of `seed`
/// (each row marginally N(0, I_d)), f64, row-major `[rows, d]`, with their norms ‖g_i‖.
/// Rows in the same block of d are orthogonal.
pub fn rows(seed: u64, d: usize, row0: usize, rows: usize) -> (Vec<f64>, Vec<f64>) {
    let end = row0 + rows;
    let first_block = row0 / d;
    let last_block = end.div_ceil(d);
    let blocks: Vec<usize> = (first_block..last_block).collect();
    let threads = crate::cpu_cores().min(blocks.len()).max(1);
    // Each block is generated whole (its rows depend on the earlier ones), then cut.
    let mut generated: Vec<(usize, Vec<f64>, Vec<f64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let blocks = &blocks;
                scope.spawn(move || {
                    blocks
                        .iter()
                        .skip(t)
                        .step_by(threads)
                        .map(|&b| {
                            let start = b * d;
                            let count = d.min(end - start);
                            let (w, norms) = block(seed, d, start, count);
                            (b, w, norms)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("orthogonal block generation panicked"))
            .collect()
    });
    generated.sort_by_key(|(b, _, _)| *b);
    let mut out = Vec::with_capacity(rows * d);
    let mut norms = Vec::with_capacity(rows);
    for (b, w, n) in generated {
        let start = b * d;
        let lo = row0.max(start) - start;
        let hi = end.min(start + n.len()) - start;
        out.extend_from_slice(&w[lo * d..hi * d]);
        norms.extend_from_slice(&n[lo..hi]);
    }
    (out, norms)
}

/// Rows `start .. start + count` of one block (start a multiple of d, count <= d), generated
/// from the first row of the block on.
fn block(seed: u64, d: usize, start: usize, count: usize) -> (Vec<f64>, Vec<f64>) {
    let mut q = vec![0.0f64; count * d];
    let mut norms = Vec::with_capacity(count);
    let mut v = vec![0.0f64; d];
    let mut c = vec![0.0f64; count];
    for r in 0..count {
        gaussian_row(seed, (start + r) as u32, &mut v);
        let norm = dot(&v, &v).sqrt();
        for _ in 0..2 {
            let (earlier, _) = q.split_at(r * d);
            for (s, qs) in earlier.chunks_exact(d).enumerate() {
                c[s] = dot(qs, &v);
            }
            for (s, qs) in earlier.chunks_exact(d).enumerate() {
                let cs = c[s];
                for (vj, &qj) in v.iter_mut().zip(qs) {
                    *vj -= cs * qj;
                }
            }
        }
        // Gaussian rows are linearly independent with probability one; the remainder of
        // row r after removing r < d directions is a Gaussian in d − r dimensions.
        let rest = dot(&v, &v).sqrt();
        let row = &mut q[r * d..(r + 1) * d];
        for (o, &vj) in row.iter_mut().zip(&v) {
            *o = vj / rest;
        }
        norms.push(norm);
    }
    for (row, &norm) in q.chunks_exact_mut(d).zip(&norms) {
        for o in row {
            *o *= norm;
        }
    }
    (q, norms)
}

/// Row i of the plain Gaussian matrix (stream `Matrix`), four entries per Philox block.
fn gaussian_row(seed: u64, i: u32, out: &mut [f64]) {
    for (q, chunk) in out.chunks_mut(4).enumerate() {
        let g = philox::gaussians(philox::block(seed, Stream::Matrix as u32, i, q as u32));
        chunk.copy_from_slice(&g[..chunk.len()]);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
