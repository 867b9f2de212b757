//! `speckle reconstruct`: recover an image from the features of random-weight encoders.

use std::path::PathBuf;

use clap::Args;
use speckle::picture::{Picture, DEFAULT_NAME};
use speckle::plot::{encode_png, ImageGrid, LinePlot, Series};
use speckle::projection::Mode;
use speckle::reconstruct::{self, Encoder, EncoderKind, SolveOptions};
use speckle::{Error, Gpu, Result, Tensor};

use crate::to_json;

/// `speckle reconstruct`.
#[derive(Args)]
pub struct ReconstructArgs {
    /// A PNG or JPEG image (default: the built-in NASA portrait of astronaut Eileen Collins).
    #[arg(long)]
    image: Option<PathBuf>,
    /// The central square of the image is resized to SIZE x SIZE pixels: n = SIZE² unknowns
    /// per colour channel.
    #[arg(long, default_value_t = 32)]
    size: u32,
    /// Feature ratios m/n.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.5,1,2,4,8",
        allow_negative_numbers = true
    )]
    ratios: Vec<f64>,
    /// Encoders: linear (R x), relu (ReLU(W x + b)), deep_relu (3 ReLU layers), optical (|R x|²).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "linear,relu,deep_relu,optical"
    )]
    encoders: Vec<String>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Iteration cap of every solver (default: tuned per encoder and ratio).
    #[arg(long)]
    iterations: Option<usize>,
    /// Never store the random matrices: regenerate them from the seed inside the kernels at
    /// every product (slower; for sizes whose matrices would not fit).
    #[arg(long)]
    matrix_free: bool,
    /// Folder for grid.png, psnr.png and report.json (created if missing).
    #[arg(long, default_value = "speckle-reconstruct")]
    out: PathBuf,
    /// The report as JSON on standard output (no table, no progress bar).
    #[arg(long)]
    json: bool,
}

/// One encoder at one ratio.
#[derive(Clone, Debug, serde::Serialize)]
struct Outcome {
    encoder: String,
    ratio: f64,
    features: usize,
    psnr_db: f64,
    ssim: f64,
    rel_error: f64,
    iterations: usize,
    residual: f64,
    converged: bool,
    seconds: f64,
    #[serde(skip)]
    image: Picture,
}

pub fn run(args: &ReconstructArgs, quiet: bool) -> Result<()> {
    for &r in &args.ratios {
        if !(r.is_finite() && r > 0.0) {
            return Err(Error::invalid(format!(
                "every ratio m/n must be a finite number > 0, got {r}"
            )));
        }
    }
    if args.ratios.is_empty() || args.encoders.is_empty() {
        return Err(Error::invalid("give at least one ratio and one encoder"));
    }
    let kinds = args
        .encoders
        .iter()
        .map(|name| EncoderKind::from_name(name))
        .collect::<Result<Vec<_>>>()?;
    if args.size == 0 || args.size > 512 {
        return Err(Error::invalid(format!(
            "--size must be 1..=512 (n = size² unknowns per channel), got {}",
            args.size
        )));
    }
    let (source, name) = match &args.image {
        Some(path) => (Picture::load(path)?, path.display().to_string()),
        None => (Picture::default_image(), DEFAULT_NAME.to_string()),
    };
    let picture = source.square(args.size)?;
    let created = crate::output::prepare_dir(&args.out)?;
    let result = demo(args, quiet, &kinds, &picture, &name);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(&args.out);
    }
    result
}

