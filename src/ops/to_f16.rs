//! f32 → f16 conversion (`shaders/to_f16.wgsl`): fills a [`HalfTensor`] from a [`Tensor`] on
//! the GPU, in windows of at most one binding each.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, HalfTensor, Tensor};

/// Uniform parameters of `shaders/to_f16.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ToF16Params {
    words: u32,
    len: u32,
    x_first: u32,
    out_first: u32,
}

const WG: u32 = 256;

/// Plans `out = f16(x)` (saturating at ±65504); `out` has `x`'s number of elements.
pub fn plan(gpu: &Gpu, x: &Tensor, out: &HalfTensor) -> Result<Vec<Dispatch>> {
    if x.len() != out.len() {
        return Err(Error::shape(
            "to_f16",
            format!(
                "input {:?} and output {:?} differ in size",
                x.shape(),
                out.shape()
            ),
        ));
    }
    let pipeline = gpu.pipeline(&shaders::TO_F16, &[("WG", f64::from(WG))])?;
    // Words per dispatch: both windows (2 values per word in, 1 word out) within a binding,
    // the grid within the dispatch limits; even, so every window starts on a whole word.
    let words_total = x.len().div_ceil(2);
    let per_dispatch = (window_capacity(gpu) / 2)
        .min(gpu.max_grid() * WG as usize)
        .max(2)
        / 2
        * 2;
    let mut dispatches = Vec::new();
    for w0 in (0..words_total).step_by(per_dispatch) {
        let words = per_dispatch.min(words_total - w0);
        let len = (2 * words).min(x.len() - 2 * w0);
        let xw = x.window(gpu, 2 * w0, len);
        let ow = out.words().window(gpu, w0, words);
        let params = ToF16Params {
            words: words as u32,
            len: len as u32,
            x_first: xw.first,
            out_first: ow.first,
        };
        let uniform = gpu.uniform("speckle.to_f16.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[uniform.as_entire_binding(), xw.resource(), ow.resource()],
        );
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid((words as u32).div_ceil(WG)),
        ));
    }
    Ok(dispatches)
}

/// `x` converted to f16 on the GPU.
pub fn run(gpu: &Gpu, x: &Tensor) -> Result<HalfTensor> {
    let out = HalfTensor::empty(gpu, x.shape())?;
    gpu.execute(&plan(gpu, x, &out)?)?;
    Ok(out)
}
