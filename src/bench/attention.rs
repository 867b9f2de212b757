//! `speckle bench attention`: the fused kernel and the unfused pipeline (matmul → softmax →
//! matmul, the full score matrix in memory) on the same inputs in the same run
//! ([`bench_attention`]); with `--approx performer`, random-feature attention against the
//! exact fused kernel ([`bench_performer`]).

use super::{random_vec, time_dispatches, Timing};
use crate::cpu::to_f16::to_f16_slice;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::attention::{self, AttentionDims, AttentionOptions, AttentionVariant};
use crate::ops::attention_f16::{self, AttentionF16Options};
use crate::ops::performer::{self, PerformerOptions};
use crate::projection::Precision;
use crate::tensor::{HalfTensor, Tensor};

/// The fused and unfused timings of one attention problem.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttentionBenchResult {
    /// `attention`.
    pub op: String,
    /// [B, H, N, D]: batch, heads, sequence length (keys), head dimension.
    pub shape: Vec<usize>,
    /// Query rows per batch: N, or fewer for a decoding-like problem (`--queries`).
    pub queries: usize,
    /// Top-left causal mask.
    pub causal: bool,
    /// The fused kernel's operands: `f32`, or `f16` (inputs rounded to f16, f32 accumulation;
    /// the unfused pipeline then runs in f32 on the same rounded values).
    pub precision: String,
    /// What the fused kernel ran: `texture`, or the tiled variant and its configuration
    /// (e.g. `subgroup-t4-wg128-bk32`).
    pub variant: String,
    /// Floating-point operations counted: 4·B·H·Nq·N·D, halved when causal.
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

/// The fused kernel measured on seeded inputs in [−1, 1): what [`bench_attention`] and
/// `speckle bench all` share.
pub(crate) struct FusedRun {
    pub(crate) q_host: Vec<f32>,
    pub(crate) k_host: Vec<f32>,
    pub(crate) v_host: Vec<f32>,
    pub(crate) dims: AttentionDims,
    pub(crate) causal: bool,
    /// The fused kernel's timing.
    pub(crate) timing: Timing,
    /// Its output.
    pub(crate) out: Vec<f32>,
    /// What ran ([`attention::AttentionChoice::name`]).
    pub(crate) choice: String,
}

