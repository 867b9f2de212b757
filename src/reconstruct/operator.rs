//! Linear operators for the solvers, and the recorded programs the solvers run.
//!
//! An [`Operator`] is a real linear map A: Rⁿ → R^rows applied to the rows of a batch, with its
//! adjoint Aᵀ. A complex matrix R = Re + i·Im acting on real inputs is the real operator
//! x ↦ (Re x, Im x), stacked: rows = 2m, each output row holds the m real parts then the m
//! imaginary parts.

use crate::cpu::philox::Stream;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::matmul::{self, MatmulConfig, MatmulDims, MatmulKernel, MatmulOptions};
use crate::ops::project_dense::{self, DenseSpec};
use crate::ops::random_fill::{self, RandomSpec};
use crate::ops::{matmul_skinny, transpose};
use crate::projection::{Kind, Mode, Projection};
use crate::tensor::Tensor;
use std::sync::OnceLock;

/// One step of a recorded program: dispatches, or a buffer copy between them.
pub(crate) enum Step {
    /// Dispatches, recorded as [`Gpu::encode`] does.
    Run(Vec<Dispatch>),
    /// `size` bytes from `src` at `src_offset` to `dst` at `dst_offset`.
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
}

impl From<Vec<Dispatch>> for Step {
    fn from(d: Vec<Dispatch>) -> Step {
        Step::Run(d)
    }
}

/// Records `program` `times` times into one command buffer, submits it and waits: a solver's
/// iterations run back to back on the GPU with no host round trip between them.
pub(crate) fn run_program(gpu: &Gpu, program: &[Step], times: usize) -> Result<()> {
    if times == 0 || program.is_empty() {
        return Ok(());
    }
    let device = gpu.device();
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("speckle.reconstruct"),
    });
    // Consecutive runs of dispatches are encoded together, so that their kernels share
    // compute passes.
    let steps: Vec<&Step> = (0..times).flat_map(|_| program.iter()).collect();
    let mut k = 0;
    while k < steps.len() {
        match steps[k] {
            Step::Copy {
                src,
                src_offset,
                dst,
                dst_offset,
                size,
            } => {
                encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                k += 1;
            }
            Step::Run(_) => {
                let runs = steps[k..]
                    .iter()
                    .take_while(|s| matches!(s, Step::Run(_)))
                    .count();
                let dispatches = steps[k..k + runs].iter().flat_map(|s| match s {
                    Step::Run(d) => d.as_slice(),
                    Step::Copy { .. } => &[],
                });
                Gpu::encode(&mut encoder, dispatches, None);
                k += runs;
            }
        }
    }
    gpu.queue().submit([encoder.finish()]);
    gpu.check_scopes("running a solver's iterations", memory, validation)?;
    gpu.wait()
}

/// A copy of row block `[row, col0 .. col0 + cols)` of `src` (rows of `src_cols`) to the same
/// rows of `dst` (rows of `dst_cols`) at column `dst_col0`, one copy per row.
#[expect(
    clippy::too_many_arguments,
    reason = "source and destination each need a tensor, a row length and a column"
)]
fn copy_columns(
    src: &Tensor,
    src_cols: usize,
    src_col0: usize,
    dst: &Tensor,
    dst_cols: usize,
    dst_col0: usize,
    cols: usize,
    rows: usize,
) -> Vec<Step> {
    (0..rows)
        .map(|b| Step::Copy {
            src: src.buffer().clone(),
            src_offset: ((b * src_cols + src_col0) * 4) as u64,
            dst: dst.buffer().clone(),
            dst_offset: ((b * dst_cols + dst_col0) * 4) as u64,
            size: (cols * 4) as u64,
        })
        .collect()
}

/// How an operator holds its matrix.
#[derive(Debug)]
enum Matrix {
    /// The rows × n matrix in a tensor, applied by matmul, and its transpose once a product
    /// reads better from it (`Operator::layout`).
    Dense(Tensor, OnceLock<Tensor>),
    /// Regenerated from its seed by `project_dense` (complex: the stacked real operator).
    Free(DenseSpec),
}

/// A real linear operator A: Rⁿ → R^rows with its adjoint, applied to batches of rows:
/// materialized (a tensor, multiplied by matmul) or matrix-free (entries regenerated from
/// Philox by `project_dense` and its transpose, never stored).
#[derive(Debug)]
pub struct Operator {
    matrix: Matrix,
    rows: usize,
    cols: usize,
}

impl Operator {
    /// The materialized operator of a `[rows, n]` matrix. The matrix must not change while the
    /// operator lives (through another tensor sharing its buffer): a product may make and keep
    /// its transpose (on CPU adapters, for the adjoints of a few rows).
    pub fn dense(matrix: Tensor) -> Result<Operator> {
        let [rows, cols] = *matrix.shape() else {
            return Err(Error::shape(
                "reconstruct",
                format!(
                    "an operator's matrix must be 2-D [rows, n], got shape {:?}",
                    matrix.shape()
                ),
            ));
        };
        Ok(Operator {
            matrix: Matrix::Dense(matrix, OnceLock::new()),
            rows,
            cols,
        })
    }

