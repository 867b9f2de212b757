//! Fused scaled-dot-product multi-head attention (`shaders/attention.wgsl`):
//! `O = softmax(scale · Q Kᵀ + mask) V` for every batch and head, in one kernel.
//!
//! * Layout: Q and the output O are `[B, Nq, H·D]`, K and V `[B, Nk, H·D]` (2-D inputs are
//!   one batch); head `h` occupies columns `h·D .. (h+1)·D` of a row, as numpy's
//!   `reshape(B, N, H, D)`. The scale defaults to `1/sqrt(D)`.
//! * Masks: the causal mask is aligned top-left like PyTorch's `is_causal` (query `i` sees
//!   keys `j <= i`, also when `Nq != Nk`); an optional key mask `[B, Nk]` lets query rows of
//!   batch `b` see key `j` only where `mask[b, j] != 0`. **A query that sees no key at all
//!   (its batch's keys all masked, or causal and masked together) outputs zeros**, not NaN.
//! * One pass over the keys with an online softmax (running max and sum, the accumulator
//!   rescaled by `exp(m_old − m_new)`), K and V tiles in workgroup memory: the `Nq × Nk` score
//!   matrix is never formed and memory stays `O((Nq + Nk)·D)`. f32 throughout. D from 1 to
//!   256 (fast paths have no special casing: every D runs the same vec4 code, padded).
//! * Variants ([`AttentionVariant`]): on GPUs, the row reductions by subgroup shuffles where
//!   the adapter has `SUBGROUP`, or by workgroup memory (compiled from a copy of the shader
//!   without its subgroup helpers, [`portable_source`], so it also runs on adapters that lack
//!   subgroups); on CPU adapters with 8-wide subgroups (lavapipe), the texture variant of
//!   [`attention_texture`], one query row per invocation with K and
//!   V fetched through textures. [`AttentionVariant::Auto`] picks by the adapter.
//! * Problems larger than one storage binding are split along batches and query rows; one
//!   batch's K or V must fit one binding (an error says so otherwise). The texture variant
//!   needs every operand in one binding and otherwise leaves the problem to the others.
//! * Key ranges (split-KV). The tiled and register-blocked kernels cut the keys into ranges
//!   ([`key_split`]), one workgroup per query block and range, each writing a
//!   partial output and its rows' log-sum-exp, merged by [`attention_combine`]: on GPUs for
//!   problems with few query blocks (a decoding step has one query row), which would
//!   otherwise leave most of the GPU idle, and wherever the keys would pass the loop limit.
//!   The texture variant takes the keys in ranges that fit a texture and the loop limit, one
//!   dispatch each, merged the same way ([`attention_texture::key_ranges`]).
//! * The loop limit. On adapters that end an invocation's loops after a number of iterations
//!   ([`Gpu::loop_limit`]: 65,535 on lavapipe, silently) each variant's bound
//!   ([`AttentionChoice::loop_iterations`], counted as `ops::loop_limit` says) is checked before anything
//!   is planned; [`AttentionVariant::Auto`] passes over a variant that would loop too often for
//!   one that fits, and what fits nowhere (or a forced variant that does not fit) is an
//!   [`Error::LoopLimit`] that names the numbers and what takes the problem instead.
//!
//! [`unfused`] computes the same thing from the Core kernels (matmul, softmax, matmul) with the
//! full score matrix: the baseline of the benchmarks.
//!
//! Measured on lavapipe (2 cores, `speckle bench attention --shape 1,4,1024,64`): the texture
//! variant 94 ms, the unfused pipeline 348 ms in the same run; the subgroup and workgroup
//! variants take 2.4–2.7 s there, since lavapipe loads workgroup memory one lane at a time.

use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::attention_blocked::BlockedConfig;
use crate::ops::attention_combine;
use crate::ops::attention_texture;
use crate::ops::loop_limit::{largest_within, looped, most_that_fit};
use crate::ops::matmul::{self, MatmulOptions};
use crate::ops::softmax::{self, SoftmaxOptions};
use crate::shaders::{self, Kernel};
use crate::tensor::{window_capacity, Operand, Tensor, Window};
use crate::tune::ShapeClass;

/// The largest head dimension D the kernel accepts.
pub const MAX_HEAD_DIM: usize = 256;

/// vec4s of the head one thread owns at most (8 named vec4 accumulators in the shader).
const MAX_VEC4S_PER_THREAD: u32 = 8;
/// Preferred vec4s per thread: 4 (16 values) keeps the query slice and accumulator in 32
/// registers; more threads per query share the rest.
const PREFERRED_VEC4S_PER_THREAD: u32 = 4;
/// Threads per workgroup the kernel asks for (raised to the adapter's largest subgroup on the
/// subgroup path, lowered to the adapter's limits).
const WORKGROUP_SIZE: u32 = 128;
/// Keys per tile tried, largest first; the first whose tiles fit workgroup memory is used.
const KEYS_PER_TILE: [u32; 4] = [32, 16, 8, 4];

// Keep in sync with the FLAG_ constants of shaders/attention.wgsl.
const FLAG_CAUSAL: u32 = 1;
const FLAG_MASK: u32 = 2;

/// How the kernel reduces the partial dot products of a query row's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AttentionVariant {
    /// On CPU adapters [`Texture`](AttentionVariant::Texture) where it applies; on GPUs
    /// [`Blocked`](AttentionVariant::Blocked) where it applies; otherwise
    /// [`Subgroup`](AttentionVariant::Subgroup) where the adapter has `SUBGROUP` and subgroups
    /// large enough for the head dimension, else [`Workgroup`](AttentionVariant::Workgroup). A
    /// configuration tuned by `speckle tune` for the problem's class replaces this choice.
    #[default]
    Auto,
    /// Subgroup shuffles (a butterfly over the threads of a query row). An error where the
    /// adapter lacks `SUBGROUP`.
    Subgroup,
    /// Workgroup memory and a barrier: runs on every adapter.
    Workgroup,
    /// K and V through textures, one query row per invocation, shared by subgroup broadcasts
    /// ([`attention_texture`]): for CPU adapters with 8-wide
    /// subgroups (lavapipe), where `Auto` picks it. An error elsewhere.
    Texture,
    /// Both products as 8 × 8 register blocks per thread ([`crate::ops::attention_blocked`]): head
    /// dimensions 32 and 64 without a key mask, where `Auto` picks it on GPUs. An error for
    /// other problems.
    Blocked,
}

impl AttentionVariant {
    /// The name used in reports: `auto`, `subgroup`, `workgroup`, `texture` or `blocked`.
    pub fn name(self) -> &'static str {
        match self {
            AttentionVariant::Auto => "auto",
            AttentionVariant::Subgroup => "subgroup",
            AttentionVariant::Workgroup => "workgroup",
            AttentionVariant::Texture => "texture",
            AttentionVariant::Blocked => "blocked",
        }
    }
}

/// Options of [`plan`], [`run`] and [`unfused`]. `Default`: scale `1/sqrt(D)`, no causal
/// mask, variant chosen by the adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionOptions {
    /// Multiplies the scores `Q·K` before the softmax; `None` is `1/sqrt(D)`. Must be finite.
    pub scale: Option<f32>,
    /// Causal mask aligned top-left: query `i` sees keys `j <= i` (PyTorch's `is_causal`).
    pub causal: bool,
    /// Subgroup or workgroup reductions; [`AttentionVariant::Auto`] picks by the adapter.
    pub variant: AttentionVariant,
}

/// The sizes an attention problem is made of, derived from the operand shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// B (1 for 2-D operands).
    pub batch: usize,
    /// Query rows per batch, Nq.
    pub nq: usize,
    /// Key (and value) rows per batch, Nk.
    pub nk: usize,
    /// Number of heads H.
    pub heads: usize,
    /// Head dimension D.
    pub head_dim: usize,
}

