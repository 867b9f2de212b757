//! `speckle bench attention`: the fused kernel and the unfused pipeline (matmul → softmax →
//! matmul, the full score matrix in memory) on the same inputs in the same run
//! ([`bench_attention`]); with `--approx performer`, random-feature attention against the
//! exact fused kernel ([`bench_performer`]).

use super::{random_vec, time_dispatches, Timing};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::attention::{self, AttentionDims, AttentionOptions, AttentionVariant};
use crate::ops::performer::{self, PerformerOptions};
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

/// What [`bench_performer`] measures: one problem, the Performer options and the exact fused
/// kernel it is compared with.
#[derive(Clone, Copy, Debug)]
pub struct PerformerBench {
    /// [B, H, N, D]: batch, heads, sequence length (queries = keys), head dimension.
    pub shape: [usize; 4],
    /// Features m, seed of W, causal mask, orthogonal features, scale (the exact kernel gets
    /// the same scale and mask).
    pub options: PerformerOptions,
    /// The exact fused kernel's variant.
    pub variant: AttentionVariant,
    /// Q and K are uniform in [−amplitude, amplitude), V in [−1, 1) (see
    /// [`PerformerBenchResult::input`]).
    pub amplitude: f32,
    /// Untimed runs first.
    pub warmup: usize,
    /// Timed runs (median reported).
    pub runs: usize,
}

/// Performer (FAVOR+) against exact fused attention on the same inputs in the same run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PerformerBenchResult {
    /// `attention-performer`.
    pub op: String,
    /// [B, H, N, D].
    pub shape: Vec<usize>,
    /// Top-left causal mask (both methods).
    pub causal: bool,
    /// Random features m.
    pub features: usize,
    /// Seed of the random features W.
    pub seed: u64,
    /// Orthogonal random features.
    pub orthogonal: bool,
    /// The softmax scale used by both methods.
    pub scale: f32,
    /// The input distribution, e.g. `Q, K uniform [-0.5, 0.5); V uniform [-1, 1)`.
    pub input: String,
    /// Floating-point operations of Performer's matmuls ([`performer::flops`]).
    pub flops: f64,
    /// Performer's GPU work alone (a [`performer::plan`] with its work space allocated, rerun).
    pub performer: Timing,
    /// Its rate, TFLOP/s.
    pub performer_tflops: f64,
    /// ‖O_performer − O_exact‖ / ‖O_exact‖ over the whole output, O_exact as named by
    /// `reference`.
    pub rel_error: f64,
    /// `exact-fused`: the exact fused kernel's full output (itself within f32 rounding of the
    /// f64 reference, see `exact_max_rel_err`); `f64-sampled-rows`: the f64 reference on the
    /// sampled rows, where the exact kernel did not run.
    pub reference: String,
    /// The same relative error over the sampled rows only, against the f64 reference.
    pub rel_error_sampled: f64,
    /// The exact fused kernel's variant, if it ran.
    pub exact_variant: Option<String>,
    /// Its operations: 4·B·H·N²·D, halved when causal.
    pub exact_flops: f64,
    /// The exact fused kernel's GPU work on the same inputs; `None` where it cannot run
    /// (see `exact_skipped`).
    pub exact: Option<Timing>,
    /// Its rate, TFLOP/s.
    pub exact_tflops: Option<f64>,
    /// Exact median time / Performer median time (> 1: Performer is faster).
    pub speedup: Option<f64>,
    /// Why the exact kernel did not run, if it did not.
    pub exact_skipped: Option<String>,
    /// The exact kernel's largest relative error over the sampled rows against f64.
    pub exact_max_rel_err: Option<f64>,
    /// Query rows of the first batch checked against f64 (every head).
    pub checked_rows: usize,
}