    /// The matrix-free operator of `m` rows and `n` columns drawn as `spec` says (for a
    /// complex `spec`, the stacked real operator of 2m rows).
    pub fn matrix_free(spec: DenseSpec, m: usize, n: usize) -> Result<Operator> {
        if m == 0 || n == 0 {
            return Err(Error::invalid(format!(
                "an operator needs m >= 1 and n >= 1 (got m = {m}, n = {n})"
            )));
        }
        Ok(Operator {
            rows: if spec.complex { 2 * m } else { m },
            matrix: Matrix::Free(spec),
            cols: n,
        })
    }

    /// The operator of a fitted dense projection of a linear (`gaussian`, `rademacher`,
    /// `sparse`) or `optical` kind, in the projection's mode; for `optical`, the stacked real
    /// operator x ↦ (Re R x, Im R x) of 2·n_out rows.
    pub fn from_projection(gpu: &Gpu, projection: &Projection) -> Result<Operator> {
        let n = projection
            .input_dim()
            .ok_or_else(|| Error::invalid("the projection is not fitted (call fit(d) first)"))?;
        let ok = matches!(
            projection.kind,
            Kind::Gaussian | Kind::Rademacher | Kind::Sparse { .. } | Kind::Optical
        ) && !projection.orthogonal
            && projection.camera.is_none();
        if !ok {
            return Err(Error::invalid(format!(
                "reconstruction operators come from gaussian, rademacher, sparse or optical \
                 projections without orthogonal rows or a camera, not {}",
                projection.kind.name()
            )));
        }
        let spec = projection.spec()?;
        let m = projection.n_out;
        match projection.mode {
            Mode::MatrixFree => Operator::matrix_free(spec.dense, m, n),
            Mode::Materialized => {
                let matrix = projection.matrix(gpu)?;
                match matrix.im {
                    None => Operator::dense(matrix.re),
                    Some(im) => {
                        let stacked = Tensor::empty(gpu, &[2 * m, n])?;
                        let mut copies = copy_columns(&matrix.re, 1, 0, &stacked, 1, 0, m * n, 1);
                        copies.extend(copy_columns(&im, 1, 0, &stacked, 1, m * n, m * n, 1));
                        run_program(gpu, &copies, 1)?;
                        Operator::dense(stacked)
                    }
                }
            }
        }
    }

    /// A Gaussian operator N(0, scale²) of m × n entries from `seed` (stream `Matrix`): the
    /// same entries materialized or matrix-free.
    pub fn gaussian(
        gpu: &Gpu,
        m: usize,
        n: usize,
        scale: f32,
        seed: u64,
        mode: Mode,
    ) -> Result<Operator> {
        let spec = DenseSpec {
            distribution: random_fill::Distribution::Gaussian,
            scale,
            seed,
            complex: false,
        };
        match mode {
            Mode::MatrixFree => Operator::matrix_free(spec, m, n),
            Mode::Materialized => {
                let matrix = random_fill::run(
                    gpu,
                    &[m, n],
                    &RandomSpec {
                        distribution: spec.distribution,
                        scale,
                        seed,
                        stream: Stream::Matrix as u32,
                        row0: 0,
                    },
                )?;
                Operator::dense(matrix)
            }
        }
    }

    /// Output dimension (rows of A).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input dimension (columns of A).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// True when the matrix is regenerated rather than stored.
    pub fn is_matrix_free(&self) -> bool {
        matches!(self.matrix, Matrix::Free(_))
    }

    fn check(&self, what: &str, t: &Tensor, cols: usize, batch: usize) -> Result<()> {
        if t.shape() != [batch, cols] {
            return Err(Error::shape(
                "reconstruct",
                format!(
                    "{what} must be [{batch}, {cols}] for this {} x {} operator, got {:?}",
                    self.rows,
                    self.cols,
                    t.shape()
                ),
            ));
        }
        Ok(())
    }

