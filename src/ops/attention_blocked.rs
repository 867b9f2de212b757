//! Register-blocked fused attention (`shaders/attention_blocked.wgsl`): both products of each
//! key tile (S = Q Kᵀ, then O += P V) as 8 × 8 blocks per thread through workgroup memory,
//! FlashAttention-2 style, for head dimensions 32 and 64 without a key mask.
//! [`crate::ops::attention`] plans it ([`crate::ops::attention::AttentionChoice::Blocked`]):
//! on GPUs by default where it applies, and wherever the tuner measured it fastest.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::loop_limit::looped;
use crate::shaders;

/// The head dimensions the kernel takes (D = 8·TX: 4 or 8 threads along keys and columns).
pub const HEAD_DIMS: [usize; 2] = [32, 64];
/// Threads along the queries (TY; 8·TY query rows per workgroup) a configuration may name.
pub const THREADS_Y: [u32; 4] = [2, 4, 8, 16];
/// The preferred TY: 64 query rows per workgroup share each key and value tile.
const PREFERRED_THREADS_Y: u32 = 8;

/// The kernel's configuration: the head dimension and TY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockedConfig {
    /// Head dimension D (one of [`HEAD_DIMS`]).
    pub head_dim: u32,
    /// Threads along the queries (one of [`THREADS_Y`]).
    pub threads_y: u32,
}

impl BlockedConfig {
    /// Threads along keys and head columns (TX = D / 8).
    pub fn threads_x(&self) -> u32 {
        self.head_dim / 8
    }

    /// Query rows one workgroup computes (BQ = 8·TY).
    pub fn queries_per_workgroup(&self) -> u32 {
        8 * self.threads_y
    }

    /// Workgroup memory the kernel declares: the query tile, the key or value tile and the
    /// probability tile, 4·(BQ·D + D·D + D·BQ) bytes.
    pub fn workgroup_bytes(&self) -> u64 {
        let (d, bq) = (
            u64::from(self.head_dim),
            u64::from(self.queries_per_workgroup()),
        );
        4 * (2 * bq * d + d * d)
    }

    /// An upper bound of the loop passes of the busiest invocation over `nk` keys, counted as
    /// `ops::loop_limit` says (`Loops:` in `shaders/attention_blocked.wgsl`): the query tile's load
    /// (BQ · D/4 vec4s over TX · TY threads), then per tile of BK = D keys the key and value
    /// tile loads (D · D/4 vec4s each), both products' D steps and the reduction of the row
    /// maxima (TX − 1 partial rows), and at the end the reduction of the row sums and the two
    /// stores of 4 log-sum-exps (behind a branch on the key ranges, counted all the same).
    pub fn loop_iterations(&self, nk: usize) -> u64 {
        let (tx, ty) = (u64::from(self.threads_x()), u64::from(self.threads_y));
        let d = u64::from(self.head_dim);
        let threads = tx * ty;
        let (d4, bq) = (d / 4, 8 * ty);
        let load = looped((d * d4).div_ceil(threads), 0, 0);
        let reduce = looped(tx - 1, 0, 0);
        // The tile loop's body: K load, S's steps, the maxima's reduction, V load, O's steps.
        let tile = 2 * load + 2 * looped(d, 0, 0) + reduce;
        looped((bq * d4).div_ceil(threads), 0, 0)
            + looped((nk as u64).div_ceil(d), tile, 5)
            + reduce
            + 2 * looped(4, 0, 0)
    }

    /// Checks the configuration against the kernel's rules and the adapter's limits; errors
    /// name the rule and the numbers.
    pub fn check(&self, gpu: &Gpu) -> Result<()> {
        let bad = |why: String| {
            Err(Error::invalid(format!(
                "attention config {self} for D = {}: {why}",
                self.head_dim
            )))
        };
        if !HEAD_DIMS.contains(&(self.head_dim as usize)) {
            return bad(format!(
                "the register-blocked kernel takes D in {HEAD_DIMS:?}"
            ));
        }
        if !THREADS_Y.contains(&self.threads_y) {
            return bad(format!("TY must be one of {THREADS_Y:?}"));
        }
        let l = gpu.limits();
        let (tx, ty) = (self.threads_x(), self.threads_y);
        if tx > l.max_compute_workgroup_size_x
            || ty > l.max_compute_workgroup_size_y
            || tx * ty > l.max_compute_invocations_per_workgroup
        {
            return bad(format!(
                "{tx} x {ty} threads exceed the adapter's workgroup limits"
            ));
        }
        let limit = u64::from(l.max_compute_workgroup_storage_size);
        if self.workgroup_bytes() > limit {
            return bad(format!(
                "needs {} bytes of workgroup memory, the adapter allows {limit}",
                self.workgroup_bytes()
            ));
        }
        Ok(())
    }

    /// The built-in configuration for `head_dim` on `gpu`: the largest TY up to 8 that fits
    /// (8 on NVIDIA's 48 KiB of workgroup memory at D = 64, 4 on lavapipe's 32 KiB); an error
    /// where D is not one of [`HEAD_DIMS`] or nothing fits.
    pub fn for_gpu(gpu: &Gpu, head_dim: usize) -> Result<BlockedConfig> {
        let mut last = None;
        for ty in THREADS_Y
            .into_iter()
            .rev()
            .filter(|&t| t <= PREFERRED_THREADS_Y)
        {
            let config = BlockedConfig {
                head_dim: u32::try_from(head_dim).unwrap_or(u32::MAX),
                threads_y: ty,
            };
            match config.check(gpu) {
                Ok(()) => return Ok(config),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::invalid("no register-blocked configuration")))
    }

    /// Parses the notation of [`Display`](std::fmt::Display), `blocked-tyTY`, for head
    /// dimension `head_dim`, checked by [`BlockedConfig::check`].
    pub fn parse(gpu: &Gpu, head_dim: usize, s: &str) -> Result<BlockedConfig> {
        let ty = s
            .strip_prefix("blocked-ty")
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "attention config {s:?} is not blocked-tyTY (e.g. blocked-ty8)"
                ))
            })?;
        let config = BlockedConfig {
            head_dim: u32::try_from(head_dim).unwrap_or(u32::MAX),
            threads_y: ty,
        };
        config.check(gpu)?;
        Ok(config)
    }

    /// The compiled kernel.
    pub(crate) fn pipeline(&self, gpu: &Gpu) -> Result<Arc<wgpu::ComputePipeline>> {
        self.check(gpu)?;
        gpu.pipeline(
            &shaders::ATTENTION_BLOCKED,
            &[
                ("TX", f64::from(self.threads_x())),
                ("TY", f64::from(self.threads_y)),
            ],
        )
    }
}

impl std::fmt::Display for BlockedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blocked-ty{}", self.threads_y)
    }
}

/// True when the kernel can compute attention with head dimension `head_dim` on `gpu`
/// (and `masked`: with a key mask, which it does not take).
pub fn eligible(gpu: &Gpu, head_dim: usize, masked: bool) -> bool {
    !masked && BlockedConfig::for_gpu(gpu, head_dim).is_ok()
}