impl AttentionDims {
    /// Checks Q `[B, Nq, H·D]`, K and V `[B, Nk, H·D]` (all 2-D, as one batch, or all 3-D)
    /// and `heads`, and derives the problem; D at most [`MAX_HEAD_DIM`].
    pub fn new(q: &[usize], k: &[usize], v: &[usize], heads: usize) -> Result<AttentionDims> {
        AttentionDims::checked("attention", q, k, v, heads, Some(MAX_HEAD_DIM))
    }

    /// The checks of [`AttentionDims::new`] with errors labelled `op` and an optional limit on
    /// D (other attention kernels share the layout with other limits).
    pub fn checked(
        op: &'static str,
        q: &[usize],
        k: &[usize],
        v: &[usize],
        heads: usize,
        max_head_dim: Option<usize>,
    ) -> Result<AttentionDims> {
        for (name, s) in [("Q", q), ("K", k), ("V", v)] {
            if s.len() != 2 && s.len() != 3 {
                return Err(Error::shape(
                    op,
                    format!("{name} must be 2-D [N, H*D] or 3-D [B, N, H*D], got shape {s:?}"),
                ));
            }
            if s.contains(&0) {
                return Err(Error::shape(
                    op,
                    format!("{name} has a zero-size dimension: shape {s:?}"),
                ));
            }
        }
        if q.len() != k.len() || q.len() != v.len() {
            return Err(Error::shape(
                op,
                format!("Q {q:?}, K {k:?} and V {v:?} must all be 2-D or all be 3-D"),
            ));
        }
        let split = |s: &[usize]| {
            if s.len() == 3 {
                (s[0], s[1], s[2])
            } else {
                (1, s[0], s[1])
            }
        };
        let (qb, nq, qw) = split(q);
        let (kb, nk, kw) = split(k);
        let (vb, nv, vw) = split(v);
        if qb != kb || qb != vb {
            return Err(Error::shape(
                op,
                format!("batch sizes differ: Q {q:?} has {qb}, K {k:?} has {kb}, V {v:?} has {vb}"),
            ));
        }
        if nk != nv {
            return Err(Error::shape(
                op,
                format!("K {k:?} has {nk} keys but V {v:?} has {nv} rows"),
            ));
        }
        if qw != kw || qw != vw {
            return Err(Error::shape(
                op,
                format!(
                    "rows differ in length: Q {q:?} has {qw} columns, K {k:?} {kw}, V {v:?} {vw} \
                     (all must be H*D)"
                ),
            ));
        }
        if heads == 0 {
            return Err(Error::invalid(format!(
                "{op} needs at least one head, got 0"
            )));
        }
        if !qw.is_multiple_of(heads) {
            return Err(Error::shape(
                op,
                format!(
                    "H*D = {qw} (the last axis of Q {q:?}) is not divisible by heads = {heads}"
                ),
            ));
        }
        let head_dim = qw / heads;
        if let Some(max) = max_head_dim.filter(|&max| head_dim > max) {
            return Err(Error::shape(
                op,
                format!("head dimension D = {head_dim} (H*D = {qw} / {heads} heads) exceeds {max}"),
            ));
        }
        Ok(AttentionDims {
            batch: qb,
            nq,
            nk,
            heads,
            head_dim,
        })
    }

    /// H·D: the length of a row of Q, K, V and O.
    pub fn row_len(&self) -> usize {
        self.heads * self.head_dim
    }

    /// The default scale, `1/sqrt(D)`.
    pub fn default_scale(&self) -> f32 {
        (1.0 / (self.head_dim as f64).sqrt()) as f32
    }

    /// Floating-point operations of the unmasked problem: `4·B·H·Nq·Nk·D` (two products).
    pub fn flops(&self) -> f64 {
        4.0 * self.batch as f64
            * self.heads as f64
            * self.nq as f64
            * self.nk as f64
            * self.head_dim as f64
    }
}

/// The kernel configuration for one head dimension on one adapter (the WGSL overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionConfig {
    /// [`AttentionVariant::Subgroup`] or [`AttentionVariant::Workgroup`] (never `Auto`).
    pub variant: AttentionVariant,
    /// Head dimension D.
    pub head_dim: u32,
    /// Threads that share one query row (T, a power of two).
    pub threads_per_query: u32,
    /// vec4 columns of the head each of them owns (DV <= 8).
    pub vec4s_per_thread: u32,
    /// Keys per K/V tile in workgroup memory (BK, a multiple of 4).
    pub keys_per_tile: u32,
    /// Threads per workgroup (WG).
    pub workgroup_size: u32,
}

impl AttentionConfig {
    /// The configuration for head dimension `head_dim` (1..=256) on `gpu`, resolving
    /// [`AttentionVariant::Auto`]. Errors name what the adapter lacks for a forced variant.
    pub fn for_gpu(
        gpu: &Gpu,
        head_dim: usize,
        variant: AttentionVariant,
    ) -> Result<AttentionConfig> {
        if head_dim == 0 || head_dim > MAX_HEAD_DIM {
            return Err(Error::invalid(format!(
                "attention head dimension must be 1..={MAX_HEAD_DIM}, got {head_dim}"
            )));
        }
        match variant {
            AttentionVariant::Texture | AttentionVariant::Blocked => Err(Error::invalid(format!(
                "the {} variant of attention has no configuration of this kernel",
                variant.name()
            ))),
            AttentionVariant::Workgroup => AttentionConfig::workgroup(gpu, head_dim),
            AttentionVariant::Subgroup => AttentionConfig::subgroup(gpu, head_dim),
            AttentionVariant::Auto => AttentionConfig::subgroup(gpu, head_dim)
                .or_else(|_| AttentionConfig::workgroup(gpu, head_dim)),
        }
    }

    fn workgroup(gpu: &Gpu, head_dim: usize) -> Result<AttentionConfig> {
        let d4 = head_dim.div_ceil(4) as u32;
        let threads = d4.div_ceil(PREFERRED_VEC4S_PER_THREAD).next_power_of_two();
        let wg = workgroup_size(gpu, WORKGROUP_SIZE);
        if wg < threads {
            return Err(Error::invalid(format!(
                "attention: D = {head_dim} needs {threads} threads per query but the adapter \
                 allows {wg} per workgroup"
            )));
        }
        AttentionConfig::with_tiles(gpu, AttentionVariant::Workgroup, head_dim, threads, wg)
    }

    fn subgroup(gpu: &Gpu, head_dim: usize) -> Result<AttentionConfig> {
        if !gpu.features().contains(wgpu::Features::SUBGROUP) {
            return Err(Error::invalid(format!(
                "attention: the subgroup variant needs the SUBGROUP feature, which adapter {:?} \
                 does not have (use AttentionVariant::Workgroup or Auto)",
                gpu.adapter_info().name
            )));
        }
        let info = gpu.adapter_info();
        // Subgroup sizes are powers of two; a group of T lanes must fit the smallest.
        let sg_min = floor_power_of_two(info.subgroup_min_size.max(1));
        let sg_max = info.subgroup_max_size.max(sg_min).next_power_of_two();
        let d4 = head_dim.div_ceil(4) as u32;
        let fewest = d4.div_ceil(MAX_VEC4S_PER_THREAD).next_power_of_two();
        let preferred = d4.div_ceil(PREFERRED_VEC4S_PER_THREAD).next_power_of_two();
        let threads = preferred.min(sg_min).max(fewest);
        if threads > sg_min {
            return Err(Error::invalid(format!(
                "attention: D = {head_dim} needs {threads} threads per query, more than the \
                 adapter's smallest subgroup ({sg_min}); use AttentionVariant::Workgroup or Auto"
            )));
        }
        // Whole subgroups: the workgroup is a multiple of the largest subgroup size.
        let wg = workgroup_size(gpu, WORKGROUP_SIZE.max(sg_max));
        if !wg.is_multiple_of(sg_max) {
            return Err(Error::invalid(format!(
                "attention: the adapter's largest subgroup ({sg_max}) exceeds its largest \
                 workgroup ({wg}); use AttentionVariant::Workgroup or Auto"
            )));
        }
        AttentionConfig::with_tiles(gpu, AttentionVariant::Subgroup, head_dim, threads, wg)
    }

