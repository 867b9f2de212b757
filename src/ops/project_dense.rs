//! The matrix-free dense projection (`shaders/project_dense.wgsl`): accumulates R x (and the
//! imaginary part I x for complex kinds) with R regenerated from Philox inside the kernel,
//! never stored; and, with [`plan_transpose`], the adjoint Rᵀ u (+ Iᵀ v), which iterative
//! solvers need. The host splits the work into batch groups of at most 8 inputs, row blocks
//! and column chunks so that every binding fits, every dispatch stays short, and no
//! invocation loops more often than the adapter allows ([`forward_loops`],
//! [`transpose_loops`]; lavapipe ends an invocation's loops after 65,535 iterations, silently:
//! unsplit, a forward invocation over 300,000 columns summed part of its row and stored
//! nothing for the second input of its batch group).

use crate::cpu::philox;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::most_within;
use crate::ops::random_fill::{Distribution, PHILOX_LOOPS};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};
use crate::tune::ShapeClass;

/// Uniform parameters of `shaders/project_dense.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ProjectDenseParams {
    rows: u32,
    row0: u32,
    cols: u32,
    j0: u32,
    d: u32,
    n_out: u32,
    batch: u32,
    x_first: u32,
    re_first: u32,
    im_first: u32,
    _pad: u32,
    flags: u32,
    key_lo: u32,
    key_hi: u32,
    scale: f32,
    sparse_p: f32,
}

// Keep in sync with the FLAG_ constants of shaders/project_dense.wgsl.
const FLAG_FIRST: u32 = 1;
const FLAG_COMPLEX: u32 = 2;

/// Threads per workgroup (`WG`) unless a tuned configuration says otherwise.
pub const DEFAULT_WORKGROUP: u32 = 64;
/// Workgroup sizes a configuration may name.
pub const WORKGROUPS: [u32; 5] = [32, 64, 128, 256, 512];

/// The op name of the tuned configurations ([`crate::tune`]).
pub const TUNE_OP: &str = "project_dense";

/// The tuning class of a projection: `forward` or `transpose` (with ` complex` for the
/// complex kinds) and the octaves of d and n_out.
pub fn shape_class(d: usize, n_out: usize, complex: bool, transpose: bool) -> ShapeClass {
    let mut tag = String::from(if transpose { "transpose" } else { "forward" });
    if complex {
        tag.push_str(" complex");
    }
    ShapeClass::new(tag, &[d, n_out])
}

/// The configuration notation of a workgroup size: `wg64`.
pub fn config_name(workgroup: u32) -> String {
    format!("wg{workgroup}")
}

/// Parses [`config_name`], accepting only [`WORKGROUPS`] within the adapter's limits.
pub fn parse_config(gpu: &Gpu, s: &str) -> Result<u32> {
    let wg = s
        .strip_prefix("wg")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|w| WORKGROUPS.contains(w))
        .ok_or_else(|| {
            Error::invalid(format!(
                "project_dense config {s:?} is not wgN with N one of {WORKGROUPS:?}"
            ))
        })?;
    let l = gpu.limits();
    if wg
        > l.max_compute_invocations_per_workgroup
            .min(l.max_compute_workgroup_size_x)
    {
        return Err(Error::invalid(format!(
            "project_dense workgroup {wg} exceeds the adapter's limit"
        )));
    }
    Ok(wg)
}

/// The workgroup size for a problem: the tuned one for its class, else
/// [`DEFAULT_WORKGROUP`].
fn workgroup_for(gpu: &Gpu, spec: &DenseSpec, d: usize, n_out: usize, transpose: bool) -> u32 {
    gpu.tuned_config(TUNE_OP, &shape_class(d, n_out, spec.complex, transpose))
        .and_then(|s| parse_config(gpu, &s).ok())
        .unwrap_or(DEFAULT_WORKGROUP)
}
/// Inputs per batch group (the kernel's accumulator slots).
pub const BATCH_GROUP: usize = 8;