impl FusedRun {
    /// Times the fused kernel on attention of shape `[batch, heads, n, head_dim]` with
    /// `queries` query rows per batch (n for self-attention): with `precision` f32
    /// [`attention`] in `variant`; with f16 the inputs rounded to f16 (the host copies too, so
    /// that the check compares with the attention of what the GPU holds) and
    /// [`attention_f16`] in the build the adapter gets (`variant` is then ignored). The causal
    /// mask needs `queries` = n (aligned top-left, fewer queries would not be a decoding step).
    #[expect(
        clippy::too_many_arguments,
        reason = "the problem, its mask, the kernel and the timing options"
    )]
    pub(crate) fn measure(
        gpu: &Gpu,
        shape: [usize; 4],
        queries: usize,
        causal: bool,
        variant: AttentionVariant,
        precision: Precision,
        warmup: usize,
        runs: usize,
    ) -> Result<FusedRun> {
        let [batch, heads, n, d] = shape;
        if shape.contains(&0) || queries == 0 {
            return Err(Error::invalid(format!(
                "attention shape B,H,N,D = {shape:?} with {queries} queries has a zero"
            )));
        }
        if causal && queries != n {
            return Err(Error::invalid(format!(
                "the causal mask is aligned top-left (query i sees keys j <= i), so with {queries} \
                 queries for {n} keys it would not be a decoding step; measure --queries without \
                 --causal"
            )));
        }
        let row = heads * d;
        let inputs = |rows, seed| {
            let x = random_vec(batch * rows * row, seed);
            match precision {
                Precision::F32 => x,
                Precision::F16 => to_f16_slice(&x),
            }
        };
        let (q_host, k_host, v_host) = (inputs(queries, 11), inputs(n, 12), inputs(n, 13));
        let (q_shape, kv_shape) = ([batch, queries, row], [batch, n, row]);
        let out = Tensor::filled(gpu, &q_shape, f32::NAN)?;
        let (plan, choice, dims) = match precision {
            Precision::F32 => {
                let q = Tensor::from_slice(gpu, &q_host, &q_shape)?;
                let k = Tensor::from_slice(gpu, &k_host, &kv_shape)?;
                let v = Tensor::from_slice(gpu, &v_host, &kv_shape)?;
                let dims = AttentionDims::new(q.shape(), k.shape(), v.shape(), heads)?;
                let options = AttentionOptions {
                    scale: None,
                    causal,
                    variant,
                };
                let choice = attention::choose(gpu, &dims, &[&q, &k, &v, &out], &options)?.name();
                let plan = attention::plan(gpu, &q, &k, &v, None, &out, heads, &options)?;
                (plan, choice, dims)
            }
            Precision::F16 => {
                let q = HalfTensor::from_f32(gpu, &q_host, &q_shape)?;
                let k = HalfTensor::from_f32(gpu, &k_host, &kv_shape)?;
                let v = HalfTensor::from_f32(gpu, &v_host, &kv_shape)?;
                let dims = attention_f16::dims(q.shape(), k.shape(), v.shape(), heads)?;
                let options = AttentionF16Options {
                    causal,
                    ..Default::default()
                };
                let choice = format!("f16-{}", options.kernel.resolve(gpu).name());
                let plan = attention_f16::plan(gpu, &q, &k, &v, &out, heads, &options)?;
                (plan, choice, dims)
            }
        };
        let timing = time_dispatches(gpu, &plan, warmup, runs, false)?;
        Ok(FusedRun {
            out: out.to_vec(gpu)?,
            q_host,
            k_host,
            v_host,
            dims,
            causal,
            timing,
            choice,
        })
    }

    /// The sampled f64 check of this problem.
    pub(crate) fn sample(&self) -> AttentionSample<'_> {
        AttentionSample {
            q: &self.q_host,
            k: &self.k_host,
            v: &self.v_host,
            nq: self.dims.nq,
            nk: self.dims.nk,
            heads: self.dims.heads,
            d: self.dims.head_dim,
            scale: f64::from(self.dims.default_scale()),
            causal: self.causal,
        }
    }

    /// Flops counted: 4·B·H·Nq·Nk·D, halved when causal.
    pub(crate) fn flops(&self) -> f64 {
        self.dims.flops() * if self.causal { 0.5 } else { 1.0 }
    }
}

/// Benchmarks attention of shape `[batch, heads, n, head_dim]` with `queries` query rows per
/// batch (n for self-attention; the causal mask needs n) on seeded inputs in [−1, 1)
/// (rounded to f16 with `precision` f16, which runs [`attention_f16`]; see
/// [`AttentionBenchResult::precision`]).
#[expect(
    clippy::too_many_arguments,
    reason = "the problem, its mask, the kernel and the timing options"
)]
pub fn bench_attention(
    gpu: &Gpu,
    shape: [usize; 4],
    queries: usize,
    causal: bool,
    variant: AttentionVariant,
    precision: Precision,
    warmup: usize,
    runs: usize,
) -> Result<AttentionBenchResult> {
    let fused = FusedRun::measure(
        gpu, shape, queries, causal, variant, precision, warmup, runs,
    )?;
    let [batch, heads, n, d] = shape;
    let dims = fused.dims;
    let unfused_run = || -> Result<(Timing, Vec<f32>)> {
        let bh = batch * heads;
        let head_major = |data: &[f32], rows| {
            Tensor::from_slice(
                gpu,
                &attention::to_head_major(data, batch, rows, heads, d),
                &[bh, rows, d],
            )
        };
        let (qh, kh, vh) = (
            head_major(&fused.q_host, queries)?,
            head_major(&fused.k_host, n)?,
            head_major(&fused.v_host, n)?,
        );
        let scores = Tensor::empty(gpu, &[bh, queries, n])?;
        let probs = Tensor::empty(gpu, &[bh, queries, n])?;
        let oh = Tensor::filled(gpu, &[bh, queries, d], f32::NAN)?;
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
        let out = attention::from_head_major(&oh.to_vec(gpu)?, batch, queries, heads, d);
        Ok((timing, out))
    };
    // The unfused pipeline stores B·H·Nq·N scores twice: where that does not fit the adapter,
    // the fused kernel is still measured and the baseline reported as skipped.
    let (unfused, unfused_out, unfused_skipped) = match unfused_run() {
        Ok((timing, out)) => (Some(timing), Some(out), None),
        Err(e) => (None, None, Some(e.to_string())),
    };

    let sample = fused.sample();
    let fused_err = sample.error(&fused.out);
    let unfused_err = unfused_out.as_ref().map_or(0.0, |u| sample.error(u));
    let flops = fused.flops();
    let timing = fused.timing.clone();
    Ok(AttentionBenchResult {
        op: "attention".into(),
        shape: shape.to_vec(),
        queries,
        causal,
        precision: precision.name().into(),
        variant: fused.choice.clone(),
        flops,
        fused_tflops: flops / (timing.median_ms * 1e-3) * 1e-12,
        unfused_tflops: unfused
            .as_ref()
            .map(|u| flops / (u.median_ms * 1e-3) * 1e-12),
        speedup: unfused.as_ref().map(|u| u.median_ms / timing.median_ms),
        unfused_max_rel_err: unfused.as_ref().map(|_| unfused_err),
        fused_max_rel_err: fused_err,
        fused: timing,
        unfused,
        unfused_skipped,
        checked_rows: sample.rows().count(),
    })
}