fn demo(
    args: &ReconstructArgs,
    quiet: bool,
    kinds: &[EncoderKind],
    picture: &Picture,
    name: &str,
) -> Result<()> {
    let gpu = Gpu::new()?;
    let (n, channels) = (picture.pixels(), picture.channels);
    let x = Tensor::from_slice(&gpu, &picture.planes, &[channels, n])?;
    let jobs = (kinds.len() * args.ratios.len()) as u64;
    let bar = crate::output::progress_bar(jobs, "runs", args.json || quiet);
    let mut outcomes = Vec::new();
    for &kind in kinds {
        for &ratio in &args.ratios {
            let label = format!("{} m/n = {ratio}", kind.name());
            bar.set_message(label.clone());
            let mode = if args.matrix_free {
                Mode::MatrixFree
            } else {
                Mode::Materialized
            };
            let encoder = Encoder::with_mode(&gpu, kind, n, ratio, args.seed, mode)?;
            let y = encoder.encode(&gpu, &x)?;
            let mut options = SolveOptions::recommended(kind, ratio);
            if let Some(cap) = args.iterations {
                options.max_iterations = cap;
            }
            let (x_hat, report) =
                reconstruct::reconstruct(&gpu, &encoder, &y, &options, &mut |it, res| {
                    bar.set_message(format!("{label}: iteration {it}, residual {res:.2e}"));
                })?;
            // Pixel values live in [0, 1]: the reconstruction is clipped to that range for
            // the image and the scores (phase retrieval's sign is fixed by its x >= 0 prior).
            let values: Vec<f32> = x_hat
                .to_vec(&gpu)?
                .into_iter()
                .map(|v| {
                    if v.is_finite() {
                        v.clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            let side = picture.width as usize;
            let ssim = (0..channels)
                .map(|c| {
                    let r = c * n..(c + 1) * n;
                    reconstruct::ssim(&picture.planes[r.clone()], &values[r], side, side, 1.0)
                })
                .sum::<f64>()
                / channels as f64;
            outcomes.push(Outcome {
                encoder: kind.name().to_string(),
                ratio,
                features: encoder.m(),
                psnr_db: reconstruct::psnr(&picture.planes, &values, 1.0),
                ssim,
                rel_error: reconstruct::relative_error(&picture.planes, &values),
                iterations: report.iterations,
                residual: report.residual,
                converged: report.converged,
                seconds: report.seconds,
                image: Picture {
                    width: picture.width,
                    height: picture.height,
                    channels,
                    planes: values,
                },
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let grid = grid_image(args, kinds, picture, &outcomes)?;
    let plot = psnr_plot(kinds, &outcomes)?;
    let json = to_json(&serde_json::json!({
        "image": name,
        "size": args.size,
        "channels": channels,
        "seed": args.seed,
        "matrix_free": args.matrix_free,
        "adapter": gpu.summary(),
        "results": outcomes,
    }))?;
    let written = crate::output::write_all(
        &args.out,
        &[
            ("grid.png", encode_png(&grid)?),
            ("psnr.png", encode_png(&plot)?),
            ("report.json", json.clone().into_bytes()),
        ],
    )?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    println!(
        "image: {name}, {0} x {0}, {channels} channel(s); adapter: {1}",
        args.size,
        gpu.summary().name
    );
    println!(
        "{:<10} {:>6} {:>9} {:>9} {:>7} {:>10} {:>6} {:>9}",
        "encoder", "m/n", "features", "PSNR dB", "SSIM", "rel. err", "iters", "seconds"
    );
    for o in &outcomes {
        println!(
            "{:<10} {:>6} {:>9} {:>9.2} {:>7.4} {:>10.3e} {:>6} {:>9.2}",
            o.encoder, o.ratio, o.features, o.psnr_db, o.ssim, o.rel_error, o.iterations, o.seconds
        );
    }
    println!(
        "wrote {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Rows: encoders; columns: the original, then each ratio; captions: PSNR.
fn grid_image(
    args: &ReconstructArgs,
    kinds: &[EncoderKind],
    picture: &Picture,
    outcomes: &[Outcome],
) -> Result<speckle::plot::RgbImage> {
    let cells = kinds
        .iter()
        .map(|kind| {
            let mut row = vec![Some(picture.to_cell("original"))];
            row.extend(args.ratios.iter().map(|&ratio| {
                outcomes
                    .iter()
                    .find(|o| o.encoder == kind.name() && o.ratio == ratio)
                    .map(|o| o.image.to_cell(format!("{:.1} dB", o.psnr_db)))
            }));
            row
        })
        .collect();
    let scale = (128 / args.size).clamp(1, 8);
    let mut grid = ImageGrid::new(cells, scale);
    grid.title = "Reconstruction from random features".into();
    grid.row_labels = kinds.iter().map(|k| k.name().to_string()).collect();
    grid.col_labels = std::iter::once("input".to_string())
        .chain(args.ratios.iter().map(|r| format!("m/n = {r}")))
        .collect();
    grid.render()
}

/// PSNR against m/n, one curve per encoder, with the thresholds the demo is held to.
fn psnr_plot(kinds: &[EncoderKind], outcomes: &[Outcome]) -> Result<speckle::plot::RgbImage> {
    let mut plot = LinePlot::new(
        "Reconstruction quality",
        "features per unknown, m/n",
        "PSNR (dB)",
    );
    plot.log_x = true;
    plot.series = kinds
        .iter()
        .map(|kind| {
            Series::new(
                kind.name(),
                outcomes
                    .iter()
                    .filter(|o| o.encoder == kind.name())
                    .map(|o| (o.ratio, o.psnr_db.min(150.0)))
                    .collect(),
            )
        })
        .collect();
    plot.hlines = vec![
        (60.0, "60 dB".into()),
        (40.0, "40 dB".into()),
        (30.0, "30 dB".into()),
    ];
    plot.render()
}