    /// A configuration given in full (what the tuner tries): `threads` per query row (a power
    /// of two), `workgroup` threads (a power of two, a multiple of the adapter's largest
    /// subgroup for [`AttentionVariant::Subgroup`]) and `keys` per tile (a multiple of 4).
    /// Errors name the rule that fails and the numbers.
    pub fn custom(
        gpu: &Gpu,
        head_dim: usize,
        variant: AttentionVariant,
        threads: u32,
        workgroup: u32,
        keys: u32,
    ) -> Result<AttentionConfig> {
        if head_dim == 0 || head_dim > MAX_HEAD_DIM {
            return Err(Error::invalid(format!(
                "attention head dimension must be 1..={MAX_HEAD_DIM}, got {head_dim}"
            )));
        }
        let d4 = head_dim.div_ceil(4) as u32;
        let bad = |why: String| {
            Err(Error::invalid(format!(
                "attention config {} t{threads} wg{workgroup} bk{keys} for D = {head_dim}: {why}",
                variant.name()
            )))
        };
        if !matches!(
            variant,
            AttentionVariant::Subgroup | AttentionVariant::Workgroup
        ) {
            return bad("only the subgroup and workgroup variants have tiles".into());
        }
        if !threads.is_power_of_two() || d4.div_ceil(threads) > MAX_VEC4S_PER_THREAD {
            return bad(format!(
                "threads per query must be a power of two with at most                  {MAX_VEC4S_PER_THREAD} of the {d4} vec4s of a head each"
            ));
        }
        let l = gpu.limits();
        let max_wg = l
            .max_compute_invocations_per_workgroup
            .min(l.max_compute_workgroup_size_x);
        if !workgroup.is_power_of_two() || workgroup < threads || workgroup > max_wg {
            return bad(format!(
                "the workgroup must be a power of two from {threads} to the adapter's {max_wg}"
            ));
        }
        if keys == 0 || !keys.is_multiple_of(4) {
            return bad("keys per tile must be a positive multiple of 4".into());
        }
        if variant == AttentionVariant::Subgroup {
            if !gpu.features().contains(wgpu::Features::SUBGROUP) {
                return bad("the adapter has no SUBGROUP feature".into());
            }
            let info = gpu.adapter_info();
            let sg_min = floor_power_of_two(info.subgroup_min_size.max(1));
            let sg_max = info.subgroup_max_size.max(sg_min).next_power_of_two();
            if threads > sg_min || !workgroup.is_multiple_of(sg_max) {
                return bad(format!(
                    "a query's threads must fit the smallest subgroup ({sg_min}) and the \
                     workgroup hold whole subgroups of {sg_max}"
                ));
            }
        }
        let config = AttentionConfig {
            variant,
            head_dim: head_dim as u32,
            threads_per_query: threads,
            vec4s_per_thread: d4.div_ceil(threads),
            keys_per_tile: keys,
            workgroup_size: workgroup,
        };
        let limit = u64::from(l.max_compute_workgroup_storage_size);
        if config.workgroup_bytes() > limit {
            return bad(format!(
                "needs {} bytes of workgroup memory, the adapter allows {limit}",
                config.workgroup_bytes()
            ));
        }
        Ok(config)
    }

    /// Parses the notation of [`Display`](std::fmt::Display): `VARIANT-tT-wgWG-bkBK`, e.g.
    /// `subgroup-t4-wg128-bk32`, checked by [`AttentionConfig::custom`].
    pub fn parse(gpu: &Gpu, head_dim: usize, s: &str) -> Result<AttentionConfig> {
        let bad = || {
            Error::invalid(format!(
                "attention config {s:?} is not VARIANT-tT-wgWG-bkBK (e.g. subgroup-t4-wg128-bk32)"
            ))
        };
        let parts: Vec<&str> = s.split('-').collect();
        let [variant, t, wg, bk] = parts[..] else {
            return Err(bad());
        };
        let variant = match variant {
            "subgroup" => AttentionVariant::Subgroup,
            "workgroup" => AttentionVariant::Workgroup,
            _ => return Err(bad()),
        };
        let number = |p: &str, prefix: &str| -> Result<u32> {
            p.strip_prefix(prefix)
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)
        };
        AttentionConfig::custom(
            gpu,
            head_dim,
            variant,
            number(t, "t")?,
            number(wg, "wg")?,
            number(bk, "bk")?,
        )
    }

    /// Picks the largest key tile whose workgroup memory fits the adapter.
    fn with_tiles(
        gpu: &Gpu,
        variant: AttentionVariant,
        head_dim: usize,
        threads: u32,
        wg: u32,
    ) -> Result<AttentionConfig> {
        let d4 = head_dim.div_ceil(4) as u32;
        let limit = u64::from(gpu.limits().max_compute_workgroup_storage_size);
        let mut config = AttentionConfig {
            variant,
            head_dim: head_dim as u32,
            threads_per_query: threads,
            vec4s_per_thread: d4.div_ceil(threads),
            keys_per_tile: 0,
            workgroup_size: wg,
        };
        for bk in KEYS_PER_TILE {
            config.keys_per_tile = bk;
            if config.workgroup_bytes() <= limit {
                return Ok(config);
            }
        }
        config.keys_per_tile = KEYS_PER_TILE[KEYS_PER_TILE.len() - 1];
        Err(Error::invalid(format!(
            "attention: D = {head_dim} needs {} bytes of workgroup memory even with {} keys per \
             tile, but the adapter allows {limit} (max_compute_workgroup_storage_size)",
            config.workgroup_bytes(),
            config.keys_per_tile
        )))
    }

    /// Query rows one workgroup computes (BQ = WG / T).
    pub fn queries_per_workgroup(&self) -> u32 {
        self.workgroup_size / self.threads_per_query
    }

    /// vec4s of one K or V tile (KV_LEN).
    fn kv_len(&self) -> u32 {
        self.keys_per_tile * self.vec4s_per_thread * self.threads_per_query
    }

    /// vec4s of the partial-score buffer (PART_LEN; only the workgroup path with T > 1).
    fn part_len(&self) -> u32 {
        if self.variant == AttentionVariant::Workgroup && self.threads_per_query > 1 {
            self.keys_per_tile / 4 * self.workgroup_size
        } else {
            1
        }
    }

    /// Workgroup memory the kernel declares: K and V tiles, partial scores, key flags and
    /// the row counter.
    pub fn workgroup_bytes(&self) -> u64 {
        16 * (2 * u64::from(self.kv_len()) + u64::from(self.part_len()))
            + 4 * u64::from(self.keys_per_tile)
            + 4
    }

    /// An upper bound of the loop passes of this configuration's busiest invocation over `nk`
    /// keys, counted as `ops::loop_limit` says (`Loops:` in `shaders/attention.wgsl`): one pass of
    /// the key-tile loop per BK keys, whose body loops over the K and V tile loads
    /// (KV_LEN / WG passes), the key flags (BK / WG), the partial scores (workgroup variant
    /// with T > 1: BK / 4) and the BK / 4 chunks of 4 keys, each around its score reduction
    /// (subgroup variant: log2 T passes of shuffles; workgroup variant with T > 1: the T
    /// partial sums; none for T = 1 there).
    pub fn loop_iterations(&self, nk: usize) -> u64 {
        let bk = u64::from(self.keys_per_tile);
        let wg = u64::from(self.workgroup_size);
        let t = u64::from(self.threads_per_query);
        let chunks = bk / 4;
        let (reduce, reduce_loops) = match self.variant {
            AttentionVariant::Subgroup => (looped(u64::from(t.trailing_zeros()), 0, 0), 1),
            _ if t > 1 => (looped(t, 0, 0), 1),
            _ => (0, 0),
        };
        let mut body = looped(u64::from(self.kv_len()).div_ceil(wg), 0, 0)
            + looped(bk.div_ceil(wg), 0, 0)
            + looped(chunks, reduce, reduce_loops);
        let mut nested = 3 + reduce_loops;
        if self.variant != AttentionVariant::Subgroup && t > 1 {
            body += looped(chunks, 0, 0);
            nested += 1;
        }
        looped((nk as u64).div_ceil(bk), body, nested)
    }

    fn constants(&self) -> [(&'static str, f64); 8] {
        [
            ("D", f64::from(self.head_dim)),
            ("T", f64::from(self.threads_per_query)),
            ("DV", f64::from(self.vec4s_per_thread)),
            ("BK", f64::from(self.keys_per_tile)),
            ("WG", f64::from(self.workgroup_size)),
            ("KV_LEN", f64::from(self.kv_len())),
            ("PART_LEN", f64::from(self.part_len())),
            (
                "SUBGROUPS",
                f64::from(u8::from(self.variant == AttentionVariant::Subgroup)),
            ),
        ]
    }

    fn pipeline(&self, gpu: &Gpu) -> Result<Arc<wgpu::ComputePipeline>> {
        let kernel = match self.variant {
            AttentionVariant::Subgroup => shaders::ATTENTION,
            _ => portable_kernel(),
        };
        gpu.pipeline(&kernel, &self.constants())
    }
}

