//! `speckle study performer`: random-feature attention (Performer, FAVOR+) against exact
//! attention. Two questions, answered on fixed seeded inputs:
//!
//! 1. **Error against m.** The relative error ‖O_performer − O_exact‖/‖O_exact‖ over the whole
//!    output of one problem (`--shape-error`), for each number of random features m and
//!    several draws of the features (seeds), against the f64 exact reference of every row.
//!    The estimate of each kernel value is a mean over m features, so the error should fall
//!    like 1/sqrt(m); the plot draws that line through the data.
//! 2. **Time against N.** GPU time (work alone: planned dispatches rerun, work space allocated
//!    once) of the exact fused kernel and of Performer at one or more m, at B = 1 and fixed H,
//!    D, for each sequence length N: exact is O(N²·D) per head, Performer O(N·m·D), so the
//!    curves cross. The crossover N is interpolated, with Performer's error there (measured
//!    against the exact fused kernel's output at each N).
//!
//! Inputs: Q and K uniform in [−A, A) with A = `--amplitude` (0.5), V uniform in [−1, 1).
//! Why A = 0.5: the relative variance of one feature's product φ(q)·φ(k) is
//! exp(‖q̃ + k̃‖²) − 1 with q̃ = q·D^(−1/4); at D = 64 and A = 0.5, ‖q̃ + k̃‖² ≈ 2·sqrt(D)/12
//! ≈ 1.3 (variance ≈ 3 per feature: m from 16 up is in the 1/sqrt(m) regime), while at A = 1
//! it is ≈ 5.3 (variance ≈ 200: the error is large and noisy until m is in the thousands).
//! The library's tests use the same distribution (`tests/performer.rs`).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use speckle::bench::{random_vec, time_dispatches, TimingMethod};
use speckle::cpu::relative_error;
use speckle::ops::attention::{self, AttentionOptions, AttentionVariant, MAX_HEAD_DIM};
use speckle::ops::performer::{self, PerformerOptions};
use speckle::plot::{encode_png, LinePlot, RgbImage, Series};
use speckle::{Error, Gpu, Result, Tensor};

use crate::to_json;

/// `speckle study performer`.
#[derive(Args)]
pub struct PerformerStudyArgs {
    /// Numbers of random features m of the error study.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    features: Vec<usize>,
    /// Draws of the random features per m (feature seeds --seed, --seed + 1, ...).
    #[arg(long, default_value_t = 5)]
    seeds: usize,
    /// B,H,N,D of the error study's problem.
    #[arg(long, value_delimiter = ',', default_value = "1,4,512,64")]
    shape_error: Vec<usize>,
    /// Sequence lengths N of the timing study (B = 1).
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024,2048,4096")]
    lengths: Vec<usize>,
    /// Heads H of the timing study.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Head dimension D of the timing study.
    #[arg(long, default_value_t = 64)]
    head_dim: usize,
    /// Numbers of features m timed, one curve each (the first is `performer_ms` in the JSON).
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    time_features: Vec<usize>,
    /// Timed runs per method and length (median reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Q and K uniform in [-A, A), V uniform in [-1, 1).
    #[arg(long, default_value_t = 0.5, value_name = "A")]
    amplitude: f32,
    /// Causal mask (top-left) for both methods, in both parts.
    #[arg(long)]
    causal: bool,
    /// Seed of the inputs (Q, K, V from seed, seed + 1, seed + 2) and of the first draw of
    /// the features.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Folder for error.png, time.png and results.json (created if missing).
    #[arg(long, default_value = "speckle-performer")]
    out: PathBuf,
    /// The results as JSON on standard output (no table, no progress bar).
    #[arg(long)]
    json: bool,
}

/// The checked, sorted arguments.
struct Plan {
    features: Vec<usize>,
    shape_error: [usize; 4],
    lengths: Vec<usize>,
    time_features: Vec<usize>,
}

