//! `speckle bench all`: every kernel at standard sizes against the roofline of the same run.

use clap::Args;
use speckle::bench::all::{self, AllOptions, AllReport, Preset};
use speckle::{Gpu, Result};

use crate::output::progress_bar;
use crate::to_json;

/// `speckle bench all`.
#[derive(Args)]
pub struct BenchAllArgs {
    /// Problem sizes: gpu (the performance targets' problems), cpu (for CPU adapters such as
    /// lavapipe) or quick (tiny, seconds); default by the adapter.
    #[arg(long)]
    preset: Option<String>,
    /// Timed runs of each case (median reported).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Untimed runs of each case first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Skip the CPU baselines.
    #[arg(long)]
    no_cpu: bool,
    /// JSON on standard output (the input of scripts/bench_compare.py).
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// A Markdown section for BENCHMARKS.md on standard output.
    #[arg(long)]
    markdown: bool,
    /// Only the cases whose labels contain one of these patterns (comma-separated, any case),
    /// e.g. `--only relu,softmax` or `--only "matmul f32"`; the roofline always runs.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

pub fn run(args: &BenchAllArgs, quiet: bool) -> Result<()> {
    let preset = args.preset.as_deref().map(Preset::from_name).transpose()?;
    if args.runs == 0 {
        return Err(speckle::Error::invalid("--runs must be at least 1"));
    }
    let gpu = Gpu::new()?;
    let preset = preset.unwrap_or_else(|| Preset::for_gpu(&gpu));
    let labels = all::selected_labels(preset, &args.only)?;
    let bar = progress_bar(labels.len() as u64, "cases", quiet || args.json);
    let report = all::bench_some(
        &gpu,
        &AllOptions {
            preset,
            warmup: args.warmup,
            runs: args.runs,
            cpu_baseline: !args.no_cpu,
        },
        &args.only,
        |what| {
            bar.set_message(what.to_owned());
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", to_json(&report)?);
    } else if args.markdown {
        let command: Vec<String> = std::env::args().skip(1).collect();
        print!(
            "{}",
            all::markdown(&report, &format!("speckle {}", command.join(" ")))
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &AllReport) {
    let a = &r.adapter;
    println!(
        "adapter: {} ({}, {}, {})  preset {}  {}",
        a.name,
        a.backend,
        a.device_type,
        a.driver_info,
        r.preset.name(),
        r.date
    );
    println!(
        "roofline: {:.1} GFLOP/s FMA, {:.2} GB/s copy, ridge {:.1} flops/byte",
        r.roofline.fma_gflops, r.roofline.copy_gbps, r.roofline.ridge_flops_per_byte
    );
    println!(
        "{:<44} {:>10} {:>11} {:>9} {:>7} {:>7} {:>8} {:>9}",
        "case", "ms", "GFLOP/s", "GB/s", "roof", "bound", "vs CPU", "error"
    );
    for row in &r.results {
        println!(
            "{:<44} {:>10} {:>11} {:>9.2} {:>6.0}% {:>7} {:>8} {:>9}",
            row.label,
            all::format_ms(row.ms),
            row.gflops.map_or("—".into(), |g| format!("{g:.1}")),
            row.gbps,
            100.0 * row.roofline_fraction,
            row.bound,
            row.vs_cpu.map_or("—".into(), |v| format!("{v:.2}x")),
            row.error.map_or("—".into(), |e| format!("{e:.1e}"))
        );
    }
    for k in &r.skipped {
        println!("skipped: {}: {}", k.label, k.reason);
    }
    let timing = r
        .results
        .iter()
        .any(|row| row.timing == speckle::bench::TimingMethod::WallClock);
    if timing {
        println!(
            "(timed by the wall clock where marked so in --json: CPU adapters, or timestamps \
             that missed the work)"
        );
    }
}