impl std::fmt::Display for AttentionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-t{}-wg{}-bk{}",
            self.variant.name(),
            self.threads_per_query,
            self.workgroup_size,
            self.keys_per_tile
        )
    }
}

/// What [`plan`] runs: the texture variant, a tiled variant with its configuration, or the
/// register-blocked kernel with its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionChoice {
    /// [`attention_texture`] (no tile configuration).
    Texture,
    /// The subgroup or workgroup variant of `shaders/attention.wgsl`.
    Tiled(AttentionConfig),
    /// `shaders/attention_blocked.wgsl` ([`crate::ops::attention_blocked`]).
    Blocked(BlockedConfig),
}

impl AttentionChoice {
    /// The variant that runs.
    pub fn variant(&self) -> AttentionVariant {
        match self {
            AttentionChoice::Texture => AttentionVariant::Texture,
            AttentionChoice::Tiled(c) => c.variant,
            AttentionChoice::Blocked(_) => AttentionVariant::Blocked,
        }
    }

    /// `texture`, or the tiled configuration's notation (what the tuning cache stores).
    pub fn name(&self) -> String {
        match self {
            AttentionChoice::Texture => "texture".into(),
            AttentionChoice::Tiled(c) => c.to_string(),
            AttentionChoice::Blocked(c) => c.to_string(),
        }
    }

    /// An upper bound of the loop passes of the busiest invocation of this choice's kernel on
    /// a problem of `dims` on `gpu` (counted as `ops::loop_limit` says): an invocation of the tiled and
    /// register-blocked kernels walks the keys of one range (see [`key_split`]; all Nk where the
    /// keys cannot be cut; the causal mask stops earlier, never later), the texture variant
    /// those of one dispatch ([`attention_texture::keys_per_dispatch`]).
    pub fn loop_iterations(&self, gpu: &Gpu, dims: &AttentionDims) -> Result<u64> {
        Ok(self.passes(gpu, gpu.loop_limit()?, dims))
    }

    /// [`AttentionChoice::loop_iterations`] where the adapter's loop limit is `limit`.
    fn passes(&self, gpu: &Gpu, limit: Option<u64>, dims: &AttentionDims) -> u64 {
        match self {
            AttentionChoice::Texture => {
                let keys = attention_texture::keys_within(gpu, limit, dims.head_dim);
                attention_texture::loop_iterations(dims.head_dim, dims.nk.min(keys))
            }
            AttentionChoice::Tiled(c) => c.loop_iterations(split_within(gpu, limit, dims, c).keys),
            AttentionChoice::Blocked(c) => {
                c.loop_iterations(blocked_split(gpu, limit, dims, c).keys)
            }
        }
    }

    /// Parses [`AttentionChoice::name`] for head dimension `head_dim` on `gpu`.
    pub fn parse(gpu: &Gpu, head_dim: usize, s: &str) -> Result<AttentionChoice> {
        if s == "texture" {
            Ok(AttentionChoice::Texture)
        } else if s.starts_with("blocked-") {
            BlockedConfig::parse(gpu, head_dim, s).map(AttentionChoice::Blocked)
        } else {
            AttentionConfig::parse(gpu, head_dim, s).map(AttentionChoice::Tiled)
        }
    }
}

/// The op name of attention's tuned configurations ([`crate::tune`]).
pub const TUNE_OP: &str = "attention";

/// The tuning class of an attention problem: the head dimension and the causal mask as the
/// tag (`d64`, `d64 causal`), the octaves of Nq, Nk and B·H as sizes.
pub fn shape_class(dims: &AttentionDims, causal: bool) -> ShapeClass {
    let mut tag = format!("d{}", dims.head_dim);
    if causal {
        tag.push_str(" causal");
    }
    ShapeClass::new(tag, &[dims.nq, dims.nk, dims.batch * dims.heads])
}

/// The largest power of two at most `n` (n >= 1).
fn floor_power_of_two(n: u32) -> u32 {
    1 << (31 - n.leading_zeros())
}

/// `wanted` threads, lowered to a power of two within the adapter's workgroup limits.
fn workgroup_size(gpu: &Gpu, wanted: u32) -> u32 {
    let l = gpu.limits();
    let max = l
        .max_compute_invocations_per_workgroup
        .min(l.max_compute_workgroup_size_x)
        .max(1);
    floor_power_of_two(wanted.min(max))
}

const SUBGROUP_BEGIN: &str = "// ---- subgroup helpers: begin ----";
const SUBGROUP_END: &str = "// ---- subgroup helpers: end ----";
const STAND_IN: &str = "//| ";

/// The attention shader without subgroup operations: the lines between the "subgroup
/// helpers" markers of `shaders/attention.wgsl` are replaced by the `//| ` stand-ins that
/// follow them (never called: the workgroup variant sets `SUBGROUPS = false`).
///
/// Why: naga, and so wgpu, rejects a shader module that contains any subgroup operation on
/// an adapter without `SUBGROUP`, even where an override makes it unreachable. This copy is
/// what the workgroup variant compiles on every adapter, so the fallback tested on lavapipe
/// is the code that runs where subgroups are missing. Library pieces are included; the text
/// honours `SPECKLE_SHADER_DIR` as read at the first call.
pub fn portable_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut out = String::new();
        let mut inside = false;
        for line in shaders::ATTENTION.source().lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with(SUBGROUP_BEGIN) {
                inside = true;
            } else if trimmed.starts_with(SUBGROUP_END) {
                inside = false;
            } else if let Some(code) = trimmed.strip_prefix(STAND_IN) {
                out.push_str(code);
                out.push('\n');
            } else if !inside {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    })
}

/// [`portable_source`] as a kernel: compiled and cached under its own name,
/// `attention_portable` (it is not a file of `shaders/` and not in [`shaders::ALL`]).
pub fn portable_kernel() -> Kernel {
    Kernel {
        name: "attention_portable",
        body: portable_source(),
        libs: &[],
        trusted: shaders::ATTENTION.trusted,
        zero_workgroup_memory: shaders::ATTENTION.zero_workgroup_memory,
    }
}

/// Uniform parameters of `shaders/attention.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    batches: u32,
    heads: u32,
    nk: u32,
    row_stride: u32,
    q_rows: u32,
    q_row0: u32,
    q_batch: u32,
    q_blocks: u32,
    q_first: u32,
    k_first: u32,
    v_first: u32,
    mask_first: u32,
    o_first: u32,
    flags: u32,
    scale: f32,
    splits: u32,
    split_keys: u32,
    o_split: u32,
    lse_first: u32,
    lse_split: u32,
}

/// The scale `options` ask for on a problem of head dimension D, checked finite.
fn resolve_scale(dims: &AttentionDims, options: &AttentionOptions) -> Result<f32> {
    let scale = options.scale.unwrap_or_else(|| dims.default_scale());
    if !scale.is_finite() {
        return Err(Error::invalid(format!(
            "attention scale must be finite, got {scale}"
        )));
    }
    Ok(scale)
}