/// The random matrix: entries `scale · X(seed, stream, i, j)` with X from `distribution`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseSpec {
    /// Gaussian, Rademacher or sparse.
    pub distribution: Distribution,
    /// Multiplies every entry.
    pub scale: f32,
    /// The seed.
    pub seed: u64,
    /// Also accumulate the imaginary part (stream `Stream::MatrixImaginary`).
    pub complex: bool,
}

/// Matrix entries generated per dispatch: short on CPU adapters (lavapipe makes roughly 10⁸
/// per second), larger on GPUs (an H200 about 10¹¹), well under a second either way.
fn entries_per_dispatch(gpu: &Gpu) -> usize {
    if gpu.is_cpu() {
        1 << 22
    } else {
        1 << 30
    }
}

/// How lavapipe counts loop passes against an invocation's budget (measured with the
/// loop_limit probe, and as `ops::loop_limit::looped` documents): a loop of n passes counts
/// n + 1 (the last pass, in which every lane has left, runs the body once more with all lanes
/// masked off), plus one pass of each loop nested in it (reached in that masked pass); a loop
/// behind a run-time branch counts as if the branch were taken (gallivm masks lanes rather
/// than branching); loops the compiler may unroll count all the same. So these are upper
/// bounds.
///
/// Loop iterations of a forward invocation (one output row) over a chunk of `cols` columns:
/// the column loop runs once per 4 columns, each pass drawing a Philox block of R and, behind
/// the run-time `complex` flag, one of I (`random_fill::PHILOX_LOOPS` each; two nested loops); then
/// `store` loops over the batch group (at most [`BATCH_GROUP`]) for re and, behind the flag,
/// for im.
pub fn forward_loops(cols: usize) -> u64 {
    let quads = cols.div_ceil(4) as u64;
    let store = BATCH_GROUP as u64 + 1;
    quads * (1 + 2 * PHILOX_LOOPS) + 1 + 2 + 2 * store
}

/// Loop iterations of a transposed invocation (4 output columns) over a chunk of `rows` rows,
/// counted as for [`forward_loops`]: the row loop runs once per row, each pass drawing a
/// Philox block of R and, behind the `complex` flag, one of I; then `store_t` loops over the
/// batch group (at most [`BATCH_GROUP`]) and, for each input, over at most 4 columns.
pub fn transpose_loops(rows: usize) -> u64 {
    let store = BATCH_GROUP as u64 * (1 + 4 + 1) + 1 + 1;
    rows as u64 * (1 + 2 * PHILOX_LOOPS) + 1 + 2 + store
}

/// The longest column chunk (a multiple of 4) whose forward invocations stay within the
/// adapter's loop limit: `usize::MAX` without one. An [`Error::LoopLimit`] where not even 4
/// columns fit.
fn max_forward_cols(gpu: &Gpu) -> Result<usize> {
    // forward_loops grows by whole quads of columns, so the largest count is a multiple of 4.
    let cols = most_within(
        gpu,
        "project_dense",
        4,
        u64::from(u32::MAX),
        |cols| forward_loops(cols as usize),
        "no forward chunk of 4 columns fits within that limit",
    )?;
    Ok(cols.map_or(usize::MAX, |c| c as usize))
}

/// The longest row chunk whose transposed invocations stay within the adapter's loop limit:
/// `usize::MAX` without one. An [`Error::LoopLimit`] where not even one row fits.
fn max_transpose_rows(gpu: &Gpu) -> Result<usize> {
    let rows = most_within(
        gpu,
        "project_dense (transpose)",
        1,
        u64::from(u32::MAX),
        |rows| transpose_loops(rows as usize),
        "no transposed chunk of one row fits within that limit",
    )?;
    Ok(rows.map_or(usize::MAX, |r| r as usize))
}

/// The kernel's distribution code and sparse probability.
fn distribution_code(spec: &DenseSpec) -> Result<(u32, f32)> {
    Ok(match spec.distribution {
        Distribution::Gaussian => (2, 0.0),
        Distribution::Rademacher => (3, 0.0),
        Distribution::Sparse { p } => (4, p),
        other => {
            return Err(Error::invalid(format!(
                "a projection matrix is Gaussian, Rademacher or sparse, not {other:?}"
            )))
        }
    })
}

