//! The `speckle` command line: adapter information, single kernels on `.npy` files, benchmarks.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod attention;
mod bench_all;
mod output;
mod performer;
mod reconstruct;
mod roofline;
mod study;
mod trained;
mod tune;

use clap::{Args, Parser, Subcommand};
use speckle::bench::{self, BenchReport, MatmulBench};
use speckle::ops::{activation, matmul, reduce, softmax, transpose};
use speckle::{
    npy, Activation, Error, Gpu, MatmulConfig, MatmulOptions, Reduction, Result, SoftmaxOptions,
    Tensor,
};

#[derive(Parser)]
#[command(
    name = "speckle",
    version = speckle::version(),
    about = "GPU compute kernels for random projections and attention (WGSL on wgpu)",
    long_about = "GPU compute kernels for random projections and attention (WGSL on wgpu).\n\n\
        The adapter is the best one present (discrete > integrated > CPU) unless \
        SPECKLE_ADAPTER names another (a substring of its name; see `speckle info`). \
        RUST_LOG overrides -v/-q for logging."
)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Adapters present, the one chosen, its backend, driver, features and limits.
    Info {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run one kernel on .npy files.
    #[command(subcommand)]
    Op(Op),
    /// Random projection or random features of the rows of X: Y = f(R X) with R seeded.
    Project(ProjectArgs),
    /// Benchmark kernels against a CPU baseline.
    #[command(subcommand)]
    Bench(Bench),
    /// Recover an image from the features of random-weight encoders (linear, ReLU, deep ReLU,
    /// optical |R x|²) on the GPU; writes grid.png, psnr.png and report.json.
    Reconstruct(reconstruct::ReconstructArgs),
    /// Studies that run many configurations and write plots and JSON.
    #[command(subcommand)]
    Study(Study),
    /// Measure candidate kernel configurations (tiles, workgroups, variants) on this adapter
    /// and cache the fastest correct one per shape class; later runs use it automatically.
    Tune(tune::TuneArgs),
}

#[derive(Args)]
struct ProjectionChoice {
    /// gaussian, orthogonal, rademacher, sparse, optical, srht, srht-optical, rff, relu or
    /// positive (conventions: README).
    #[arg(long, default_value = "gaussian")]
    kind: String,
    /// Seed of the matrix (the default is fixed, never time-based).
    #[arg(long, default_value_t = speckle::projection::DEFAULT_SEED)]
    seed: u64,
    /// Regenerate the matrix inside the kernel instead of storing it (any size).
    #[arg(long)]
    matrix_free: bool,
    /// γ of the RBF kernel for rff.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    gamma: f64,
    /// s of the sparse kind (density 1/s; default sqrt(d)).
    #[arg(long, allow_negative_numbers = true)]
    s: Option<f64>,
    /// Scaling of the optical kind: standard (E[y_i] = |x|^2) or lightonml (parts N(0, 1/d)).
    #[arg(long, default_value = "standard")]
    scaling: String,
    /// Orthogonal random features: draw the Gaussian matrix of rff, relu or positive with
    /// rows orthogonal in blocks of d (chi-distributed norms). Materialized mode only.
    #[arg(long)]
    orthogonal: bool,
    /// Record the optical kinds' intensities with a camera: gain=G,bits=B,noise=SEED (each
    /// optional; defaults gain=1, bits=8, no noise). Quantizes to 0 .. 2^B - 1, saturating;
    /// noise adds seeded shot noise.
    #[arg(long, value_name = "SPEC")]
    camera: Option<String>,
    /// Precision of the materialized product: f32, or f16 (matrix and inputs rounded to f16,
    /// f32 accumulation, tensor cores where the adapter has them; d and n_out multiples of 4).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// The materialized optical kind: run the two products and the finishing pass instead of
    /// the fused |R x|² pass (for comparison; the results agree to rounding).
    #[arg(long, conflicts_with = "fused")]
    unfused: bool,
    /// The materialized optical kind: the fused |R x|² pass also on CPU adapters (by default
    /// fused on GPUs only, where d and n_out are multiples of 4).
    #[arg(long)]
    fused: bool,
}

