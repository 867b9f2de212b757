//! Row softmax along the last axis (`shaders/softmax.wgsl`), with an optional scale and causal
//! mask. Rows of any length: rows that fit one binding run fused (one workgroup per row);
//! longer rows are split into segments (per-segment statistics, then normalization), and so
//! are rows whose fused pass would loop more often per invocation than the adapter allows
//! ([`fused_loops`], [`segment_loops`]; lavapipe ends an invocation's loops after 65,535
//! iterations, silently: with 256 threads, past about 8.4 million columns).

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Options of the row softmax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxOptions {
    /// Multiplies the input before the softmax (1/sqrt(d) in attention).
    pub scale: f32,
    /// Causal mask aligned top-left: for an input of shape [..., Nq, Nk], query i sees keys
    /// j <= i (PyTorch's `is_causal`). Masked entries are 0 in the output.
    pub causal: bool,
}

impl Default for SoftmaxOptions {
    fn default() -> Self {
        SoftmaxOptions {
            scale: 1.0,
            causal: false,
        }
    }
}

/// Uniform parameters of `shaders/softmax.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SoftmaxParams {
    rows: u32,
    cols: u32,
    seg_start: u32,
    seg_len: u32,
    x_first: u32,
    y_first: u32,
    row_base: u32,
    causal_rows: u32,
    scale: f32,
    segments: u32,
    segment: u32,
    _pad: u32,
}

const MODE_FUSED: u32 = 0;
const MODE_STATS: u32 = 1;
const MODE_NORMALIZE: u32 = 2;

/// Loop iterations of a fused invocation (MODE 0) over rows of `cols` values with `wg`
/// threads per workgroup, an upper bound counting a loop that runs n times as n + 1 (lavapipe
/// counts the exiting test too): the statistics loop and the output loop each run
/// ceil(cols / (4 wg)) times (a thread takes four columns of each block of 4·wg), and the
/// workgroup's tree reduction log2(wg) times.
pub fn fused_loops(cols: usize, wg: u32) -> u64 {
    2 * (cols.div_ceil(4 * wg as usize) as u64 + 1) + u64::from(wg.trailing_zeros()) + 1
}

/// Loop iterations of a segmented invocation over a segment of `seg_len` values of a row cut
/// into `segments`, an upper bound over both passes counted as in [`fused_loops`]: the
/// statistics pass (MODE 1) loops ceil(seg_len / (4 wg)) times over the segment and log2(wg)
/// in the tree, the normalization (MODE 2) `segments` times (combining the row's segment
/// statistics), then ceil(seg_len / (4 wg)) in its output loop.
pub fn segment_loops(seg_len: usize, segments: usize, wg: u32) -> u64 {
    let per_thread = seg_len.div_ceil(4 * wg as usize) as u64 + 1;
    let tree = u64::from(wg.trailing_zeros()) + 1;
    (per_thread + tree).max(segments as u64 + 1 + per_thread)
}

