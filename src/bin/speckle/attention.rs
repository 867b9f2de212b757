//! `speckle op attention` (exact or `--approx performer`), `speckle op gat` and
//! `speckle bench attention`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use speckle::bench::attention::{bench_attention, bench_performer, PerformerBench};
use speckle::ops::attention::{self, AttentionOptions, AttentionVariant};
use speckle::ops::attention_f16::{self, AttentionF16Options};
use speckle::ops::gat::{self, GatOptions};
use speckle::ops::performer::{self, PerformerOptions, DEFAULT_FEATURES};
use speckle::projection::{Precision, DEFAULT_SEED};
use speckle::{npy, Error, Gpu, HalfTensor, Result, Tensor};

use crate::{load, save, to_json};

/// `speckle op attention`.
#[derive(Args)]
pub struct AttentionArgs {
    /// Queries [B, Nq, H·D] or [Nq, H·D] (.npy).
    q: PathBuf,
    /// Keys [B, Nk, H·D] or [Nk, H·D].
    k: PathBuf,
    /// Values, the shape of the keys.
    v: PathBuf,
    /// Number of heads H: head h is columns h·D .. (h+1)·D − 1.
    #[arg(long)]
    heads: usize,
    /// Causal mask aligned top-left: query i sees keys j <= i.
    #[arg(long)]
    causal: bool,
    /// Key mask [B, Nk] (or [Nk] when B = 1): 1 = attend, 0 = masked. A query that sees no
    /// key gets zeros.
    #[arg(long, value_name = "M.npy")]
    key_mask: Option<PathBuf>,
    /// Scale of the scores (default 1/sqrt(D)).
    #[arg(long, allow_negative_numbers = true)]
    scale: Option<f32>,
    /// f32, or f16: Q, K and V rounded to f16, products on the tensor cores where the adapter
    /// has them, f32 accumulation and output (D a multiple of 16 up to 128, at least 16
    /// keys, no key mask, exact attention only).
    #[arg(long, default_value = "f32")]
    precision: String,
    #[command(flatten)]
    approx: ApproxArgs,
    /// Output [B, Nq, H·D] (.npy).
    #[arg(short, long)]
    output: PathBuf,
    /// Accept NaN and infinity in the inputs.
    #[arg(long)]
    allow_nonfinite: bool,
}

/// How attention is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Approx {
    /// Exact softmax attention (the fused kernel).
    #[default]
    Exact,
    /// Random-feature attention (Performer, FAVOR+): O(N·m·D) per head, an unbiased
    /// estimate of the softmax kernel with m positive orthogonal random features.
    Performer,
}