impl ProjectionChoice {
    fn build(&self, d: usize, n_out: usize) -> Result<speckle::projection::Projection> {
        use speckle::ops::project_finish::Camera;
        use speckle::projection::{Fusion, Kind, Mode, Projection, Scaling};
        let kind = Kind::from_name(&self.kind, self.gamma, self.s)?;
        let mut p = Projection::new(kind, n_out, self.seed);
        p.mode = if self.matrix_free {
            Mode::MatrixFree
        } else {
            Mode::Materialized
        };
        p.scaling = match self.scaling.as_str() {
            "standard" => Scaling::Standard,
            "lightonml" => Scaling::Lightonml,
            other => {
                return Err(Error::invalid(format!(
                    "unknown scaling {other:?}; known: standard, lightonml"
                )))
            }
        };
        p.orthogonal = self.orthogonal;
        p.camera = self.camera.as_deref().map(Camera::parse).transpose()?;
        p.precision = speckle::projection::Precision::from_name(&self.precision)?;
        p.fused = match (self.fused, self.unfused) {
            (true, _) => Fusion::Fused,
            (_, true) => Fusion::Unfused,
            _ => Fusion::Auto,
        };
        p.fit(d)?;
        Ok(p)
    }
}

#[derive(Args)]
struct ProjectArgs {
    #[command(flatten)]
    projection: ProjectionChoice,
    /// Output dimension.
    #[arg(long)]
    n_out: usize,
    /// Inputs: [batch, d] or [d] (.npy).
    input: PathBuf,
    /// Output .npy: [batch, n_out] or [n_out].
    #[arg(short, long)]
    output: PathBuf,
    /// Accept NaN and infinity in the input.
    #[arg(long)]
    allow_nonfinite: bool,
    /// Encode the input first, as binary optical hardware needs: threshold (1 where
    /// x > --threshold) or bitplane (integers 0 .. 2^--bits - 1 split into bit planes; a linear
    /// kind's projections of the planes are recombined into R x exactly, other kinds output
    /// [batch, bits, n_out]).
    #[arg(long, value_name = "ENCODER")]
    encoder: Option<String>,
    /// Level of the threshold encoder (0.5 suits data in [0, 1]; lightonml uses 25 for 8-bit
    /// data).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    threshold: f32,
    /// Bits of the bitplane encoder.
    #[arg(long, default_value_t = 8)]
    bits: u32,
}

#[derive(Subcommand)]
enum Op {
    /// C = act(alpha·op(A)·op(B) + beta·C0 + bias); 2-D [m, k] x [k, n] or batched 3-D.
    Matmul(MatmulArgs),
    /// Softmax along the last axis.
    Softmax(SoftmaxArgs),
    /// The last two axes swapped: [..., r, c] -> [..., c, r].
    Transpose(UnaryArgs),
    /// Fused multi-head scaled-dot-product attention: O = softmax(scale·Q Kᵀ) V per head;
    /// --approx performer approximates it with random features (FAVOR+).
    Attention(attention::AttentionArgs),
    /// One graph-attention (GAT) layer over the edges of a graph.
    Gat(attention::GatArgs),
    /// max(x, 0).
    Relu(UnaryArgs),
    /// x for x > 0, slope·x otherwise.
    #[command(name = "leaky_relu", alias = "leaky-relu")]
    LeakyRelu {
        #[command(flatten)]
        io: UnaryArgs,
        /// Slope for x <= 0.
        #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
        slope: f32,
    },
    /// GELU, tanh form.
    Gelu(UnaryArgs),
    /// SELU (scaled ELU, keeps unit variance).
    Selu(UnaryArgs),
    /// tanh(x).
    Tanh(UnaryArgs),
    /// x².
    Square(UnaryArgs),
    /// |x|.
    Abs(UnaryArgs),
    /// 1 where x > level, else 0.
    Threshold {
        #[command(flatten)]
        io: UnaryArgs,
        /// The level.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        level: f32,
    },
    /// Sum of each row (last axis).
    Sum(UnaryArgs),
    /// Sum of squares of each row.
    #[command(name = "sum_squares", alias = "sum-squares")]
    SumSquares(UnaryArgs),
    /// Euclidean norm of each row.
    Norm(UnaryArgs),
    /// Maximum of each row.
    Max(UnaryArgs),
}

