//! The non-linearity of a projection kind (`shaders/project_finish.wgsl`), in place on the
//! accumulated linear part: |·|² for the optical kind, cos for random Fourier features, ReLU
//! and exp for random ReLU and positive features.

use crate::cpu::philox;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// Which non-linearity. Keep the codes in sync with KIND in `shaders/project_finish.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Finish {
    /// y = re² + im².
    Optical,
    /// y = out_scale · cos(re + 2π u_i), u_i from Philox (stream `RowOffset`, row i).
    Fourier,
    /// y = out_scale · max(re, 0).
    Relu,
    /// y = out_scale · exp(re − ‖x_b‖²/2).
    Positive,
}

impl Finish {
    fn code(self) -> u32 {
        match self {
            Finish::Optical => 1,
            Finish::Fourier => 2,
            Finish::Relu => 3,
            Finish::Positive => 4,
        }
    }
}

/// Uniform parameters of `shaders/project_finish.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ProjectFinishParams {
    len: u32,
    e0: u32,
    n_out: u32,
    re_first: u32,
    im_first: u32,
    key_lo: u32,
    key_hi: u32,
    out_scale: f32,
}

const WG: u32 = 256;

/// Plans `finish` in place on `re` (`[batch, n_out]`); `im` (same shape) for the optical
/// kind, `norms` (‖x_b‖², `[batch]`) for positive features.
pub fn plan(
    gpu: &Gpu,
    finish: Finish,
    re: &Tensor,
    im: Option<&Tensor>,
    norms: Option<&Tensor>,
    seed: u64,
    out_scale: f32,
) -> Result<Vec<Dispatch>> {
    let n_out = re.shape()[re.shape().len() - 1];
    let needs_im = finish == Finish::Optical;
    let needs_norms = finish == Finish::Positive;
    if needs_im != im.is_some()
        || needs_norms != norms.is_some()
        || im.is_some_and(|t| t.len() != re.len())
    {
        return Err(Error::invalid(format!(
            "projection finish {finish:?}: wrong auxiliary inputs"
        )));
    }
    if re.len() > u32::MAX as usize {
        return Err(Error::invalid("projection output exceeds u32 indices"));
    }
    let pipeline = gpu.pipeline(
        &shaders::PROJECT_FINISH,
        &[("KIND", f64::from(finish.code())), ("WG", f64::from(WG))],
    )?;
    let key = philox::key(seed);
    let chunk = window_capacity(gpu).min(gpu.max_grid() * WG as usize);
    let mut dispatches = Vec::new();
    for e0 in (0..re.len()).step_by(chunk) {
        let len = chunk.min(re.len() - e0);
        let re_w = re.window(gpu, e0, len);
        let im_w = im.map(|t| t.window(gpu, e0, len));
        let params = ProjectFinishParams {
            len: len as u32,
            e0: e0 as u32,
            n_out: n_out as u32,
            re_first: re_w.first,
            im_first: im_w.as_ref().map_or(0, |w| w.first),
            key_lo: key[0],
            key_hi: key[1],
            out_scale,
        };
        let uniform = gpu.uniform("speckle.project_finish.params", &params);
        let im_resource = Window::or_placeholder(im_w.as_ref(), gpu);
        let norms_resource = match norms {
            Some(t) => t.buffer().as_entire_binding(),
            None => gpu.placeholder().as_entire_binding(),
        };
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                re_w.resource(),
                im_resource,
                norms_resource,
            ],
        );
        dispatches.push(Dispatch {
            pipeline: pipeline.clone(),
            bind_group,
            workgroups: gpu.grid((len as u32).div_ceil(WG)),
        });
    }
    Ok(dispatches)
}
