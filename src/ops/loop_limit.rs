//! The adapter's loop limit (`shaders/loop_limit.wgsl`): how many loop iterations one
//! invocation may run before the driver ends its loops. llvmpipe (lavapipe) gives every
//! invocation a budget of 65,535 iterations shared by all the shader's loops and leaves them
//! silently when it is spent, so a kernel that loops more returns a wrong result without any
//! error. [`crate::Gpu::loop_limit`] runs [`probe`] once per device; the planners size their
//! dispatches against it and refuse, with the numbers, what they cannot split.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::Tensor;

/// Uniform parameters of `shaders/loop_limit.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LoopLimitParams {
    outer: u32,
    inner: u32,
    _pad: [u32; 2],
}

/// Iterations [`probe`] asks for: an adapter that runs them all has no limit that matters to
/// speckle's kernels (none plans this many per invocation).
pub const PROBE_ITERATIONS: u32 = 1 << 20;

/// Runs `outer` iterations of a loop around `inner` iterations of another in one invocation
/// and returns the inner bodies it completed: `outer · inner` ([`crate::cpu::loop_limit`])
/// where the adapter lets the loops run, fewer where it ends them.
pub fn count(gpu: &Gpu, outer: u32, inner: u32) -> Result<u64> {
    let pipeline = gpu.pipeline(&shaders::LOOP_LIMIT, &[])?;
    // Poisoned, so that a probe that wrote nothing is not read as a count.
    let out = Tensor::filled(gpu, &[1], f32::from_bits(u32::MAX))?;
    let params = LoopLimitParams {
        outer,
        inner,
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("speckle.loop_limit.params", &params);
    let bind_group = gpu.bind_group(
        &pipeline,
        &[
            uniform.as_entire_binding(),
            out.buffer().as_entire_binding(),
        ],
    );
    gpu.execute(&[Dispatch::kernel(pipeline, bind_group, [1, 1, 1])])?;
    let value = out.to_vec(gpu)?[0].to_bits();
    if value == u32::MAX {
        return Err(Error::Gpu {
            context: "probing the loop limit".into(),
            message: "the probe kernel wrote no count".into(),
        });
    }
    Ok(u64::from(value))
}

/// The loop iterations one invocation of `gpu` may run in all: `None` where a single loop of
/// [`PROBE_ITERATIONS`] ran through, else the iterations it completed.
pub fn probe(gpu: &Gpu) -> Result<Option<u64>> {
    let ran = count(gpu, 1, PROBE_ITERATIONS)?;
    Ok((ran < u64::from(PROBE_ITERATIONS)).then_some(ran))
}