    /// How a product of `batch` rows with the dense matrix A (rows × n) runs: the operand
    /// (`a`, or its transpose, made on first need), its transpose flag and the matmul
    /// configuration, for `x Aᵀ` (`apply`) or `r A`. The skinny matmul where it takes either
    /// layout, A as stored first (on CPU adapters it reads B transposed only, so there the
    /// adjoint of a few rows takes Aᵀ); else on CPU adapters A as stored through the scalar
    /// kernel with 8 threads in a row, which measured 1.1–1.6× faster than the texture path
    /// at batch 3, n = 1024, m = 512 … 8192 (it packs nothing; `SPECKLE_MATMUL_CONFIG` still
    /// overrides it); elsewhere A as stored with the adapter's configuration.
    fn layout<'t>(
        &self,
        gpu: &Gpu,
        (a, at): (&'t Tensor, &'t OnceLock<Tensor>),
        batch: usize,
        apply: bool,
    ) -> Result<(&'t Tensor, bool, Option<MatmulConfig>)> {
        // The product's dimensions: k runs along A's columns (apply) or rows (adjoint).
        let (n, k) = if apply {
            (self.rows, self.cols)
        } else {
            (self.cols, self.rows)
        };
        let skinny = |trans_b: bool| -> Result<bool> {
            let b = if trans_b { [n, k] } else { [k, n] };
            let d = MatmulDims::new(&[batch.max(1), k], &b, false, trans_b)?;
            Ok(matmul_skinny::preferred(gpu, &d, false, trans_b))
        };
        // A as stored is op(B) transposed for apply, untransposed for the adjoint.
        let stored = apply;
        if skinny(stored)? {
            return Ok((a, stored, None));
        }
        if skinny(!stored)? {
            let t = match at.get() {
                Some(t) => t,
                None => {
                    let t = transpose::run(gpu, a)?;
                    at.get_or_init(|| t)
                }
            };
            return Ok((t, !stored, None));
        }
        let overridden = MatmulConfig::from_env().is_some();
        let scalar = MatmulConfig {
            wg_x: 8,
            wg_y: 1,
            kernel: MatmulKernel::Scalar,
        };
        Ok((a, stored, (gpu.is_cpu() && !overridden).then_some(scalar)))
    }

    /// Plans `out = A x` (+ `bias` on every row) for `x` `[batch, n]`, `out` `[batch, rows]`.
    pub(crate) fn plan_apply(
        &self,
        gpu: &Gpu,
        x: &Tensor,
        out: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<Step>> {
        let batch = x.shape().first().copied().unwrap_or(0);
        self.check("the input", x, self.cols, batch)?;
        self.check("the output", out, self.rows, batch)?;
        match &self.matrix {
            Matrix::Dense(a, at) => {
                let (b, trans_b, config) = self.layout(gpu, (a, at), batch, true)?;
                let options = MatmulOptions {
                    trans_b,
                    bias,
                    config,
                    ..Default::default()
                };
                Ok(vec![matmul::plan(gpu, x, b, out, &options)?.into()])
            }
            Matrix::Free(spec) => {
                let mut steps = Vec::new();
                if spec.complex {
                    let m = self.rows / 2;
                    let re = Tensor::empty(gpu, &[batch, m])?;
                    let im = Tensor::empty(gpu, &[batch, m])?;
                    steps.push(project_dense::plan(gpu, x, &re, Some(&im), spec)?.into());
                    steps.extend(copy_columns(&re, m, 0, out, 2 * m, 0, m, batch));
                    steps.extend(copy_columns(&im, m, 0, out, 2 * m, m, m, batch));
                } else {
                    steps.push(project_dense::plan(gpu, x, out, None, spec)?.into());
                }
                if let Some(bias) = bias {
                    steps.push(
                        crate::ops::axpy::plan(
                            gpu,
                            crate::ops::axpy::AxpyOp::Axpy,
                            &crate::ops::axpy::Coefficient::constant(1.0),
                            Some(bias),
                            out,
                            None,
                        )?
                        .into(),
                    );
                }
                Ok(steps)
            }
        }
    }

    /// Plans `out = Aᵀ r` for `r` `[batch, rows]`, `out` `[batch, n]`.
    pub(crate) fn plan_adjoint(&self, gpu: &Gpu, r: &Tensor, out: &Tensor) -> Result<Vec<Step>> {
        let batch = r.shape().first().copied().unwrap_or(0);
        self.check("the residual", r, self.rows, batch)?;
        self.check("the output", out, self.cols, batch)?;
        match &self.matrix {
            Matrix::Dense(a, at) => {
                let (b, trans_b, config) = self.layout(gpu, (a, at), batch, false)?;
                let options = MatmulOptions {
                    trans_b,
                    config,
                    ..Default::default()
                };
                Ok(vec![matmul::plan(gpu, r, b, out, &options)?.into()])
            }
            Matrix::Free(spec) => {
                let mut steps = Vec::new();
                if spec.complex {
                    let m = self.rows / 2;
                    let u = Tensor::empty(gpu, &[batch, m])?;
                    let v = Tensor::empty(gpu, &[batch, m])?;
                    steps.extend(copy_columns(r, 2 * m, 0, &u, m, 0, m, batch));
                    steps.extend(copy_columns(r, 2 * m, m, &v, m, 0, m, batch));
                    steps.push(project_dense::plan_transpose(gpu, &u, Some(&v), out, spec)?.into());
                } else {
                    steps.push(project_dense::plan_transpose(gpu, r, None, out, spec)?.into());
                }
                Ok(steps)
            }
        }
    }

    /// A x for `x` `[batch, n]`, as a new `[batch, rows]` tensor.
    pub fn apply(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let batch = x.shape().first().copied().unwrap_or(1);
        let out = Tensor::empty(gpu, &[batch, self.rows])?;
        run_program(gpu, &self.plan_apply(gpu, x, &out, None)?, 1)?;
        Ok(out)
    }

    /// Aᵀ r for `r` `[batch, rows]`, as a new `[batch, n]` tensor.
    pub fn adjoint(&self, gpu: &Gpu, r: &Tensor) -> Result<Tensor> {
        let batch = r.shape().first().copied().unwrap_or(1);
        let out = Tensor::empty(gpu, &[batch, self.cols])?;
        run_program(gpu, &self.plan_adjoint(gpu, r, &out)?, 1)?;
        Ok(out)
    }
}