/// Checks a key mask's shape: `[B, Nk]`, or `[Nk]` when B = 1.
fn check_mask(dims: &AttentionDims, mask: &Tensor) -> Result<()> {
    let s = mask.shape();
    let ok = s == [dims.batch, dims.nk] || (dims.batch == 1 && s == [dims.nk]);
    if !ok {
        return Err(Error::shape(
            "attention",
            format!(
                "the key mask has shape {s:?} but must be [B, Nk] = [{}, {}]",
                dims.batch, dims.nk
            ),
        ));
    }
    Ok(())
}

/// One dispatch's share of the problem: batches `b0 .. b0 + batches`, and of each of them the
/// query rows `r0 .. r0 + rows`.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    b0: usize,
    batches: usize,
    r0: usize,
    rows: usize,
}

/// Splits the problem so that every window (Q and O rows, a batch's K and V, the mask) fits
/// one binding and every grid fits the dispatch limits.
fn chunks(gpu: &Gpu, dims: &AttentionDims, bq: usize) -> Result<Vec<Chunk>> {
    let capacity = window_capacity(gpu);
    let row = dims.row_len();
    let kv = dims.nk * row;
    if kv > capacity {
        return Err(Error::invalid(format!(
            "attention: one batch of K (and of V) is [Nk, H*D] = [{}, {row}] = {kv} values \
             ({} bytes), more than one storage binding holds ({} bytes after alignment); the \
             kernel keeps a batch's keys in one binding, so use fewer keys or heads per call",
            dims.nk,
            kv as u64 * 4,
            capacity as u64 * 4
        )));
    }
    let groups_per_head = gpu.max_grid() / dims.heads;
    // Query rows per dispatch: one window of Q and O, one grid.
    let rows = dims.nq.min(capacity / row).min(groups_per_head * bq).max(1);
    let mut out = Vec::new();
    if rows == dims.nq {
        let per_batch = (dims.nq * row).max(kv);
        let blocks = dims.nq.div_ceil(bq) * dims.heads;
        let batches = (capacity / per_batch)
            .min(gpu.max_grid() / blocks)
            .clamp(1, dims.batch);
        for b0 in (0..dims.batch).step_by(batches) {
            out.push(Chunk {
                b0,
                batches: batches.min(dims.batch - b0),
                r0: 0,
                rows,
            });
        }
    } else {
        for b0 in 0..dims.batch {
            for r0 in (0..dims.nq).step_by(rows) {
                out.push(Chunk {
                    b0,
                    batches: 1,
                    r0,
                    rows: rows.min(dims.nq - r0),
                });
            }
        }
    }
    Ok(out)
}

/// Plans `out = attention(q, k, v)` with `heads` heads (see the module docs for layouts and
/// masks). `out` has the shape of `q` and must not share a buffer with an input; `key_mask`
/// is `[B, Nk]` (1 = attend, 0 = masked; any non-zero attends).
#[expect(
    clippy::too_many_arguments,
    reason = "the operands of attention are Q, K, V, a mask and an output"
)]
pub fn plan(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    out: &Tensor,
    heads: usize,
    options: &AttentionOptions,
) -> Result<Vec<Dispatch>> {
    let dims = AttentionDims::new(q.shape(), k.shape(), v.shape(), heads)?;
    let mut tensors = vec![q, k, v, out];
    tensors.extend(key_mask);
    let choice = choose(gpu, &dims, &tensors, options)?;
    plan_with(gpu, q, k, v, key_mask, out, heads, options, choice)
}

/// [`plan`] with the kernel and tiles given: `choice` instead of the one [`choose`] makes
/// (`options.variant` is then ignored). For tuning and experiments; the texture variant is an
/// error where it is not eligible.
#[expect(
    clippy::too_many_arguments,
    reason = "the operands of attention, its options and the kernel choice"
)]
pub fn plan_with(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    out: &Tensor,
    heads: usize,
    options: &AttentionOptions,
    choice: AttentionChoice,
) -> Result<Vec<Dispatch>> {
    let dims = AttentionDims::new(q.shape(), k.shape(), v.shape(), heads)?;
    if out.shape() != q.shape() {
        return Err(Error::shape(
            "attention",
            format!(
                "the output has shape {:?} but must have Q's shape {:?}",
                out.shape(),
                q.shape()
            ),
        ));
    }
    if let Some(mask) = key_mask {
        check_mask(&dims, mask)?;
    }
    let inputs = [Some(q), Some(k), Some(v), key_mask];
    if inputs.iter().flatten().any(|t| t.buffer() == out.buffer()) {
        return Err(Error::invalid(
            "attention: the output must not share a buffer with Q, K, V or the key mask",
        ));
    }
    let scale = resolve_scale(&dims, options)?;
    let mut tensors = vec![q, k, v, out];
    tensors.extend(key_mask);
    check_loop_limit(gpu, &dims, &tensors, &choice)?;
    let config = match choice {
        AttentionChoice::Texture => {
            if !attention_texture::eligible(gpu, &dims, &tensors) {
                return Err(Error::invalid(
                    "attention: the texture variant needs an adapter with 8-wide subgroups and \
                     every operand in one binding",
                ));
            }
            return attention_texture::plan(
                gpu,
                &dims,
                q,
                k,
                v,
                key_mask,
                out,
                scale,
                options.causal,
                attention_texture::layout(&dims),
            );
        }
        AttentionChoice::Tiled(config) => config,
        AttentionChoice::Blocked(config) => {
            if key_mask.is_some() {
                return Err(Error::invalid(
                    "attention: the register-blocked kernel takes no key mask (use Auto, \
                     subgroup or workgroup)",
                ));
            }
            check_head_dim(&config.to_string(), config.head_dim, &dims)?;
            let kernel = ChunkKernel {
                pipeline: config.pipeline(gpu)?,
                queries: config.queries_per_workgroup() as usize,
                mask_slot: false,
                lse_slot: true,
            };
            let split = blocked_split(gpu, gpu.loop_limit()?, &dims, &config);
            return plan_chunks(
                gpu,
                &dims,
                [q, k, v],
                out,
                None,
                &kernel,
                options.causal,
                scale,
                split,
            );
        }
    };
    check_head_dim(&config.to_string(), config.head_dim, &dims)?;
    let kernel = ChunkKernel {
        pipeline: config.pipeline(gpu)?,
        queries: config.queries_per_workgroup() as usize,
        mask_slot: true,
        lse_slot: true,
    };
    plan_chunks(
        gpu,
        &dims,
        [q, k, v],
        out,
        key_mask,
        &kernel,
        options.causal,
        scale,
        key_split(gpu, &dims, &config)?,
    )
}

/// Query blocks the tiled kernel needs fewer of to get key ranges for parallelism on GPUs
/// ([`key_split`]): about 4 workgroups for each of an H100's 132 multiprocessors.
pub const SPLIT_TARGET_WORKGROUPS: usize = 512;
/// The fewest keys a range takes where it is cut for parallelism: enough that the range's
/// walk outweighs writing its partial row and merging it.
pub const MIN_KEYS_PER_SPLIT: usize = 256;

/// How the tiled kernels take the keys: `splits` ranges of `keys` each (the last shorter), one
/// workgroup per query block and range, merged by [`crate::ops::attention_combine`]; one
/// range is the whole sequence written to the output directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySplit {
    /// Ranges S.
    pub splits: usize,
    /// Keys per range (a multiple of the configuration's keys per tile, or Nk for one range).
    pub keys: usize,
}

impl KeySplit {
    /// All `nk` keys in one range.
    pub fn whole(nk: usize) -> KeySplit {
        KeySplit {
            splits: 1,
            keys: nk,
        }
    }
}

