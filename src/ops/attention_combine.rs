//! The combine step of split-KV attention (`shaders/attention_combine.wgsl`, flash-decoding):
//! S partial outputs, each computed over a disjoint range of keys and normalized within it,
//! merge into the output of attention over all the keys. For row r and head h, with lse the
//! log-sum-exp of the scaled scores a range saw (or [`NEG`] where it saw no key) and top their
//! largest over the ranges,
//!
//! out[r, h·D + d] = Σ_s w_s · partials[s, r, h·D + d] / Σ_s w_s,  w_s = exp(lse_s − top),
//!
//! with w_s = 0 for a range of lse [`NEG`], whose partial row is never read into the sum (NaN
//! there does not propagate), and exact zeros where no range saw a key. The f64 reference is
//! [`crate::cpu::attention_combine`].
//!
//! Operands larger than one binding are cut into blocks of rows (of columns, where one row
//! exceeds a binding) and of ranges; so are ranges too many for one invocation's loops under
//! the adapter's loop limit ([`loop_iterations`]). Blocks of ranges carry each output
//! element's running state from one dispatch to the next through scratch tensors.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::{looped, most_within};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// The log-sum-exp of a range that showed a row no key: -FLT_MAX (`NEG` in
/// `shaders/attention.wgsl` and `shaders/attention_combine.wgsl`).
pub const NEG: f32 = f32::MIN;

/// Uniform parameters of `shaders/attention_combine.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionCombineParams {
    rows: u32,
    cols: u32,
    splits: u32,
    row_len: u32,
    heads: u32,
    head_dim: u32,
    col_offset: u32,
    flags: u32,
    part_first: u32,
    part_split: u32,
    lse_first: u32,
    lse_split: u32,
    out_first: u32,
    top_first: u32,
    sum_first: u32,
    _pad: u32,
}

// Keep in sync with the FLAG_ constants of shaders/attention_combine.wgsl.
/// The dispatch takes the first block of ranges: it starts from the empty state.
const FLAG_FIRST: u32 = 1;
/// The dispatch takes the last block of ranges: it writes the normalized output.
const FLAG_LAST: u32 = 2;

const WG: u32 = 256;
const NAME: &str = "attention_combine";

/// Loop passes of the busiest invocation of a dispatch over `splits` ranges: two loops over
/// them (the top, then the weighted sums), each counted as `ops::loop_limit` says.
pub fn loop_iterations(splits: usize) -> u64 {
    2 * looped(splits as u64, 0, 0)
}

/// The sizes of a combine: S ranges of R rows of H heads of D values.
#[derive(Clone, Copy, Debug)]
struct Dims {
    splits: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
}

impl Dims {
    /// H·D, the length of a row of partials and out.
    fn row_len(&self) -> usize {
        self.heads * self.head_dim
    }

    /// R·H·D, the elements of one range's partial output.
    fn plane(&self) -> usize {
        self.rows * self.row_len()
    }
}

/// S, R, H and D from partials `[S, R, H·D]`, lse `[S, R, H]` and out `[R, H·D]`.
fn dims(partials: &Tensor, lse: &Tensor, out: &Tensor) -> Result<Dims> {
    let bad = |message: String| Err(Error::shape(NAME, message));
    let (p, l, o) = (partials.shape(), lse.shape(), out.shape());
    if p.len() != 3 || l.len() != 3 || o.len() != 2 {
        return bad(format!(
            "expected partials [S, R, H·D], lse [S, R, H] and out [R, H·D], got partials \
             {p:?} (rank {}), lse {l:?} (rank {}), out {o:?} (rank {})",
            p.len(),
            l.len(),
            o.len()
        ));
    }
    let (splits, rows, row_len) = (p[0], p[1], p[2]);
    let heads = l[2];
    if l[0] != splits || l[1] != rows {
        return bad(format!(
            "lse {l:?} must be [S, R, H] with S = {splits} ranges and R = {rows} rows, as \
             partials {p:?}"
        ));
    }
    if o[0] != rows || o[1] != row_len {
        return bad(format!(
            "out {o:?} must be [R, H·D] = [{rows}, {row_len}], as partials {p:?}"
        ));
    }
    if row_len % heads != 0 {
        return bad(format!(
            "rows of {row_len} values (partials {p:?}) do not divide into the H = {heads} \
             heads of lse {l:?}"
        ));
    }
    if u32::try_from(row_len).is_err() {
        return Err(Error::invalid(format!(
            "{NAME}: rows of {row_len} values exceed the kernel's 32-bit indices"
        )));
    }
    if [partials, lse].iter().any(|t| t.buffer() == out.buffer()) {
        return Err(Error::invalid(format!(
            "{NAME}: out {o:?} shares a buffer with an input (partials {p:?}, lse {l:?}); \
             the combine cannot run in place"
        )));
    }
    Ok(Dims {
        splits,
        rows,
        heads,
        head_dim: row_len / heads,
    })
}

/// How a dispatch cuts the work: `splits` ranges of `rows` rows of `cols` columns.
#[derive(Clone, Copy, Debug)]
struct Block {
    splits: usize,
    rows: usize,
    cols: usize,
}

