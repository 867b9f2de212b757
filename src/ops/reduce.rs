//! Row reductions along the last axis (`shaders/reduce.wgsl`): sum, sum of squares, Euclidean
//! norm and max. Rows longer than one binding are reduced by segments into partial values,
//! which a second pass of the same kernel reduces.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Σ x.
    Sum,
    /// Σ x².
    SumSquares,
    /// sqrt(Σ x²).
    Norm,
    /// max x.
    Max,
}

impl Reduction {
    /// Every name accepted by [`Reduction::from_name`].
    pub const NAMES: &'static [&'static str] = &["sum", "sum_squares", "norm", "max"];

    /// Parses a name.
    pub fn from_name(name: &str) -> Result<Reduction> {
        Ok(match name {
            "sum" => Reduction::Sum,
            "sum_squares" | "sumsq" => Reduction::SumSquares,
            "norm" => Reduction::Norm,
            "max" => Reduction::Max,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown reduction {name:?}; known: {}",
                    Reduction::NAMES.join(", ")
                )))
            }
        })
    }

    /// The kernel's KIND for the first pass.
    fn kind(self) -> u32 {
        match self {
            Reduction::Sum => KIND_SUM,
            Reduction::SumSquares | Reduction::Norm => KIND_SUM_SQUARES,
            Reduction::Max => KIND_MAX,
        }
    }

    /// The KIND that combines partial values of segments.
    fn combine_kind(self) -> u32 {
        match self {
            Reduction::Max => KIND_MAX,
            _ => KIND_SUM,
        }
    }
}

const KIND_SUM: u32 = 0;
const KIND_SUM_SQUARES: u32 = 1;
const KIND_MAX: u32 = 2;

/// Uniform parameters of `shaders/reduce.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReduceParams {
    rows: u32,
    cols: u32,
    row_stride: u32,
    x_first: u32,
    out_first: u32,
    out_stride: u32,
    sqrt: u32,
    _pad: u32,
}

/// The output shape: the input's without its last axis (\[1\] for a 1-D input).
pub fn output_shape(shape: &[usize]) -> Vec<usize> {
    if shape.len() <= 1 {
        vec![1]
    } else {
        shape[..shape.len() - 1].to_vec()
    }
}

/// Plans `out[r] = reduction(x[r, :])`; `out` has [`output_shape`] of `x`.
pub fn plan(gpu: &Gpu, reduction: Reduction, x: &Tensor, out: &Tensor) -> Result<Vec<Dispatch>> {
    let cols = x.shape()[x.shape().len() - 1];
    let rows = x.len() / cols;
    if out.len() != rows {
        return Err(Error::shape(
            "reduce",
            format!(
                "input {:?} has {rows} rows but the output {:?} holds {} values",
                x.shape(),
                out.shape(),
                out.len()
            ),
        ));
    }
    let capacity = window_capacity(gpu);
    let sqrt = u32::from(reduction == Reduction::Norm);
    if cols <= capacity {
        return plan_rows(gpu, reduction.kind(), sqrt, x, rows, cols, cols, out, 1);
    }
    // Rows longer than one binding: partial values per segment, then a reduction over them.
    let segments = cols.div_ceil(capacity);
    let seg_len = cols.div_ceil(segments);
    let partial = Tensor::empty(gpu, &[rows, segments])?;
    let mut dispatches = Vec::new();
    for segment in 0..segments {
        let start = segment * seg_len;
        let len = seg_len.min(cols - start);
        for row in 0..rows {
            let xw = x.window(gpu, row * cols + start, len);
            let ow = partial.window(gpu, row * segments + segment, 1);
            dispatches.push(dispatch(
                gpu,
                reduction.kind(),
                ReduceParams {
                    rows: 1,
                    cols: len as u32,
                    row_stride: len as u32,
                    x_first: xw.first,
                    out_first: ow.first,
                    out_stride: 1,
                    sqrt: 0,
                    _pad: 0,
                },
                xw.resource(),
                ow.resource(),
                segments,
            )?);
        }
    }
    dispatches.extend(plan_rows(
        gpu,
        reduction.combine_kind(),
        sqrt,
        &partial,
        rows,
        segments,
        segments,
        out,
        1,
    )?);
    // The bind groups keep `partial` alive until the dispatches are dropped.
    Ok(dispatches)
}

/// Reduces `rows` rows of `cols` values (rows `row_stride` apart) into `out`, `out_stride` apart,
/// in row blocks that fit one binding.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per reduction stage, all named"
)]
fn plan_rows(
    gpu: &Gpu,
    kind: u32,
    sqrt: u32,
    x: &Tensor,
    rows: usize,
    cols: usize,
    row_stride: usize,
    out: &Tensor,
    out_stride: usize,
) -> Result<Vec<Dispatch>> {
    let capacity = window_capacity(gpu);
    let max_rows = (capacity / row_stride)
        .min(capacity / out_stride)
        .min(gpu.max_grid())
        .max(1);
    let mut dispatches = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let n = max_rows.min(rows - r0);
        let xw = x.window(gpu, r0 * row_stride, (n - 1) * row_stride + cols);
        let ow = out.window(gpu, r0 * out_stride, (n - 1) * out_stride + 1);
        dispatches.push(dispatch(
            gpu,
            kind,
            ReduceParams {
                rows: n as u32,
                cols: cols as u32,
                row_stride: row_stride as u32,
                x_first: xw.first,
                out_first: ow.first,
                out_stride: out_stride as u32,
                sqrt,
                _pad: 0,
            },
            xw.resource(),
            ow.resource(),
            cols,
        )?);
        r0 += n;
    }
    Ok(dispatches)
}

fn dispatch(
    gpu: &Gpu,
    kind: u32,
    params: ReduceParams,
    x: wgpu::BindingResource<'_>,
    out: wgpu::BindingResource<'_>,
    cols: usize,
) -> Result<Dispatch> {
    let wg = super::row_workgroup_size(gpu, cols);
    let pipeline = gpu.pipeline(
        &shaders::REDUCE,
        &[("KIND", f64::from(kind)), ("WG", f64::from(wg))],
    )?;
    let uniform = gpu.uniform("speckle.reduce.params", &params);
    let bind_group = gpu.bind_group(&pipeline, &[uniform.as_entire_binding(), x, out]);
    Ok(Dispatch::kernel(
        pipeline,
        bind_group,
        gpu.grid(params.rows),
    ))
}

/// Returns `reduction` of each row of `x` (shape [`output_shape`]).
pub fn run(gpu: &Gpu, reduction: Reduction, x: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(gpu, &output_shape(x.shape()))?;
    gpu.execute(&plan(gpu, reduction, x, &out)?)?;
    Ok(out)
}
