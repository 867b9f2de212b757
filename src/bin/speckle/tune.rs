//! `speckle tune`: measures candidate kernel configurations on this adapter and writes the
//! fastest valid one per shape class to the tuning cache, which every later run uses.

use std::path::{Path, PathBuf};

use clap::Args;
use speckle::tune::{
    self, attention::AttentionShape, matmul::MatmulShape, matmul::Operands, project::ProjectShape,
    project_optical::OpticalShape, srht::SrhtShape, AdapterKey, ClassResult, TuneFile, TuneOptions,
    TunedEntry,
};
use speckle::{Error, Gpu, GpuOptions, Result, Tuning};

use crate::output::progress_bar;
use crate::to_json;

/// The ops `speckle tune` knows.
const OPS: [&str; 6] = [
    "matmul",
    "matmul_f16",
    "attention",
    "project",
    "project_optical",
    "srht",
];

/// `speckle tune`.
#[derive(Args)]
pub struct TuneArgs {
    /// Ops to tune: matmul, matmul_f16, attention, project (the matrix-free projection),
    /// project_optical (the fused materialized optical projection; the other materialized
    /// projections are matmuls), srht (the structured projection's workgroup-memory tile);
    /// all for every one.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "matmul,attention,project,project_optical,srht"
    )]
    ops: Vec<String>,
    /// matmul problems, `m,n,k[,NN|NT|TN|TT]` separated by `;` (default: chosen for the
    /// adapter).
    #[arg(long, value_delimiter = ';')]
    matmul_shapes: Vec<MatmulShape>,
    /// Attention problems, `B,H,N,D[,causal]` or `B,H,Nq,Nk,D[,causal]` (decoding steps:
    /// few queries, many keys) separated by `;`.
    #[arg(long, value_delimiter = ';')]
    attention_shapes: Vec<AttentionShape>,
    /// Matrix-free projections, `batch,d,n_out[,complex][,transpose]` separated by `;`.
    #[arg(long, value_delimiter = ';')]
    project_shapes: Vec<ProjectShape>,
    /// Fused optical projections, `batch,d,n_out[,f16]` separated by `;`.
    #[arg(long, value_delimiter = ';')]
    optical_shapes: Vec<OpticalShape>,
    /// Structured projections, `batch,d,n_out` separated by `;`.
    #[arg(long, value_delimiter = ';')]
    srht_shapes: Vec<SrhtShape>,
    /// Timed runs of each candidate (median kept).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Untimed runs of each candidate first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// The cache file (default: tune.json in $SPECKLE_CACHE_DIR, else in the user's cache
    /// directory, e.g. ~/.cache/speckle).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Measure and report, but write nothing.
    #[arg(long)]
    dry_run: bool,
    /// List this adapter's tuned configurations and exit.
    #[arg(long, conflicts_with_all = ["clear", "dry_run"])]
    show: bool,
    /// Remove this adapter's tuned configurations (of --ops) and exit.
    #[arg(long, conflicts_with = "dry_run")]
    clear: bool,
    /// JSON on standard output (no table, no progress bar).
    #[arg(long)]
    json: bool,
    /// JSON Lines on standard output: each class's result as soon as it is measured, then a
    /// line with the adapter, the cache and the count written; a run stopped part way (a time
    /// limit) keeps the lines of the classes it finished.
    #[arg(long, conflicts_with_all = ["json", "show", "clear"])]
    json_lines: bool,
}

impl TuneArgs {
    /// The ops asked for, `all` standing for every op.
    fn ops(&self) -> Vec<&str> {
        if self.ops.iter().any(|o| o == "all") {
            return OPS.to_vec();
        }
        self.ops.iter().map(String::as_str).collect()
    }
}

