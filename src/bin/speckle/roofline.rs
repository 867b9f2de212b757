//! `speckle bench roofline`: the adapter's measured peak FMA throughput and copy bandwidth.

use clap::Args;
use speckle::ops::roofline::{self, RooflineOptions};
use speckle::{Gpu, Result};

use crate::to_json;

/// `speckle bench roofline`.
#[derive(Args)]
pub struct BenchRooflineArgs {
    /// Timed runs of each mode (median reported).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Invocations of the FMA mode (default: chosen for the adapter).
    #[arg(long)]
    fma_invocations: Option<usize>,
    /// Rounds of each FMA chain (default: chosen for the adapter).
    #[arg(long)]
    fma_iters: Option<u32>,
    /// Bytes copied (default: the binding limit clamped to 64-256 MiB).
    #[arg(long)]
    copy_bytes: Option<u64>,
    /// Time with the host clock (submit + wait) even where GPU timestamps exist.
    #[arg(long)]
    wall_clock: bool,
    /// JSON on standard output.
    #[arg(long)]
    json: bool,
}

pub fn bench(args: &BenchRooflineArgs, quiet: bool) -> Result<()> {
    let gpu = Gpu::new()?;
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("measuring the roofline (FMA throughput, copy bandwidth) ...");
    }
    let r = roofline::measure(
        &gpu,
        &RooflineOptions {
            fma_invocations: args.fma_invocations,
            fma_iters: args.fma_iters,
            copy_bytes: args.copy_bytes,
            warmup: args.warmup,
            runs: args.runs,
            wall_clock: args.wall_clock,
        },
    )?;
    if args.json {
        println!("{}", to_json(&r)?);
        return Ok(());
    }
    println!("adapter: {}", r.adapter.name);
    println!(
        "fma:  {:.2} GFLOP/s ({} invocations x {} rounds, {:.3} ms median, {:?})",
        r.fma_gflops, r.fma_invocations, r.fma_iters, r.fma.median_ms, r.fma.method
    );
    println!(
        "copy: {:.2} GB/s read + written ({} MiB copied, {:.3} ms median, {:?})",
        r.copy_gbps,
        r.copy_bytes as f64 / f64::from(1u32 << 20),
        r.copy.median_ms,
        r.copy.method
    );
    println!("ridge: {:.2} flops/byte", r.ridge_flops_per_byte);
    Ok(())
}
