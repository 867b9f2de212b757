//! `speckle study propagation`: signal propagation through deep random networks.

use std::path::PathBuf;

use clap::Args;
use speckle::plot::{encode_png, LinePlot, Series};
use speckle::study::propagation::{self, PropagationConfig, PropagationResult};
use speckle::{Gpu, Result};

use crate::to_json;

/// `speckle study propagation`.
#[derive(Args)]
pub struct PropagationArgs {
    /// Layers per network.
    #[arg(long, default_value_t = 30)]
    depth: usize,
    /// Units per layer; several widths repeat every configuration.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    widths: Vec<usize>,
    /// Random inputs (and random tangent directions) per configuration.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Initialization laws (xavier, xavier_normal, he, he_uniform, lecun, orthogonal; PyTorch's
    /// names kaiming_normal, … too). Giving
    /// any of --inits/--activations/--gains runs their Cartesian product (a list not given is
    /// he, relu or 1); giving none runs the default set (see --help of the study).
    #[arg(long, value_delimiter = ',')]
    inits: Vec<String>,
    /// Activations (relu, tanh, selu, linear, gelu, leaky_relu, …).
    #[arg(long, value_delimiter = ',')]
    activations: Vec<String>,
    /// Gains γ multiplying each law's standard deviation.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    gains: Vec<f32>,
    /// LayerNorm on every pre-activation.
    #[arg(long)]
    layernorm: bool,
    /// Seed of the weights, inputs and tangents.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Folder for norms.png, jacobian.png and results.json (created if missing).
    #[arg(long, default_value = "speckle-propagation")]
    out: PathBuf,
    /// The results as JSON on standard output (no table, no progress bar).
    #[arg(long)]
    json: bool,
}

/// The configurations the arguments ask for.
fn configs(args: &PropagationArgs) -> Result<Vec<PropagationConfig>> {
    if args.inits.is_empty() && args.activations.is_empty() && args.gains.is_empty() {
        return Ok(propagation::default_configs(
            args.depth,
            &args.widths,
            args.batch,
            args.layernorm,
            args.seed,
        ));
    }
    let or = |list: &[String], default: &'static str| -> Vec<String> {
        if list.is_empty() {
            vec![default.to_string()]
        } else {
            list.to_vec()
        }
    };
    let inits = or(&args.inits, "he");
    let activations = or(&args.activations, "relu");
    let gains = if args.gains.is_empty() {
        vec![1.0]
    } else {
        args.gains.clone()
    };
    propagation::product_configs(
        &inits.iter().map(String::as_str).collect::<Vec<_>>(),
        &activations.iter().map(String::as_str).collect::<Vec<_>>(),
        &gains,
        &args.widths,
        args.depth,
        args.batch,
        args.layernorm,
        args.seed,
    )
}

pub fn propagation(args: &PropagationArgs, quiet: bool) -> Result<()> {
    let configs = configs(args)?;
    for c in &configs {
        c.check()?;
    }
    crate::output::prepare_dir(&args.out)?;
    let gpu = Gpu::new()?;
    let layers = (configs.len() * args.depth) as u64;
    let bar = crate::output::progress_bar(layers, "layers", args.json || quiet);
    let mut results = Vec::with_capacity(configs.len());
    for c in &configs {
        bar.set_message(c.label());
        results.push(propagation::run(&gpu, c, &mut |_| bar.inc(1))?);
    }
    bar.finish_and_clear();

    let norms = norms_plot(&results)?;
    let jacobian = jacobian_plot(&results)?;
    let json = to_json(&serde_json::json!({
        "adapter": gpu.summary(),
        "depth": args.depth,
        "batch": args.batch,
        "seed": args.seed,
        "results": results,
    }))?;
    // Everything is rendered before the first file is written.
    let done = crate::output::write_all(
        &args.out,
        &[
            ("norms.png", encode_png(&norms)?),
            ("jacobian.png", encode_png(&jacobian)?),
            ("results.json", json.clone().into_bytes()),
        ],
    )?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    println!("adapter: {}", gpu.summary().name);
    println!(
        "{:<44} {:>12} {:>12} {:>12} {:>12}",
        "configuration", "|h_L|/|x|", "spread", "|J v|/|v|", "rel. spread"
    );
    for r in &results {
        let last = r.norm_ratio.len() - 1;
        println!(
            "{:<44} {:>12.4e} {:>12.3e} {:>12.4e} {:>12.3}",
            label(r),
            r.norm_ratio[last],
            r.norm_spread[last],
            r.jacobian_ratio[last],
            r.jacobian_spread[last] / r.jacobian_ratio[last]
        );
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

fn label(r: &PropagationResult) -> String {
    format!(
        "{}+{} g={} n={}{}",
        r.init,
        r.activation,
        r.gain,
        r.width,
        if r.layernorm { " LN" } else { "" }
    )
}

/// ‖h_l‖/‖x‖ against depth (layer 0 is the input, ratio 1), log scale.
fn norms_plot(results: &[PropagationResult]) -> Result<speckle::plot::RgbImage> {
    let mut plot = LinePlot::new(
        "Signal norm through depth",
        "layer l",
        "mean |h_l| / |x| over the batch",
    );
    plot.log_y = true;
    plot.width = 1000;
    plot.height = 600;
    plot.series = results
        .iter()
        .map(|r| {
            let mut points = vec![(0.0, 1.0)];
            points.extend(
                r.norm_ratio
                    .iter()
                    .enumerate()
                    .map(|(l, &v)| ((l + 1) as f64, v)),
            );
            Series {
                name: label(r),
                points,
                dashed: r.activation == "identity",
            }
        })
        .collect();
    plot.render()
}

/// The relative spread of ‖J v‖/‖v‖ over random directions (standard deviation / mean)
/// against depth: Hanin's result, its growth with Σ 1/n_l, shows as width shrinks.
fn jacobian_plot(results: &[PropagationResult]) -> Result<speckle::plot::RgbImage> {
    let mut plot = LinePlot::new(
        "Spread of the input-output Jacobian",
        "layer l",
        "std / mean of |J v| / |v| over random v",
    );
    plot.log_y = true;
    plot.width = 1000;
    plot.height = 600;
    plot.series = results
        .iter()
        .map(|r| Series {
            name: label(r),
            points: r
                .jacobian_spread
                .iter()
                .zip(&r.jacobian_ratio)
                .enumerate()
                .map(|(l, (&s, &m))| ((l + 1) as f64, s / m))
                .collect(),
            dashed: r.activation == "identity",
        })
        .collect();
    plot.render()
}
