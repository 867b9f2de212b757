//! Tuning the matrix-free projection (`project_dense`, forward and transpose): its workgroup
//! size, each candidate checked against the f64 reference on sampled outputs before its time
//! counts. (The materialized projections are matmuls and tune with matmul.)

use std::str::FromStr;

use crate::bench::random_vec;
use crate::cpu::philox::Stream;
use crate::cpu::project_dense::matrix_entry;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::project_dense::{
    self, config_name, shape_class, DenseSpec, DEFAULT_WORKGROUP, TUNE_OP, WORKGROUPS,
};
use crate::ops::random_fill::Distribution;
use crate::tensor::Tensor;
use crate::tune::{
    positive_sizes, run_candidate, CandidateResult, ClassResult, Contest, TuneOptions, TunedEntry,
};

/// Outputs compared with the f64 reference per candidate.
const CHECKED: usize = 16;
/// Relative error (over the checked outputs) an f32 accumulation over d terms stays far
/// below (measured ~1e-6 at d = 10⁶).
const TOLERANCE: f64 = 1e-4;

/// One projection to tune on: `batch` inputs of `d` values to `n_out` outputs, complex (the
/// optical kind) or real, forward (R x) or transpose (Rᵀ u).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectShape {
    /// Inputs.
    pub batch: usize,
    /// Input dimension.
    pub d: usize,
    /// Output dimension.
    pub n_out: usize,
    /// Real and imaginary parts (the optical kind).
    pub complex: bool,
    /// The adjoint Rᵀ u (what the reconstruction solvers use).
    pub transpose: bool,
}

impl FromStr for ProjectShape {
    type Err = Error;

    /// `batch,d,n_out` followed by any of `,complex` and `,transpose`.
    fn from_str(s: &str) -> Result<ProjectShape> {
        let bad = || {
            Error::invalid(format!(
                "projection shape {s:?} is not batch,d,n_out[,complex][,transpose] with sizes >= 1"
            ))
        };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() < 3 {
            return Err(bad());
        }
        let v: Vec<usize> = positive_sizes(&parts[..3], bad)?;
        let (mut complex, mut transpose) = (false, false);
        for flag in &parts[3..] {
            match *flag {
                "complex" => complex = true,
                "transpose" => transpose = true,
                _ => return Err(bad()),
            }
        }
        Ok(ProjectShape {
            batch: v[0],
            d: v[1],
            n_out: v[2],
            complex,
            transpose,
        })
    }
}

impl std::fmt::Display for ProjectShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.batch, self.d, self.n_out)?;
        if self.complex {
            f.write_str(",complex")?;
        }
        if self.transpose {
            f.write_str(",transpose")?;
        }
        Ok(())
    }
}

/// The problems `speckle tune` measures by default: the optical kind forward and its
/// transpose, 20,000 → 40,000 in batches of 8 on GPUs, 2,048 → 4,096 for one input on CPU
/// adapters.
pub fn default_shapes(gpu: &Gpu) -> Vec<ProjectShape> {
    let (batch, d, n_out) = if gpu.is_cpu() {
        (1, 2048, 4096)
    } else {
        (8, 20_000, 40_000)
    };
    [false, true]
        .into_iter()
        .map(|transpose| ProjectShape {
            batch,
            d,
            n_out,
            complex: true,
            transpose,
        })
        .collect()
}