/// The key ranges of `config` on a problem of `dims` on `gpu`: cut so that each invocation's
/// loop passes fit the adapter's loop limit ([`Gpu::loop_limit`]), and on GPUs (not CPU
/// adapters, whose few cores are busy with few workgroups) so that a problem of fewer than
/// [`SPLIT_TARGET_WORKGROUPS`] query blocks gets about that many workgroups, with at least
/// [`MIN_KEYS_PER_SPLIT`] keys per range. Ranges need the problem in one dispatch (one chunk,
/// see the module docs) with S partial outputs in one binding and S times the workgroups in
/// one grid; where that is not so the keys stay whole (and a loop-limit check refuses what
/// does not fit).
pub fn key_split(gpu: &Gpu, dims: &AttentionDims, config: &AttentionConfig) -> Result<KeySplit> {
    Ok(split_within(gpu, gpu.loop_limit()?, dims, config))
}

/// [`key_split`] where the adapter's loop limit is `limit`.
fn split_within(
    gpu: &Gpu,
    limit: Option<u64>,
    dims: &AttentionDims,
    config: &AttentionConfig,
) -> KeySplit {
    split_keys(
        gpu,
        limit,
        dims,
        config.queries_per_workgroup() as usize,
        config.keys_per_tile as usize,
        |n| config.loop_iterations(n),
    )
}

/// The key ranges of the register-blocked kernel `config` ([`split_keys`]; its key tiles are
/// D keys).
fn blocked_split(
    gpu: &Gpu,
    limit: Option<u64>,
    dims: &AttentionDims,
    config: &BlockedConfig,
) -> KeySplit {
    split_keys(
        gpu,
        limit,
        dims,
        config.queries_per_workgroup() as usize,
        config.head_dim as usize,
        |n| config.loop_iterations(n),
    )
}

/// The key ranges of a kernel that takes `bq` query rows per workgroup and keys in blocks of
/// `bk`, whose busiest invocation loops `bound(n)` passes over n keys (see [`key_split`]):
/// ranges are whole blocks, so that no block straddles two ranges.
pub(crate) fn split_keys(
    gpu: &Gpu,
    limit: Option<u64>,
    dims: &AttentionDims,
    bq: usize,
    bk: usize,
    bound: impl Fn(usize) -> u64,
) -> KeySplit {
    let nk = dims.nk;
    let whole = KeySplit::whole(nk);
    if nk == 0 {
        return whole;
    }
    let blocks = dims.batch * dims.heads * dims.nq.div_ceil(bq);
    // Ranges for parallelism (GPUs only).
    let wanted = if gpu.is_cpu() || blocks >= SPLIT_TARGET_WORKGROUPS {
        1
    } else {
        SPLIT_TARGET_WORKGROUPS
            .div_ceil(blocks)
            .min(nk / MIN_KEYS_PER_SPLIT)
            .max(1)
    };
    let mut keys = nk.div_ceil(wanted).next_multiple_of(bk);
    // Ranges for the loop limit: whole blocks that fit it.
    if let Some(limit) = limit {
        if bound(nk) > limit {
            let fit = largest_within(limit, nk as u64, |n| bound(n as usize)).unwrap_or(0) as usize
                / bk
                * bk;
            if fit == 0 {
                return whole;
            }
            keys = keys.min(fit);
        }
    }
    let splits = nk.div_ceil(keys);
    if splits <= 1 {
        return whole;
    }
    let out_len = dims.batch * dims.nq * dims.row_len();
    let one_chunk = chunks(gpu, dims, bq).is_ok_and(|c| c.len() == 1);
    let fits = splits * out_len <= window_capacity(gpu)
        && blocks * splits <= gpu.max_grid()
        && u32::try_from(splits * out_len).is_ok();
    if !one_chunk || !fits {
        return whole;
    }
    // As many ranges, as even as whole blocks allow.
    KeySplit {
        splits,
        keys: nk.div_ceil(splits).next_multiple_of(bk),
    }
}

/// A compiled kernel with the bindings of `shaders/attention.wgsl`: the query rows of one
/// workgroup, whether binding 4 is the key mask (the output then at 5) or the output, and
/// whether the binding after the output takes the key ranges' log-sum-exps.
pub(crate) struct ChunkKernel {
    pub(crate) pipeline: Arc<wgpu::ComputePipeline>,
    pub(crate) queries: usize,
    pub(crate) mask_slot: bool,
    pub(crate) lse_slot: bool,
}

/// [`Error::LoopLimit`] where `choice` would loop more often in one invocation than the
/// adapter allows on `dims` (`tensors` as for [`choose`]), before anything is planned. The
/// remedy names the most keys `choice` takes, and the variant that takes the problem where
/// one does ([`AttentionVariant::Auto`] picks it), else the most keys any variant takes here
/// and [`unfused`], whose kernels split their loops.
fn check_loop_limit(
    gpu: &Gpu,
    dims: &AttentionDims,
    tensors: &[&Tensor],
    choice: &AttentionChoice,
) -> Result<()> {
    let Some(limit) = gpu.loop_limit()? else {
        return Ok(());
    };
    let passes = |c: &AttentionChoice, dims: &AttentionDims| c.passes(gpu, Some(limit), dims);
    let iterations = passes(choice, dims);
    if iterations <= limit {
        return Ok(());
    }
    let keys =
        |c: &AttentionChoice| most_that_fit(limit, |nk| passes(c, &AttentionDims { nk, ..*dims }));
    let others = auto_candidates(gpu, dims, tensors);
    let remedy = match others.iter().find(|c| passes(c, dims) <= limit) {
        Some(other) => format!(
            "{} takes at most {} keys here, the {} variant takes these Nk = {} \
             (AttentionVariant::Auto picks it)",
            choice.name(),
            keys(choice),
            other.name(),
            dims.nk
        ),
        None => {
            let (most, best) = others
                .iter()
                .chain(std::iter::once(choice))
                .map(|c| (keys(c), c.name()))
                .max()
                .unwrap_or_default();
            format!(
                "no fused variant takes Nk = {} keys of D = {} on this adapter (the most: {most} \
                 keys, {best}); attention::unfused (matmul, softmax, matmul) computes it, \
                 storing the Nq x Nk scores and without a key mask",
                dims.nk, dims.head_dim
            )
        }
    };
    gpu.check_loops(
        &format!("attention ({})", choice.name()),
        iterations,
        &remedy,
    )
}

/// Errors unless the configuration `name` (for head dimension `head_dim`) fits the heads.
fn check_head_dim(name: &str, head_dim: u32, dims: &AttentionDims) -> Result<()> {
    if head_dim as usize != dims.head_dim {
        return Err(Error::invalid(format!(
            "attention: the configuration {name} is for D = {head_dim} but the heads have D = {}",
            dims.head_dim
        )));
    }
    Ok(())
}

/// Where the key ranges of [`plan_chunks`] write: S partial outputs `[S, B·Nq, H·D]` and their
/// log-sum-exps `[S, B·Nq, H]`.
struct RangeOutputs<'a> {
    split: KeySplit,
    partials: &'a Tensor,
    lse: &'a Tensor,
}

/// The dispatches of `kernel` over the chunks of the problem (`key_mask` only for a kernel
/// with a mask slot). Q, K and V may be f32 or f16 tensors (windows count their own elements);
/// the output is f32. With `split` in several ranges (a kernel with a log-sum-exp binding;
/// [`split_keys`] has checked that the problem is one chunk whose S partial outputs fit one
/// binding), each range writes a partial output, and [`attention_combine`] merges them into
/// `out`.
#[expect(
    clippy::too_many_arguments,
    reason = "the operands of attention, its mask and output, the kernel, its options and the key ranges"
)]
pub(crate) fn plan_chunks(
    gpu: &Gpu,
    dims: &AttentionDims,
    qkv: [&dyn Operand; 3],
    out: &Tensor,
    key_mask: Option<&Tensor>,
    kernel: &ChunkKernel,
    causal: bool,
    scale: f32,
    split: KeySplit,
) -> Result<Vec<Dispatch>> {
    if split.splits <= 1 {
        return plan_ranges(gpu, dims, qkv, out, key_mask, kernel, causal, scale, None);
    }
    let rows = dims.batch * dims.nq;
    let partials = Tensor::empty(gpu, &[split.splits, rows, dims.row_len()])?;
    let lse = Tensor::empty(gpu, &[split.splits, rows, dims.heads])?;
    let ranges = RangeOutputs {
        split,
        partials: &partials,
        lse: &lse,
    };
    let mut dispatches = plan_ranges(
        gpu,
        dims,
        qkv,
        out,
        key_mask,
        kernel,
        causal,
        scale,
        Some(ranges),
    )?;
    let merged = out.view(&[rows, dims.row_len()])?;
    dispatches.extend(attention_combine::plan(gpu, &partials, &lse, &merged)?);
    Ok(dispatches)
}