pub fn run(args: &TuneArgs, quiet: bool) -> Result<()> {
    for op in &args.ops {
        if op != "all" && !OPS.contains(&op.as_str()) {
            return Err(Error::invalid(format!(
                "unknown op {op:?} to tune; known: {}, or all",
                OPS.join(", ")
            )));
        }
    }
    if args.runs == 0 {
        return Err(Error::invalid("--runs must be at least 1"));
    }
    let path = match &args.cache {
        Some(p) => p.clone(),
        None => tune::cache_path().ok_or_else(|| {
            Error::invalid(
                "no cache directory is known on this system: pass --cache FILE or set \
                 SPECKLE_CACHE_DIR",
            )
        })?,
    };
    // The device runs the built-in configurations: candidates are explicit anyway, and the
    // "default" each is compared with must be what runs without a cache.
    let gpu = Gpu::with_options(&GpuOptions {
        tuning: Tuning::Off,
        ..Default::default()
    })?;
    let adapter = AdapterKey::of(&gpu);
    if args.show {
        return show(&path, &adapter, args.json);
    }
    // Read (and check writable) before any measuring: a run never ends in a lost cache.
    let mut file = match TuneFile::load(&path) {
        Ok(f) => f,
        Err(e) if args.clear => return Err(e),
        Err(e) => {
            if args.dry_run {
                eprintln!("warning: {e}");
            } else {
                eprintln!("warning: {e}; it will be replaced");
            }
            TuneFile {
                format: tune::FORMAT,
                entries: Vec::new(),
            }
        }
    };
    if !args.dry_run {
        check_writable(&path)?;
    }
    if args.clear {
        let mut removed = 0;
        for op in args.ops() {
            removed += file.remove(&adapter, Some(cache_op(op)));
        }
        file.save(&path)?;
        println!(
            "removed {removed} tuned configurations of {} from {}",
            adapter.name,
            path.display()
        );
        return Ok(());
    }

    let options = TuneOptions {
        warmup: args.warmup,
        runs: args.runs,
    };
    let plan = Plan::new(&gpu, args);
    let silent = quiet || args.json || args.json_lines;
    let bar = progress_bar(plan.candidates(&gpu) as u64, "candidates", silent);
    let mut step = |what: &str| {
        bar.set_message(what.to_owned());
        bar.inc(1);
    };
    // Each class's winner is written as soon as it is known, so that a run stopped part way
    // (a time limit, Ctrl-C) keeps the classes it finished.
    let mut outcomes: Vec<(ClassResult, Option<TunedEntry>)> = Vec::new();
    let mut written = 0;
    let mut record = |op: &str,
                      shape: &dyn std::fmt::Display,
                      new: Result<Vec<(ClassResult, Option<TunedEntry>)>>|
     -> Result<()> {
        let new = new.map_err(|e| {
            let kept = if args.dry_run || written == 0 {
                String::new()
            } else {
                format!(
                    " (the classes tuned before it are saved in {})",
                    path.display()
                )
            };
            e.in_context(format!("tuning {op} on {shape}{kept}"))
        })?;
        let before = written;
        for entry in new.iter().filter_map(|(_, e)| e.clone()) {
            file.insert(entry);
            written += 1;
        }
        if !args.dry_run && written > before {
            file.save(&path)?;
        }
        if args.json_lines {
            print_lines(new.iter().map(|(r, _)| r))?;
        }
        outcomes.extend(new);
        Ok(())
    };
    for s in &plan.matmul {
        let new = tune::matmul::tune(&gpu, &[*s], &options, &mut step);
        record("matmul", s, new)?;
    }
    for s in &plan.matmul_f16 {
        let f16 = Operands::F16;
        let new = tune::matmul::tune_operands(&gpu, &[*s], f16, &options, &mut step);
        record("matmul_f16", s, new)?;
    }
    for s in &plan.attention {
        let new = tune::attention::tune(&gpu, &[*s], &options, &mut step);
        record("attention", s, new)?;
    }
    for s in &plan.project {
        let new = tune::project::tune(&gpu, &[*s], &options, &mut step);
        record("project", s, new)?;
    }
    for s in &plan.optical {
        let new = tune::project_optical::tune(&gpu, &[*s], &options, &mut step);
        record("project_optical", s, new)?;
    }
    for s in &plan.srht {
        let new = tune::srht::tune(&gpu, &[*s], &options, &mut step);
        record("srht", s, new)?;
    }
    bar.finish_and_clear();
    let results: Vec<&ClassResult> = outcomes.iter().map(|(r, _)| r).collect();
    if args.json_lines {
        let summary = serde_json::json!({
            "adapter": gpu.summary(),
            "cache": path,
            "written": if args.dry_run { 0 } else { written },
            "classes": results.len(),
        });
        return print_lines([&summary]);
    }
    if args.json {
        let value = serde_json::json!({
            "adapter": gpu.summary(),
            "cache": path,
            "written": if args.dry_run { 0 } else { written },
            "results": results,
        });
        println!("{}", to_json(&value)?);
        return Ok(());
    }
    println!("adapter: {} ({})", adapter.name, adapter.driver_info);
    for r in &results {
        print_class(r);
    }
    if args.dry_run {
        println!("dry run: nothing written");
    } else {
        println!("wrote {written} tuned configurations to {}", path.display());
    }
    Ok(())
}