/// Tunes each of `shapes` (see [`crate::tune::matmul::tune`] for the contract).
pub fn tune(
    gpu: &Gpu,
    shapes: &[ProjectShape],
    options: &TuneOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(ClassResult, Option<TunedEntry>)>> {
    let l = gpu.limits();
    let max_wg = l
        .max_compute_invocations_per_workgroup
        .min(l.max_compute_workgroup_size_x);
    let mut out = Vec::new();
    for shape in shapes {
        let spec = DenseSpec {
            distribution: Distribution::Gaussian,
            scale: 1.0 / (shape.d as f32).sqrt(),
            seed: 5,
            complex: shape.complex,
        };
        let (in_len, out_len) = if shape.transpose {
            (shape.n_out, shape.d)
        } else {
            (shape.d, shape.n_out)
        };
        let u_host = random_vec(shape.batch * in_len, 31);
        let v_host = random_vec(shape.batch * in_len, 32);
        let u = Tensor::from_slice(gpu, &u_host, &[shape.batch, in_len])?;
        let v = Tensor::from_slice(gpu, &v_host, &[shape.batch, in_len])?;
        let re = Tensor::empty(gpu, &[shape.batch, out_len])?;
        let im = Tensor::empty(gpu, &[shape.batch, out_len])?;
        let reference = sampled_reference(&spec, shape, &u_host, &v_host);
        let mut contest = Contest::new();
        let mut results = Vec::new();
        for wg in WORKGROUPS.into_iter().filter(|&w| w <= max_wg) {
            let config = config_name(wg);
            progress(&format!("project_dense {shape} {config}"));
            results.push(run_candidate(
                gpu,
                CandidateResult::new(config, wg == DEFAULT_WORKGROUP),
                options,
                &mut contest,
                TOLERANCE,
                || {
                    re.write(gpu, &vec![f32::NAN; re.len()])?;
                    im.write(gpu, &vec![f32::NAN; im.len()])?;
                    let c = shape.complex;
                    if shape.transpose {
                        project_dense::plan_transpose_with(gpu, &u, c.then_some(&v), &re, &spec, wg)
                    } else {
                        project_dense::plan_with(gpu, &u, &re, c.then_some(&im), &spec, wg)
                    }
                },
                || {
                    let re_host = re.to_vec(gpu)?;
                    let im_host = im.to_vec(gpu)?;
                    let got: Vec<f32> = reference
                        .picks
                        .iter()
                        .flat_map(|&i| {
                            let mut v = vec![re_host[i]];
                            if shape.complex && !shape.transpose {
                                v.push(im_host[i]);
                            }
                            v
                        })
                        .collect();
                    Ok(crate::cpu::relative_error(&got, &reference.values))
                },
            ));
        }
        out.push(ClassResult::finish(
            gpu,
            TUNE_OP,
            shape_class(shape.d, shape.n_out, shape.complex, shape.transpose),
            vec![shape.batch, shape.d, shape.n_out],
            results,
            contest,
            options,
        ));
    }
    Ok(out)
}

/// Reference values of a few outputs of the first input: `picks` are flat output indices,
/// `values` their f64 values (forward complex: real then imaginary part of each).
struct Sampled {
    picks: Vec<usize>,
    values: Vec<f64>,
}

fn sampled_reference(spec: &DenseSpec, shape: &ProjectShape, u: &[f32], v: &[f32]) -> Sampled {
    let out_len = if shape.transpose {
        shape.d
    } else {
        shape.n_out
    };
    let count = CHECKED.min(out_len);
    let picks: Vec<usize> = (0..count).map(|t| t * out_len / count).collect();
    let mut values = Vec::new();
    for &o in &picks {
        if shape.transpose {
            // out[j] = Σ_i R(i, j) u[i] + I(i, j) v[i].
            let mut sum = 0.0;
            for i in 0..shape.n_out {
                sum += matrix_entry(spec, Stream::Matrix, i as u32, o as u64) * f64::from(u[i]);
                if shape.complex {
                    sum += matrix_entry(spec, Stream::MatrixImaginary, i as u32, o as u64)
                        * f64::from(v[i]);
                }
            }
            values.push(sum);
        } else {
            let dot = |stream| {
                (0..shape.d)
                    .map(|j| matrix_entry(spec, stream, o as u32, j as u64) * f64::from(u[j]))
                    .sum::<f64>()
            };
            values.push(dot(Stream::Matrix));
            if shape.complex {
                values.push(dot(Stream::MatrixImaginary));
            }
        }
    }
    Sampled { picks, values }
}