/// The segments a row of `cols` values is cut into: the fewest, at least `at_least`, whose
/// passes loop at most `limit` times per invocation (any number without a limit). An
/// [`Error::LoopLimit`] where no number of segments is within the limit.
fn segments_for(gpu: &Gpu, cols: usize, at_least: usize, wg: u32) -> Result<usize> {
    let Some(limit) = gpu.loop_limit()? else {
        return Ok(at_least);
    };
    // Loops as a function of the segments s fall while s is small (shorter segments) and
    // grow again past about sqrt(cols / wg) (the normalization combines s statistics);
    // s > limit cannot fit, so the search ends there.
    let cost = |s: usize| segment_loops(cols.div_ceil(s), s, wg);
    let last = cols.min(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut best = (cost(at_least), at_least);
    for s in at_least..=last.max(at_least) {
        let c = cost(s);
        if c <= limit {
            return Ok(s);
        }
        best = best.min((c, s));
    }
    // best.0 exceeds the limit: this refuses.
    gpu.check_loops(
        "softmax",
        best.0,
        &format!(
            "rows of {cols} values loop that often even cut into {} segments (the fewest \
             loops); use shorter rows",
            best.1
        ),
    )?;
    Ok(best.1)
}

/// Whether rows of `cols` values that fit one dispatch run through the kernel's vec4 entry
/// point, which reads and writes whole vec4s (where the windows also start on a vec4, as
/// whole tensors' do): `cols` a multiple of 4. Segmented rows take the scalar modes.
pub fn takes_vec4(cols: usize) -> bool {
    cols.is_multiple_of(4)
}

/// Plans `y = softmax(x)` along the last axis; `x` and `y` have the same shape.
pub fn plan(gpu: &Gpu, x: &Tensor, y: &Tensor, options: &SoftmaxOptions) -> Result<Vec<Dispatch>> {
    plan_rows(gpu, x, y, options, true)
}

/// [`plan`] with every row read twice, never held in registers (`bench all`'s comparison).
pub(crate) fn plan_reading_twice(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    options: &SoftmaxOptions,
) -> Result<Vec<Dispatch>> {
    plan_rows(gpu, x, y, options, false)
}

/// [`plan`], holding rows short enough in registers where `hold`.
fn plan_rows(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    options: &SoftmaxOptions,
    hold: bool,
) -> Result<Vec<Dispatch>> {
    if x.shape() != y.shape() {
        return Err(Error::shape(
            "softmax",
            format!("input {:?} and output {:?} differ", x.shape(), y.shape()),
        ));
    }
    if !options.scale.is_finite() {
        return Err(Error::invalid(format!(
            "softmax scale must be finite, got {}",
            options.scale
        )));
    }
    let shape = x.shape();
    let cols = shape[shape.len() - 1];
    let rows = x.len() / cols;
    let causal_rows = if options.causal {
        if shape.len() < 2 {
            return Err(Error::shape(
                "softmax",
                format!("a causal mask needs a [..., queries, keys] input, got shape {shape:?}"),
            ));
        }
        shape[shape.len() - 2] as u32
    } else {
        0
    };
    let wg = super::row_workgroup_size(gpu, cols, fused_loops)?;
    let capacity = window_capacity(gpu);
    let base = SoftmaxParams {
        rows: 0,
        cols: cols as u32,
        seg_start: 0,
        seg_len: cols as u32,
        x_first: 0,
        y_first: 0,
        row_base: 0,
        causal_rows,
        scale: options.scale,
        segments: 1,
        segment: 0,
        _pad: 0,
    };
    let mut dispatches = Vec::new();
    let fused_fits = gpu
        .loop_limit()?
        .is_none_or(|limit| fused_loops(cols, wg) <= limit);
    if cols <= capacity && fused_fits {
        let max_rows = (capacity / cols).min(gpu.max_grid());
        let mut r0 = 0;
        while r0 < rows {
            let n = max_rows.min(rows - r0);
            let xw = x.window(gpu, r0 * cols, n * cols);
            let yw = y.window(gpu, r0 * cols, n * cols);
            let params = SoftmaxParams {
                rows: n as u32,
                x_first: xw.first,
                y_first: yw.first,
                row_base: r0 as u32,
                ..base
            };
            let uniform = gpu.uniform("speckle.softmax.params", &params);
            // The vec4 entry where both windows start on a whole vec4 (rows of whole vec4s
            // do when their tensor's window does); it has no stats binding.
            let vec4 = takes_vec4(cols) && xw.first.is_multiple_of(4) && yw.first.is_multiple_of(4);
            let entry = match (vec4, super::held_vec4s(cols, wg).filter(|_| hold)) {
                (true, Some(held)) => Entry::Held(held),
                (true, None) => Entry::Vec4,
                (false, _) => Entry::Scalar,
            };
            let pipeline = pipeline(gpu, MODE_FUSED, wg, entry)?;
            let mut resources = vec![uniform.as_entire_binding(), xw.resource(), yw.resource()];
            if matches!(entry, Entry::Scalar) {
                resources.push(gpu.placeholder().as_entire_binding());
            }
            let bind_group = gpu.bind_group(&pipeline, &resources);
            dispatches.push(Dispatch::kernel(pipeline, bind_group, gpu.grid(n as u32)));
            r0 += n;
        }
        return Ok(dispatches);
    }
    // Rows longer than one binding, or than one invocation may loop over: per-segment (max,
    // sum) into `stats`, then normalization.
    let segments = segments_for(gpu, cols, cols.div_ceil(capacity), wg)?;
    let seg_len = cols.div_ceil(segments);
    // Segments of seg_len may cover the row in fewer (never more loops: see segment_loops).
    let segments = cols.div_ceil(seg_len);
    let stats = gpu.create_buffer(
        "speckle.softmax.stats",
        (rows * segments * 2 * 4) as u64,
        wgpu::BufferUsages::STORAGE,
    )?;
    for mode in [MODE_STATS, MODE_NORMALIZE] {
        let pipeline = pipeline(gpu, mode, wg, Entry::Scalar)?;
        for row in 0..rows {
            for segment in 0..segments {
                let start = segment * seg_len;
                let len = seg_len.min(cols - start);
                let xw = x.window(gpu, row * cols + start, len);
                let yw = y.window(gpu, row * cols + start, len);
                let params = SoftmaxParams {
                    rows: 1,
                    seg_start: start as u32,
                    seg_len: len as u32,
                    x_first: xw.first,
                    y_first: yw.first,
                    row_base: row as u32,
                    segments: segments as u32,
                    segment: segment as u32,
                    ..base
                };
                let uniform = gpu.uniform("speckle.softmax.params", &params);
                let bind_group = gpu.bind_group(
                    &pipeline,
                    &[
                        uniform.as_entire_binding(),
                        xw.resource(),
                        yw.resource(),
                        stats.as_entire_binding(),
                    ],
                );
                dispatches.push(Dispatch::kernel(pipeline.clone(), bind_group, [1, 1, 1]));
            }
        }
    }
    Ok(dispatches)
}

/// The shader's entry points.
#[derive(Clone, Copy)]
enum Entry {
    /// `main`: every mode, any alignment.
    Scalar,
    /// `main_vec4`: mode 0, rows of whole vec4s.
    Vec4,
    /// `main_held`: mode 0, rows of whole vec4s held in registers, this many per thread.
    Held(usize),
}

/// The pipeline of `mode` with `wg` threads through `entry` (the vec4 entries: mode 0 only).
fn pipeline(
    gpu: &Gpu,
    mode: u32,
    wg: u32,
    entry: Entry,
) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
    let mut constants = vec![("MODE", f64::from(mode)), ("WG", f64::from(wg))];
    let name = match entry {
        Entry::Scalar => "main",
        Entry::Vec4 => "main_vec4",
        Entry::Held(held) => {
            constants.push(("HELD", held as f64));
            "main_held"
        }
    };
    gpu.pipeline_entry(&shaders::SOFTMAX, name, &constants)
}

/// Returns the row softmax of `x` as a new tensor.
pub fn run(gpu: &Gpu, x: &Tensor, options: &SoftmaxOptions) -> Result<Tensor> {
    let y = Tensor::empty(gpu, x.shape())?;
    gpu.execute(&plan(gpu, x, &y, options)?)?;
    Ok(y)
}