/// The dispatches of [`plan_chunks`], writing to `out`, or with `ranges` (one chunk) the key
/// ranges' partial outputs and log-sum-exps.
#[expect(
    clippy::too_many_arguments,
    reason = "the operands of attention, its mask and output, the kernel, its options and the key ranges"
)]
fn plan_ranges(
    gpu: &Gpu,
    dims: &AttentionDims,
    [q, k, v]: [&dyn Operand; 3],
    out: &Tensor,
    key_mask: Option<&Tensor>,
    kernel: &ChunkKernel,
    causal: bool,
    scale: f32,
    ranges: Option<RangeOutputs<'_>>,
) -> Result<Vec<Dispatch>> {
    let dims = *dims;
    let bq = kernel.queries;
    let pipeline = &kernel.pipeline;
    let row = dims.row_len();
    let mut flags = 0;
    if causal {
        flags |= FLAG_CAUSAL;
    }
    if key_mask.is_some() {
        flags |= FLAG_MASK;
    }
    let split = ranges
        .as_ref()
        .map_or(KeySplit::whole(dims.nk), |r| r.split);
    // With a single range the log-sum-exp binding (where the kernel has one) is never written.
    let lw = ranges.as_ref().map(|r| r.lse.window(gpu, 0, r.lse.len()));
    let chunks = chunks(gpu, &dims, bq)?;
    if ranges.is_some() && chunks.len() != 1 {
        return Err(Error::invalid(format!(
            "attention: key ranges need the problem in one dispatch, but {dims:?} takes {}",
            chunks.len()
        )));
    }
    let mut dispatches = Vec::new();
    for c in chunks {
        let q_start = (c.b0 * dims.nq + c.r0) * row;
        let q_len = if c.batches == 1 {
            c.rows * row
        } else {
            c.batches * dims.nq * row
        };
        let kv_start = c.b0 * dims.nk * row;
        let kv_len = c.batches * dims.nk * row;
        let qw = q.window_of(gpu, q_start, q_len);
        let ow = match &ranges {
            Some(r) => r.partials.window(gpu, 0, r.partials.len()),
            None => out.window(gpu, q_start, q_len),
        };
        let kw = k.window_of(gpu, kv_start, kv_len);
        let vw = v.window_of(gpu, kv_start, kv_len);
        let mw = key_mask.map(|m| m.window(gpu, c.b0 * dims.nk, c.batches * dims.nk));
        let q_blocks = c.rows.div_ceil(bq);
        let params = AttentionParams {
            batches: c.batches as u32,
            heads: dims.heads as u32,
            nk: dims.nk as u32,
            row_stride: row as u32,
            q_rows: c.rows as u32,
            q_row0: c.r0 as u32,
            // Only read for batch > 0 of a dispatch, which then holds whole batches.
            q_batch: if c.batches == 1 {
                0
            } else {
                (dims.nq * row) as u32
            },
            q_blocks: q_blocks as u32,
            q_first: qw.first,
            k_first: kw.first,
            v_first: vw.first,
            mask_first: mw.as_ref().map_or(0, |w| w.first),
            o_first: ow.first,
            flags,
            scale,
            splits: split.splits as u32,
            split_keys: split.keys as u32,
            o_split: q_len as u32,
            lse_first: lw.as_ref().map_or(0, |w| w.first),
            lse_split: (dims.batch * dims.nq * dims.heads) as u32,
        };
        let uniform = gpu.uniform("speckle.attention.params", &params);
        let mut resources = vec![
            uniform.as_entire_binding(),
            qw.resource(),
            kw.resource(),
            vw.resource(),
        ];
        // The register-blocked kernel has no mask binding; the tiled one binds a placeholder.
        if kernel.mask_slot {
            resources.push(Window::or_placeholder(mw.as_ref(), gpu));
        }
        resources.push(ow.resource());
        if kernel.lse_slot {
            resources.push(Window::or_unused_output(lw.as_ref(), gpu));
        }
        let bind_group = gpu.bind_group(pipeline, &resources);
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid((c.batches * dims.heads * q_blocks * split.splits) as u32),
        ));
    }
    Ok(dispatches)
}

/// The kernel [`plan`] runs on this adapter and problem (`tensors`: Q, K, V, the output and,
/// last, the key mask if there is one). With `options.variant` [`AttentionVariant::Auto`]: the
/// configuration tuned for the problem's class ([`crate::tune`]) where one applies, else
/// [`builtin_choice`]. A forced variant gets its built-in configuration.
pub fn choose(
    gpu: &Gpu,
    dims: &AttentionDims,
    tensors: &[&Tensor],
    options: &AttentionOptions,
) -> Result<AttentionChoice> {
    let requested = options.variant;
    if requested == AttentionVariant::Auto {
        let tuned = gpu
            .tuned_config(TUNE_OP, &shape_class(dims, options.causal))
            .and_then(|s| AttentionChoice::parse(gpu, dims.head_dim, &s).ok());
        // A tuned choice that would pass the loop limit on this Nk gives way to the built-in one.
        let limit = gpu.loop_limit()?;
        let fits = |c: &AttentionChoice| limit.is_none_or(|l| c.passes(gpu, limit, dims) <= l);
        match tuned {
            Some(AttentionChoice::Texture)
                if attention_texture::eligible(gpu, dims, tensors)
                    && fits(&AttentionChoice::Texture) =>
            {
                return Ok(AttentionChoice::Texture)
            }
            Some(choice @ AttentionChoice::Tiled(_)) if fits(&choice) => return Ok(choice),
            Some(choice @ AttentionChoice::Blocked(_)) if tensors.len() <= 4 && fits(&choice) => {
                return Ok(choice)
            }
            _ => {}
        }
    }
    builtin_choice(gpu, dims, tensors, requested)
}

/// What [`AttentionVariant::Auto`] may run on this adapter and problem (`tensors` as for
/// [`choose`]), preferred first: on CPU adapters the texture variant where it is eligible, on
/// others the register-blocked kernel where it applies (but after the tiled ones where the
/// problem has fewer than [`SPLIT_TARGET_WORKGROUPS`] of its query blocks and the tiled
/// kernel cuts the keys into ranges for parallelism, as for decoding steps, where its shorter
/// query blocks waste less); then the
/// subgroup and workgroup configurations the adapter allows; last the one of texture and
/// blocked not preferred on this kind of adapter, for problems whose keys the others cannot
/// take within the loop limit.
fn auto_candidates(gpu: &Gpu, dims: &AttentionDims, tensors: &[&Tensor]) -> Vec<AttentionChoice> {
    let masked = tensors.len() > 4;
    let texture =
        attention_texture::eligible(gpu, dims, tensors).then_some(AttentionChoice::Texture);
    let blocked = (!masked)
        .then(|| BlockedConfig::for_gpu(gpu, dims.head_dim).ok())
        .flatten()
        .map(AttentionChoice::Blocked);
    let tiled: Vec<AttentionChoice> = [
        AttentionConfig::subgroup(gpu, dims.head_dim),
        AttentionConfig::workgroup(gpu, dims.head_dim),
    ]
    .into_iter()
    .filter_map(|c| c.ok().map(AttentionChoice::Tiled))
    .collect();
    if gpu.is_cpu() {
        return texture.into_iter().chain(tiled).chain(blocked).collect();
    }
    // Few query blocks (decoding steps): the tiled kernel with its keys in ranges for
    // parallelism before the register-blocked kernel, whose query blocks are twice as tall
    // (64 rows at TY = 8 against 32), all but one computed for nothing in a decoding step.
    let few_blocks = |c: &BlockedConfig| {
        let bq = c.queries_per_workgroup() as usize;
        dims.batch * dims.heads * dims.nq.div_ceil(bq) < SPLIT_TARGET_WORKGROUPS
    };
    let ranged = tiled.first().is_some_and(|c| match c {
        AttentionChoice::Tiled(config) => split_within(gpu, None, dims, config).splits > 1,
        _ => false,
    });
    match blocked {
        Some(AttentionChoice::Blocked(c)) if ranged && few_blocks(&c) => {
            tiled.into_iter().chain(blocked).chain(texture).collect()
        }
        _ => blocked.into_iter().chain(tiled).chain(texture).collect(),
    }
}

