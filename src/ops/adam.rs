//! One Adam step on a parameter tensor (`shaders/adam.wgsl`), element-wise on the GPU: the
//! moment estimates `m`, `v` and the parameter `w` are updated in place from the gradient `g`.
//! The f64 reference is [`crate::cpu::adam`].

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Uniform parameters of `shaders/adam.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamParams {
    len: u32,
    g_first: u32,
    w_first: u32,
    m_first: u32,
    v_first: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    c1: f32,
    c2: f32,
    _pad: u32,
}

const WG: u32 = 256;

/// Hyper-parameters of Adam. `Default`: lr 1e-3, β₁ 0.9, β₂ 0.999, ε 1e-8 (the paper's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamOptions {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to sqrt(v̂).
    pub eps: f32,
}

impl Default for AdamOptions {
    fn default() -> Self {
        AdamOptions {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamOptions {
    /// Checks lr > 0, β in [0, 1), ε > 0, all finite.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr > 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps.is_finite()
            && self.eps > 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "adam needs lr > 0, beta1 and beta2 in [0, 1) and eps > 0, got {self:?}"
            )))
        }
    }
}

/// Plans Adam step `t` (1 for the first step; it sets the bias corrections) on `w` with
/// gradient `g` and moments `m`, `v` (all of one length; `m` and `v` start at zero).
pub fn plan(
    gpu: &Gpu,
    options: &AdamOptions,
    t: u32,
    g: &Tensor,
    w: &Tensor,
    m: &Tensor,
    v: &Tensor,
) -> Result<Vec<Dispatch>> {
    options.validate()?;
    if t == 0 {
        return Err(Error::invalid("adam steps count from 1, got step 0"));
    }
    let len = w.len();
    if g.len() != len || m.len() != len || v.len() != len {
        return Err(Error::shape(
            "adam",
            format!(
                "w {:?}, g {:?}, m {:?} and v {:?} must have one size",
                w.shape(),
                g.shape(),
                m.shape(),
                v.shape()
            ),
        ));
    }
    let c1 = 1.0 / (1.0 - f64::from(options.beta1).powi(t.min(i32::MAX as u32) as i32));
    let c2 = 1.0 / (1.0 - f64::from(options.beta2).powi(t.min(i32::MAX as u32) as i32));
    let pipeline = gpu.pipeline(&shaders::ADAM, &[("WG", f64::from(WG))])?;
    let chunk = window_capacity(gpu).min(gpu.max_grid());
    let mut dispatches = Vec::new();
    let mut start = 0;
    while start < len {
        let n = chunk.min(len - start);
        let (gw, ww, mw, vw) = (
            g.window(gpu, start, n),
            w.window(gpu, start, n),
            m.window(gpu, start, n),
            v.window(gpu, start, n),
        );
        let params = AdamParams {
            len: n as u32,
            g_first: gw.first,
            w_first: ww.first,
            m_first: mw.first,
            v_first: vw.first,
            lr: options.lr,
            beta1: options.beta1,
            beta2: options.beta2,
            eps: options.eps,
            c1: c1 as f32,
            c2: c2 as f32,
            _pad: 0,
        };
        let uniform = gpu.uniform("speckle.adam.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                gw.resource(),
                ww.resource(),
                mw.resource(),
                vw.resource(),
            ],
        );
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid((n as u32).div_ceil(WG)),
        ));
        start += n;
    }
    Ok(dispatches)
}

/// Runs Adam step `t` in place (see [`plan`]).
pub fn run(
    gpu: &Gpu,
    options: &AdamOptions,
    t: u32,
    g: &Tensor,
    w: &Tensor,
    m: &Tensor,
    v: &Tensor,
) -> Result<()> {
    gpu.execute(&plan(gpu, options, t, g, w, m, v)?)
}
