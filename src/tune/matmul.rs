//! Tuning matmul: every kernel and workgroup shape the adapter allows, on representative
//! products of each layout, each checked against the f64 reference before its time counts.

use std::str::FromStr;

use crate::bench::{check_sampled, random_vec};
use crate::error::{Error, Result};
use crate::gpu::Dispatch;
use crate::gpu::Gpu;
use crate::ops::matmul::{
    self, shape_class, MatmulConfig, MatmulDims, MatmulKernel, MatmulOptions, TUNE_OP,
};
use crate::ops::{matmul_coop_staged, matmul_f16};
use crate::tensor::{HalfTensor, Tensor};
use crate::tune::{
    positive_sizes, run_candidate, CandidateResult, ClassResult, Contest, TuneOptions, TunedEntry,
};

/// One product to tune on: op(A) is m × k, op(B) is k × n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The shared dimension.
    pub k: usize,
    /// A stored as [k, m].
    pub trans_a: bool,
    /// B stored as [n, k].
    pub trans_b: bool,
}

impl MatmulShape {
    /// A square n × n × n product without transposes.
    pub fn square(n: usize) -> MatmulShape {
        MatmulShape {
            m: n,
            n,
            k: n,
            trans_a: false,
            trans_b: false,
        }
    }

    fn dims(&self) -> Result<MatmulDims> {
        MatmulDims::new(&self.a_shape(), &self.b_shape(), self.trans_a, self.trans_b)
    }

    fn a_shape(&self) -> [usize; 2] {
        if self.trans_a {
            [self.k, self.m]
        } else {
            [self.m, self.k]
        }
    }

    fn b_shape(&self) -> [usize; 2] {
        if self.trans_b {
            [self.n, self.k]
        } else {
            [self.k, self.n]
        }
    }
}

impl FromStr for MatmulShape {
    type Err = Error;

    /// `m,n,k` or `m,n,k,LAYOUT` with LAYOUT one of NN, NT, TN, TT (op of A, op of B).
    fn from_str(s: &str) -> Result<MatmulShape> {
        let bad = || {
            Error::invalid(format!(
                "matmul shape {s:?} is not m,n,k[,NN|NT|TN|TT] with sizes >= 1 (e.g. 1024,1024,1024,NT)"
            ))
        };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let (sizes, layout) = match parts.len() {
            3 => (&parts[..], "NN"),
            4 => (&parts[..3], parts[3]),
            _ => return Err(bad()),
        };
        let sizes: Vec<usize> = positive_sizes(sizes, bad)?;
        let (trans_a, trans_b) = match layout.to_ascii_uppercase().as_str() {
            "NN" => (false, false),
            "NT" => (false, true),
            "TN" => (true, false),
            "TT" => (true, true),
            _ => return Err(bad()),
        };
        Ok(MatmulShape {
            m: sizes[0],
            n: sizes[1],
            k: sizes[2],
            trans_a,
            trans_b,
        })
    }
}

impl std::fmt::Display for MatmulShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = |t: bool| if t { 'T' } else { 'N' };
        write!(
            f,
            "{},{},{},{}{}",
            self.m,
            self.n,
            self.k,
            l(self.trans_a),
            l(self.trans_b)
        )
    }
}

/// The products `speckle tune` measures by default: squares without transposes at two sizes,
/// one with B transposed (the layout of the projections and attention's scores), and 8 rows
/// times a transposed B twice as wide (a projection of a few vectors, the skinny kernel's
/// class), sized for the adapter (small on CPU adapters).
pub fn default_shapes(gpu: &Gpu) -> Vec<MatmulShape> {
    let (small, large) = if gpu.is_cpu() {
        (256, 1024)
    } else {
        (1024, 4096)
    };
    let mut nt = MatmulShape::square(large);
    nt.trans_b = true;
    let few_rows = MatmulShape {
        m: 8,
        n: 2 * large,
        ..nt
    };
    vec![
        MatmulShape::square(small),
        MatmulShape::square(large),
        nt,
        few_rows,
    ]
}