/// What [`choose`] picks for `requested` without any tuned configuration (`tensors` as for
/// [`choose`]). For `Auto`: the texture variant on CPU adapters where it is eligible; on
/// other adapters the register-blocked kernel where it applies (D = 32 or 64, no key mask);
/// else the built-in tiles of the subgroup variant where the adapter allows it, else of the
/// workgroup one; but the first of these whose invocations stay within the adapter's loop
/// limit on these Nk keys ([`AttentionChoice::loop_iterations`]; the other of texture and
/// blocked comes last), and the preferred one where none does ([`plan`] then refuses it with
/// the numbers). A forced variant gets its built-in configuration.
pub fn builtin_choice(
    gpu: &Gpu,
    dims: &AttentionDims,
    tensors: &[&Tensor],
    requested: AttentionVariant,
) -> Result<AttentionChoice> {
    if requested == AttentionVariant::Auto {
        let candidates = auto_candidates(gpu, dims, tensors);
        let Some(&preferred) = candidates.first() else {
            // None at all: the error of the tiled configurations says why.
            return AttentionConfig::for_gpu(gpu, dims.head_dim, requested)
                .map(AttentionChoice::Tiled);
        };
        let Some(limit) = gpu.loop_limit()? else {
            return Ok(preferred);
        };
        return Ok(candidates
            .into_iter()
            .find(|c| c.passes(gpu, Some(limit), dims) <= limit)
            .unwrap_or(preferred));
    }
    Ok(match requested {
        AttentionVariant::Blocked => {
            AttentionChoice::Blocked(BlockedConfig::for_gpu(gpu, dims.head_dim)?)
        }
        AttentionVariant::Texture => AttentionChoice::Texture,
        other => AttentionChoice::Tiled(AttentionConfig::for_gpu(gpu, dims.head_dim, other)?),
    })
}

/// The variant [`plan`] runs (see [`choose`]).
pub fn chosen_variant(
    gpu: &Gpu,
    dims: &AttentionDims,
    tensors: &[&Tensor],
    options: &AttentionOptions,
) -> Result<AttentionVariant> {
    choose(gpu, dims, tensors, options).map(|c| c.variant())
}

/// Returns `attention(q, k, v)` as a new tensor of Q's shape (see [`plan`]).
pub fn run(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    heads: usize,
    options: &AttentionOptions,
) -> Result<Tensor> {
    let out = Tensor::empty(gpu, q.shape())?;
    gpu.execute(&plan(gpu, q, k, v, key_mask, &out, heads, options)?)?;
    Ok(out)
}

/// The same attention from the Core kernels, with the full score matrix: per batch and head
/// `S = Q_h K_hᵀ` ([`matmul`]), `P = softmax(scale · S)` with the causal mask ([`softmax`]),
/// `O_h = P V_h` ([`matmul`]). The baseline the fused kernel is measured against; memory
/// `O(B·H·Nq·Nk)`.
///
/// The matmul kernels take contiguous matrices, so the heads are first moved apart on the host:
/// Q, K and V are read back, copied to head-major `[B·H, N, D]` ([`to_head_major`]) and
/// uploaded, and the result is copied back the same way. [`unfused_plan`] is the GPU part alone
/// (what a benchmark should time). The key mask is not supported here (an error): neither
/// kernel has a per-batch column mask. `options.variant` is ignored.
pub fn unfused(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    heads: usize,
    options: &AttentionOptions,
) -> Result<Tensor> {
    let dims = AttentionDims::new(q.shape(), k.shape(), v.shape(), heads)?;
    if key_mask.is_some() {
        return Err(Error::invalid(
            "attention::unfused does not support a key mask (matmul and softmax have no \
             per-batch key mask); use attention::run",
        ));
    }
    let scale = resolve_scale(&dims, options)?;
    let bh = dims.batch * dims.heads;
    let (d, nq, nk) = (dims.head_dim, dims.nq, dims.nk);
    let upload = |t: &Tensor, rows: usize| -> Result<Tensor> {
        let data = to_head_major(&t.to_vec(gpu)?, dims.batch, rows, dims.heads, d);
        Tensor::from_slice(gpu, &data, &[bh, rows, d])
    };
    let qh = upload(q, nq)?;
    let kh = upload(k, nk)?;
    let vh = upload(v, nk)?;
    let scores = Tensor::empty(gpu, &[bh, nq, nk])?;
    let probs = Tensor::empty(gpu, &[bh, nq, nk])?;
    let oh = Tensor::empty(gpu, &[bh, nq, d])?;
    let dispatches = unfused_plan(
        gpu,
        &qh,
        &kh,
        &vh,
        &scores,
        &probs,
        &oh,
        scale,
        options.causal,
    )?;
    gpu.execute(&dispatches)?;
    let o = from_head_major(&oh.to_vec(gpu)?, dims.batch, nq, dims.heads, d);
    Tensor::from_slice(gpu, &o, q.shape())
}

/// The GPU part of [`unfused`] on head-major tensors: `q` `[B·H, Nq, D]`, `k` and `v`
/// `[B·H, Nk, D]`, `scores` and `probs` `[B·H, Nq, Nk]` (work space), `out` `[B·H, Nq, D]`.
/// Three stages (matmul, softmax, matmul) in one list of dispatches.
#[expect(
    clippy::too_many_arguments,
    reason = "the three stages' operands and work space, all explicit so a benchmark can reuse them"
)]
pub fn unfused_plan(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scores: &Tensor,
    probs: &Tensor,
    out: &Tensor,
    scale: f32,
    causal: bool,
) -> Result<Vec<Dispatch>> {
    let mut dispatches = matmul::plan(
        gpu,
        q,
        k,
        scores,
        &MatmulOptions {
            trans_b: true,
            ..Default::default()
        },
    )?;
    dispatches.extend(softmax::plan(
        gpu,
        scores,
        probs,
        &SoftmaxOptions { scale, causal },
    )?);
    dispatches.extend(matmul::plan(gpu, probs, v, out, &MatmulOptions::default())?);
    Ok(dispatches)
}

/// Copies `[B, N, H·D]` (row-major) to head-major `[B, H, N, D]`.
pub fn to_head_major(
    data: &[f32],
    batch: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
) -> Vec<f32> {
    permute_heads(data, batch, rows, heads, head_dim, true)
}

/// Copies head-major `[B, H, N, D]` back to `[B, N, H·D]`.
pub fn from_head_major(
    data: &[f32],
    batch: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
) -> Vec<f32> {
    permute_heads(data, batch, rows, heads, head_dim, false)
}

/// Moves each head's D values between position (b, n, h) of `[B, N, H·D]` and (b, h, n) of
/// `[B, H, N, D]`, in the direction asked.
fn permute_heads(
    data: &[f32],
    batch: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
    to_head_major: bool,
) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for b in 0..batch {
        for n in 0..rows {
            for h in 0..heads {
                let row_major = ((b * rows + n) * heads + h) * head_dim;
                let head_major = ((b * heads + h) * rows + n) * head_dim;
                let (src, dst) = if to_head_major {
                    (row_major, head_major)
                } else {
                    (head_major, row_major)
                };
                out[dst..dst + head_dim].copy_from_slice(&data[src..src + head_dim]);
            }
        }
    }
    out
}
