//! Tuning the fused optical projection ([`crate::ops::project_optical`]): the tiled kernel's
//! T (8 or 16) and, for f16 operands where the adapter has cooperative matrices, the
//! tensor-core kernel; each candidate checked against the f64 reference on sampled outputs
//! before its time counts.

use std::str::FromStr;

use crate::bench::random_vec;
use crate::cpu::project_optical::output_rows;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::matmul::TILED_SIZES;
use crate::ops::project_dense::DenseSpec;
use crate::ops::project_optical::{
    self, default_kernel, shape_class, usable, OpticalKernel, TUNE_OP,
};
use crate::ops::random_fill::Distribution;
use crate::tensor::{HalfTensor, Tensor};
use crate::tune::{
    positive_sizes, run_candidate, CandidateResult, ClassResult, Contest, TuneOptions, TunedEntry,
};

/// Outputs compared with the f64 reference per candidate.
const CHECKED: usize = 16;
/// Relative error over the checked outputs: f32 sums of d products, squared (measured ~1e-6
/// at d = 4096), far below what a wrong tile or pairing gives (O(1)).
const TOLERANCE: f64 = 1e-4;

/// One fused optical projection to tune on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpticalShape {
    /// Inputs.
    pub batch: usize,
    /// Input dimension (a multiple of 4).
    pub d: usize,
    /// Outputs (a multiple of 4).
    pub n_out: usize,
    /// f16 operands (the matrix and the inputs rounded to f16).
    pub half: bool,
}

impl FromStr for OpticalShape {
    type Err = Error;

    /// `batch,d,n_out` optionally followed by `,f16`.
    fn from_str(s: &str) -> Result<OpticalShape> {
        let bad = || {
            Error::invalid(format!(
                "optical shape {s:?} is not batch,d,n_out[,f16] with sizes >= 1, d and n_out \
                 multiples of 4"
            ))
        };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() < 3 || parts.len() > 4 {
            return Err(bad());
        }
        let v: Vec<usize> = positive_sizes(&parts[..3], bad)?;
        let half = match parts.get(3) {
            None => false,
            Some(&"f16") => true,
            Some(_) => return Err(bad()),
        };
        if !v[1].is_multiple_of(4) || !v[2].is_multiple_of(4) {
            return Err(bad());
        }
        Ok(OpticalShape {
            batch: v[0],
            d: v[1],
            n_out: v[2],
            half,
        })
    }
}

impl std::fmt::Display for OpticalShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.batch, self.d, self.n_out)?;
        if self.half {
            f.write_str(",f16")?;
        }
        Ok(())
    }
}

/// The problems `speckle tune` measures by default: the benchmark's b1024 d4096 n16384 in f32
/// and f16 on GPUs, b64 d1024 n4096 on CPU adapters.
pub fn default_shapes(gpu: &Gpu) -> Vec<OpticalShape> {
    let (batch, d, n_out) = if gpu.is_cpu() {
        (64, 1024, 4096)
    } else {
        (1024, 4096, 16384)
    };
    [false, true]
        .into_iter()
        .map(|half| OpticalShape {
            batch,
            d,
            n_out,
            half,
        })
        .collect()
}

/// The candidates for a shape on `gpu`: every tiled T the adapter allows, and both
/// tensor-core kernels where they apply.
pub fn candidates(gpu: &Gpu, shape: &OpticalShape) -> Vec<OpticalKernel> {
    TILED_SIZES
        .iter()
        .map(|&t| OpticalKernel::Tiled(t))
        .chain([OpticalKernel::Coop, OpticalKernel::CoopStaged])
        .filter(|&k| usable(gpu, k, shape.batch, shape.d, shape.n_out, shape.half))
        .collect()
}

/// Tunes each of `shapes` (see [`crate::tune::matmul::tune`] for the contract).
pub fn tune(
    gpu: &Gpu,
    shapes: &[OpticalShape],
    options: &TuneOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(ClassResult, Option<TunedEntry>)>> {
    let mut out = Vec::new();
    for shape in shapes {
        let &OpticalShape {
            batch,
            d,
            n_out,
            half,
        } = shape;
        let spec = DenseSpec {
            distribution: Distribution::Gaussian,
            scale: 0.5f32.sqrt(),
            seed: 6,
            complex: true,
        };
        let x_host = random_vec(batch * d, 41);
        let x = Tensor::from_slice(gpu, &x_host, &[batch, d])?;
        let paired = project_optical::paired_matrix(gpu, &spec, n_out, d)?;
        let halves = if half {
            Some((
                HalfTensor::from_tensor(gpu, &x)?,
                HalfTensor::from_tensor(gpu, &paired)?,
            ))
        } else {
            None
        };
        let y = Tensor::empty(gpu, &[batch, n_out])?;
        let reference = sampled_reference(gpu, shape, &x, &paired, halves.as_ref())?;
        let default = default_kernel(gpu, batch, d, n_out, half);
        let mut contest = Contest::new();
        let mut results = Vec::new();
        for kernel in candidates(gpu, shape) {
            let config = kernel.name();
            progress(&format!("project_optical {shape} {config}"));
            results.push(run_candidate(
                gpu,
                CandidateResult::new(config, kernel == default),
                options,
                &mut contest,
                TOLERANCE,
                || {
                    y.write(gpu, &vec![f32::NAN; y.len()])?;
                    match &halves {
                        Some((x16, p16)) => {
                            project_optical::plan_f16(gpu, x16, p16, &y, Some(kernel))
                        }
                        None => project_optical::plan(gpu, &x, &paired, &y, Some(kernel)),
                    }
                },
                || {
                    let got = y.to_vec(gpu)?;
                    let picked: Vec<f32> = reference.0.iter().map(|&i| got[i]).collect();
                    Ok(crate::cpu::relative_error(&picked, &reference.1))
                },
            ));
        }
        out.push(ClassResult::finish(
            gpu,
            TUNE_OP,
            shape_class(batch, d, n_out, half),
            vec![batch, d, n_out],
            results,
            contest,
            options,
        ));
    }
    Ok(out)
}

/// A few outputs of the first input: their flat indices and f64 values, from the operands
/// as the kernels read them (the f16-rounded ones for f16).
fn sampled_reference(
    gpu: &Gpu,
    shape: &OpticalShape,
    x: &Tensor,
    paired: &Tensor,
    halves: Option<&(HalfTensor, HalfTensor)>,
) -> Result<(Vec<usize>, Vec<f64>)> {
    let (x_host, p_host) = match halves {
        Some((x16, p16)) => (x16.to_vec(gpu)?, p16.to_vec(gpu)?),
        None => (x.to_vec(gpu)?, paired.to_vec(gpu)?),
    };
    let d = shape.d;
    let count = CHECKED.min(shape.n_out);
    let picks: Vec<usize> = (0..count).map(|t| t * shape.n_out / count).collect();
    let values = picks
        .iter()
        .map(|&o| {
            output_rows(o)
                .into_iter()
                .map(|row| {
                    let v: f64 = (0..d)
                        .map(|j| f64::from(x_host[j]) * f64::from(p_host[row * d + j]))
                        .sum();
                    v * v
                })
                .sum()
        })
        .collect();
    Ok((picks, values))
}