/// Sorted, without duplicates, every entry at least 1.
fn sorted_positive(name: &str, list: &[usize]) -> Result<Vec<usize>> {
    if list.is_empty() {
        return Err(Error::invalid(format!("--{name} needs at least one value")));
    }
    if list.contains(&0) {
        return Err(Error::invalid(format!(
            "--{name} must be at least 1 each, got {list:?}"
        )));
    }
    let mut v = list.to_vec();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn check(args: &PerformerStudyArgs) -> Result<Plan> {
    let features = sorted_positive("features", &args.features)?;
    let lengths = sorted_positive("lengths", &args.lengths)?;
    let time_features = sorted_positive("time-features", &args.time_features)?;
    let [b, h, n, d] = args.shape_error[..] else {
        return Err(Error::invalid(format!(
            "--shape-error takes B,H,N,D (four numbers), got {:?}",
            args.shape_error
        )));
    };
    if [b, h, n, d].contains(&0) {
        return Err(Error::invalid(format!(
            "--shape-error B,H,N,D = {:?} has a zero",
            args.shape_error
        )));
    }
    if args.seeds == 0 {
        return Err(Error::invalid("--seeds must be at least 1, got 0"));
    }
    if args.runs == 0 {
        return Err(Error::invalid("--runs must be at least 1, got 0"));
    }
    if args.heads == 0 || args.head_dim == 0 {
        return Err(Error::invalid(format!(
            "--heads and --head-dim must be at least 1, got {} and {}",
            args.heads, args.head_dim
        )));
    }
    if args.head_dim > MAX_HEAD_DIM {
        return Err(Error::invalid(format!(
            "--head-dim {} exceeds {MAX_HEAD_DIM}, the exact fused kernel's largest head \
             dimension (the timing study compares with it)",
            args.head_dim
        )));
    }
    if !(args.amplitude.is_finite() && args.amplitude > 0.0) {
        return Err(Error::invalid(format!(
            "--amplitude must be finite and positive, got {}",
            args.amplitude
        )));
    }
    Ok(Plan {
        features,
        shape_error: [b, h, n, d],
        lengths,
        time_features,
    })
}

/// The error of one m over the draws of the features.
#[derive(Clone, Debug, serde::Serialize)]
struct ErrorPoint {
    features: usize,
    /// Mean of the relative errors over the draws.
    rel_error_mean: f64,
    /// Their population standard deviation.
    rel_error_std: f64,
    /// One per draw, feature seeds seed, seed + 1, ...
    rel_errors: Vec<f64>,
}

/// Performer at one m and one N.
#[derive(Clone, Debug, serde::Serialize)]
struct PerformerPoint {
    features: usize,
    /// Median GPU time, ms.
    ms: f64,
    /// Relative error against the exact fused kernel's output of the same inputs.
    rel_error: f64,
}

/// Both methods at one N.
#[derive(Clone, Debug, serde::Serialize)]
struct TimePoint {
    n: usize,
    /// The exact fused kernel, median ms.
    exact_ms: f64,
    /// Performer with the first of `time_features`, median ms.
    performer_ms: f64,
    /// Every timed m.
    performer: Vec<PerformerPoint>,
}

/// Where Performer becomes faster than exact attention, for one m.
#[derive(Clone, Debug, serde::Serialize)]
struct Crossover {
    features: usize,
    /// `crossed` (n interpolated between the bracketing lengths), `performer-faster-throughout`
    /// (already faster at the shortest length) or `not-reached` (still slower at the longest).
    status: String,
    /// N where the times are equal: log N interpolated linearly in log(exact/performer) from
    /// the last length where Performer is slower to the first from which it stays faster.
    n: Option<f64>,
    /// The time of either method there, ms (log-interpolated).
    ms: Option<f64>,
    /// Performer's relative error there (log-interpolated between the same lengths).
    rel_error: Option<f64>,
}

/// Log-linear interpolation between `a` and `b` at fraction `t`.
fn log_lerp(a: f64, b: f64, t: f64) -> f64 {
    (a.ln() + t * (b.ln() - a.ln())).exp()
}

fn crossover(points: &[TimePoint], index: usize, features: usize) -> Crossover {
    let ratio = |p: &TimePoint| p.exact_ms / p.performer[index].ms;
    // The first length from which Performer stays faster.
    let from = points
        .iter()
        .rposition(|p| ratio(p) <= 1.0)
        .map_or(0, |i| i + 1);
    let none = |status: &str| Crossover {
        features,
        status: status.into(),
        n: None,
        ms: None,
        rel_error: None,
    };
    if from == 0 {
        return none("performer-faster-throughout");
    }
    if from == points.len() {
        return none("not-reached");
    }
    let (a, b) = (&points[from - 1], &points[from]);
    let (ya, yb) = (ratio(a).ln(), ratio(b).ln());
    let t = if yb > ya { -ya / (yb - ya) } else { 0.0 };
    Crossover {
        features,
        status: "crossed".into(),
        n: Some(log_lerp(a.n as f64, b.n as f64, t)),
        ms: Some(log_lerp(a.exact_ms, b.exact_ms, t)),
        rel_error: Some(log_lerp(
            a.performer[index].rel_error,
            b.performer[index].rel_error,
            t,
        )),
    }
}

/// Mean and population standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The least-squares slope of ln(error) against ln(m); `None` with fewer than two m.
fn log_slope(points: &[ErrorPoint]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|p| (p.features as f64).ln()).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.rel_error_mean.ln()).collect();
    let (mx, my) = (mean_std(&xs).0, mean_std(&ys).0);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    Some(sxy / sxx)
}