/// Prints each value as one line of JSON and flushes, so that a process stopped afterwards
/// leaves them whole in its output.
fn print_lines<T: serde::Serialize>(values: impl IntoIterator<Item = T>) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for v in values {
        let line = serde_json::to_string(&v)
            .map_err(|e| Error::invalid(format!("JSON encoding failed: {e}")))?;
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("writing to standard output", e))?;
    }
    Ok(())
}

/// The problems to measure, per op.
struct Plan {
    matmul: Vec<MatmulShape>,
    matmul_f16: Vec<MatmulShape>,
    attention: Vec<AttentionShape>,
    project: Vec<ProjectShape>,
    optical: Vec<OpticalShape>,
    srht: Vec<SrhtShape>,
}

impl Plan {
    fn new(gpu: &Gpu, args: &TuneArgs) -> Plan {
        let ops = args.ops();
        let wants = |op: &str| ops.contains(&op);
        Plan {
            matmul: pick(
                wants("matmul"),
                &args.matmul_shapes,
                tune::matmul::default_shapes(gpu),
            ),
            matmul_f16: pick(
                wants("matmul_f16"),
                &args.matmul_shapes,
                tune::matmul::default_shapes(gpu),
            ),
            attention: pick(
                wants("attention"),
                &args.attention_shapes,
                tune::attention::default_shapes(gpu),
            ),
            project: pick(
                wants("project"),
                &args.project_shapes,
                tune::project::default_shapes(gpu),
            ),
            optical: pick(
                wants("project_optical"),
                &args.optical_shapes,
                tune::project_optical::default_shapes(gpu),
            ),
            srht: pick(
                wants("srht"),
                &args.srht_shapes,
                tune::srht::default_shapes(gpu),
            ),
        }
    }

    /// Candidates in all (the progress bar's length).
    fn candidates(&self, gpu: &Gpu) -> usize {
        let matmul = self.matmul.len() * tune::matmul::candidates(gpu).len()
            + self.matmul_f16.len() * tune::matmul::candidates_f16(gpu).len();
        let attention: usize = self
            .attention
            .iter()
            .map(|s| tune::attention::candidates(gpu, s.head_dim).len())
            .sum();
        let project = self.project.len() * speckle::ops::project_dense::WORKGROUPS.len();
        let optical: usize = self
            .optical
            .iter()
            .map(|s| tune::project_optical::candidates(gpu, s).len())
            .sum();
        let srht: usize = self
            .srht
            .iter()
            .map(|s| tune::srht::candidates(gpu, s).len())
            .sum();
        matmul + attention + project + optical + srht
    }
}

/// `given` where the op is wanted and shapes were given, its `default` where none were.
fn pick<T: Clone>(wanted: bool, given: &[T], default: Vec<T>) -> Vec<T> {
    match (wanted, given.is_empty()) {
        (false, _) => Vec::new(),
        (true, true) => default,
        (true, false) => given.to_vec(),
    }
}