/// What [`plan`] and [`plan_transpose`] share: the checks of the generator's u32 indices, the
/// distribution's code, the pipeline, the sizes that bound a dispatch, the Philox key, and the
/// inputs per batch group (at most 8, fewer when the windows over several rows of the inputs
/// or outputs would not leave half a binding for the block itself).
struct Setup {
    wg: u32,
    sparse_p: f32,
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    capacity: usize,
    budget: usize,
    key: [u32; 2],
    group: usize,
}

impl Setup {
    fn new(
        gpu: &Gpu,
        spec: &DenseSpec,
        d: usize,
        n_out: usize,
        transpose: bool,
        wg: Option<u32>,
    ) -> Result<Setup> {
        if n_out > u32::MAX as usize || d.div_ceil(4) > u32::MAX as usize {
            return Err(Error::invalid(format!(
                "projection {d} -> {n_out} exceeds the generator's u32 indices"
            )));
        }
        let (dist, sparse_p) = distribution_code(spec)?;
        let wg = match wg {
            Some(w) => parse_config(gpu, &config_name(w))?,
            None => workgroup_for(gpu, spec, d, n_out, transpose),
        };
        let pipeline = gpu.pipeline(
            &shaders::PROJECT_DENSE,
            &[
                ("WG", f64::from(wg)),
                ("TRANSPOSE", f64::from(u8::from(transpose))),
                ("DIST", f64::from(dist)),
            ],
        )?;
        let capacity = window_capacity(gpu);
        let group = (1..=BATCH_GROUP)
            .rev()
            .find(|&g| (g - 1) * n_out.max(d) <= capacity / 2)
            .unwrap_or(1);
        Ok(Setup {
            wg,
            sparse_p,
            pipeline,
            capacity,
            budget: entries_per_dispatch(gpu),
            key: philox::key(spec.seed),
            group,
        })
    }
}

/// Plans `re = R x` (and `im = I x` when complex) for `x` of shape `[batch, d]`, into `re`
/// and `im` of shape `[batch, n_out]`, with the tuned workgroup size of the problem's class.
pub fn plan(
    gpu: &Gpu,
    x: &Tensor,
    re: &Tensor,
    im: Option<&Tensor>,
    spec: &DenseSpec,
) -> Result<Vec<Dispatch>> {
    plan_forward(gpu, x, re, im, spec, None)
}

/// [`plan`] with `workgroup` threads per workgroup (one of [`WORKGROUPS`]): for tuning.
pub fn plan_with(
    gpu: &Gpu,
    x: &Tensor,
    re: &Tensor,
    im: Option<&Tensor>,
    spec: &DenseSpec,
    workgroup: u32,
) -> Result<Vec<Dispatch>> {
    plan_forward(gpu, x, re, im, spec, Some(workgroup))
}