/// Every configuration worth trying on `gpu`, the built-in default first: the texture kernel
/// (CPU adapters with 8-wide subgroups), the vec4 kernel over workgroup shapes from 8 to 256
/// threads, the workgroup-memory tiled kernel with 64 × 64 and 128 × 128 tiles, the skinny
/// kernel (products of up to 8 rows) with 32 to 256 threads, one lane per 4 columns or 4 to
/// 16 lanes along k, and the scalar kernel, within the adapter's limits.
pub fn candidates(gpu: &Gpu) -> Vec<MatmulConfig> {
    let mut all = vec![MatmulConfig::builtin(gpu)];
    let cfg = |wg_x, wg_y, kernel| MatmulConfig { wg_x, wg_y, kernel };
    all.push(cfg(8, 1, MatmulKernel::Texture));
    for (x, y) in [
        (8, 1),
        (16, 1),
        (32, 1),
        (4, 4),
        (8, 4),
        (4, 8),
        (8, 8),
        (16, 4),
        (16, 8),
        (8, 16),
        (32, 4),
        (32, 8),
        (16, 16),
    ] {
        all.push(cfg(x, y, MatmulKernel::Vec4));
    }
    for t in crate::ops::matmul::TILED_SIZES {
        all.push(cfg(t, t, MatmulKernel::Tiled));
    }
    for threads in [32, 64, 128, 256] {
        all.push(cfg(threads, 1, MatmulKernel::Skinny));
    }
    // Lanes along k (B transposed only; elsewhere the product runs the built-in choice).
    for (groups, lanes) in [(16, 4), (8, 8), (16, 8), (4, 16), (8, 16)] {
        all.push(cfg(groups, lanes, MatmulKernel::Skinny));
    }
    for (x, y) in [(8, 1), (8, 8), (16, 8), (16, 16), (32, 8)] {
        all.push(cfg(x, y, MatmulKernel::Scalar));
    }
    let mut unique: Vec<MatmulConfig> = Vec::new();
    for c in all {
        if c.check(gpu).is_ok() && !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

/// The operand precision a tuning run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operands {
    /// f32 operands: `ops::matmul`, cached as op `matmul`.
    F32,
    /// f16 operands: `ops::matmul_f16`, cached as op `matmul_f16`.
    F16,
}

/// The f16 path's candidates: the tensor-core kernels where the adapter has them (one
/// subgroup per workgroup, `1x1-coop`, and the staged four, `2x2-coop`, where the device has
/// subgroups), then the texture, tiled and vec4 configurations of [`candidates`] (the
/// texture kernel takes f16 operands widened as they are packed; scalar configurations would
/// run the vec4 kernel for f16).
pub fn candidates_f16(gpu: &Gpu) -> Vec<MatmulConfig> {
    let mut all = Vec::new();
    if crate::ops::matmul_coop::subgroup_size(gpu).is_some() {
        all.push(MatmulConfig {
            wg_x: 1,
            wg_y: 1,
            kernel: MatmulKernel::Coop,
        });
        if gpu.features().contains(wgpu::Features::SUBGROUP) {
            all.push(matmul_coop_staged::LAYOUT);
        }
    }
    all.extend(candidates(gpu).into_iter().filter(|c| {
        matches!(
            c.kernel,
            MatmulKernel::Texture | MatmulKernel::Vec4 | MatmulKernel::Tiled
        )
    }));
    all
}

/// Tunes each of `shapes`: returns what every candidate measured and the entries to cache
/// (one per shape whose candidates produced a valid winner). `progress` is told each
/// candidate as it starts.
pub fn tune(
    gpu: &Gpu,
    shapes: &[MatmulShape],
    options: &TuneOptions,
    progress: impl FnMut(&str),
) -> Result<Vec<(ClassResult, Option<TunedEntry>)>> {
    tune_operands(gpu, shapes, Operands::F32, options, progress)
}

/// [`tune`] for `operands` (f16 shapes need rows of whole vec4s).
pub fn tune_operands(
    gpu: &Gpu,
    shapes: &[MatmulShape],
    operands: Operands,
    options: &TuneOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(ClassResult, Option<TunedEntry>)>> {
    let (configs, op) = match operands {
        Operands::F32 => (candidates(gpu), TUNE_OP),
        Operands::F16 => (candidates_f16(gpu), matmul_f16::TUNE_OP),
    };
    let mut out = Vec::new();
    for shape in shapes {
        let d = shape.dims()?;
        let mut a_host = random_vec(d.m * d.k, 11);
        let mut b_host = random_vec(d.k * d.n, 12);
        let c = Tensor::empty(gpu, &d.output_shape())?;
        let operand = match operands {
            Operands::F32 => Operand::F32(
                Tensor::from_slice(gpu, &a_host, &shape.a_shape())?,
                Tensor::from_slice(gpu, &b_host, &shape.b_shape())?,
            ),
            Operands::F16 => {
                let a = HalfTensor::from_f32(gpu, &a_host, &shape.a_shape())?;
                let b = HalfTensor::from_f32(gpu, &b_host, &shape.b_shape())?;
                // The reference takes the f16 values the GPU holds.
                a_host = a.to_vec(gpu)?;
                b_host = b.to_vec(gpu)?;
                Operand::F16(a, b)
            }
        };
        // A valid f32 accumulation stays below about k·2⁻²⁴ componentwise; 2⁻²³·k is a bound
        // no correct kernel reaches and every wrong one (an unwritten C, a wrong tile) exceeds.
        let tolerance = d.k as f64 * f64::from(f32::EPSILON);
        let plain = MatmulOptions {
            trans_a: shape.trans_a,
            trans_b: shape.trans_b,
            ..Default::default()
        };
        // The default is what runs without a tuning cache (the tuning device has none).
        let default = operand.variant(gpu, &c, &plain)?;
        let mut contest = Contest::new();
        let mut results = Vec::new();
        for config in &configs {
            progress(&format!("{op} {shape} {config}"));
            let o = MatmulOptions {
                config: Some(*config),
                ..plain
            };
            // A configuration whose kernel cannot take these operands runs another one, which
            // another candidate measures already (the default is always measured).
            let ran = operand.variant(gpu, &c, &o)?;
            let expected = if matmul_coop_staged::is_layout(config) {
                matmul_coop_staged::NAME
            } else {
                config.kernel.name()
            };
            let is_default = match operands {
                Operands::F32 => {
                    *config == MatmulConfig::builtin_for(gpu, &d, shape.trans_a, shape.trans_b)
                }
                Operands::F16 => {
                    ran == default
                        && ran == expected
                        && (config.kernel == MatmulKernel::Coop || *config == f16_builtin(gpu))
                }
            };
            let result = CandidateResult::new(config.to_string(), is_default);
            if ran != expected && !result.is_default {
                results.push(CandidateResult {
                    rejected: Some(format!("not applicable: runs the {ran} kernel")),
                    ..result
                });
                continue;
            }
            results.push(run_candidate(
                gpu,
                result,
                options,
                &mut contest,
                tolerance,
                || {
                    c.write(gpu, &vec![f32::NAN; c.len()])?;
                    operand.plan(gpu, &c, &o)
                },
                || {
                    let c_host = c.to_vec(gpu)?;
                    let (err, _) =
                        check_sampled(&a_host, &b_host, &c_host, &d, shape.trans_a, shape.trans_b);
                    Ok(err)
                },
            ));
        }
        out.push(ClassResult::finish(
            gpu,
            op,
            shape_class(&d, shape.trans_a, shape.trans_b),
            vec![d.m, d.n, d.k],
            results,
            contest,
            options,
        ));
    }
    Ok(out)
}

/// The configuration the f16 path runs without a cache where the tensor-core kernel does not
/// apply: the built-in one (the texture kernel on lavapipe), with the vec4 kernel for any
/// other kernel.
fn f16_builtin(gpu: &Gpu) -> MatmulConfig {
    let builtin = MatmulConfig::builtin(gpu);
    match builtin.kernel {
        MatmulKernel::Texture | MatmulKernel::Vec4 | MatmulKernel::Tiled => builtin,
        _ => MatmulConfig {
            kernel: MatmulKernel::Vec4,
            ..builtin
        },
    }
}

/// A tuning problem's operands in either precision.
enum Operand {
    F32(Tensor, Tensor),
    F16(HalfTensor, HalfTensor),
}

impl Operand {
    /// The name of the kernel `o` runs (`coop-staged` for the staged tensor-core kernel).
    fn variant(&self, gpu: &Gpu, c: &Tensor, o: &MatmulOptions<'_>) -> Result<String> {
        match self {
            Operand::F32(a, b) => Ok(matmul::kernel_for(gpu, a, b, c, o)?.name().into()),
            Operand::F16(a, b) => matmul_f16::variant_name(gpu, a, b, o),
        }
    }

    fn plan(&self, gpu: &Gpu, c: &Tensor, o: &MatmulOptions<'_>) -> Result<Vec<Dispatch>> {
        match self {
            Operand::F32(a, b) => matmul::plan(gpu, a, b, c, o),
            Operand::F16(a, b) => matmul_f16::plan(gpu, a, b, c, o),
        }
    }
}