/// `--approx`, `--features`, `--seed`: shared by `op attention` and `bench attention`.
#[derive(Args)]
pub struct ApproxArgs {
    /// exact (the fused kernel) or performer (random features, FAVOR+).
    #[arg(long, value_enum, default_value_t = Approx::Exact)]
    approx: Approx,
    /// Random features m of --approx performer [default: 256].
    #[arg(long, value_name = "M")]
    features: Option<usize>,
    /// Seed of the random features of --approx performer (a new seed redraws them)
    /// [default: the library's fixed seed].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

impl ApproxArgs {
    /// The Performer options, checked; `None` for exact attention (where --features and
    /// --seed are refused: they would be silently ignored).
    fn performer(&self, causal: bool, scale: Option<f32>) -> Result<Option<PerformerOptions>> {
        match self.approx {
            Approx::Exact => {
                if self.features.is_some() || self.seed.is_some() {
                    return Err(Error::invalid(
                        "--features and --seed choose the random features of --approx \
                         performer; exact attention has none",
                    ));
                }
                Ok(None)
            }
            Approx::Performer => {
                let features = self.features.unwrap_or(DEFAULT_FEATURES);
                if features == 0 {
                    return Err(Error::invalid(
                        "--features must be at least 1 (random features of --approx \
                         performer), got 0",
                    ));
                }
                Ok(Some(PerformerOptions {
                    features,
                    seed: self.seed.unwrap_or(DEFAULT_SEED),
                    causal,
                    orthogonal: true,
                    scale,
                }))
            }
        }
    }
}

/// `speckle op gat`.
#[derive(Args)]
pub struct GatArgs {
    /// Node features X [N, F] (.npy).
    x: PathBuf,
    /// Edges [num_edges, 2], int32 or int64: (source j, target i), a message from j to i.
    #[arg(long, value_name = "E.npy")]
    edges: PathBuf,
    /// W [F, H·F']: head h uses columns h·F' .. (h+1)·F' − 1.
    #[arg(long, value_name = "W.npy")]
    weight: PathBuf,
    /// A [H, 2F']: the first F' entries multiply W h_i (the target), the last F' W h_j.
    #[arg(long, value_name = "A.npy")]
    attn: PathBuf,
    /// Number of heads H.
    #[arg(long)]
    heads: usize,
    /// Add an edge i -> i for every node.
    #[arg(long)]
    self_loops: bool,
    /// Average the heads ([N, F']) instead of concatenating them ([N, H·F']).
    #[arg(long)]
    average: bool,
    /// LeakyReLU slope of the attention scores.
    #[arg(long, default_value_t = 0.2)]
    negative_slope: f32,
    /// Output Y (.npy).
    #[arg(short, long)]
    output: PathBuf,
}

/// `speckle bench attention`.
#[derive(Args)]
pub struct BenchAttentionArgs {
    /// B,H,N,D: batch, heads, sequence length, head dimension.
    #[arg(long, value_delimiter = ',', default_value = "1,4,1024,64")]
    shape: Vec<usize>,
    /// Query rows per batch, for problems with fewer queries than keys (decoding: 1 to a few
    /// per step; long contexts); default N. Not with --causal (aligned top-left) or --approx.
    #[arg(long, value_name = "NQ")]
    queries: Option<usize>,
    /// Causal mask (half the work counted).
    #[arg(long)]
    causal: bool,
    /// The fused kernel's variant: auto, subgroup, workgroup, texture (lavapipe) or blocked
    /// (register-blocked, D = 32 or 64). f32 only.
    #[arg(long, default_value = "auto")]
    variant: String,
    /// The fused kernel's operands: f32, or f16 (inputs rounded to f16, f32 accumulation,
    /// on the tensor cores where the adapter has them; the unfused pipeline stays f32).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Timed runs (median reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    #[command(flatten)]
    approx: ApproxArgs,
    /// With --approx performer: Q and K uniform in [-A, A) (V in [-1, 1)); 0.5 keeps the
    /// estimator's variance moderate at D = 64 (see `speckle study performer`).
    #[arg(long, value_name = "A")]
    amplitude: Option<f32>,
    /// JSON on standard output.
    #[arg(long)]
    json: bool,
}

pub fn op_attention(args: &AttentionArgs) -> Result<()> {
    let precision = Precision::from_name(&args.precision)?;
    let approx = args.approx.performer(args.causal, args.scale)?;
    if precision == Precision::F16 && (approx.is_some() || args.key_mask.is_some()) {
        return Err(Error::invalid(
            "--precision f16 computes exact attention without a key mask; drop --approx \
             performer and --key-mask, or use --precision f32",
        ));
    }
    if approx.is_some() && args.key_mask.is_some() {
        return Err(Error::invalid(
            "--key-mask is not supported with --approx performer (its sums over keys have no \
             mask); use --approx exact, or drop the masked keys from K and V",
        ));
    }
    let gpu = Gpu::new()?;
    let q = load(&gpu, &args.q, args.allow_nonfinite)?;
    let k = load(&gpu, &args.k, args.allow_nonfinite)?;
    let v = load(&gpu, &args.v, args.allow_nonfinite)?;
    if let Some(options) = &approx {
        let o = performer::run(&gpu, &q, &k, &v, args.heads, options)?;
        return save(&gpu, &args.output, &o);
    }
    if precision == Precision::F16 {
        let half = |x: &Tensor| HalfTensor::from_tensor(&gpu, x);
        let options = AttentionF16Options {
            scale: args.scale,
            causal: args.causal,
            ..Default::default()
        };
        let o = attention_f16::run(
            &gpu,
            &half(&q)?,
            &half(&k)?,
            &half(&v)?,
            args.heads,
            &options,
        )?;
        return save(&gpu, &args.output, &o);
    }
    let mask = match &args.key_mask {
        Some(path) => Some(load(&gpu, path, false)?),
        None => None,
    };
    let options = AttentionOptions {
        scale: args.scale,
        causal: args.causal,
        variant: AttentionVariant::Auto,
    };
    let o = attention::run(&gpu, &q, &k, &v, mask.as_ref(), args.heads, &options)?;
    save(&gpu, &args.output, &o)
}

pub fn op_gat(args: &GatArgs) -> Result<()> {
    let gpu = Gpu::new()?;
    let x = load(&gpu, &args.x, false)?;
    let w = load(&gpu, &args.weight, false)?;
    let a = load(&gpu, &args.attn, false)?;
    let nodes = x.shape()[0];
    let (values, shape) = npy::read_indices(&args.edges)?;
    let edges = gat::edges_from_npy_values(&values, &shape, nodes)
        .map_err(|e| e.in_context(args.edges.display()))?;
    let options = GatOptions {
        self_loops: args.self_loops,
        average: args.average,
        negative_slope: args.negative_slope,
    };
    let y = gat::run(&gpu, &x, &edges, &w, &a, args.heads, &options)?;
    save(&gpu, &args.output, &y)
}

pub fn bench(args: &BenchAttentionArgs, quiet: bool) -> Result<()> {
    let [b, h, n, d] = args.shape[..] else {
        return Err(Error::invalid(format!(
            "--shape takes B,H,N,D (four numbers), got {:?}",
            args.shape
        )));
    };
    let variant = match args.variant.as_str() {
        "auto" => AttentionVariant::Auto,
        "subgroup" => AttentionVariant::Subgroup,
        "workgroup" => AttentionVariant::Workgroup,
        "texture" => AttentionVariant::Texture,
        "blocked" => AttentionVariant::Blocked,
        other => {
            return Err(Error::invalid(format!(
                "unknown attention variant {other:?}; known: auto, subgroup, workgroup, texture, blocked"
            )))
        }
    };
    let precision = Precision::from_name(&args.precision)?;
    if precision == Precision::F16 && args.variant != "auto" {
        return Err(Error::invalid(format!(
            "--variant {} names an f32 kernel; --precision f16 runs the f16 kernel (its build \
             chosen by the adapter)",
            args.variant
        )));
    }
    if let Some(options) = args.approx.performer(args.causal, None)? {
        if args.queries.is_some() {
            return Err(Error::invalid(
                "--queries sets the query rows of exact attention; --approx performer measures \
                 self-attention of N rows",
            ));
        }
        if precision == Precision::F16 {
            return Err(Error::invalid(
                "--precision f16 measures exact attention; drop it with --approx performer",
            ));
        }
        return bench_performer_cli(args, [b, h, n, d], variant, options, quiet);
    }
    if args.amplitude.is_some() {
        return Err(Error::invalid(
            "--amplitude sets the inputs of --approx performer; the exact benchmark's inputs \
             are uniform in [-1, 1)",
        ));
    }
    let nq = args.queries.unwrap_or(n);
    let queries = if nq == n {
        String::new()
    } else {
        format!(" Nq={nq}")
    };
    let gpu = Gpu::new()?;
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "benchmarking attention B={b} H={h} N={n}{queries} D={d} (fused and unfused) ..."
        );
    }
    let r = bench_attention(
        &gpu,
        [b, h, n, d],
        nq,
        args.causal,
        variant,
        precision,
        args.warmup,
        args.runs,
    )?;
    if args.json {
        let value = serde_json::json!({ "adapter": gpu.summary(), "results": [r] });
        println!("{}", to_json(&value)?);
        return Ok(());
    }
    println!("adapter: {}", gpu.summary().name);
    let unfused = match (
        &r.unfused,
        r.unfused_tflops,
        r.speedup,
        r.unfused_max_rel_err,
    ) {
        (Some(u), Some(tf), Some(x), Some(err)) => format!(
            "unfused {:.3} ms {tf:.4} TFLOP/s, fused {}; max rel err fused {:.1e}, \
             unfused {err:.1e}",
            u.median_ms,
            if x >= 1.0 {
                format!("{x:.2}x faster")
            } else {
                format!("{:.2}x slower", 1.0 / x)
            },
            r.fused_max_rel_err
        ),
        _ => format!(
            "unfused skipped ({}); max rel err fused {:.1e}",
            r.unfused_skipped.as_deref().unwrap_or("not run"),
            r.fused_max_rel_err
        ),
    };
    println!(
        "attention B={b} H={h} N={n}{queries} D={d}{} {}: fused ({}) {:.3} ms {:.4} TFLOP/s, {unfused} ({:?})",
        if args.causal { " causal" } else { "" },
        r.precision,
        r.variant,
        r.fused.median_ms,
        r.fused_tflops,
        r.fused.method
    );
    Ok(())
}

