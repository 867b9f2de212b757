//! `speckle study trained-vs-random`: how much of its input a trained encoder keeps, against
//! random weights of the same shapes (see `speckle::train::study`).

use std::path::PathBuf;

use clap::Args;
use speckle::plot::{encode_png, Cell, ImageGrid, LinePlot, RgbImage, Series};
use speckle::train::study::{self, TrainedVsRandomOptions, TrainedVsRandomResult};
use speckle::{Gpu, Result};

use crate::to_json;

/// Examples shown in grid.png (the first ones reconstructed).
const GRID_ROWS: usize = 4;

/// `speckle study trained-vs-random`.
#[derive(Args)]
pub struct TrainedVsRandomArgs {
    /// Hidden widths of the first (compressive) regime, at or below the input dimension
    /// (144 for the default 12 x 12 images).
    #[arg(long, value_delimiter = ',', default_value = "96,64")]
    widths: Vec<usize>,
    /// Hidden widths of the expanding regime (each layer about 4x its input, where ReLU
    /// inversion succeeds for almost any weights). One layer by default: a two-layer stack
    /// such as 576,2304 is inverted only roughly layer by layer (about 19 dB even from random
    /// weights) and costs far more.
    #[arg(long, value_delimiter = ',', default_value = "576")]
    expanding_widths: Vec<usize>,
    /// Training steps (Adam, lr 3e-3, minibatches of 64).
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Seed of the splits, the weights and the shuffles.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for grid.png, history.png and results.json (created if missing).
    #[arg(long, default_value = "speckle-trained-vs-random")]
    out: PathBuf,
    /// The results as JSON on standard output (no table, no progress bar).
    #[arg(long)]
    json: bool,
    /// Checkpoints of the history after step 0.
    #[arg(long, default_value_t = 6, hide = true)]
    checkpoints: usize,
    /// Training examples.
    #[arg(long, default_value_t = 8000, hide = true)]
    train_count: usize,
    /// Held-out examples for the accuracy.
    #[arg(long, default_value_t = 500, hide = true)]
    held_out_count: usize,
    /// Held-out examples reconstructed.
    #[arg(long, default_value_t = 16, hide = true)]
    examples: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 64, hide = true)]
    batch: usize,
    /// CGLS iterations per layer of the inversion.
    #[arg(long, default_value_t = 40, hide = true)]
    iterations: usize,
    /// Relative residual at which each layer's inversion stops.
    #[arg(long, default_value_t = 1e-3, hide = true)]
    tolerance: f64,
    /// Active-set rounds of each layer's inversion.
    #[arg(long, default_value_t = 2, hide = true)]
    rounds: usize,
}

fn options(args: &TrainedVsRandomArgs) -> Result<TrainedVsRandomOptions> {
    let mut regimes = vec![args.widths.clone()];
    // The one-layer variant: the first hidden layer alone.
    if args.widths.len() > 1 && args.widths[0] > 0 {
        regimes.push(vec![args.widths[0]]);
    }
    if !args.expanding_widths.is_empty() {
        regimes.push(args.expanding_widths.clone());
    }
    let defaults = TrainedVsRandomOptions::default();
    let o = TrainedVsRandomOptions {
        regimes,
        train_count: args.train_count,
        held_out_count: args.held_out_count,
        examples: args.examples,
        steps: args.steps,
        batch: args.batch,
        checkpoints: args.checkpoints,
        solve: speckle::reconstruct::SolveOptions {
            max_iterations: args.iterations,
            tolerance: args.tolerance,
            active_set_rounds: args.rounds,
            ..defaults.solve
        },
        seed: args.seed,
        ..defaults
    };
    o.validate()?;
    Ok(o)
}

pub fn study(args: &TrainedVsRandomArgs, quiet: bool) -> Result<()> {
    let options = options(args)?;
    let created = crate::output::prepare_dir(&args.out)?;
    let result = run(args, &options, quiet);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(&args.out);
    }
    result
}

