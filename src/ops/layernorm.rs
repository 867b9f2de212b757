//! Layer normalization along the last axis (`shaders/layernorm.wgsl`) and its Jacobian-vector
//! product. For each row x of `cols` values,
//!
//! ```text
//! y  = γ ⊙ x̂ + β,   x̂ = (x − μ) / sqrt(σ² + ε)                       (plan, run)
//! dy = γ ⊙ (t − mean(t) − x̂ ⊙ mean(x̂ ⊙ t)) / sqrt(σ² + ε)            (plan_jvp, run_jvp)
//! ```
//!
//! with μ the row's mean and σ² its biased variance (divided by `cols`, like PyTorch's
//! `nn.LayerNorm`), γ and β optional `[cols]` vectors (default 1 and 0), ε = 1e-5 by default.
//! `dy` is the derivative of `y` when x moves along the tangent t (forward mode); β does not
//! enter it. One workgroup per row; the statistics in one pass in f32 by pairwise (Chan)
//! merges, shifted by the row's first value so that a common offset of the row does not cost
//! precision, then the output pass; rows of whole vec4s through the kernel's vec4 entry point
//! ([`takes_vec4`]).
//!
//! A row must fit one storage binding (`cols` ≤ about [`Gpu::binding_limit`] / 4): longer rows
//! are an error, not split, since the normalization needs the whole row's statistics before
//! writing (the softmax's segmented path would be the model, if it is ever needed). For the
//! same reason rows whose invocations would loop more often than the adapter allows
//! ([`loops`]; lavapipe ends an invocation's loops after 65,535 iterations, silently: with
//! 256 threads, past about 5.6 million values) are refused, not split. Any number of rows is
//! split into dispatches that fit the bindings and the grid.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::most_that_fit;
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// The ε of [`LayerNormOptions::default`] (PyTorch's default).
pub const DEFAULT_EPS: f32 = 1e-5;

/// Options of the layer normalization. `Default`: no γ, no β, ε = [`DEFAULT_EPS`].
#[derive(Clone, Copy, Debug)]
pub struct LayerNormOptions<'a> {
    /// Scale γ, `cols` values; `None` is all ones.
    pub gamma: Option<&'a Tensor>,
    /// Offset β, `cols` values; `None` is all zeros. Not used by the JVP.
    pub beta: Option<&'a Tensor>,
    /// ε added to the variance, finite and ≥ 0.
    pub eps: f32,
}

impl Default for LayerNormOptions<'_> {
    fn default() -> Self {
        LayerNormOptions {
            gamma: None,
            beta: None,
            eps: DEFAULT_EPS,
        }
    }
}

/// Loop iterations of an invocation normalizing rows of `cols` values with `wg` threads per
/// workgroup, an upper bound (both modes) counting a loop that runs n times as n + 1
/// (lavapipe counts the exiting test too): two passes over the row's blocks of 4·wg values
/// (ceil(cols / (4 wg)) each: a thread takes four values of each block) and one tree
/// reduction (log2(wg)).
pub fn loops(cols: usize, wg: u32) -> u64 {
    2 * (cols.div_ceil(4 * wg as usize) as u64 + 1) + u64::from(wg.trailing_zeros()) + 1
}

/// Whether rows of `cols` values run through the kernel's vec4 entry point, which reads and
/// writes whole vec4s (when every window also starts on a vec4, as whole tensors' do): `cols`
/// a multiple of 4. On lavapipe, whose storage accesses go lane by lane, it took the 1024 ×
/// 4096 normalization from 25–39 ms to 11–16 ms in one comparison.
pub fn takes_vec4(cols: usize) -> bool {
    cols.is_multiple_of(4)
}

/// Uniform parameters of `shaders/layernorm.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LayerNormParams {
    rows: u32,
    cols: u32,
    x_first: u32,
    t_first: u32,
    y_first: u32,
    gamma_first: u32,
    beta_first: u32,
    flags: u32,
    eps: f32,
    _pad: [u32; 3],
}

const MODE_VALUE: u32 = 0;
const MODE_JVP: u32 = 1;
const FLAG_GAMMA: u32 = 1;
const FLAG_BETA: u32 = 2;

/// Plans `y = layernorm(x)` along the last axis; `y` has the shape of `x` and may be `x`
/// itself (in place).
pub fn plan(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    options: &LayerNormOptions<'_>,
) -> Result<Vec<Dispatch>> {
    if x.shape() != y.shape() {
        return Err(Error::shape(
            "layernorm",
            format!("input {:?} and output {:?} differ", x.shape(), y.shape()),
        ));
    }
    plan_mode(gpu, MODE_VALUE, x, None, y, options, true)
}

/// Plans the Jacobian-vector product `dy = layernorm'(x)·t` along the last axis: `t` and `dy`
/// have the shape of `x`; `dy` may be `t` or `x` itself (in place). γ scales the result;
/// β is ignored.
pub fn plan_jvp(
    gpu: &Gpu,
    x: &Tensor,
    t: &Tensor,
    dy: &Tensor,
    options: &LayerNormOptions<'_>,
) -> Result<Vec<Dispatch>> {
    if x.shape() != t.shape() || x.shape() != dy.shape() {
        return Err(Error::shape(
            "layernorm",
            format!(
                "the JVP needs x, t and the output of one shape; got {:?}, {:?} and {:?}",
                x.shape(),
                t.shape(),
                dy.shape()
            ),
        ));
    }
    plan_mode(gpu, MODE_JVP, x, Some(t), dy, options, true)
}