fn plan_forward(
    gpu: &Gpu,
    x: &Tensor,
    re: &Tensor,
    im: Option<&Tensor>,
    spec: &DenseSpec,
    workgroup: Option<u32>,
) -> Result<Vec<Dispatch>> {
    let (batch, d) = match x.shape() {
        [d] => (1, *d),
        [b, d] => (*b, *d),
        s => {
            return Err(Error::shape(
                "project",
                format!("inputs must be [batch, d] or [d], got shape {s:?}"),
            ))
        }
    };
    let n_out = re.len() / batch;
    if re.len() != batch * n_out
        || im.is_some_and(|t| t.len() != re.len())
        || im.is_some() != spec.complex
    {
        return Err(Error::shape(
            "project",
            format!("accumulators {:?} do not match {batch} inputs", re.shape()),
        ));
    }
    let Setup {
        wg,
        sparse_p,
        pipeline,
        capacity,
        budget,
        key,
        group,
    } = Setup::new(gpu, spec, d, n_out, false, workgroup)?;
    let max_cols = max_forward_cols(gpu)?;
    let mut dispatches = Vec::new();
    for b0 in (0..batch).step_by(group) {
        let bg = group.min(batch - b0);
        // Row blocks: the accumulator windows ((bg - 1) rows of n_out plus the block) must fit.
        let rows_cap = capacity
            .saturating_sub((bg - 1) * n_out)
            .min(gpu.max_grid() * wg as usize);
        let block_rows = n_out.min(rows_cap).min(budget / 4).max(1);
        // Column chunks: multiples of 4 within the entry budget, the x window and the loop
        // limit (max_cols, a multiple of 4 and at least 4).
        let x_cap = capacity.saturating_sub((bg - 1) * d);
        let chunk = ((budget / block_rows)
            .min(x_cap)
            .min(max_cols)
            .min(d.next_multiple_of(4))
            / 4
            * 4)
        .max(4);
        for row0 in (0..n_out).step_by(block_rows) {
            let rows = block_rows.min(n_out - row0);
            let re_w = re.window(gpu, b0 * n_out + row0, (bg - 1) * n_out + rows);
            let im_w = im.map(|t| t.window(gpu, b0 * n_out + row0, (bg - 1) * n_out + rows));
            for j0 in (0..d).step_by(chunk) {
                let cols = chunk.min(d - j0);
                let x_w = x.window(gpu, b0 * d + j0, (bg - 1) * d + cols);
                let mut flags = if j0 == 0 { FLAG_FIRST } else { 0 };
                if spec.complex {
                    flags |= FLAG_COMPLEX;
                }
                let params = ProjectDenseParams {
                    rows: rows as u32,
                    row0: row0 as u32,
                    cols: cols as u32,
                    j0: j0 as u32,
                    d: d as u32,
                    n_out: n_out as u32,
                    batch: bg as u32,
                    x_first: x_w.first,
                    re_first: re_w.first,
                    im_first: im_w.as_ref().map_or(0, |w| w.first),
                    _pad: 0,
                    flags,
                    key_lo: key[0],
                    key_hi: key[1],
                    scale: spec.scale,
                    sparse_p,
                };
                let uniform = gpu.uniform("speckle.project_dense.params", &params);
                let im_resource = Window::or_placeholder(im_w.as_ref(), gpu);
                let bind_group = gpu.bind_group(
                    &pipeline,
                    &[
                        uniform.as_entire_binding(),
                        x_w.resource(),
                        re_w.resource(),
                        im_resource,
                    ],
                );
                dispatches.push(Dispatch::kernel(
                    pipeline.clone(),
                    bind_group,
                    gpu.grid((rows as u32).div_ceil(wg)),
                ));
            }
        }
    }
    Ok(dispatches)
}

/// Plans the adjoint `out = Rᵀ u` (`+ Iᵀ v` when complex: the transpose of the real operator
/// x ↦ (R x, I x)) for `u` (and `v`) of shape `[batch, n_out]`, into `out` of shape
/// `[batch, d]`, with R regenerated exactly as [`plan`] draws it. Like [`plan`], the work is
/// split into batch groups of at most 8 inputs, column blocks (4 columns per invocation) and
/// row chunks that accumulate into `out`.
pub fn plan_transpose(
    gpu: &Gpu,
    u: &Tensor,
    v: Option<&Tensor>,
    out: &Tensor,
    spec: &DenseSpec,
) -> Result<Vec<Dispatch>> {
    plan_adjoint(gpu, u, v, out, spec, None)
}

/// [`plan_transpose`] with `workgroup` threads per workgroup (one of [`WORKGROUPS`]): for
/// tuning.
pub fn plan_transpose_with(
    gpu: &Gpu,
    u: &Tensor,
    v: Option<&Tensor>,
    out: &Tensor,
    spec: &DenseSpec,
    workgroup: u32,
) -> Result<Vec<Dispatch>> {
    plan_adjoint(gpu, u, v, out, spec, Some(workgroup))
}

