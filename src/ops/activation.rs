//! Element-wise activations (`shaders/activation.wgsl`), in place or out of place, and their
//! Jacobian-vector products (forward-mode derivatives): [`plan_jvp`] gives `act'(z) ⊙ t`, the
//! tangent of `act(z)` along the tangent `t` of `z`. The same functions run in the matmul
//! epilogue.
//!
//! The derivatives at the kinks are one-sided choices, as in PyTorch's autograd:
//! relu'(0) = 0, leaky_relu'(0) = slope, abs'(0) = 0, and threshold' = 0 everywhere (its
//! Dirac mass at the level is dropped). Formulas of the derivatives: [`Activation`]'s variants
//! and [`crate::cpu::activation::derivative`].

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// An activation function. Codes and formulas: `shaders/lib/activation.wgsl`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    /// x (also called `linear`). Derivative 1.
    #[default]
    Identity,
    /// max(x, 0). Derivative 1 for x > 0, 0 otherwise (relu'(0) = 0).
    Relu,
    /// x for x > 0, slope·x otherwise. Derivative 1 for x > 0, slope otherwise.
    LeakyRelu {
        /// Slope on the negative side (0.01 by default in the CLI).
        slope: f32,
    },
    /// 0.5·x·(1 + tanh(u)), u = sqrt(2/π)·(x + 0.044715·x³), the tanh form. Derivative
    /// 0.5·(1 + tanh u) + 0.5·x·sech²(u)·sqrt(2/π)·(1 + 3·0.044715·x²).
    Gelu,
    /// λ·x for x > 0, λ·α·(eˣ − 1) otherwise (Klambauer et al.; keeps unit variance).
    /// Derivative λ for x > 0, λ·α·eˣ otherwise.
    Selu,
    /// tanh(x). Derivative sech²(x) = 1 − tanh²(x).
    Tanh,
    /// x². Derivative 2x.
    Square,
    /// |x|. Derivative sign(x) (0 at 0).
    Abs,
    /// 1 where x > level, 0 otherwise (binarization). Derivative 0.
    Threshold {
        /// The level (0 by default in the CLI).
        level: f32,
    },
}

impl Activation {
    /// Every activation name accepted by [`Activation::from_name`].
    pub const NAMES: &'static [&'static str] = &[
        "identity",
        "relu",
        "leaky_relu",
        "gelu",
        "selu",
        "tanh",
        "square",
        "abs",
        "threshold",
    ];

    /// Parses a name (or the alias `linear` or `none` of `identity`); `slope` and `level`
    /// parameterize `leaky_relu` and `threshold`.
    pub fn from_name(name: &str, slope: f32, level: f32) -> Result<Activation> {
        Ok(match name {
            "identity" | "none" | "linear" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu { slope },
            "gelu" => Activation::Gelu,
            "selu" => Activation::Selu,
            "tanh" => Activation::Tanh,
            "square" => Activation::Square,
            "abs" => Activation::Abs,
            "threshold" => Activation::Threshold { level },
            _ => {
                return Err(Error::invalid(format!(
                    "unknown activation {name:?}; known: {}",
                    Activation::NAMES.join(", ")
                )))
            }
        })
    }

    /// The name, as in [`Activation::NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Gelu => "gelu",
            Activation::Selu => "selu",
            Activation::Tanh => "tanh",
            Activation::Square => "square",
            Activation::Abs => "abs",
            Activation::Threshold { .. } => "threshold",
        }
    }

    /// The code the WGSL `activate` function switches on.
    pub(crate) fn code(&self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu { .. } => 2,
            Activation::Gelu => 3,
            Activation::Selu => 4,
            Activation::Tanh => 5,
            Activation::Square => 6,
            Activation::Abs => 7,
            Activation::Threshold { .. } => 8,
        }
    }

    /// The parameter passed with the code.
    pub(crate) fn param(&self) -> f32 {
        match *self {
            Activation::LeakyRelu { slope } => slope,
            Activation::Threshold { level } => level,
            _ => 0.0,
        }
    }
}

/// Uniform parameters of `shaders/activation.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ActivationParams {
    len: u32,
    x_first: u32,
    y_first: u32,
    t_first: u32,
    param: f32,
    _pad: [u32; 3],
}

const WG: u32 = 256;

const MODE_VALUE: u32 = 0;
const MODE_JVP: u32 = 1;

/// Plans `y = act(x)` element-wise; `y` may be `x` itself (in place). Windows of at most one
/// binding each; several dispatches when the tensor is larger.
pub fn plan(gpu: &Gpu, act: Activation, x: &Tensor, y: &Tensor) -> Result<Vec<Dispatch>> {
    if x.len() != y.len() {
        return Err(Error::shape(
            "activation",
            format!(
                "input {:?} and output {:?} differ in size",
                x.shape(),
                y.shape()
            ),
        ));
    }
    plan_mode(gpu, act, MODE_VALUE, x, None, y)
}