/// Benchmarks Performer (random-feature attention) of `b.shape` against the exact fused kernel
/// on the same seeded inputs: GPU time of each, Performer's TFLOP/s, and its relative error
/// against exact attention.
pub fn bench_performer(gpu: &Gpu, b: &PerformerBench) -> Result<PerformerBenchResult> {
    let [batch, heads, n, d] = b.shape;
    if b.shape.contains(&0) {
        return Err(Error::invalid(format!(
            "attention shape B,H,N,D = {:?} has a zero",
            b.shape
        )));
    }
    if !(b.amplitude.is_finite() && b.amplitude > 0.0) {
        return Err(Error::invalid(format!(
            "the input amplitude must be finite and positive, got {}",
            b.amplitude
        )));
    }
    let opts = &b.options;
    let row = heads * d;
    let len = batch * n * row;
    let scaled = |seed| -> Vec<f32> {
        random_vec(len, seed)
            .into_iter()
            .map(|x| x * b.amplitude)
            .collect()
    };
    let (q_host, k_host, v_host) = (scaled(11), scaled(12), random_vec(len, 13));
    let shape3 = [batch, n, row];
    let q = Tensor::from_slice(gpu, &q_host, &shape3)?;
    let k = Tensor::from_slice(gpu, &k_host, &shape3)?;
    let v = Tensor::from_slice(gpu, &v_host, &shape3)?;
    let pdims = performer::dims(q.shape(), k.shape(), v.shape(), heads)?;
    let scale = opts.resolved_scale(d)?;

    let out = Tensor::filled(gpu, &shape3, f32::NAN)?;
    let plan = performer::plan(gpu, &q, &k, &v, &out, heads, opts)?;
    let timing = time_dispatches(gpu, &plan, b.warmup, b.runs, false)?;
    let performer_out = out.to_vec(gpu)?;
    drop(plan);

    let exact_run = || -> Result<(Timing, Vec<f32>, String)> {
        let dims = AttentionDims::new(q.shape(), k.shape(), v.shape(), heads)?;
        let options = AttentionOptions {
            scale: Some(scale),
            causal: opts.causal,
            variant: b.variant,
        };
        let out = Tensor::filled(gpu, &shape3, f32::NAN)?;
        let plan = attention::plan(gpu, &q, &k, &v, None, &out, heads, &options)?;
        let timing = time_dispatches(gpu, &plan, b.warmup, b.runs, false)?;
        let variant = attention::chosen_variant(gpu, &dims, &[&q, &k, &v, &out], b.variant)?;
        Ok((timing, out.to_vec(gpu)?, variant.name().to_string()))
    };
    let (exact, exact_out, exact_variant, exact_skipped) = match exact_run() {
        Ok((t, o, name)) => (Some(t), Some(o), Some(name), None),
        Err(e) => (None, None, None, Some(e.to_string())),
    };

    // The f64 reference on up to 32 query rows of the first batch, spread over the sequence.
    let picks: Vec<usize> = (0..32.min(n)).map(|t| t * n / 32.min(n)).collect();
    let (mut diff2, mut norm2, mut exact_err) = (0.0f64, 0.0f64, 0.0f64);
    for &i in &picks {
        for h in 0..heads {
            let reference = reference_row(
                &q_host,
                &k_host,
                &v_host,
                n,
                row,
                d,
                h,
                i,
                f64::from(scale),
                opts.causal,
            );
            let at = i * row + h * d;
            for (&o, &r) in performer_out[at..at + d].iter().zip(&reference) {
                diff2 += (f64::from(o) - r).powi(2);
                norm2 += r * r;
            }
            if let Some(e) = &exact_out {
                exact_err = exact_err.max(crate::cpu::relative_error(&e[at..at + d], &reference));
            }
        }
    }
    let rel_error_sampled = if performer_out.iter().all(|x| x.is_finite()) {
        (diff2 / norm2.max(f64::MIN_POSITIVE)).sqrt()
    } else {
        f64::INFINITY
    };
    let (rel_error, reference) = match &exact_out {
        Some(e) => {
            let e64: Vec<f64> = e.iter().map(|&x| f64::from(x)).collect();
            (
                crate::cpu::relative_error(&performer_out, &e64),
                "exact-fused",
            )
        }
        None => (rel_error_sampled, "f64-sampled-rows"),
    };
    let flops = performer::flops(&pdims, opts.features, opts.causal);
    let exact_flops = pdims.flops() * if opts.causal { 0.5 } else { 1.0 };
    Ok(PerformerBenchResult {
        op: "attention-performer".into(),
        shape: b.shape.to_vec(),
        causal: opts.causal,
        features: opts.features,
        seed: opts.seed,
        orthogonal: opts.orthogonal,
        scale,
        input: format!(
            "Q, K uniform [-{a}, {a}); V uniform [-1, 1)",
            a = b.amplitude
        ),
        flops,
        performer_tflops: flops / (timing.median_ms * 1e-3) * 1e-12,
        performer: timing.clone(),
        rel_error,
        reference: reference.into(),
        rel_error_sampled,
        exact_variant,
        exact_flops,
        exact_tflops: exact
            .as_ref()
            .map(|t| exact_flops / (t.median_ms * 1e-3) * 1e-12),
        speedup: exact.as_ref().map(|t| t.median_ms / timing.median_ms),
        exact_max_rel_err: exact.as_ref().map(|_| exact_err),
        exact,
        exact_skipped,
        checked_rows: picks.len(),
    })
}