/// [`plan`] with every row read twice, never held in registers (`bench all`'s comparison).
pub(crate) fn plan_reading_twice(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    options: &LayerNormOptions<'_>,
) -> Result<Vec<Dispatch>> {
    plan_mode(gpu, MODE_VALUE, x, None, y, options, false)
}

/// The plan of `mode`; rows short enough are held in registers where `hold`.
fn plan_mode(
    gpu: &Gpu,
    mode: u32,
    x: &Tensor,
    t: Option<&Tensor>,
    y: &Tensor,
    options: &LayerNormOptions<'_>,
    hold: bool,
) -> Result<Vec<Dispatch>> {
    let shape = x.shape();
    let cols = shape[shape.len() - 1];
    let rows = x.len() / cols;
    if !(options.eps.is_finite() && options.eps >= 0.0) {
        return Err(Error::invalid(format!(
            "layernorm eps must be finite and >= 0, got {}",
            options.eps
        )));
    }
    for (name, v) in [("gamma", options.gamma), ("beta", options.beta)] {
        if let Some(v) = v {
            if v.len() != cols {
                return Err(Error::shape(
                    "layernorm",
                    format!(
                        "{name} has shape {:?} but the rows of {shape:?} have {cols} values",
                        v.shape()
                    ),
                ));
            }
        }
    }
    let capacity = window_capacity(gpu);
    if cols > capacity {
        return Err(Error::shape(
            "layernorm",
            format!(
                "rows of {cols} values exceed one storage binding ({} bytes, {capacity} values); \
                 layernorm needs each row in one binding",
                gpu.binding_limit()
            ),
        ));
    }
    let wg = super::row_workgroup_size(gpu, cols, loops)?;
    if let Some(limit) = gpu.loop_limit()? {
        let longest = most_that_fit(limit, |c| loops(c, wg));
        gpu.check_loops(
            "layernorm",
            loops(cols, wg),
            &format!(
                "layernorm normalizes a row in one workgroup of {wg} threads, so rows of at most \
                 {} values fit (got {cols}); normalize shorter rows",
                longest
            ),
        )?;
    }
    let constants = [("MODE", f64::from(mode)), ("WG", f64::from(wg))];
    let gamma = options.gamma.map(|g| g.window(gpu, 0, cols));
    let beta = options.beta.map(|b| b.window(gpu, 0, cols));
    let mut flags = 0;
    if gamma.is_some() {
        flags |= FLAG_GAMMA;
    }
    if beta.is_some() && mode == MODE_VALUE {
        flags |= FLAG_BETA;
    }
    let max_rows = (capacity / cols).min(gpu.max_grid()).max(1);
    let mut dispatches = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let n = max_rows.min(rows - r0);
        let xw = x.window(gpu, r0 * cols, n * cols);
        let yw = y.window(gpu, r0 * cols, n * cols);
        let tw = t.map(|t| t.window(gpu, r0 * cols, n * cols));
        let params = LayerNormParams {
            rows: n as u32,
            cols: cols as u32,
            x_first: xw.first,
            t_first: tw.as_ref().map_or(0, |w| w.first),
            y_first: yw.first,
            gamma_first: gamma.as_ref().map_or(0, |w| w.first),
            beta_first: beta.as_ref().map_or(0, |w| w.first),
            flags,
            eps: options.eps,
            _pad: [0; 3],
        };
        let uniform = gpu.uniform("speckle.layernorm.params", &params);
        // The vec4 entry where every window starts on a whole vec4 (rows of whole vec4s start
        // on one when their tensor's window does).
        let aligned = [params.x_first, params.t_first, params.y_first]
            .iter()
            .chain([&params.gamma_first, &params.beta_first])
            .all(|f| f.is_multiple_of(4));
        // Rows short enough are read once, held in registers ([`super::held_vec4s`]).
        let mut entry_constants = constants.to_vec();
        let held = super::held_vec4s(cols, wg).filter(|_| hold);
        let entry = match (takes_vec4(cols) && aligned, held) {
            (true, Some(held)) => {
                entry_constants.push(("HELD", held as f64));
                "main_held"
            }
            (true, None) => "main_vec4",
            (false, _) => "main",
        };
        let pipeline = gpu.pipeline_entry(&shaders::LAYERNORM, entry, &entry_constants)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                xw.resource(),
                // Mode 0 never reads t; x's window stands in (the placeholder is bound
                // read-only below, and one buffer cannot be both in one dispatch).
                tw.as_ref().unwrap_or(&xw).resource(),
                Window::or_placeholder(gamma.as_ref(), gpu),
                Window::or_placeholder(beta.as_ref(), gpu),
                yw.resource(),
            ],
        );
        dispatches.push(Dispatch::kernel(pipeline, bind_group, gpu.grid(n as u32)));
        r0 += n;
    }
    Ok(dispatches)
}

/// Returns the layer normalization of `x` as a new tensor.
pub fn run(gpu: &Gpu, x: &Tensor, options: &LayerNormOptions<'_>) -> Result<Tensor> {
    let y = Tensor::empty(gpu, x.shape())?;
    gpu.execute(&plan(gpu, x, &y, options)?)?;
    Ok(y)
}

/// Returns the Jacobian-vector product of the layer normalization at `x` along `t` as a new
/// tensor.
pub fn run_jvp(
    gpu: &Gpu,
    x: &Tensor,
    t: &Tensor,
    options: &LayerNormOptions<'_>,
) -> Result<Tensor> {
    let dy = Tensor::empty(gpu, x.shape())?;
    gpu.execute(&plan_jvp(gpu, x, t, &dy, options)?)?;
    Ok(dy)
}
