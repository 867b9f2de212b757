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

/// Loop passes, as lavapipe counts them against an invocation's budget
/// ([`crate::Gpu::loop_limit`]), of a loop that runs `passes` times around a body whose own loops take `body` passes per
/// pass and are `nested` loops in all (at any depth). Every pass through the end of a loop
/// counts, the last one too: in it every lane has left, and the body runs once more with all
/// lanes masked off, each loop inside it taking one pass. So a loop of n passes with no loop
/// inside counts n + 1. `passes` is the busiest invocation's (lavapipe runs 8 invocations as
/// one SIMD loop, which goes on while any lane does); a loop behind a run-time branch counts
/// as if the branch were taken (gallivm masks lanes rather than branching), while branches on
/// overrides are folded away. Loops the compiler may unroll are counted all the same: an
/// upper bound. Checked on lavapipe (Mesa 22.3): the subgroup variant of
/// `shaders/attention.wgsl` fails after exactly the key tiles this count allows (42, 24, 15
/// and 28 passes per tile for (T, BK) = (4, 32), (4, 16), (4, 8), (8, 16)), as did the former
/// portable `attention_f16` (one loop pass per product term) between 14 and 15 blocks of 64
/// keys at D = 64; where the compiler unrolled loops (the workgroup variant's T partial sums,
/// the register-blocked kernel's reductions, short loops of the portable `attention_f16`)
/// kernels failed later than counted, never earlier. Workgroup memory is zeroed there without
/// a loop (the workgroup variant fails exactly where its own loops reach the limit).
pub(crate) fn looped(passes: u64, body: u64, nested: u64) -> u64 {
    passes * (1 + body) + 1 + nested
}

/// The largest n in `0..=cap` with `bound(n) <= limit`, for a `bound` that grows with n;
/// `None` where even `bound(0)` exceeds it. What the loop-limit errors quote as the most
/// keys (or edges, rows) that fit.
pub(crate) fn largest_within(limit: u64, cap: u64, bound: impl Fn(u64) -> u64) -> Option<u64> {
    if bound(0) > limit {
        return None;
    }
    if bound(cap) <= limit {
        return Some(cap);
    }
    // bound(lo) <= limit < bound(hi).
    let (mut lo, mut hi) = (0, cap);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if bound(mid) <= limit {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// The most units of work (keys, values, classes: u32 counts in the shaders) that fit `limit`
/// for a `bound` that grows with them, 0 where not even none does: what a loop-limit refusal
/// quotes as the most that fit.
pub(crate) fn most_that_fit(limit: u64, bound: impl Fn(usize) -> u64) -> u64 {
    largest_within(limit, u64::from(u32::MAX), |n| bound(n as usize)).unwrap_or(0)
}

/// Under `gpu`'s loop limit, the largest n in `least..=cap` whose loop passes `bound(n)` (a
/// bound that grows with n) stay within it: how long a chunk of work one dispatch may take.
/// `None` where the adapter has no limit. An [`crate::Error::LoopLimit`] for `kernel`, with
/// `remedy`, where not even `least` fits.
pub(crate) fn most_within(
    gpu: &Gpu,
    kernel: &str,
    least: u64,
    cap: u64,
    bound: impl Fn(u64) -> u64,
    remedy: &str,
) -> Result<Option<u64>> {
    let Some(limit) = gpu.loop_limit()? else {
        return Ok(None);
    };
    gpu.check_loops(kernel, bound(least), remedy)?;
    // bound(least) <= limit, so bound(0) is too and the largest n is at least `least`.
    Ok(Some(largest_within(limit, cap, bound).unwrap_or(least)))
}