/// The cache's op name for a `--ops` name.
fn cache_op(op: &str) -> &'static str {
    match op {
        "matmul" => speckle::ops::matmul::TUNE_OP,
        "matmul_f16" => speckle::ops::matmul_f16::TUNE_OP,
        "attention" => speckle::ops::attention::TUNE_OP,
        "project_optical" => speckle::ops::project_optical::TUNE_OP,
        "srht" => speckle::ops::srht::TUNE_OP,
        _ => speckle::ops::project_dense::TUNE_OP,
    }
}

/// Creates the cache's folder and checks that a file can be written there.
fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::output::prepare_dir(&dir).map(|_| ())
}

fn print_class(r: &ClassResult) {
    let shape: Vec<String> = r.shape.iter().map(|s| s.to_string()).collect();
    println!(
        "{} {} (measured on {})",
        r.op,
        r.class.label(),
        shape.join(",")
    );
    let default = r.candidates.iter().find(|c| c.is_default);
    match (&r.best, default) {
        (Some(best), Some(d)) => println!(
            "  best {best}, default {} {:.3} ms: {:.2}x",
            d.config, d.median_ms, r.speedup
        ),
        (Some(best), None) => println!("  best {best}"),
        (None, _) => println!("  no candidate gave a correct result; nothing cached"),
    }
    if let Some(c) = &r.confirmation {
        println!(
            "  timed again alternately: {} {:.3} ms, default {:.3} ms",
            c.config, c.challenger_ms, c.default_ms
        );
    }
    let mut valid: Vec<_> = r
        .candidates
        .iter()
        .filter(|c| c.rejected.is_none())
        .collect();
    valid.sort_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
    for c in valid.iter().take(5) {
        println!(
            "    {:<28} {:>10.3} ms  error {:.1e}{}",
            c.config,
            c.median_ms,
            c.error,
            if c.is_default { "  (default)" } else { "" }
        );
    }
    let rejected: Vec<_> = r
        .candidates
        .iter()
        .filter(|c| c.rejected.is_some())
        .collect();
    let wrong: Vec<_> = rejected
        .iter()
        .filter(|c| {
            c.rejected
                .as_deref()
                .is_some_and(|w| w.starts_with("wrong") || w.starts_with("failed"))
        })
        .collect();
    if valid.len() > 5 || !rejected.is_empty() {
        println!(
            "    ({} more timed, {} cut after one run or not applicable, {} failed or wrong)",
            valid.len().saturating_sub(5),
            rejected.len() - wrong.len(),
            wrong.len()
        );
    }
    for c in wrong {
        println!(
            "    {}: {}",
            c.config,
            c.rejected.as_deref().unwrap_or_default()
        );
    }
}

fn show(path: &Path, adapter: &AdapterKey, json: bool) -> Result<()> {
    let file = TuneFile::load(path)?;
    let mine: Vec<&TunedEntry> = file
        .entries
        .iter()
        .filter(|e| &e.adapter == adapter)
        .collect();
    if json {
        let value = serde_json::json!({
            "cache": path,
            "adapter": adapter,
            "entries": mine,
            "other_adapters": file.entries.len() - mine.len(),
        });
        println!("{}", to_json(&value)?);
        return Ok(());
    }
    println!("cache: {}", path.display());
    println!("adapter: {} ({})", adapter.name, adapter.driver_info);
    if mine.is_empty() {
        println!("no tuned configurations for this adapter and driver (run `speckle tune`)");
    }
    for e in &mine {
        println!(
            "  {:<14} {:<34} {:<26} {:>9.3} ms (default {:.3} ms), {}",
            e.op,
            e.class.label(),
            e.config,
            e.median_ms,
            e.default_ms,
            e.date
        );
    }
    let others = file.entries.len() - mine.len();
    if others > 0 {
        println!("  ({others} entries of other adapters or drivers)");
    }
    Ok(())
}