#[derive(Args)]
struct UnaryArgs {
    /// Input .npy (float32 or float64, C order).
    input: PathBuf,
    /// Output .npy (float32); written only when the whole run succeeds.
    #[arg(short, long)]
    output: PathBuf,
    /// Accept NaN and infinity in the input (results on them are not guaranteed).
    #[arg(long)]
    allow_nonfinite: bool,
}

#[derive(Args)]
struct MatmulArgs {
    /// A: [m, k] or [batch, m, k] (.npy).
    a: PathBuf,
    /// B: [k, n] or [batch, k, n] (.npy).
    b: PathBuf,
    /// Output C (.npy).
    #[arg(short, long)]
    output: PathBuf,
    /// Use Aᵀ (A stored as [k, m]).
    #[arg(long)]
    transpose_a: bool,
    /// Use Bᵀ (B stored as [n, k]).
    #[arg(long)]
    transpose_b: bool,
    /// Scale of the product.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    alpha: f32,
    /// Scale of the initial C given by --c.
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        requires = "c"
    )]
    beta: f32,
    /// Initial C (.npy, the output's shape), added times --beta.
    #[arg(long)]
    c: Option<PathBuf>,
    /// Bias added to every row (.npy with n values).
    #[arg(long)]
    bias: Option<PathBuf>,
    /// Activation applied last (identity, relu, leaky_relu, gelu, selu, tanh, square, abs, threshold).
    #[arg(long, default_value = "identity")]
    activation: String,
    /// Slope of leaky_relu.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    slope: f32,
    /// Level of threshold.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    level: f32,
    /// Workgroup shape WGXxWGY (default: chosen for the adapter).
    #[arg(long)]
    config: Option<MatmulConfig>,
    /// Accept NaN and infinity in the inputs.
    #[arg(long)]
    allow_nonfinite: bool,
}

#[derive(Args)]
struct SoftmaxArgs {
    #[command(flatten)]
    io: UnaryArgs,
    /// Multiply the input by this first.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    scale: f32,
    /// Causal mask: for [..., Nq, Nk], query i sees keys j <= i.
    #[arg(long)]
    causal: bool,
}

#[derive(Subcommand)]
enum Study {
    /// Signal propagation through deep random networks: norms and Jacobian spread against
    /// depth for initialization laws, activations, gains and widths. Default set: he+relu,
    /// xavier+relu, xavier+tanh, lecun+selu, xavier+linear at gains 0.9, 1, 1.1.
    Propagation(study::PropagationArgs),
    /// Random-feature attention (Performer, FAVOR+) against exact attention: relative error
    /// against the number of features m (over several seeds), GPU time against the sequence
    /// length N for both, and the crossover N; writes error.png, time.png and results.json.
    Performer(performer::PerformerStudyArgs),
    /// Trained versus random weights: trains an MLP on the shapes task, then reconstructs
    /// held-out images from the top hidden layer of the trained and of random weights (a
    /// compressive and an expanding regime), with the PSNR along training; writes grid.png,
    /// history.png and results.json.
    TrainedVsRandom(trained::TrainedVsRandomArgs),
}

