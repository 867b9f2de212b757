//! Element-wise activations (`shaders/activation.wgsl`), in place or out of place.
//! The same functions run in the matmul epilogue.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// An activation function. Codes and formulas: `shaders/lib/activation.wgsl`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    /// x.
    #[default]
    Identity,
    /// max(x, 0).
    Relu,
    /// x for x > 0, slope·x otherwise.
    LeakyRelu {
        /// Slope on the negative side (0.01 by default in the CLI).
        slope: f32,
    },
    /// 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))), the tanh form.
    Gelu,
    /// λ·x for x > 0, λ·α·(eˣ − 1) otherwise (Klambauer et al.; keeps unit variance).
    Selu,
    /// tanh(x).
    Tanh,
    /// x².
    Square,
    /// |x|.
    Abs,
    /// 1 where x > level, 0 otherwise (binarization).
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

    /// Parses a name; `slope` and `level` parameterize `leaky_relu` and `threshold`.
    pub fn from_name(name: &str, slope: f32, level: f32) -> Result<Activation> {
        Ok(match name {
            "identity" | "none" => Activation::Identity,
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
    code: u32,
    param: f32,
    _pad: [u32; 3],
}

const WG: u32 = 256;
const PER_THREAD: u32 = 4;

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
    let pipeline = gpu.pipeline(&shaders::ACTIVATION, &[("WG", f64::from(WG))])?;
    // One dispatch covers at most as many elements as its grid has workgroups × threads.
    let chunk = window_capacity(gpu).min(gpu.max_grid());
    let mut dispatches = Vec::new();
    let mut start = 0;
    while start < x.len() {
        let len = chunk.min(x.len() - start);
        let xw = x.window(gpu, start, len);
        let yw = y.window(gpu, start, len);
        let params = ActivationParams {
            len: len as u32,
            x_first: xw.first,
            y_first: yw.first,
            code: act.code(),
            param: act.param(),
            _pad: [0; 3],
        };
        let uniform = gpu.uniform("speckle.activation.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[uniform.as_entire_binding(), xw.resource(), yw.resource()],
        );
        dispatches.push(Dispatch {
            pipeline: pipeline.clone(),
            bind_group,
            workgroups: gpu.grid((len as u32).div_ceil(WG * PER_THREAD)),
        });
        start += len;
    }
    Ok(dispatches)
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