/// c of the line c/sqrt(m) through the data (geometric mean of error·sqrt(m)).
fn sqrt_line(points: &[ErrorPoint]) -> f64 {
    let logs: Vec<f64> = points
        .iter()
        .map(|p| p.rel_error_mean.ln() + 0.5 * (p.features as f64).ln())
        .collect();
    mean_std(&logs).0.exp()
}

/// Q, K uniform in [−a, a) and V uniform in [−1, 1) of `len` values each.
fn inputs(len: usize, seed: u64, amplitude: f32) -> [Vec<f32>; 3] {
    let scaled = |s| -> Vec<f32> {
        random_vec(len, s)
            .into_iter()
            .map(|x| x * amplitude)
            .collect()
    };
    [scaled(seed), scaled(seed + 1), random_vec(len, seed + 2)]
}

pub fn study(args: &PerformerStudyArgs, quiet: bool) -> Result<()> {
    let plan = check(args)?;
    let created = crate::output::prepare_dir(&args.out)?;
    let result = run(args, &plan, quiet);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(&args.out);
    }
    result
}

fn run(args: &PerformerStudyArgs, plan: &Plan, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let gpu = Gpu::new()?;
    let steps =
        plan.features.len() * args.seeds + plan.lengths.len() * (1 + plan.time_features.len());
    let bar = crate::output::progress_bar(steps as u64, "runs", args.json || quiet);

    // 1. Error against m, against the f64 reference of every row.
    let [b, h, n, d] = plan.shape_error;
    let row = h * d;
    let [q, k, v] = inputs(b * n * row, args.seed, args.amplitude);
    let shape = [b, n, row];
    let dims = performer::dims(&shape, &shape, &shape, h)?;
    bar.set_message(format!("f64 exact attention B={b} H={h} N={n} D={d}"));
    let scale = 1.0 / (d as f64).sqrt();
    let exact = speckle::cpu::attention::attention(&q, &k, &v, None, &dims, scale, args.causal);
    let (qt, kt, vt) = (
        Tensor::from_slice(&gpu, &q, &shape)?,
        Tensor::from_slice(&gpu, &k, &shape)?,
        Tensor::from_slice(&gpu, &v, &shape)?,
    );
    let mut error_points = Vec::with_capacity(plan.features.len());
    for &m in &plan.features {
        bar.set_message(format!("error, m = {m}"));
        let mut errors = Vec::with_capacity(args.seeds);
        for s in 0..args.seeds as u64 {
            let options = PerformerOptions {
                features: m,
                seed: args.seed + s,
                causal: args.causal,
                ..Default::default()
            };
            let out = performer::run(&gpu, &qt, &kt, &vt, h, &options)?;
            errors.push(relative_error(&out.to_vec(&gpu)?, &exact));
            bar.inc(1);
        }
        let (mean, std) = mean_std(&errors);
        error_points.push(ErrorPoint {
            features: m,
            rel_error_mean: mean,
            rel_error_std: std,
            rel_errors: errors,
        });
    }
    drop((qt, kt, vt));

    // 2. Time against N: the exact fused kernel and Performer, GPU work alone.
    let (heads, hd) = (args.heads, args.head_dim);
    let mut time_points = Vec::with_capacity(plan.lengths.len());
    let mut method = TimingMethod::GpuTimestamp;
    let mut exact_variant = String::new();
    for &n in &plan.lengths {
        let shape = [1, n, heads * hd];
        let [q, k, v] = inputs(n * heads * hd, args.seed + 10, args.amplitude);
        let q = Tensor::from_slice(&gpu, &q, &shape)?;
        let k = Tensor::from_slice(&gpu, &k, &shape)?;
        let v = Tensor::from_slice(&gpu, &v, &shape)?;
        let out = Tensor::filled(&gpu, &shape, f32::NAN)?;
        bar.set_message(format!("time, exact N = {n}"));
        let options = AttentionOptions {
            scale: None,
            causal: args.causal,
            variant: AttentionVariant::Auto,
        };
        let dispatches = attention::plan(&gpu, &q, &k, &v, None, &out, heads, &options)?;
        let exact_t = time_dispatches(&gpu, &dispatches, args.warmup, args.runs, false)?;
        drop(dispatches);
        method = exact_t.method;
        let dims = attention::AttentionDims::new(&shape, &shape, &shape, heads)?;
        exact_variant = attention::choose(&gpu, &dims, &[&q, &k, &v, &out], &options)?.name();
        let exact_out: Vec<f64> = out.to_vec(&gpu)?.into_iter().map(f64::from).collect();
        bar.inc(1);
        let mut performer_points = Vec::with_capacity(plan.time_features.len());
        for &m in &plan.time_features {
            bar.set_message(format!("time, performer m = {m} N = {n}"));
            let options = PerformerOptions {
                features: m,
                seed: args.seed,
                causal: args.causal,
                ..Default::default()
            };
            let out = Tensor::filled(&gpu, &shape, f32::NAN)?;
            let dispatches = performer::plan(&gpu, &q, &k, &v, &out, heads, &options)?;
            let t = time_dispatches(&gpu, &dispatches, args.warmup, args.runs, false)?;
            drop(dispatches);
            performer_points.push(PerformerPoint {
                features: m,
                ms: t.median_ms,
                rel_error: relative_error(&out.to_vec(&gpu)?, &exact_out),
            });
            bar.inc(1);
        }
        time_points.push(TimePoint {
            n,
            exact_ms: exact_t.median_ms,
            performer_ms: performer_points[0].ms,
            performer: performer_points,
        });
    }
    bar.finish_and_clear();
    let crossovers: Vec<Crossover> = plan
        .time_features
        .iter()
        .enumerate()
        .map(|(i, &m)| crossover(&time_points, i, m))
        .collect();

    let error_png = encode_png(&error_plot(args, plan, &error_points)?)?;
    let time_png = encode_png(&time_plot(args, &time_points, &crossovers, &exact_variant)?)?;
    let input = format!(
        "Q, K uniform [-{a}, {a}); V uniform [-1, 1)",
        a = args.amplitude
    );
    let elapsed = started.elapsed().as_secs_f64();
    let json = to_json(&serde_json::json!({
        "adapter": gpu.summary(),
        "input": input,
        "seed": args.seed,
        "causal": args.causal,
        "error": {
            "shape": plan.shape_error,
            "seeds": args.seeds,
            "reference": "f64 exact attention, every row",
            "scale": scale,
            "slope": log_slope(&error_points),
            "sqrt_line": sqrt_line(&error_points),
        },
        "error_vs_features": error_points,
        "timing": {
            "batch": 1,
            "heads": heads,
            "head_dim": hd,
            "time_features": plan.time_features,
            "method": method,
            "runs": args.runs,
            "warmup": args.warmup,
            "exact_variant": exact_variant,
            "error_reference": "the exact fused kernel's output",
        },
        "time_vs_length": time_points,
        "crossover": crossovers,
        "elapsed_s": elapsed,
    }))?;
    // Everything is rendered before the first file is written.
    let done = crate::output::write_all(
        &args.out,
        &[
            ("error.png", error_png),
            ("time.png", time_png),
            ("results.json", json.clone().into_bytes()),
        ],
    )?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    println!("adapter: {}", gpu.summary().name);
    println!(
        "relative error of Performer against exact attention (f64), B={b} H={h} N={n} D={d}{}, \
         inputs {input}, {} draws of the features:",
        if args.causal { " causal" } else { "" },
        args.seeds
    );
    println!(
        "{:>6} {:>12} {:>12} {:>14}",
        "m", "mean", "std", "mean*sqrt(m)"
    );
    for p in &error_points {
        println!(
            "{:>6} {:>12.4e} {:>12.3e} {:>14.4}",
            p.features,
            p.rel_error_mean,
            p.rel_error_std,
            p.rel_error_mean * (p.features as f64).sqrt()
        );
    }
    if let Some(slope) = log_slope(&error_points) {
        println!("log-log slope {slope:.3} (1/sqrt(m): -0.5)");
    }
    println!(
        "GPU time, B=1 H={heads} D={hd}{}, median of {} runs ({}; exact: fused {exact_variant}), \
         ms (Performer's relative error against the exact kernel):",
        if args.causal { " causal" } else { "" },
        args.runs,
        match method {
            TimingMethod::GpuTimestamp => "GPU timestamps",
            TimingMethod::WallClock => "wall clock",
        }
    );
    let mut header = format!("{:>6} {:>10}", "N", "exact");
    for &m in &plan.time_features {
        header.push_str(&format!(" {:>22}", format!("m={m}")));
    }
    println!("{header}");
    for p in &time_points {
        let mut line = format!("{:>6} {:>10.2}", p.n, p.exact_ms);
        for q in &p.performer {
            line.push_str(&format!(" {:>10.2} ({:>9.3e})", q.ms, q.rel_error));
        }
        println!("{line}");
    }
    for c in &crossovers {
        match (c.n, c.rel_error, c.ms) {
            (Some(n), Some(e), Some(ms)) => println!(
                "crossover m={}: N ≈ {n:.0} ({ms:.2} ms), Performer's relative error there {e:.3e}",
                c.features
            ),
            _ => println!("crossover m={}: {}", c.features, c.status),
        }
    }
    println!(
        "wrote {} in {elapsed:.1} s",
        done.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Mean error against m, log-log, with mean ± std and the line c/sqrt(m).
fn error_plot(args: &PerformerStudyArgs, plan: &Plan, points: &[ErrorPoint]) -> Result<RgbImage> {
    let [b, h, n, d] = plan.shape_error;
    let mut plot = LinePlot::new(
        format!("Performer error vs features (B={b} H={h} N={n} D={d})"),
        "random features m",
        format!("|O_performer - O_exact| / |O_exact|, {} draws", args.seeds),
    );
    plot.log_x = true;
    plot.log_y = true;
    plot.width = 900;
    plot.height = 560;
    let at = |f: &dyn Fn(&ErrorPoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.features as f64, f(p))).collect()
    };
    let c = sqrt_line(points);
    plot.series = vec![
        Series::new("mean", at(&|p| p.rel_error_mean)),
        Series::dashed("mean + std", at(&|p| p.rel_error_mean + p.rel_error_std)),
        Series::dashed("mean - std", at(&|p| p.rel_error_mean - p.rel_error_std)),
        Series::dashed(
            format!("{c:.3}/sqrt(m)"),
            at(&|p| c / (p.features as f64).sqrt()),
        ),
    ];
    plot.render()
}