#[derive(Subcommand)]
enum Bench {
    /// Every kernel at standard sizes: GFLOP/s, GB/s and the fraction of the roofline measured
    /// in the same run, the CPU baseline, the error against the f64 reference; --json for
    /// scripts/bench_compare.py, --markdown for BENCHMARKS.md.
    All(bench_all::BenchAllArgs),
    /// Square f32 matmul: GPU GFLOP/s against the CPU GEMM of the same run.
    Matmul {
        /// Sizes n of the n×n×n products.
        #[arg(long, value_delimiter = ',', default_value = "256,512,1024")]
        sizes: Vec<usize>,
        /// Timed runs per size (median reported).
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Untimed runs first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Workgroup shape WGXxWGY (default: chosen for the adapter).
        #[arg(long)]
        config: Option<MatmulConfig>,
        /// Time with the host clock (submit + wait) even where GPU timestamps exist.
        #[arg(long)]
        wall_clock: bool,
        /// Skip the CPU baseline (for quick tuning sweeps).
        #[arg(long)]
        no_cpu: bool,
        /// JSON on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Attention: the fused kernel against the unfused matmul → softmax → matmul pipeline;
    /// with --approx performer, random-feature attention against the fused kernel.
    Attention(attention::BenchAttentionArgs),
    /// The measured roofline: peak FMA throughput (GFLOP/s) and copy bandwidth (GB/s).
    Roofline(roofline::BenchRooflineArgs),
    /// A random projection: vectors per second, GFLOP/s, and the f64 CPU reference's rate.
    Project {
        #[command(flatten)]
        projection: ProjectionChoice,
        /// batch,d,n_out.
        #[arg(long, value_delimiter = ',', default_value = "8,4096,8192")]
        shape: Vec<usize>,
        /// Timed runs (median reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Untimed runs first.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// JSON on standard output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // Our own crate at the chosen level; wgpu's chatter one step quieter unless RUST_LOG says.
    let default = format!("{level},wgpu_core=warn,wgpu_hal=warn,naga=warn");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp(None)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { json } => info(json),
        Command::Op(op) => run_op(op),
        Command::Project(args) => project(&args),
        Command::Reconstruct(args) => reconstruct::run(&args, cli.quiet),
        Command::Tune(args) => tune::run(&args, cli.quiet),
        Command::Study(Study::Propagation(args)) => study::propagation(&args, cli.quiet),
        Command::Study(Study::Performer(args)) => performer::study(&args, cli.quiet),
        Command::Study(Study::TrainedVsRandom(args)) => trained::study(&args, cli.quiet),
        Command::Bench(Bench::Attention(args)) => attention::bench(&args, cli.quiet),
        Command::Bench(Bench::Roofline(args)) => roofline::bench(&args, cli.quiet),
        Command::Bench(Bench::All(args)) => bench_all::run(&args, cli.quiet),
        Command::Bench(Bench::Project {
            projection,
            shape,
            runs,
            warmup,
            json,
        }) => {
            let gpu = Gpu::new()?;
            let [batch, d, _] = shape[..] else {
                return Err(Error::invalid("--shape takes batch,d,n_out"));
            };
            if shape.contains(&0) {
                return Err(Error::invalid(format!("--shape {shape:?} has a zero")));
            }
            let projection = projection.build(d, shape[2])?;
            if !cli.quiet && std::io::stderr().is_terminal() {
                eprintln!(
                    "benchmarking project {} {batch}x{d} -> {} ...",
                    projection.kind.name(),
                    projection.n_out
                );
            }
            let result = bench::bench_project(&gpu, &projection, batch, warmup, runs)?;
            if json {
                let value = serde_json::json!({ "adapter": gpu.summary(), "results": [result] });
                println!("{}", to_json(&value)?);
            } else {
                println!("adapter: {}", gpu.summary().name);
                let entries = if result.entries_per_s.is_finite() {
                    format!(", {:.3e} entries/s", result.entries_per_s)
                } else {
                    String::new()
                };
                println!(
                    "project {} ({}) {}x{} -> {}: {:.3} vectors/s, {:.3} GFLOP/s{entries}; \
                     f64 CPU reference {:.3} vectors/s; rel err {:.1e} on {} rows; {:.2} ms ({:?})",
                    result.kind,
                    result.mode,
                    batch,
                    d,
                    projection.n_out,
                    result.vectors_per_s,
                    result.gpu_gflops,
                    result.cpu_reference_vectors_per_s,
                    result.rel_err,
                    result.checked_rows,
                    result.timing.median_ms,
                    result.timing.method
                );
            }
            Ok(())
        }
        Command::Bench(Bench::Matmul {
            sizes,
            runs,
            warmup,
            config,
            wall_clock,
            no_cpu,
            json,
        }) => {
            let gpu = Gpu::new()?;
            let show_progress = !cli.quiet && std::io::stderr().is_terminal();
            let options = MatmulBench {
                sizes,
                runs,
                warmup,
                config,
                wall_clock,
                cpu_baseline: !no_cpu,
            };
            let results = bench::bench_matmul(&gpu, &options, |what| {
                if show_progress {
                    eprintln!("benchmarking {what} ...");
                }
            })?;
            let report = BenchReport {
                adapter: gpu.summary(),
                results,
            };
            if json {
                println!("{}", to_json(&report)?);
            } else {
                print_bench(&report);
            }
            Ok(())
        }
    }
}

pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("JSON encoding failed: {e}")))
}