fn run(args: &TrainedVsRandomArgs, options: &TrainedVsRandomOptions, quiet: bool) -> Result<()> {
    let gpu = Gpu::new()?;
    let bar = crate::output::progress_bar(
        study::progress_total(options) as u64,
        "stages",
        args.json || quiet,
    );
    let result = study::run(&gpu, options, &mut |msg| {
        bar.set_message(msg.to_string());
        bar.inc(1);
    })?;
    bar.finish_and_clear();

    let grid = grid(options, &result)?;
    let history = history_plot(&result)?;
    let json = to_json(&serde_json::json!({
        "adapter": gpu.summary(),
        "accuracy": result.accuracy,
        "chance_accuracy": result.chance_accuracy,
        "psnr_blank_db": result.psnr_blank_db,
        "features": result.features,
        "classes": result.classes,
        "regimes": result.regimes,
        "history": result.history,
        "steps": options.steps,
        "batch": options.batch,
        "lr": options.lr,
        "train_count": options.train_count,
        "held_out_count": options.held_out_count,
        "examples": options.examples,
        "iterations_per_layer": options.solve.max_iterations,
        "active_set_rounds": options.solve.active_set_rounds,
        "seed": options.seed,
        "seconds": result.seconds,
    }))?;
    // Everything is rendered before the first file is written.
    let done = crate::output::write_all(
        &args.out,
        &[
            ("grid.png", encode_png(&grid)?),
            ("history.png", encode_png(&history)?),
            ("results.json", json.clone().into_bytes()),
        ],
    )?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    println!("adapter: {}", gpu.summary().name);
    println!(
        "n = {}, K = {}, chance {:.3}; {} steps in {:.1} s",
        result.features, result.classes, result.chance_accuracy, options.steps, result.seconds
    );
    println!("blank estimate (all 0.5): {:.1} dB", result.psnr_blank_db);
    println!(
        "{:<16} {:>9} {:>9} {:>14} {:>15} {:>12} {:>13}",
        "widths",
        "expanding",
        "accuracy",
        "PSNR random dB",
        "PSNR trained dB",
        "active rand",
        "active train"
    );
    for r in &result.regimes {
        println!(
            "{:<16} {:>9} {:>9.3} {:>14.1} {:>15.1} {:>12.2} {:>13.2}",
            format!("{:?}", r.widths),
            r.expanding,
            r.accuracy,
            r.psnr_random_db,
            r.psnr_trained_db,
            r.active_fraction_random,
            r.active_fraction_trained
        );
    }
    for r in &result.regimes {
        println!("history {:?}:", r.widths);
        println!("{:>8} {:>9} {:>15}", "step", "accuracy", "PSNR trained dB");
        for c in &r.history {
            println!(
                "{:>8} {:>9.3} {:>15.1}",
                c.step, c.accuracy, c.psnr_trained_db
            );
        }
    }
    println!(
        "wrote {}",
        done.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Rows: the first held-out examples; columns: the original, then random and trained for
/// each regime, each captioned with its PSNR.
fn grid(options: &TrainedVsRandomOptions, result: &TrainedVsRandomResult) -> Result<RgbImage> {
    let n = result.features;
    let side = options.task.size as u32;
    let rows = options.examples.min(GRID_ROWS);
    let cells = (0..rows)
        .map(|e| {
            let slice = |v: &[f32]| v[e * n..(e + 1) * n].to_vec();
            let mut row = vec![Some(Cell::gray(side, side, slice(&result.originals), ""))];
            for r in &result.regimes {
                row.push(Some(Cell::gray(
                    side,
                    side,
                    slice(&r.random_images),
                    format!("{:.1} dB", r.psnr_random_per_example[e]),
                )));
                row.push(Some(Cell::gray(
                    side,
                    side,
                    slice(&r.trained_images),
                    format!("{:.1} dB", r.psnr_trained_per_example[e]),
                )));
            }
            row
        })
        .collect();
    let mut grid = ImageGrid::new(cells, 8);
    grid.title = "Reconstruction from the top hidden layer".into();
    grid.row_labels = (0..rows).map(|e| format!("#{e}")).collect();
    grid.col_labels = std::iter::once("original".to_string())
        .chain(result.regimes.iter().flat_map(|r| {
            let w = widths(&r.widths);
            [format!("{w} random"), format!("{w} trained")]
        }))
        .collect();
    grid.render()
}

fn widths(w: &[usize]) -> String {
    w.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

/// PSNR of the trained encoder against the step (random weights as reference lines) above
/// the held-out accuracy against the step, stacked in one image.
fn history_plot(result: &TrainedVsRandomResult) -> Result<RgbImage> {
    let mut psnr = LinePlot::new(
        "Information kept as training proceeds",
        "training step",
        "PSNR of the reconstruction (dB)",
    );
    psnr.width = 900;
    psnr.height = 450;
    psnr.series = result
        .regimes
        .iter()
        .map(|r| {
            Series::new(
                format!("trained {}", widths(&r.widths)),
                r.history
                    .iter()
                    .map(|c| (c.step as f64, c.psnr_trained_db))
                    .collect(),
            )
        })
        .collect();
    psnr.hlines = result
        .regimes
        .iter()
        .map(|r| (r.psnr_random_db, format!("random {}", widths(&r.widths))))
        .collect();
    let mut accuracy = LinePlot::new("", "training step", "held-out accuracy");
    accuracy.width = 900;
    accuracy.height = 300;
    accuracy.series = result
        .regimes
        .iter()
        .map(|r| {
            Series::new(
                format!("accuracy {}", widths(&r.widths)),
                r.history
                    .iter()
                    .map(|c| (c.step as f64, c.accuracy))
                    .collect(),
            )
        })
        .collect();
    accuracy.hlines = vec![(result.chance_accuracy, "chance".into())];
    let (top, bottom) = (psnr.render()?, accuracy.render()?);
    let width = top.width().max(bottom.width());
    let mut out = RgbImage::from_pixel(
        width,
        top.height() + bottom.height(),
        [255, 255, 255].into(),
    );
    for (x, y, p) in top.enumerate_pixels() {
        out.put_pixel(x, y, *p);
    }
    for (x, y, p) in bottom.enumerate_pixels() {
        out.put_pixel(x, top.height() + y, *p);
    }
    Ok(out)
}