/// GPU time against N, log-log: exact, Performer at each m, and the crossover points.
fn time_plot(
    args: &PerformerStudyArgs,
    points: &[TimePoint],
    crossovers: &[Crossover],
    exact_variant: &str,
) -> Result<RgbImage> {
    let mut plot = LinePlot::new(
        format!(
            "Exact vs Performer attention (B=1 H={} D={}{})",
            args.heads,
            args.head_dim,
            if args.causal { ", causal" } else { "" }
        ),
        "sequence length N",
        "GPU time, ms (median)",
    );
    plot.log_x = true;
    plot.log_y = true;
    plot.width = 900;
    plot.height = 560;
    let mut series = vec![Series::new(
        format!("exact (fused, {exact_variant})"),
        points.iter().map(|p| (p.n as f64, p.exact_ms)).collect(),
    )];
    for (i, c) in crossovers.iter().enumerate() {
        series.push(Series::new(
            format!("performer m={}", c.features),
            points
                .iter()
                .map(|p| (p.n as f64, p.performer[i].ms))
                .collect(),
        ));
    }
    for c in crossovers {
        if let (Some(n), Some(ms)) = (c.n, c.ms) {
            series.push(Series::new(
                format!("crossover m={}: N = {n:.0}", c.features),
                vec![(n, ms)],
            ));
        }
    }
    plot.series = series;
    plot.render()
}
