//! f64 reference of `shaders/gat.wgsl` (with the `matmul` that computes Wh before it).

use crate::ops::gat::{GatDims, GatOptions};

/// One GAT layer in f64: X `[N, F]`, W `[F, H·F']`, A `[H, 2F']` (row-major), `edges` as
/// `[source j, target i]` pairs (a message flows from j to i), sizes `dims`. Returns
/// `[N, H·F']` (heads concatenated) or `[N, F']` (`options.average`), without activation.
///
/// Written directly from the definition, with no CSR and no online softmax, so that it checks
/// those: per target, the plain max-subtracted softmax of `LeakyReLU(s_dst[i] + s_src[j])` over
/// the incoming edges (duplicates counted, `(i, i)` added for every node with
/// `options.self_loops`); a node with no incoming edge gets zeros. The inputs must be valid
/// (as [`crate::ops::gat::plan`] checks them): indices below N, slices of the sizes `dims`
/// gives.
pub fn gat(
    x: &[f32],
    edges: &[[u32; 2]],
    w: &[f32],
    a: &[f32],
    dims: &GatDims,
    options: &GatOptions,
) -> Vec<f64> {
    let GatDims {
        nodes,
        features,
        heads,
        head_features: fo,
    } = *dims;
    let hf = heads * fo;
    let mut wh = vec![0.0f64; nodes * hf];
    for n in 0..nodes {
        for k in 0..features {
            let xv = f64::from(x[n * features + k]);
            for c in 0..hf {
                wh[n * hf + c] += xv * f64::from(w[k * hf + c]);
            }
        }
    }
    // score(n, h, half): half 0 multiplies the target's Wh, half 1 the source's.
    let score = |n: usize, h: usize, half: usize| -> f64 {
        (0..fo)
            .map(|f| f64::from(a[h * 2 * fo + half * fo + f]) * wh[n * hf + h * fo + f])
            .sum()
    };
    let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for &[j, i] in edges {
        incoming[i as usize].push(j as usize);
    }
    if options.self_loops {
        for (i, list) in incoming.iter_mut().enumerate() {
            list.push(i);
        }
    }
    let slope = f64::from(options.negative_slope);
    let out_cols = if options.average { fo } else { hf };
    let mut out = vec![0.0f64; nodes * out_cols];
    for (i, sources) in incoming.iter().enumerate() {
        if sources.is_empty() {
            continue;
        }
        for h in 0..heads {
            let dst = score(i, h, 0);
            let e: Vec<f64> = sources
                .iter()
                .map(|&j| {
                    let v = dst + score(j, h, 1);
                    if v > 0.0 {
                        v
                    } else {
                        slope * v
                    }
                })
                .collect();
            let max = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = e.iter().map(|v| (v - max).exp()).collect();
            let sum: f64 = weights.iter().sum();
            for (&j, &p) in sources.iter().zip(&weights) {
                let alpha = p / sum;
                for f in 0..fo {
                    let v = alpha * wh[j * hf + h * fo + f];
                    if options.average {
                        out[i * out_cols + f] += v / heads as f64;
                    } else {
                        out[i * out_cols + h * fo + f] += v;
                    }
                }
            }
        }
    }
    out
}
