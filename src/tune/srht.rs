//! Tuning the structured projection ([`crate::ops::srht`]): the tile of its workgroup-memory
//! stages and the threads per tile, each candidate checked against the f64 reference on the
//! first input's outputs before its time counts.

use std::str::FromStr;

use crate::bench::random_vec;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::srht::{self, LocalConfig, TUNE_OP};
use crate::tensor::Tensor;
use crate::tune::{
    positive_sizes, run_candidate, CandidateResult, ClassResult, Contest, TuneOptions, TunedEntry,
};

/// Relative error over the first input's outputs: three f32 transforms of p log2 p additions
/// measure about 2e-7 at p = 2^17; a wrong tile, stride or sign gives O(1).
const TOLERANCE: f64 = 1e-4;

/// The seed of the tuned projection (any seed serves: the work does not depend on it).
const SEED: u64 = 7;

/// One structured projection to tune on: `batch` inputs of `d` values to `n_out` outputs.
/// The forward linear kind is measured; the transpose and the optical kind run the same
/// transforms, so they share its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrhtShape {
    /// Inputs.
    pub batch: usize,
    /// Input dimension.
    pub d: usize,
    /// Outputs.
    pub n_out: usize,
}

impl FromStr for SrhtShape {
    type Err = Error;

    /// `batch,d,n_out`.
    fn from_str(s: &str) -> Result<SrhtShape> {
        let bad = || {
            Error::invalid(format!(
                "structured projection shape {s:?} is not batch,d,n_out with sizes >= 1 \
                 (e.g. 8,1000000,2000000)"
            ))
        };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let v = positive_sizes(&parts, bad)?;
        Ok(SrhtShape {
            batch: v[0],
            d: v[1],
            n_out: v[2],
        })
    }
}

impl std::fmt::Display for SrhtShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.batch, self.d, self.n_out)
    }
}

/// The problems `speckle tune` measures by default, those of `speckle bench all`: 8 inputs of
/// 10⁶ values to 2·10⁶ outputs on GPUs, one of 65,536 to 131,072 on CPU adapters.
pub fn default_shapes(gpu: &Gpu) -> Vec<SrhtShape> {
    let (batch, d, n_out) = if gpu.is_cpu() {
        (1, 1 << 16, 1 << 17)
    } else {
        (8, 1_000_000, 2_000_000)
    };
    vec![SrhtShape { batch, d, n_out }]
}

/// The candidates for a shape on `gpu` ([`LocalConfig::candidates`] for its p).
pub fn candidates(gpu: &Gpu, shape: &SrhtShape) -> Vec<LocalConfig> {
    LocalConfig::candidates(gpu, srht::padded_len(shape.d))
}

/// Tunes each of `shapes` (see [`crate::tune::matmul::tune`] for the contract). A shape whose
/// p is too short for any tile has no candidates and is reported with none.
pub fn tune(
    gpu: &Gpu,
    shapes: &[SrhtShape],
    options: &TuneOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(ClassResult, Option<TunedEntry>)>> {
    let mut out = Vec::new();
    for shape in shapes {
        let SrhtShape { batch, d, n_out } = *shape;
        let p = srht::padded_len(d);
        let class = srht::class_of(gpu, batch, d, n_out, false)?;
        let x_host = random_vec(batch * d, 41);
        let x = Tensor::from_slice(gpu, &x_host, &[batch, d])?;
        let y = Tensor::empty(gpu, &[batch, n_out])?;
        let reference = crate::cpu::srht::srht(&x_host[..d], 1, d, n_out, SEED, false);
        let default = LocalConfig::builtin(gpu, p)?;
        let mut contest = Contest::new();
        let mut results = Vec::new();
        // The default first: a candidate's probe is cut against the best time so far.
        let mut configs = candidates(gpu, shape);
        if let Some(i) = configs.iter().position(|c| Some(*c) == default) {
            configs[..=i].rotate_right(1);
        }
        for config in configs {
            let name = config.name();
            progress(&format!("srht {shape} {name}"));
            results.push(run_candidate(
                gpu,
                CandidateResult::new(name, Some(config) == default),
                options,
                &mut contest,
                TOLERANCE,
                || {
                    y.write(gpu, &vec![f32::NAN; y.len()])?;
                    srht::plan_with(gpu, &x, &y, n_out, SEED, false, config)
                },
                || {
                    let got = y.to_vec(gpu)?;
                    Ok(crate::cpu::relative_error(&got[..n_out], &reference))
                },
            ));
        }
        out.push(ClassResult::finish(
            gpu,
            TUNE_OP,
            class,
            vec![batch, d, n_out],
            results,
            contest,
            options,
        ));
    }
    Ok(out)
}
