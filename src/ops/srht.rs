//! The structured random projection (`shaders/srht.wgsl`): blocks of H·D3·H·D2·H·D1 with
//! seeded sign diagonals D and the fast Walsh–Hadamard transform H, O(p log p) per block and
//! input (p = the input length rounded up to a power of two) instead of O(n_out · d). Work
//! rows are processed in groups of whole inputs that fit one binding.

use crate::cpu::philox;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Uniform parameters of `shaders/srht.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SrhtParams {
    rows: u32,
    row0: u32,
    p_log2: u32,
    h: u32,
    d: u32,
    blocks: u32,
    parts: u32,
    flags: u32,
    diagonal: u32,
    key_lo: u32,
    key_hi: u32,
    x_first: u32,
    work_first: u32,
    y_first: u32,
    len: u32,
    e0: u32,
    n_out: u32,
    b0: u32,
    scale: f32,
    _pad: u32,
}

// Keep in sync with the FLAG_ constants of shaders/srht.wgsl.
const FLAG_FROM_X: u32 = 1;
const FLAG_SIGNS: u32 = 2;
const WG: u32 = 256;

/// The transform length for inputs of length `d`: the next power of two, at least 2.
pub fn padded_len(d: usize) -> usize {
    d.next_power_of_two().max(2)
}

/// The sign-diagonal stream of block `k`, part `t` (0 real, 1 imaginary) and diagonal `s`.
/// Keep in sync with `load` in `shaders/srht.wgsl`.
pub fn diagonal_stream(k: usize, t: usize, s: usize) -> u32 {
    philox::Stream::Diagonal as u32 + (6 * k + 3 * t + s) as u32
}

/// Plans y = the first `n_out` rows of the stacked blocks applied to each row of `x`
/// (`[batch, d]`), into `y` (`[batch, n_out]`); `optical` makes y = |·|² of a complex transform
/// whose real and imaginary parts are two independent blocks.
pub fn plan(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    n_out: usize,
    seed: u64,
    optical: bool,
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
    if y.len() != batch * n_out {
        return Err(Error::shape(
            "project",
            format!(
                "output {:?} does not hold {batch} x {n_out} values",
                y.shape()
            ),
        ));
    }
    let p = padded_len(d);
    let blocks = n_out.div_ceil(p);
    let parts = if optical { 2 } else { 1 };
    let rows_per_input = blocks * parts;
    let capacity = window_capacity(gpu);
    let per_input = rows_per_input * p;
    if per_input > capacity || d > capacity || n_out > capacity {
        return Err(Error::invalid(format!(
            "a structured projection of {d} inputs to {n_out} outputs needs {} work values per input, \
             more than one storage binding holds ({} bytes)",
            per_input,
            gpu.binding_limit()
        )));
    }
    if batch * rows_per_input > u32::MAX as usize || (blocks * 6) as u64 > u64::from(u32::MAX) {
        return Err(Error::invalid(
            "structured projection too large for u32 indices",
        ));
    }
    let group = (capacity / per_input)
        .min(capacity / d.max(n_out))
        .min(gpu.max_grid() * WG as usize / (per_input / 2).max(1))
        .clamp(1, batch);
    let work = Tensor::empty(gpu, &[group * rows_per_input, p])?;
    let stage_pipeline = gpu.pipeline(&shaders::SRHT, &[("MODE", 0.0), ("WG", f64::from(WG))])?;
    let output_pipeline = gpu.pipeline(&shaders::SRHT, &[("MODE", 1.0), ("WG", f64::from(WG))])?;
    let key = philox::key(seed);
    let scale = if optical {
        1.0 / (p as f64 * 2f64.sqrt())
    } else {
        1.0 / (p as f64 * (n_out as f64).sqrt())
    };
    let base = SrhtParams {
        p_log2: p.trailing_zeros(),
        d: d as u32,
        blocks: blocks as u32,
        parts: parts as u32,
        key_lo: key[0],
        key_hi: key[1],
        n_out: n_out as u32,
        scale: scale as f32,
        ..Default::default()
    };
    let mut dispatches = Vec::new();
    for b0 in (0..batch).step_by(group) {
        let g = group.min(batch - b0);
        let rows = g * rows_per_input;
        let row0 = b0 * rows_per_input;
        let xw = x.window(gpu, b0 * d, g * d);
        let ww = work.window(gpu, 0, rows * p);
        let yw = y.window(gpu, b0 * n_out, g * n_out);
        let mut push = |pipeline: &std::sync::Arc<wgpu::ComputePipeline>,
                        params: SrhtParams,
                        threads: usize| {
            let uniform = gpu.uniform("speckle.srht.params", &params);
            let bind_group = gpu.bind_group(
                pipeline,
                &[
                    uniform.as_entire_binding(),
                    xw.resource(),
                    ww.resource(),
                    yw.resource(),
                ],
            );
            dispatches.push(Dispatch {
                pipeline: pipeline.clone(),
                bind_group,
                workgroups: gpu.grid((threads as u32).div_ceil(WG)),
            });
        };
        for s in 0..3u32 {
            let mut h = 1;
            while h < p {
                let mut flags = 0;
                if s == 0 && h == 1 {
                    flags |= FLAG_FROM_X;
                }
                if h == 1 {
                    flags |= FLAG_SIGNS;
                }
                let params = SrhtParams {
                    rows: rows as u32,
                    row0: row0 as u32,
                    h: h as u32,
                    flags,
                    diagonal: s,
                    x_first: xw.first,
                    work_first: ww.first,
                    b0: b0 as u32,
                    ..base
                };
                push(&stage_pipeline, params, rows * p / 2);
                h *= 2;
            }
        }
        let params = SrhtParams {
            row0: row0 as u32,
            work_first: ww.first,
            y_first: yw.first,
            len: (g * n_out) as u32,
            e0: (b0 * n_out) as u32,
            b0: b0 as u32,
            ..base
        };
        push(&output_pipeline, params, g * n_out);
    }
    Ok(dispatches)
}