/// The block of each dispatch: its partials window, which spans the most elements, within
/// `capacity`, at most `max_splits` ranges, and at most `max_elements` outputs (what one
/// dispatch's grid reaches). All the ranges in one block where they fit
/// (no scratch); else blocks of as many ranges as fit with all the rows; else one range of
/// one row at a time, in blocks of columns where one row exceeds a binding.
fn block(d: &Dims, capacity: usize, max_splits: usize, max_elements: usize) -> Block {
    let (row_len, plane) = (d.row_len(), d.plane());
    if row_len > capacity {
        // A second range starts a whole plane (at least one row) further on.
        return Block {
            splits: 1,
            rows: 1,
            cols: capacity.min(max_elements),
        };
    }
    let want = d.splits.min(max_splits);
    // The most ranges whose windows fit with one row: (splits − 1)·plane + row_len ≤ capacity.
    let fit = (capacity - row_len) / plane + 1;
    let splits = if want <= fit {
        want
    } else {
        (capacity / plane).clamp(1, want)
    };
    let rows = ((capacity - (splits - 1) * plane - row_len) / row_len + 1)
        .min(d.rows)
        .min((max_elements / row_len).max(1));
    Block {
        splits,
        rows,
        cols: row_len,
    }
}

/// Plans the combine of `partials` (`[S, R, H·D]`) weighted by `lse` (`[S, R, H]`) into `out`
/// (`[R, H·D]`, a tensor of its own). Refuses, with the numbers, shapes that do not match and
/// an adapter whose loop limit leaves no room for one range per dispatch.
pub fn plan(gpu: &Gpu, partials: &Tensor, lse: &Tensor, out: &Tensor) -> Result<Vec<Dispatch>> {
    let d = dims(partials, lse, out)?;
    let max_splits = most_within(
        gpu,
        NAME,
        1,
        d.splits as u64,
        |n| loop_iterations(n as usize),
        "not even one key range per dispatch fits; the combine cannot be cut finer",
    )?
    .map_or(d.splits, |n| n as usize);
    let b = block(
        &d,
        window_capacity(gpu),
        max_splits,
        gpu.max_grid().saturating_mul(WG as usize),
    );
    // The running state between blocks of ranges, laid out like out.
    let scratch = if b.splits < d.splits {
        Some([
            Tensor::empty(gpu, out.shape())?,
            Tensor::empty(gpu, out.shape())?,
        ])
    } else {
        None
    };
    let pipeline = gpu.pipeline(&shaders::ATTENTION_COMBINE, &[("WG", f64::from(WG))])?;
    let (row_len, plane) = (d.row_len(), d.plane());
    let lse_plane = d.rows * d.heads;
    let mut dispatches = Vec::new();
    for r0 in (0..d.rows).step_by(b.rows) {
        let nr = b.rows.min(d.rows - r0);
        for c0 in (0..row_len).step_by(b.cols) {
            let nc = b.cols.min(row_len - c0);
            let (h0, h1) = (c0 / d.head_dim, (c0 + nc - 1) / d.head_dim);
            let out_start = r0 * row_len + c0;
            let out_span = (nr - 1) * row_len + nc;
            let ow = out.window(gpu, out_start, out_span);
            let sw = scratch
                .as_ref()
                .map(|[t, s]| [t, s].map(|x| x.window(gpu, out_start, out_span)));
            for s0 in (0..d.splits).step_by(b.splits) {
                let ns = b.splits.min(d.splits - s0);
                let pw = partials.window(
                    gpu,
                    s0 * plane + r0 * row_len + c0,
                    (ns - 1) * plane + out_span,
                );
                let lw = lse.window(
                    gpu,
                    s0 * lse_plane + r0 * d.heads + h0,
                    (ns - 1) * lse_plane + (nr - 1) * d.heads + (h1 - h0 + 1),
                );
                let flags = if s0 == 0 { FLAG_FIRST } else { 0 }
                    | if s0 + ns == d.splits { FLAG_LAST } else { 0 };
                let params = AttentionCombineParams {
                    rows: nr as u32,
                    cols: nc as u32,
                    splits: ns as u32,
                    row_len: row_len as u32,
                    heads: d.heads as u32,
                    head_dim: d.head_dim as u32,
                    col_offset: (c0 % d.head_dim) as u32,
                    flags,
                    part_first: pw.first,
                    // Strides between ranges only within a dispatch of several, whose windows
                    // span them (so they fit in u32).
                    part_split: if ns > 1 { plane as u32 } else { 0 },
                    lse_first: lw.first,
                    lse_split: if ns > 1 { lse_plane as u32 } else { 0 },
                    out_first: ow.first,
                    top_first: sw.as_ref().map_or(0, |[t, _]| t.first),
                    sum_first: sw.as_ref().map_or(0, |[_, s]| s.first),
                    _pad: 0,
                };
                let uniform = gpu.uniform("speckle.attention_combine.params", &params);
                let bind_group = gpu.bind_group(
                    &pipeline,
                    &[
                        uniform.as_entire_binding(),
                        pw.resource(),
                        lw.resource(),
                        ow.resource(),
                        Window::or_unused_output(sw.as_ref().map(|[t, _]| t), gpu),
                        Window::or_unused_output(sw.as_ref().map(|[_, s]| s), gpu),
                    ],
                );
                dispatches.push(Dispatch::kernel(
                    pipeline.clone(),
                    bind_group,
                    gpu.grid(((nr * nc) as u32).div_ceil(WG)),
                ));
            }
        }
    }
    Ok(dispatches)
}

/// Returns the combine of `partials` (`[S, R, H·D]`) weighted by `lse` (`[S, R, H]`) as a new
/// `[R, H·D]` tensor (see [`plan`]).
pub fn run(gpu: &Gpu, partials: &Tensor, lse: &Tensor) -> Result<Tensor> {
    let shape = partials.shape();
    if shape.len() != 3 {
        return Err(Error::shape(
            NAME,
            format!("partials must be [S, R, H·D], got {shape:?}"),
        ));
    }
    let out = Tensor::empty(gpu, &[shape[1], shape[2]])?;
    gpu.execute(&plan(gpu, partials, lse, &out)?)?;
    Ok(out)
}
