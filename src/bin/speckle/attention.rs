//! `speckle op attention`, `speckle op gat` and `speckle bench attention`.

use std::path::PathBuf;

use clap::Args;
use speckle::bench::attention::bench_attention;
use speckle::ops::attention::{self, AttentionOptions, AttentionVariant};
use speckle::ops::gat::{self, GatOptions};
use speckle::{npy, Error, Gpu, Result};

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
    /// Output [B, Nq, H·D] (.npy).
    #[arg(short, long)]
    output: PathBuf,
    /// Accept NaN and infinity in the inputs.
    #[arg(long)]
    allow_nonfinite: bool,
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
    /// Causal mask (half the work counted).
    #[arg(long)]
    causal: bool,
    /// The fused kernel's variant: auto, subgroup, workgroup or texture (lavapipe).
    #[arg(long, default_value = "auto")]
    variant: String,
    /// Timed runs (median reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// JSON on standard output.
    #[arg(long)]
    json: bool,
}

pub fn op_attention(args: &AttentionArgs) -> Result<()> {
    let gpu = Gpu::new()?;
    let q = load(&gpu, &args.q, args.allow_nonfinite)?;
    let k = load(&gpu, &args.k, args.allow_nonfinite)?;
    let v = load(&gpu, &args.v, args.allow_nonfinite)?;
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
        other => {
            return Err(Error::invalid(format!(
                "unknown attention variant {other:?}; known: auto, subgroup, workgroup, texture"
            )))
        }
    };
    let gpu = Gpu::new()?;
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("benchmarking attention B={b} H={h} N={n} D={d} (fused and unfused) ...");
    }
    let r = bench_attention(
        &gpu,
        [b, h, n, d],
        args.causal,
        variant,
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
            "unfused {:.3} ms {tf:.4} TFLOP/s, fused {x:.2}x faster; max rel err fused {:.1e}, \
             unfused {err:.1e}",
            u.median_ms, r.fused_max_rel_err
        ),
        _ => format!(
            "unfused skipped ({}); max rel err fused {:.1e}",
            r.unfused_skipped.as_deref().unwrap_or("not run"),
            r.fused_max_rel_err
        ),
    };
    println!(
        "attention B={b} H={h} N={n} D={d}{}: fused ({}) {:.3} ms {:.4} TFLOP/s, {unfused} ({:?})",
        if args.causal { " causal" } else { "" },
        r.variant,
        r.fused.median_ms,
        r.fused_tflops,
        r.fused.method
    );
    Ok(())
}
