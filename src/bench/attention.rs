//! `speckle bench attention`: the fused kernel and the unfused pipeline (matmul → softmax →
//! matmul, the full score matrix in memory) on the same inputs in the same run.

use super::{random_vec, time_dispatches, Timing};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::attention::{self, AttentionDims, AttentionOptions, AttentionVariant};
use crate::tensor::Tensor;

/// The fused and unfused timings of one attention problem.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttentionBenchResult {
    /// `attention`.
    pub op: String,
    /// [B, H, N, D]: batch, heads, sequence length (queries = keys), head dimension.
    pub shape: Vec<usize>,
    /// Top-left causal mask.
    pub causal: bool,
    /// The fused kernel's variant (`subgroup` or `workgroup`).
    pub variant: String,
    /// Floating-point operations counted: 4·B·H·N²·D, halved when causal.
    pub flops: f64,
    /// The fused kernel.
    pub fused: Timing,
    /// Its rate, TFLOP/s.
    pub fused_tflops: f64,
    /// The unfused pipeline's GPU work (its inputs already head-major on the GPU); `None`
    /// where its B·H·N² score matrices do not fit the adapter (see `unfused_skipped`).
    pub unfused: Option<Timing>,
    /// Its rate, TFLOP/s.
    pub unfused_tflops: Option<f64>,
    /// Unfused median time / fused median time (> 1: the fused kernel is faster).
    pub speedup: Option<f64>,
    /// Why the unfused pipeline did not run, if it did not.
    pub unfused_skipped: Option<String>,
    /// The largest relative error ‖o − ref‖/‖ref‖ of the fused kernel over the sampled
    /// (query, head) rows against the f64 reference.
    pub fused_max_rel_err: f64,
    /// The same for the unfused pipeline.
    pub unfused_max_rel_err: Option<f64>,
    /// Query rows of the first batch checked (every head).
    pub checked_rows: usize,
}

/// Benchmarks attention of shape `[batch, heads, n, head_dim]` on seeded inputs in [−1, 1).
pub fn bench_attention(
    gpu: &Gpu,
    shape: [usize; 4],
    causal: bool,
    variant: AttentionVariant,
    warmup: usize,
    runs: usize,
) -> Result<AttentionBenchResult> {
    let [batch, heads, n, d] = shape;
    if shape.contains(&0) {
        return Err(Error::invalid(format!(
            "attention shape B,H,N,D = {shape:?} has a zero"
        )));
    }
    let row = heads * d;
    let q_host = random_vec(batch * n * row, 11);
    let k_host = random_vec(batch * n * row, 12);
    let v_host = random_vec(batch * n * row, 13);
    let q = Tensor::from_slice(gpu, &q_host, &[batch, n, row])?;
    let k = Tensor::from_slice(gpu, &k_host, &[batch, n, row])?;
    let v = Tensor::from_slice(gpu, &v_host, &[batch, n, row])?;
    let dims = AttentionDims::new(q.shape(), k.shape(), v.shape(), heads)?;
    let options = AttentionOptions {
        scale: None,
        causal,
        variant,
    };
    let out = Tensor::filled(gpu, &[batch, n, row], f32::NAN)?;
    let fused_plan = attention::plan(gpu, &q, &k, &v, None, &out, heads, &options)?;
    let fused = time_dispatches(gpu, &fused_plan, warmup, runs, false)?;
    let fused_out = out.to_vec(gpu)?;

    let unfused_run = || -> Result<(Timing, Vec<f32>)> {
        let bh = batch * heads;
        let head_major = |data: &[f32]| {
            Tensor::from_slice(
                gpu,
                &attention::to_head_major(data, batch, n, heads, d),
                &[bh, n, d],
            )
        };
        let (qh, kh, vh) = (
            head_major(&q_host)?,
            head_major(&k_host)?,
            head_major(&v_host)?,
        );
        let scores = Tensor::empty(gpu, &[bh, n, n])?;
        let probs = Tensor::empty(gpu, &[bh, n, n])?;
        let oh = Tensor::filled(gpu, &[bh, n, d], f32::NAN)?;
        let plan = attention::unfused_plan(
            gpu,
            &qh,
            &kh,
            &vh,
            &scores,
            &probs,
            &oh,
            dims.default_scale(),
            causal,
        )?;
        let timing = time_dispatches(gpu, &plan, warmup, runs, false)?;
        let out = attention::from_head_major(&oh.to_vec(gpu)?, batch, n, heads, d);
        Ok((timing, out))
    };
    // The unfused pipeline stores B·H·N² scores twice: where that does not fit the adapter,
    // the fused kernel is still measured and the baseline reported as skipped.
    let (unfused, unfused_out, unfused_skipped) = match unfused_run() {
        Ok((timing, out)) => (Some(timing), Some(out), None),
        Err(e) => (None, None, Some(e.to_string())),
    };

    // The f64 reference for up to 32 query rows of the first batch, spread over the sequence.
    let picks: Vec<usize> = (0..32.min(n)).map(|t| t * n / 32.min(n)).collect();
    let scale = f64::from(dims.default_scale());
    let (mut fused_err, mut unfused_err) = (0.0f64, 0.0f64);
    for &i in &picks {
        for h in 0..heads {
            let reference =
                reference_row(&q_host, &k_host, &v_host, n, row, d, h, i, scale, causal);
            let at = i * row + h * d;
            fused_err = fused_err.max(crate::cpu::relative_error(
                &fused_out[at..at + d],
                &reference,
            ));
            if let Some(u) = &unfused_out {
                unfused_err =
                    unfused_err.max(crate::cpu::relative_error(&u[at..at + d], &reference));
            }
        }
    }
    let flops = dims.flops() * if causal { 0.5 } else { 1.0 };
    let variant_name = attention::chosen_variant(gpu, &dims, &[&q, &k, &v, &out], variant)?
        .name()
        .to_string();
    Ok(AttentionBenchResult {
        op: "attention".into(),
        shape: shape.to_vec(),
        causal,
        variant: variant_name,
        flops,
        fused_tflops: flops / (fused.median_ms * 1e-3) * 1e-12,
        unfused_tflops: unfused
            .as_ref()
            .map(|u| flops / (u.median_ms * 1e-3) * 1e-12),
        speedup: unfused.as_ref().map(|u| u.median_ms / fused.median_ms),
        unfused_max_rel_err: unfused.as_ref().map(|_| unfused_err),
        fused_max_rel_err: fused_err,
        fused,
        unfused,
        unfused_skipped,
        checked_rows: picks.len(),
    })
}

/// Head `h` of query row `i` (batch 0) in f64.
#[expect(
    clippy::too_many_arguments,
    reason = "one row of a reference, all explicit"
)]
fn reference_row(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n: usize,
    row: usize,
    d: usize,
    h: usize,
    i: usize,
    scale: f64,
    causal: bool,
) -> Vec<f64> {
    let keys = if causal { i + 1 } else { n };
    let qi = &q[i * row + h * d..i * row + h * d + d];
    let scores: Vec<f64> = (0..keys)
        .map(|j| {
            let kj = &k[j * row + h * d..j * row + h * d + d];
            scale
                * qi.iter()
                    .zip(kj)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>()
        })
        .collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut out = vec![0.0; d];
    for (j, w) in weights.iter().enumerate() {
        let vj = &v[j * row + h * d..j * row + h * d + d];
        for (o, &x) in out.iter_mut().zip(vj) {
            *o += w / total * f64::from(x);
        }
    }
    out
}