/// Plans the Jacobian-vector product `out = act'(z) ⊙ t` element-wise: the tangent of
/// `act(z)` when `z` moves along `t`. `z`, `t` and `out` have the same number of elements;
/// `out` may be `t` or `z` itself (in place). Chunked like [`plan`].
pub fn plan_jvp(
    gpu: &Gpu,
    act: Activation,
    z: &Tensor,
    t: &Tensor,
    out: &Tensor,
) -> Result<Vec<Dispatch>> {
    if z.len() != t.len() || z.len() != out.len() {
        return Err(Error::shape(
            "activation",
            format!(
                "the JVP needs z, t and the output of one size; got {:?}, {:?} and {:?}",
                z.shape(),
                t.shape(),
                out.shape()
            ),
        ));
    }
    plan_mode(gpu, act, MODE_JVP, z, Some(t), out)
}

/// The elements one dispatch takes: what one binding holds (and one grid, at one element per
/// invocation), cut at a multiple of the binding alignment (or at least of 4, where a test's
/// lowered limit holds less), so that every chunk starts on a whole vec4 of each tensor
/// (its windows' first elements are then multiples of 4: see [`Tensor::window`]) and only the
/// last one may have a scalar tail. [`Gpu`] keeps bindings large enough for 4 elements past
/// the alignment slack.
fn chunk_len(gpu: &Gpu) -> usize {
    let capacity = window_capacity(gpu).min(gpu.max_grid());
    let align = (gpu.binding_alignment().max(16) / 4) as usize;
    match capacity / align * align {
        0 => (capacity / 4 * 4).max(4),
        aligned => aligned,
    }
}

fn plan_mode(
    gpu: &Gpu,
    act: Activation,
    mode: u32,
    x: &Tensor,
    t: Option<&Tensor>,
    y: &Tensor,
) -> Result<Vec<Dispatch>> {
    let constants = [
        ("WG", f64::from(WG)),
        ("ACT", f64::from(act.code())),
        ("MODE", f64::from(mode)),
    ];
    let chunk = chunk_len(gpu);
    let mut dispatches = Vec::new();
    let mut start = 0;
    while start < x.len() {
        let len = chunk.min(x.len() - start);
        // The vec4 form takes the whole vec4s, the scalar form the tail.
        let body = len / 4 * 4;
        let scalar_from = if body > 0 {
            let pipeline = gpu.pipeline_entry(&shaders::ACTIVATION, "main_vec4", &constants)?;
            dispatches.push(dispatch(gpu, &pipeline, act, x, t, y, start, body, 4));
            start + body
        } else {
            start
        };
        if scalar_from < start + len {
            let pipeline = gpu.pipeline_entry(&shaders::ACTIVATION, "main", &constants)?;
            let rest = start + len - scalar_from;
            dispatches.push(dispatch(gpu, &pipeline, act, x, t, y, scalar_from, rest, 1));
        }
        start += len;
    }
    Ok(dispatches)
}

/// One dispatch over elements `start .. start + len` of each tensor, `width` (1 or 4) per
/// invocation; with width 4, `len` and each window's first element are multiples of 4.
#[expect(
    clippy::too_many_arguments,
    reason = "the operation, its three tensors and the range, as plan_mode has them"
)]
fn dispatch(
    gpu: &Gpu,
    pipeline: &std::sync::Arc<wgpu::ComputePipeline>,
    act: Activation,
    x: &Tensor,
    t: Option<&Tensor>,
    y: &Tensor,
    start: usize,
    len: usize,
    width: u32,
) -> Dispatch {
    let xw = x.window(gpu, start, len);
    let yw = y.window(gpu, start, len);
    let tw = t.map(|t| t.window(gpu, start, len));
    debug_assert!(
        [Some(&xw), Some(&yw), tw.as_ref()]
            .into_iter()
            .flatten()
            .all(|w| w.first.is_multiple_of(width) && len.is_multiple_of(width as usize)),
        "vec4 windows must start on whole vec4s"
    );
    let items = len as u32 / width;
    let params = ActivationParams {
        len: items,
        x_first: xw.first / width,
        y_first: yw.first / width,
        t_first: tw.as_ref().map_or(0, |w| w.first / width),
        param: act.param(),
        _pad: [0; 3],
    };
    let uniform = gpu.uniform("speckle.activation.params", &params);
    let bind_group = gpu.bind_group(
        pipeline,
        &[
            uniform.as_entire_binding(),
            xw.resource(),
            yw.resource(),
            Window::or_unused_output(tw.as_ref(), gpu),
        ],
    );
    Dispatch::kernel(pipeline.clone(), bind_group, gpu.grid(items.div_ceil(WG)))
}

/// Returns `act(x)` as a new tensor.
pub fn run(gpu: &Gpu, act: Activation, x: &Tensor) -> Result<Tensor> {
    let y = Tensor::empty(gpu, x.shape())?;
    gpu.execute(&plan(gpu, act, x, &y)?)?;
    Ok(y)
}

/// Applies `act` to `x` in place.
pub fn run_in_place(gpu: &Gpu, act: Activation, x: &Tensor) -> Result<()> {
    gpu.execute(&plan(gpu, act, x, x)?)
}

/// Returns the Jacobian-vector product `act'(z) ⊙ t` as a new tensor (shape of `z`).
pub fn run_jvp(gpu: &Gpu, act: Activation, z: &Tensor, t: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(gpu, z.shape())?;
    gpu.execute(&plan_jvp(gpu, act, z, t, &out)?)?;
    Ok(out)
}