fn plan_adjoint(
    gpu: &Gpu,
    u: &Tensor,
    v: Option<&Tensor>,
    out: &Tensor,
    spec: &DenseSpec,
    workgroup: Option<u32>,
) -> Result<Vec<Dispatch>> {
    let (batch, n_out) = match u.shape() {
        [n] => (1, *n),
        [b, n] => (*b, *n),
        s => {
            return Err(Error::shape(
                "project",
                format!("transpose inputs must be [batch, n_out] or [n_out], got shape {s:?}"),
            ))
        }
    };
    let d = out.len() / batch;
    if out.len() != batch * d
        || v.is_some_and(|t| t.len() != u.len())
        || v.is_some() != spec.complex
    {
        return Err(Error::shape(
            "project",
            format!(
                "transpose: output {:?} and imaginary input {:?} do not match input {:?}{}",
                out.shape(),
                v.map(Tensor::shape),
                u.shape(),
                if spec.complex {
                    " (complex kinds need the imaginary input)"
                } else {
                    ""
                }
            ),
        ));
    }
    let Setup {
        wg,
        sparse_p,
        pipeline,
        capacity,
        budget,
        key,
        group,
    } = Setup::new(gpu, spec, d, n_out, true, workgroup)?;
    let max_rows = max_transpose_rows(gpu)?;
    let mut dispatches = Vec::new();
    for b0 in (0..batch).step_by(group) {
        let bg = group.min(batch - b0);
        // Column blocks (multiples of 4): the output window and the grid must hold them.
        let cols_cap = capacity
            .saturating_sub((bg - 1) * d)
            .min(gpu.max_grid() * wg as usize * 4);
        let block_cols = (d.min(cols_cap).min(budget) / 4 * 4)
            .max(4)
            .min(d.next_multiple_of(4));
        // Row chunks within the entry budget, the input windows and the loop limit.
        let u_cap = capacity.saturating_sub((bg - 1) * n_out).max(1);
        let chunk = (budget / block_cols)
            .min(u_cap)
            .min(max_rows)
            .clamp(1, n_out);
        for j0 in (0..d).step_by(block_cols) {
            let cols = block_cols.min(d - j0);
            let out_w = out.window(gpu, b0 * d + j0, (bg - 1) * d + cols);
            for (ci, row0) in (0..n_out).step_by(chunk).enumerate() {
                let rows = chunk.min(n_out - row0);
                let u_w = u.window(gpu, b0 * n_out + row0, (bg - 1) * n_out + rows);
                let v_w = v.map(|t| t.window(gpu, b0 * n_out + row0, (bg - 1) * n_out + rows));
                let mut flags = if ci == 0 { FLAG_FIRST } else { 0 };
                if spec.complex {
                    flags |= FLAG_COMPLEX;
                }
                let params = ProjectDenseParams {
                    rows: rows as u32,
                    row0: row0 as u32,
                    cols: cols as u32,
                    j0: j0 as u32,
                    d: d as u32,
                    n_out: n_out as u32,
                    batch: bg as u32,
                    x_first: u_w.first,
                    re_first: out_w.first,
                    im_first: v_w.as_ref().map_or(0, |w| w.first),
                    _pad: 0,
                    flags,
                    key_lo: key[0],
                    key_hi: key[1],
                    scale: spec.scale,
                    sparse_p,
                };
                let uniform = gpu.uniform("speckle.project_dense.params", &params);
                let bind_group = gpu.bind_group(
                    &pipeline,
                    &[
                        uniform.as_entire_binding(),
                        u_w.resource(),
                        out_w.resource(),
                        Window::or_placeholder(v_w.as_ref(), gpu),
                    ],
                );
                dispatches.push(Dispatch::kernel(
                    pipeline.clone(),
                    bind_group,
                    gpu.grid((cols.div_ceil(4) as u32).div_ceil(wg)),
                ));
            }
        }
    }
    Ok(dispatches)
}