/// Seeded attention inputs of one batch (the first of the problem: Q `[Nq, H·D]`, K and V
/// `[Nk, H·D]`), to check an output against the f64 reference on sampled rows.
pub(crate) struct AttentionSample<'a> {
    pub(crate) q: &'a [f32],
    pub(crate) k: &'a [f32],
    pub(crate) v: &'a [f32],
    pub(crate) nq: usize,
    pub(crate) nk: usize,
    pub(crate) heads: usize,
    pub(crate) d: usize,
    pub(crate) scale: f64,
    pub(crate) causal: bool,
}

impl AttentionSample<'_> {
    /// The largest relative error of `out` (its first batch) over up to 32 query rows spread
    /// over the sequence, every head; a NaN or missing value gives infinity.
    pub(crate) fn error(&self, out: &[f32]) -> f64 {
        let row = self.heads * self.d;
        let mut worst = 0.0f64;
        for i in self.rows() {
            for h in 0..self.heads {
                let at = i * row + h * self.d;
                let err = match out.get(at..at + self.d) {
                    Some(got) => crate::cpu::relative_error(got, &self.reference_row(h, i)),
                    None => f64::INFINITY,
                };
                worst = worst.max(if err.is_nan() { f64::INFINITY } else { err });
            }
        }
        worst
    }

    /// The sampled query rows: up to 32, spread over the queries.
    pub(crate) fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        let rows = 32.min(self.nq);
        (0..rows).map(move |t| t * self.nq / rows)
    }

    /// Output row `i` of head `h`, in f64.
    pub(crate) fn reference_row(&self, h: usize, i: usize) -> Vec<f64> {
        let (d, row) = (self.d, self.heads * self.d);
        let keys = if self.causal {
            (i + 1).min(self.nk)
        } else {
            self.nk
        };
        let qi = &self.q[i * row + h * d..i * row + h * d + d];
        let scores: Vec<f64> = (0..keys)
            .map(|j| {
                let kj = &self.k[j * row + h * d..j * row + h * d + d];
                self.scale
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
            let vj = &self.v[j * row + h * d..j * row + h * d + d];
            for (o, &x) in out.iter_mut().zip(vj) {
                *o += w / total * f64::from(x);
            }
        }
        out
    }
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
        let choice = attention::choose(gpu, &dims, &[&q, &k, &v, &out], &options)?;
        Ok((timing, out.to_vec(gpu)?, choice.name()))
    };
    let (exact, exact_out, exact_variant, exact_skipped) = match exact_run() {
        Ok((t, o, name)) => (Some(t), Some(o), Some(name), None),
        Err(e) => (None, None, None, Some(e.to_string())),
    };

    let sample = AttentionSample {
        q: &q_host,
        k: &k_host,
        v: &v_host,
        nq: n,
        nk: n,
        heads,
        d,
        scale: f64::from(scale),
        causal: opts.causal,
    };
    let exact_err = exact_out.as_ref().map_or(0.0, |e| sample.error(e));
    // Performer's error is one norm over all sampled rows (each row alone is noisy).
    let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
    for i in sample.rows() {
        for h in 0..heads {
            let reference = sample.reference_row(h, i);
            let at = i * row + h * d;
            for (&o, &r) in performer_out[at..at + d].iter().zip(&reference) {
                diff2 += (f64::from(o) - r).powi(2);
                norm2 += r * r;
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
        checked_rows: sample.rows().count(),
    })
}