fn print_bench(report: &BenchReport) {
    let a = &report.adapter;
    println!(
        "adapter: {} ({}, {}, driver {} {})",
        a.name, a.backend, a.device_type, a.driver, a.driver_info
    );
    println!(
        "{:<8} {:>18} {:>8} {:>10} {:>10} {:>8} {:>11} {:>14}",
        "op", "m x n x k", "kernel", "GPU GF/s", "CPU GF/s", "vs CPU", "max rel err", "timing"
    );
    for r in &report.results {
        let shape: Vec<String> = r.shape.iter().map(|d| d.to_string()).collect();
        println!(
            "{:<8} {:>18} {:>8} {:>10.1} {:>10.1} {:>7.2}x {:>11.2e} {:>14}",
            r.op,
            shape.join(" x "),
            r.kernel,
            r.gpu_gflops,
            r.cpu_gflops,
            r.vs_cpu,
            r.max_rel_err,
            match r.timing.method {
                bench::TimingMethod::GpuTimestamp => "gpu-timestamp",
                bench::TimingMethod::WallClock => "wall-clock",
            }
        );
    }
    println!(
        "CPU baseline: {}",
        report
            .results
            .first()
            .map_or("", |r| r.cpu_library.as_str())
    );
}

fn info(json: bool) -> Result<()> {
    let adapters = Gpu::adapters();
    let gpu = Gpu::new()?;
    let l = gpu.limits();
    let limits = serde_json::json!({
        "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
        "max_buffer_size": l.max_buffer_size,
        "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
        "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
        "max_compute_workgroup_size_x": l.max_compute_workgroup_size_x,
        "max_compute_workgroup_size_y": l.max_compute_workgroup_size_y,
        "max_compute_workgroup_size_z": l.max_compute_workgroup_size_z,
        "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
        "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
        "min_storage_buffer_offset_alignment": l.min_storage_buffer_offset_alignment,
        "min_subgroup_size": gpu.adapter_info().subgroup_min_size,
        "max_subgroup_size": gpu.adapter_info().subgroup_max_size,
    });
    let features: Vec<&str> = gpu.features().iter_names().map(|(n, _)| n).collect();
    let matmul_config = MatmulConfig::for_gpu(&gpu)?;
    let cooperative: Vec<String> = gpu
        .cooperative_matrix_properties()
        .iter()
        .map(|c| {
            format!(
                "{}x{}x{} {:?}->{:?}",
                c.m_size, c.n_size, c.k_size, c.ab_type, c.cr_type
            )
        })
        .collect();
    let loop_limit = gpu.loop_limit()?;
    let tuned = gpu.tune_table();
    let tuning = serde_json::json!({
        "cache": tuned.source(),
        "entries": tuned.entries().len(),
    });
    if json {
        let value = serde_json::json!({
            "version": speckle::version(),
            "adapter": gpu.summary(),
            "adapters": adapters,
            "features": features,
            "limits": limits,
            "matmul_config": matmul_config.to_string(),
            "tuning": tuning,
            "cooperative_matrix": cooperative,
            "loop_limit": loop_limit,
            "kernels": speckle::shaders::ALL.iter().map(|k| k.name).collect::<Vec<_>>(),
        });
        println!("{}", to_json(&value)?);
        return Ok(());
    }
    println!("speckle {}", speckle::version());
    println!("adapters (best first):");
    for a in &adapters {
        println!(
            "  {} [{}, {}] driver: {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    let s = gpu.summary();
    println!("chosen: {} [{}, {}]", s.name, s.backend, s.device_type);
    println!(
        "features used: {}",
        if features.is_empty() {
            "none".into()
        } else {
            features.join(", ")
        }
    );
    println!("limits:");
    if let serde_json::Value::Object(map) = limits {
        for (k, v) in map {
            println!("  {k}: {v}");
        }
    }
    println!("matmul default: {matmul_config}");
    println!(
        "cooperative matrices: {}",
        if cooperative.is_empty() {
            "none (no tensor-core path)".to_owned()
        } else {
            cooperative.join(", ")
        }
    );
    match loop_limit {
        Some(limit) => println!(
            "loop limit: {limit} iterations per invocation (the adapter ends loops there; \
             kernels split their work below it)"
        ),
        None => println!(
            "loop limit: none found ({} iterations ran)",
            speckle::ops::loop_limit::PROBE_ITERATIONS
        ),
    }
    match tuned.source() {
        Some(path) => println!(
            "tuned configurations: {} for this adapter in {}",
            tuned.entries().len(),
            path.display()
        ),
        None => println!("tuned configurations: not used (SPECKLE_TUNE=off or no cache directory)"),
    }
    Ok(())
}

/// Reads a float input and refuses non-finite values unless allowed.
/// `speckle project`: encode (optionally), project, decode bit planes of a linear kind.
fn project(args: &ProjectArgs) -> Result<()> {
    use speckle::ops::encode::{self, Encoder};
    let encoder = args
        .encoder
        .as_deref()
        .map(|name| Encoder::from_name(name, args.threshold, args.bits))
        .transpose()?;
    let (data, shape) = npy::read_f32(&args.input)?;
    if !args.allow_nonfinite || encoder.is_some() {
        speckle::check_finite(&args.input.display().to_string(), &data)?;
    }
    let (batch, d) = match shape[..] {
        [d] => (1, d),
        [b, d] => (b, d),
        _ => {
            return Err(Error::shape(
                "project",
                format!(
                    "{}: inputs must be [batch, d] or [d], got {shape:?}",
                    args.input.display()
                ),
            ))
        }
    };
    if let Some(Encoder::Bitplane { bits }) = encoder {
        encode::check_bitplane_input(&data, bits)
            .map_err(|e| e.in_context(args.input.display()))?;
    }
    let gpu = Gpu::new()?;
    let projection = args.projection.build(d, args.n_out)?;
    let x = Tensor::from_slice(&gpu, &data, &[batch, d])?;
    let (x, planes) = match encoder {
        None => (x, 1),
        Some(e) => {
            let rows = e.output_rows();
            (
                encode::encode(&gpu, e, &x)?.reshape(&[batch * rows, d])?,
                rows,
            )
        }
    };
    let y = projection.transform(&gpu, &x)?;
    let n_out = args.n_out;
    let y = match encoder {
        Some(Encoder::Bitplane { bits }) if projection.kind.is_linear() => {
            encode::decode(&gpu, bits, &y.reshape(&[batch, planes, n_out])?)?
        }
        _ if planes > 1 => y.reshape(&[batch, planes, n_out])?,
        _ => y,
    };
    // A 1-D input gives a 1-D output (or [bits, n_out] for undecoded planes).
    let y = if shape.len() == 1 {
        let rest = y.shape()[1..].to_vec();
        y.reshape(&rest)?
    } else {
        y
    };
    save(&gpu, &args.output, &y)
}

pub(crate) fn load(gpu: &Gpu, path: &Path, allow_nonfinite: bool) -> Result<Tensor> {
    let (data, shape) = npy::read_f32(path)?;
    if !allow_nonfinite {
        speckle::check_finite(&path.display().to_string(), &data)?;
    }
    Tensor::from_slice(gpu, &data, &shape)
}

pub(crate) fn save(gpu: &Gpu, path: &Path, t: &Tensor) -> Result<()> {
    npy::write_f32(path, &t.to_vec(gpu)?, t.shape())
}

fn run_op(op: Op) -> Result<()> {
    let unary_activation = |io: &UnaryArgs, act: Activation| -> Result<()> {
        let gpu = Gpu::new()?;
        let x = load(&gpu, &io.input, io.allow_nonfinite)?;
        let y = activation::run(&gpu, act, &x)?;
        save(&gpu, &io.output, &y)
    };
    let reduction = |io: &UnaryArgs, r: Reduction| -> Result<()> {
        let gpu = Gpu::new()?;
        let x = load(&gpu, &io.input, io.allow_nonfinite)?;
        let y = reduce::run(&gpu, r, &x)?;
        save(&gpu, &io.output, &y)
    };
    match op {
        Op::Matmul(args) => op_matmul(&args),
        Op::Softmax(args) => {
            let gpu = Gpu::new()?;
            let x = load(&gpu, &args.io.input, args.io.allow_nonfinite)?;
            let options = SoftmaxOptions {
                scale: args.scale,
                causal: args.causal,
            };
            let y = softmax::run(&gpu, &x, &options)?;
            save(&gpu, &args.io.output, &y)
        }
        Op::Transpose(io) => {
            let gpu = Gpu::new()?;
            let x = load(&gpu, &io.input, io.allow_nonfinite)?;
            save(&gpu, &io.output, &transpose::run(&gpu, &x)?)
        }
        Op::Attention(args) => attention::op_attention(&args),
        Op::Gat(args) => attention::op_gat(&args),
        Op::Relu(io) => unary_activation(&io, Activation::Relu),
        Op::LeakyRelu { io, slope } => unary_activation(&io, Activation::LeakyRelu { slope }),
        Op::Gelu(io) => unary_activation(&io, Activation::Gelu),
        Op::Selu(io) => unary_activation(&io, Activation::Selu),
        Op::Tanh(io) => unary_activation(&io, Activation::Tanh),
        Op::Square(io) => unary_activation(&io, Activation::Square),
        Op::Abs(io) => unary_activation(&io, Activation::Abs),
        Op::Threshold { io, level } => unary_activation(&io, Activation::Threshold { level }),
        Op::Sum(io) => reduction(&io, Reduction::Sum),
        Op::SumSquares(io) => reduction(&io, Reduction::SumSquares),
        Op::Norm(io) => reduction(&io, Reduction::Norm),
        Op::Max(io) => reduction(&io, Reduction::Max),
    }
}

fn op_matmul(args: &MatmulArgs) -> Result<()> {
    let act = Activation::from_name(&args.activation, args.slope, args.level)?;
    // Check the shapes from the headers before touching the GPU, so that a mismatch is
    // reported with both shapes and nothing is written.
    let (a_data, a_shape) = npy::read_f32(&args.a)?;
    let (b_data, b_shape) = npy::read_f32(&args.b)?;
    let dims = matmul::MatmulDims::new(&a_shape, &b_shape, args.transpose_a, args.transpose_b)?;
    if !args.allow_nonfinite {
        speckle::check_finite(&args.a.display().to_string(), &a_data)?;
        speckle::check_finite(&args.b.display().to_string(), &b_data)?;
    }
    let gpu = Gpu::new()?;
    let a = Tensor::from_slice(&gpu, &a_data, &a_shape)?;
    let b = Tensor::from_slice(&gpu, &b_data, &b_shape)?;
    let bias = match &args.bias {
        Some(p) => Some(load(&gpu, p, args.allow_nonfinite)?),
        None => None,
    };
    let c = match &args.c {
        Some(p) => {
            let c = load(&gpu, p, args.allow_nonfinite)?;
            if c.shape() != dims.output_shape().as_slice() {
                return Err(Error::shape(
                    "matmul",
                    format!(
                        "--c {} has shape {:?} but A {:?} times B {:?} gives {:?}",
                        p.display(),
                        c.shape(),
                        a_shape,
                        b_shape,
                        dims.output_shape()
                    ),
                ));
            }
            c
        }
        None => Tensor::empty(&gpu, &dims.output_shape())?,
    };
    let options = MatmulOptions {
        trans_a: args.transpose_a,
        trans_b: args.transpose_b,
        alpha: args.alpha,
        beta: if args.c.is_some() { args.beta } else { 0.0 },
        bias: bias.as_ref(),
        activation: act,
        config: args.config,
    };
    matmul::run_into(&gpu, &a, &b, &c, &options)?;
    save(&gpu, &args.output, &c)
}