/// `speckle bench attention --approx performer`.
fn bench_performer_cli(
    args: &BenchAttentionArgs,
    shape: [usize; 4],
    variant: AttentionVariant,
    options: PerformerOptions,
    quiet: bool,
) -> Result<()> {
    let [b, h, n, d] = shape;
    let gpu = Gpu::new()?;
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "benchmarking attention B={b} H={h} N={n} D={d} (performer m={} and exact fused) ...",
            options.features
        );
    }
    let r = bench_performer(
        &gpu,
        &PerformerBench {
            shape,
            options,
            variant,
            amplitude: args.amplitude.unwrap_or(0.5),
            warmup: args.warmup,
            runs: args.runs,
        },
    )?;
    if args.json {
        let value = serde_json::json!({ "adapter": gpu.summary(), "results": [r] });
        println!("{}", to_json(&value)?);
        return Ok(());
    }
    println!("adapter: {}", gpu.summary().name);
    let exact = match (&r.exact, r.exact_tflops, r.speedup) {
        (Some(t), Some(tf), Some(x)) => format!(
            "exact fused ({}) {:.3} ms {tf:.4} TFLOP/s; exact/performer time {x:.2}x",
            r.exact_variant.as_deref().unwrap_or("?"),
            t.median_ms
        ),
        _ => format!(
            "exact skipped ({})",
            r.exact_skipped.as_deref().unwrap_or("not run")
        ),
    };
    println!(
        "attention B={b} H={h} N={n} D={d}{}: performer (m={}, seed {}) {:.3} ms {:.4} TFLOP/s; \
         {exact}; rel error vs {} {:.3e} (vs f64 on {} sampled rows x {h} heads {:.3e}); \
         inputs {} ({:?})",
        if r.causal { " causal" } else { "" },
        r.features,
        r.seed,
        r.performer.median_ms,
        r.performer_tflops,
        r.reference,
        r.rel_error,
        r.checked_rows,
        r.rel_error_sampled,
        r.input,
        r.performer.method
    );
    Ok(())
}
