//! Row reductions along the last axis (`shaders/reduce.wgsl`): sum, sum of squares, Euclidean
//! norm and max. Rows longer than one binding, or than one invocation may loop over
//! ([`loops`]; lavapipe ends an invocation's loops after 65,535 iterations, silently: with
//! 256 threads, past about 16.7 million values), are reduced by segments into partial values,
//! which further passes of the same kernel reduce.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::most_within;
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

/// Loop iterations of an invocation reducing rows of `cols` values with `wg` threads per
/// workgroup, an upper bound counting a loop that runs n times as n + 1 (lavapipe counts the
/// exiting test too): the loop over blocks of 4·wg values runs ceil(cols / (4 wg)) times (a
/// thread takes four values of each block), the tree log2(wg) times.
pub fn loops(cols: usize, wg: u32) -> u64 {
    cols.div_ceil(4 * wg as usize) as u64 + 1 + u64::from(wg.trailing_zeros()) + 1
}

/// The longest row one dispatch may reduce on `gpu`: one binding's worth, and, under a loop
/// limit, what the widest workgroup reduces within it. An [`Error::LoopLimit`] where the limit
/// leaves no room for two blocks of values per thread (so that segmenting would not shorten
/// rows).
fn max_segment(gpu: &Gpu) -> Result<usize> {
    let capacity = window_capacity(gpu);
    // The workgroup of the longest rows; shorter rows get fewer threads, but only as many
    // as keep their loops within the limit (see row_workgroup_size).
    let wg = super::row_workgroup_size(gpu, 1 << 30, loops)?;
    let longest = most_within(
        gpu,
        "reduce",
        2 * 4 * u64::from(wg),
        capacity as u64,
        |cols| loops(cols as usize, wg),
        "no reduction can be planned within that limit",
    )?;
    Ok(longest.map_or(capacity, |c| c as usize))
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
    let longest = max_segment(gpu)?;
    let sqrt = u32::from(reduction == Reduction::Norm);
    let mut dispatches = Vec::new();
    let mut kind = reduction.kind();
    // The partial values of the last round, once there is one.
    let mut partial: Option<Tensor> = None;
    let mut cols = cols;
    // Rows too long for one dispatch: partial values per segment (a [rows, segments] tensor),
    // reduced again until they fit. Each round shortens the rows at least by half (segments
    // hold at least two values per thread), so few rounds are needed.
    while cols > longest {
        let segments = cols.div_ceil(longest);
        let seg_len = cols.div_ceil(segments);
        let segments = cols.div_ceil(seg_len);
        let next = Tensor::empty(gpu, &[rows, segments])?;
        let src = partial.as_ref().unwrap_or(x);
        for segment in 0..segments {
            let start = segment * seg_len;
            let len = seg_len.min(cols - start);
            let rows_to = Rows {
                cols: len,
                x_offset: start,
                row_stride: cols,
                out_offset: segment,
                out_stride: segments,
            };
            dispatches.extend(plan_rows(gpu, kind, 0, src, rows, &rows_to, &next)?);
        }
        // The bind groups keep each round's tensor alive until the dispatches are dropped.
        partial = Some(next);
        cols = segments;
        kind = reduction.combine_kind();
    }
    let rows_to = Rows {
        cols,
        x_offset: 0,
        row_stride: cols,
        out_offset: 0,
        out_stride: 1,
    };
    let src = partial.as_ref().unwrap_or(x);
    dispatches.extend(plan_rows(gpu, kind, sqrt, src, rows, &rows_to, out)?);
    Ok(dispatches)
}

/// Where [`plan_rows`] reads and writes: row r's `cols` values start at
/// `x_offset + r * row_stride` of x, its result goes to `out_offset + r * out_stride` of out.
struct Rows {
    cols: usize,
    x_offset: usize,
    row_stride: usize,
    out_offset: usize,
    out_stride: usize,
}

/// Reduces `rows` rows placed as `at` says into `out`, in row blocks whose windows fit one
/// binding (`at.cols` must fit one; rows `row_stride` apart then go one per dispatch when
/// two do not).
fn plan_rows(
    gpu: &Gpu,
    kind: u32,
    sqrt: u32,
    x: &Tensor,
    rows: usize,
    at: &Rows,
    out: &Tensor,
) -> Result<Vec<Dispatch>> {
    let Rows {
        cols,
        x_offset,
        row_stride,
        out_offset,
        out_stride,
    } = *at;
    let capacity = window_capacity(gpu);
    let max_rows = ((capacity - cols) / row_stride + 1)
        .min(capacity / out_stride)
        .min(gpu.max_grid())
        .max(1);
    let mut dispatches = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let n = max_rows.min(rows - r0);
        let xw = x.window(gpu, x_offset + r0 * row_stride, (n - 1) * row_stride + cols);
        let ow = out.window(gpu, out_offset + r0 * out_stride, (n - 1) * out_stride + 1);
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
    let wg = super::row_workgroup_size(gpu, cols, loops)?;
    let constants = [("KIND", f64::from(kind)), ("WG", f64::from(wg))];
    // The vec4 entry where the rows are whole vec4s that start on one.
    let pipeline =
        if takes_vec4(cols, params.row_stride as usize) && params.x_first.is_multiple_of(4) {
            gpu.pipeline_entry(&shaders::REDUCE, "main_vec4", &constants)?
        } else {
            gpu.pipeline(&shaders::REDUCE, &constants)?
        };
    let uniform = gpu.uniform("speckle.reduce.params", &params);
    let bind_group = gpu.bind_group(&pipeline, &[uniform.as_entire_binding(), x, out]);
    Ok(Dispatch::kernel(
        pipeline,
        bind_group,
        gpu.grid(params.rows),
    ))
}

/// Whether rows of `cols` values `row_stride` apart run through the kernel's vec4 entry point,
/// which reads whole vec4s (where the window also starts on a vec4, as a whole tensor's
/// does): both multiples of 4.
pub fn takes_vec4(cols: usize, row_stride: usize) -> bool {
    cols.is_multiple_of(4) && row_stride.is_multiple_of(4)
}

/// Returns `reduction` of each row of `x` (shape [`output_shape`]).
pub fn run(gpu: &Gpu, reduction: Reduction, x: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(gpu, &output_shape(x.shape()))?;
    gpu.execute(&plan(gpu, reduction, x, &out)?)?;
    Ok(out)
}
