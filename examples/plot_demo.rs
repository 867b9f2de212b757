//! Draws the two kinds of figure in `speckle::plot` from synthetic data, without a GPU:
//! a log-scale plot of signal norms through depth (as in the propagation study) and an image
//! grid of inputs and noisy "reconstructions" with PSNR captions (as in the reconstruction
//! demo).
//!
//! ```text
//! cargo run --example plot_demo [-- LINE.png GRID.png PSNR.png]
//! ```
//!
//! The defaults are /tmp/plot-example-line.png, /tmp/plot-example-grid.png and
//! /tmp/plot-example-psnr.png (PSNR against the number of features, log x, linear y).

use std::path::PathBuf;

use speckle::plot::{save_png, Cell, ImageGrid, LinePlot, Series};

fn main() -> speckle::Result<()> {
    let mut args = std::env::args().skip(1);
    let line_path = PathBuf::from(args.next().unwrap_or("/tmp/plot-example-line.png".into()));
    let grid_path = PathBuf::from(args.next().unwrap_or("/tmp/plot-example-grid.png".into()));
    let psnr_path = PathBuf::from(args.next().unwrap_or("/tmp/plot-example-psnr.png".into()));

    // Norms through depth: |x_L| / |x_0| = gamma^L for a few per-layer gains.
    let mut p = LinePlot::new("Signal norm through depth", "depth L", "|x_L| / |x_0|");
    p.log_y = true;
    for (i, gamma) in [0.5f64, 0.8, 1.0, 1.25, 2.0].into_iter().enumerate() {
        let points = (0..=30).map(|l| (l as f64, gamma.powi(l))).collect();
        let name = format!("gain {gamma}");
        p.series.push(if i % 2 == 1 {
            Series::dashed(name, points)
        } else {
            Series::new(name, points)
        });
    }
    p.hlines.push((1e-6, "-120 dB".into()));
    save_png(&line_path, &p.render()?)?;

    // A 3 x 4 grid: a row of inputs, then reconstructions from more and more features.
    let (w, h) = (16u32, 16u32);
    let input = |k: u32| -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                0.5 + 0.5 * ((x * 0.4 + k as f32).sin() * (y * 0.3 - k as f32).cos())
            })
            .collect()
    };
    let mut cells = Vec::new();
    let mut row_labels = Vec::new();
    for (r, noise) in [0.0f32, 0.3, 0.1].into_iter().enumerate() {
        let mut row = Vec::new();
        for k in 0..4u32 {
            let clean = input(k);
            let noisy: Vec<f32> = clean
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v + noise * (((i as u32).wrapping_mul(2654435761) >> 16) as f32 / 65536.0 - 0.5)
                })
                .collect();
            let mse: f32 = clean
                .iter()
                .zip(&noisy)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f32>()
                / clean.len() as f32;
            let caption = if noise == 0.0 {
                "input".to_string()
            } else {
                format!("{:.1} dB", -10.0 * mse.log10())
            };
            if k == 3 && r > 0 {
                // An RGB cell, to show that grey and colour mix.
                let rgb = noisy.iter().flat_map(|&v| [v, 1.0 - v, 0.5]).collect();
                row.push(Some(Cell::rgb(w, h, rgb, caption)));
            } else {
                row.push(Some(Cell::gray(w, h, noisy, caption)));
            }
        }
        cells.push(row);
        row_labels.push(["input", "m = 256", "m = 1024"][r].to_string());
    }
    cells[1][2] = None;
    let mut g = ImageGrid::new(cells, 4);
    g.row_labels = row_labels;
    g.col_labels = (0..4).map(|k| format!("image {k}")).collect();
    g.title = "Reconstruction from random features".into();
    save_png(&grid_path, &g.render()?)?;

    // PSNR against the number of features m (log x), with a threshold line.
    let mut p = LinePlot::new("Reconstruction quality", "features m", "PSNR (dB)");
    p.log_x = true;
    p.width = 640;
    p.height = 400;
    let ms = [64.0, 128.0, 256.0, 512.0, 784.0, 1024.0, 2048.0, 4096.0];
    let psnr = |m: f64, cap: f64| (10.0 + 25.0 * (m / 784.0).log2().max(-3.0) + 40.0).min(cap);
    p.series.push(Series::new(
        "least squares",
        ms.iter().map(|&m| (m, psnr(m, 140.0))).collect(),
    ));
    p.series.push(Series::dashed(
        "ReLU features",
        ms.iter()
            .map(|&m| (m, psnr(m / 2.0, 120.0) - 5.0))
            .collect(),
    ));
    p.series.push(Series::new(
        "phase retrieval",
        ms.iter()
            .map(|&m| {
                (
                    m,
                    if m < 200.0 {
                        f64::NAN
                    } else {
                        psnr(m / 4.0, 100.0)
                    },
                )
            })
            .collect(),
    ));
    p.hlines.push((60.0, "60 dB".into()));
    save_png(&psnr_path, &p.render()?)?;

    println!(
        "wrote {}, {} and {}",
        line_path.display(),
        grid_path.display(),
        psnr_path.display()
    );
    Ok(())
}
