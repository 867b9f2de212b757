//! The structured random projection (`shaders/srht.wgsl`): blocks of H·D3·H·D2·H·D1 with
//! seeded sign diagonals D and the fast Walsh–Hadamard transform H, O(p log p) per block and
//! input (p = the input length rounded up to a power of two) instead of O(n_out · d), and its
//! transpose.
//!
//! Each H runs its passes of strides below a tile (up to 4,096 values) in one
//! workgroup-memory dispatch, then the longer strides up to four passes per dispatch; on
//! lavapipe that took the b1 d65536 n131072 projection from 51 dispatches and 53 ms to 10
//! dispatches and about 7 ms.
//!
//! Work rows (one per input, block and part, p values each) are processed in groups of whole
//! inputs that fit one binding, or, when one input's rows do not fit, in groups of its blocks.
//! The transpose's output pass loops over an input's blocks, so it is split into dispatches
//! over ranges of blocks that stay within the adapter's loop limit
//! ([`transpose_output_loops`]; lavapipe ends an invocation's loops after 65,535 iterations,
//! silently).

use crate::cpu::philox;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::largest_within;
use crate::ops::random_fill::PHILOX_LOOPS;
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};
use crate::tune::ShapeClass;

/// Uniform parameters of `shaders/srht.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SrhtParams {
    rows: u32,
    row0: u32,
    p_log2: u32,
    h: u32,
    in_len: u32,
    in_stride: u32,
    in_col0: u32,
    blocks: u32,
    parts: u32,
    flags: u32,
    diagonal: u32,
    key_lo: u32,
    key_hi: u32,
    in_first: u32,
    work_first: u32,
    out_first: u32,
    len: u32,
    e0: u32,
    out_len: u32,
    b0: u32,
    k_lo: u32,
    k_hi: u32,
    scale: f32,
    _pad: u32,
}

// Keep in sync with the FLAG_ constants of shaders/srht.wgsl.
const FLAG_FROM_INPUT: u32 = 1;
const FLAG_SIGNS: u32 = 2;
const FLAG_ACCUMULATE: u32 = 4;
const WG: u32 = 256;
const MODE_LOCAL: f64 = 3.0;
const MODE_PASSES: f64 = 4.0;

/// Loop iterations of an invocation of a butterfly pass (MODE 0), an upper bound: its two
/// loads may each draw a sign from a Philox block (`random_fill::PHILOX_LOOPS` each).
pub const STAGE_LOOPS: u64 = 2 * PHILOX_LOOPS;

/// The tile the local stages (MODE 3) get by default: 4,096 values, 16 KiB of workgroup memory
/// (17 KiB padded).
const DEFAULT_TILE: usize = 4096;
/// The largest tile a tuned configuration may name: 32 KiB of workgroup memory (34 KiB padded).
pub const MAX_TILE: usize = 8192;
/// The smallest tile: where p or the adapter's workgroup memory allow fewer values, every pass
/// runs on its own (MODE 0).
pub const MIN_TILE: usize = 64;
/// The most threads a tile may have.
const MAX_TILE_THREADS: u32 = 256;

/// The op name of the structured projection's tuned configurations ([`crate::tune`]).
pub const TUNE_OP: &str = "srht";

/// The tuning class of a structured projection's transforms: the octaves of their length p
/// and of the work rows one dispatch transforms (inputs, times blocks, times 2 for the
/// optical kind), which set how many tiles run at once. Forward and transpose, linear and
/// optical share it: their transforms are the same.
pub fn shape_class(p: usize, rows: usize) -> ShapeClass {
    ShapeClass::new("hadamard", &[p, rows])
}

/// Loop iterations of an invocation of the local stages (MODE 3) over tiles of `tile` values
/// with `wg` threads, counted as in [`transpose_output_loops`]: L = tile / (4 wg) loads, each
/// drawing a Philox block; ceil(log2(tile) / 4) rounds of up to four passes, at most
/// tile / (2 wg) groups per thread each; 4 L stores.
pub fn local_loops(tile: usize, wg: u32) -> u64 {
    let wg = wg as usize;
    let loads = (tile / (4 * wg)) as u64;
    let rounds = u64::from(tile.trailing_zeros().div_ceil(4));
    let groups = (tile / (2 * wg)) as u64;
    loads * (1 + PHILOX_LOOPS) + 1 + rounds * (groups + 1) + rounds + 1 + 4 * loads + 1
}

/// The local stages' configuration (MODE 3): the butterfly passes of strides below `tile`
/// run in workgroup memory, `threads` threads per tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalConfig {
    /// Values per tile, a power of two.
    pub tile: usize,
    /// Threads per tile, a power of two, at most tile / 4.
    pub threads: u32,
    /// One unused word of workgroup memory after every 16 values, which spreads the rounds'
    /// accesses over a GPU's 32 banks (`slot` in `shaders/srht.wgsl`).
    pub padded: bool,
}

impl LocalConfig {
    /// The configuration's name in the tuning cache: `tile4096-wg256`, `-pad` appended when
    /// padded.
    pub fn name(&self) -> String {
        let pad = if self.padded { "-pad" } else { "" };
        format!("tile{}-wg{}{pad}", self.tile, self.threads)
    }

    /// Parses [`LocalConfig::name`] (the syntax only; [`LocalConfig::check`] tells whether it
    /// runs here).
    pub fn parse(s: &str) -> Result<LocalConfig> {
        let bad = || {
            Error::invalid(format!(
                "srht config {s:?} is not tileT-wgW[-pad] with T and W powers of two"
            ))
        };
        let (unpadded, padded) = match s.strip_suffix("-pad") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let (tile, threads) = unpadded
            .strip_prefix("tile")
            .and_then(|r| r.split_once("-wg"))
            .ok_or_else(bad)?;
        let tile: usize = tile.parse().map_err(|_| bad())?;
        let threads: u32 = threads.parse().map_err(|_| bad())?;
        if !tile.is_power_of_two() || !threads.is_power_of_two() {
            return Err(bad());
        }
        Ok(LocalConfig {
            tile,
            threads,
            padded,
        })
    }

    /// The words of workgroup memory the tile takes.
    pub fn words(&self) -> usize {
        tile_words(self.tile, self.padded)
    }

    /// Whether the configuration runs transforms of length `p` on `gpu`: a tile of
    /// [`MIN_TILE`] to [`MAX_TILE`] values, at most p, whose words fit the adapter's workgroup
    /// memory; 1 to 256 threads within the adapter's workgroup limits, at most a quarter of
    /// the tile (each loads four values at least); and the loops within the adapter's loop
    /// limit.
    pub fn check(&self, gpu: &Gpu, p: usize) -> Result<()> {
        let name = self.name();
        let memory = memory_words(gpu);
        let most_tile = MAX_TILE.min(largest_tile(memory, self.padded)).min(p);
        if self.tile < MIN_TILE || self.tile > most_tile {
            let layout = if self.padded { "padded " } else { "" };
            return Err(Error::invalid(format!(
                "srht config {name}: the {layout}tile must hold {MIN_TILE} to {most_tile} values \
                 for transforms of {p} values on this adapter ({memory} f32 of workgroup memory)"
            )));
        }
        let most_threads = max_threads(gpu).min(self.tile as u32 / 4);
        if self.threads == 0 || self.threads > most_threads {
            return Err(Error::invalid(format!(
                "srht config {name}: a tile of {} values takes 1 to {most_threads} threads here",
                self.tile
            )));
        }
        if let Some(limit) = gpu.loop_limit()? {
            let loops = local_loops(self.tile, self.threads);
            if loops > limit {
                return Err(Error::invalid(format!(
                    "srht config {name}: {loops} loop iterations per invocation, past this \
                     adapter's limit of {limit}"
                )));
            }
        }
        Ok(())
    }

    /// Every configuration [`LocalConfig::check`] accepts for transforms of length `p` on
    /// `gpu`, with tiles of 256 values or more (fewer where p is shorter), thread counts of
    /// 32 to 256 (on CPU adapters from one subgroup), padded and not: what `speckle tune`
    /// measures.
    pub fn candidates(gpu: &Gpu, p: usize) -> Vec<LocalConfig> {
        let least_threads = if gpu.is_cpu() {
            super::cpu_workgroup_threads(gpu).min(32)
        } else {
            32
        };
        let tiles = (MIN_TILE.max(256.min(p)).ilog2()..=MAX_TILE.ilog2()).map(|e| 1usize << e);
        tiles
            .flat_map(|tile| {
                (least_threads.ilog2()..=MAX_TILE_THREADS.ilog2()).flat_map(move |e| {
                    [false, true].map(|padded| LocalConfig {
                        tile,
                        threads: 1 << e,
                        padded,
                    })
                })
            })
            .filter(|c| c.check(gpu, p).is_ok())
            .collect()
    }

    /// The built-in configuration for transforms of length `p` on `gpu`: a tile of as many
    /// values as fit the default (4,096), the adapter's workgroup memory and `p`; on GPUs 256
    /// threads and the padded layout; on CPU adapters (which have no banks) unpadded, with
    /// one subgroup (the adapter's, else 8; a CPU driver runs a workgroup on one core and
    /// switches between its subgroups at every barrier, so more threads add only switches),
    /// doubled while the loops would pass the loop limit. `None` where the tile would hold
    /// fewer than [`MIN_TILE`] values or no thread count fits the limit: every pass then runs
    /// on its own (MODE 0).
    pub fn builtin(gpu: &Gpu, p: usize) -> Result<Option<LocalConfig>> {
        let padded = !gpu.is_cpu();
        let tile = DEFAULT_TILE
            .min(p)
            .min(largest_tile(memory_words(gpu), padded));
        if tile < MIN_TILE {
            return Ok(None);
        }
        let tile = 1 << tile.ilog2();
        let most = (tile as u32 / 4)
            .min(MAX_TILE_THREADS)
            .min(max_threads(gpu));
        let mut threads = if gpu.is_cpu() {
            super::cpu_workgroup_threads(gpu).min(most)
        } else {
            most
        };
        let limit = gpu.loop_limit()?.unwrap_or(u64::MAX);
        while local_loops(tile, threads) > limit {
            if threads * 2 > most {
                return Ok(None);
            }
            threads *= 2;
        }
        Ok(Some(LocalConfig {
            tile,
            threads,
            padded,
        }))
    }
}

/// The words of workgroup memory a tile of `tile` values takes: one more after every 16
/// values when `padded`.
fn tile_words(tile: usize, padded: bool) -> usize {
    if padded {
        tile + tile / 16
    } else {
        tile
    }
}

/// The f32 words of workgroup memory the adapter gives a workgroup.
fn memory_words(gpu: &Gpu) -> usize {
    gpu.limits().max_compute_workgroup_storage_size as usize / 4
}

/// The largest power of two of values whose tile fits `memory` words (1 if none).
fn largest_tile(memory: usize, padded: bool) -> usize {
    let values = if padded { memory / 17 * 16 } else { memory };
    1 << values.max(1).ilog2()
}

/// The most threads per workgroup the adapter allows along x, capped at [`MAX_TILE_THREADS`].
fn max_threads(gpu: &Gpu) -> u32 {
    let l = gpu.limits();
    l.max_compute_invocations_per_workgroup
        .min(l.max_compute_workgroup_size_x)
        .min(MAX_TILE_THREADS)
}

/// The local stages' configuration for transforms of length `p` over `rows` work rows per
/// dispatch: the one tuned for their class ([`crate::tune`]) where it runs here, else
/// [`LocalConfig::builtin`].
fn local_config(gpu: &Gpu, p: usize, rows: usize) -> Result<Option<LocalConfig>> {
    let tuned = gpu
        .tuned_config(TUNE_OP, &shape_class(p, rows))
        .and_then(|s| LocalConfig::parse(&s).ok())
        .filter(|c| c.check(gpu, p).is_ok());
    match tuned {
        Some(c) => Ok(Some(c)),
        None => LocalConfig::builtin(gpu, p),
    }
}

/// Loop iterations of an invocation of the transpose's output pass (MODE 2) over `blocks`
/// blocks, an upper bound counted as lavapipe counts them (a loop of n passes counts n + 1,
/// plus one pass of each loop nested in it; see `ops::project_dense::forward_loops`): one
/// pass of the block loop per block, each drawing a sign from a Philox block (a nested loop).
/// The forward output pass (MODE 1) has no loop.
pub fn transpose_output_loops(blocks: usize) -> u64 {
    blocks as u64 * (1 + PHILOX_LOOPS) + 1 + 1
}

/// The most blocks one dispatch of the transpose's output pass may sum on `gpu`:
/// `usize::MAX` without a loop limit. An [`Error::LoopLimit`] where the limit leaves no room
/// for a butterfly pass or one block.
fn max_output_blocks(gpu: &Gpu) -> Result<usize> {
    let Some(limit) = gpu.loop_limit()? else {
        return Ok(usize::MAX);
    };
    gpu.check_loops(
        "srht",
        STAGE_LOOPS.max(transpose_output_loops(1)),
        "no butterfly pass fits within that limit",
    )?;
    let blocks = largest_within(limit, u64::from(u32::MAX), |b| {
        transpose_output_loops(b as usize)
    });
    // The check above leaves room for one block at least.
    Ok(blocks.map_or(1, |b| b as usize))
}

/// The transform length for inputs of length `d`: the next power of two, at least 2.
pub fn padded_len(d: usize) -> usize {
    d.next_power_of_two().max(2)
}

/// The sign-diagonal stream of block `k`, part `t` (0 real, 1 imaginary) and diagonal `s`.
/// Keep in sync with `sign` in `shaders/srht.wgsl`.
pub fn diagonal_stream(k: usize, t: usize, s: usize) -> u32 {
    philox::Stream::Diagonal as u32 + (6 * k + 3 * t + s) as u32
}

/// The scale that makes E‖y‖² = ‖x‖² (linear) or E[y_i] = ‖x‖² (optical, applied squared):
/// p^(−3/2) for the three unnormalized H's, times sqrt(p / n_out) or sqrt(p / 2).
fn scale(p: usize, n_out: usize, optical: bool) -> f32 {
    let s = if optical {
        1.0 / (p as f64 * 2f64.sqrt())
    } else {
        1.0 / (p as f64 * (n_out as f64).sqrt())
    };
    s as f32
}

/// Plans y = the first `n_out` rows of the stacked blocks applied to each row of `x`
/// (`[batch, d]` or `[d]`), into `y` (`[batch, n_out]`); `optical` makes y = |·|² of a complex
/// transform whose real and imaginary parts are two independent blocks.
pub fn plan(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    n_out: usize,
    seed: u64,
    optical: bool,
) -> Result<Vec<Dispatch>> {
    let choose = |passes: &Passes| local_config(gpu, passes.p, passes.work_rows());
    plan_forward(gpu, x, y, n_out, seed, optical, choose)
}

/// [`plan`] with the local stages in `local` (checked with [`LocalConfig::check`]): for tuning.
pub fn plan_with(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    n_out: usize,
    seed: u64,
    optical: bool,
    local: LocalConfig,
) -> Result<Vec<Dispatch>> {
    let choose = |passes: &Passes| local.check(gpu, passes.p).map(|()| Some(local));
    plan_forward(gpu, x, y, n_out, seed, optical, choose)
}

/// The forward plan with the local stages `choose` picks for the transforms.
fn plan_forward(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    n_out: usize,
    seed: u64,
    optical: bool,
    choose: impl FnOnce(&Passes) -> Result<Option<LocalConfig>>,
) -> Result<Vec<Dispatch>> {
    let (batch, d) = rows_of(x)?;
    expect_len(y, "output", batch, n_out)?;
    let passes = Passes::new(gpu, batch, d, n_out, seed, optical, false)?;
    let local = choose(&passes)?;
    passes.plan(gpu, x, y, local)
}

/// The local stages' configuration [`plan`] runs for `batch` inputs of `d` values to `n_out`
/// outputs on `gpu` (tuned, else built-in; `None`: every pass on its own).
pub fn chosen_local(
    gpu: &Gpu,
    batch: usize,
    d: usize,
    n_out: usize,
    optical: bool,
) -> Result<Option<LocalConfig>> {
    let passes = Passes::new(gpu, batch, d, n_out, 0, optical, false)?;
    local_config(gpu, passes.p, passes.work_rows())
}

/// The tuning class of [`plan`]'s transforms for `batch` inputs of `d` values to `n_out`
/// outputs on `gpu`.
pub fn class_of(
    gpu: &Gpu,
    batch: usize,
    d: usize,
    n_out: usize,
    optical: bool,
) -> Result<ShapeClass> {
    let passes = Passes::new(gpu, batch, d, n_out, 0, optical, false)?;
    Ok(shape_class(passes.p, passes.work_rows()))
}

/// Plans the transpose of the linear kind: `x` (`[batch, d]`) = Rᵀ `y` (`[batch, n_out]`),
/// R being the matrix that [`plan`] applies (not optical). When n_out is a multiple of p the
/// stacked blocks are orthogonal and Rᵀ R = I: the transpose is then the exact inverse.
pub fn plan_transpose(
    gpu: &Gpu,
    y: &Tensor,
    x: &Tensor,
    n_out: usize,
    seed: u64,
) -> Result<Vec<Dispatch>> {
    let (batch, d) = rows_of(x)?;
    expect_len(y, "transposed input", batch, n_out)?;
    let passes = Passes::new(gpu, batch, d, n_out, seed, false, true)?;
    let local = local_config(gpu, passes.p, passes.work_rows())?;
    passes.plan(gpu, y, x, local)
}

fn rows_of(x: &Tensor) -> Result<(usize, usize)> {
    match x.shape() {
        [d] => Ok((1, *d)),
        [b, d] => Ok((*b, *d)),
        s => Err(Error::shape(
            "project",
            format!("inputs must be [batch, d] or [d], got shape {s:?}"),
        )),
    }
}

fn expect_len(t: &Tensor, what: &str, batch: usize, n: usize) -> Result<()> {
    if t.len() == batch * n {
        return Ok(());
    }
    Err(Error::shape(
        "project",
        format!("{what} {:?} does not hold {batch} x {n} values", t.shape()),
    ))
}

/// One dispatch group: `inputs` whole inputs from `b0`, or the blocks `k_lo .. k_hi` of
/// input `b0` alone.
#[derive(Clone, Copy, Debug)]
struct Group {
    b0: usize,
    inputs: usize,
    k_lo: usize,
    k_hi: usize,
}

/// The geometry of a forward or transposed structured projection.
struct Passes {
    d: usize,
    n_out: usize,
    p: usize,
    blocks: usize,
    parts: usize,
    transpose: bool,
    base: SrhtParams,
    groups: Vec<Group>,
}

impl Passes {
    fn new(
        gpu: &Gpu,
        batch: usize,
        d: usize,
        n_out: usize,
        seed: u64,
        optical: bool,
        transpose: bool,
    ) -> Result<Passes> {
        if d == 0 || n_out == 0 {
            return Err(Error::invalid(format!(
                "a structured projection needs d >= 1 and n_out >= 1 (got d = {d}, n_out = {n_out})"
            )));
        }
        let p = padded_len(d);
        let blocks = n_out.div_ceil(p);
        let parts = if optical { 2 } else { 1 };
        let rows_per_input = blocks * parts;
        let capacity = window_capacity(gpu);
        if parts * p > capacity {
            return Err(Error::invalid(format!(
                "a structured projection of d = {d} works on rows of p = {p} values ({parts} at a \
                 time), more than one storage binding holds ({} bytes)",
                gpu.binding_limit()
            )));
        }
        let flat = batch.saturating_mul(d.max(n_out).max(rows_per_input));
        if flat > u32::MAX as usize || (blocks * 6 + 16) as u64 > u64::from(u32::MAX) {
            return Err(Error::invalid(format!(
                "a structured projection of {batch} inputs of {d} values to {n_out} outputs \
                 exceeds u32 indices"
            )));
        }
        let per_input = rows_per_input * p;
        let threads_per_dispatch = gpu.max_grid() * WG as usize;
        let mut groups = Vec::new();
        if per_input <= capacity && d.max(n_out) <= capacity {
            let inputs = (capacity / per_input)
                .min(capacity / d.max(n_out))
                .min(threads_per_dispatch / (per_input / 2).max(1))
                .clamp(1, batch.max(1));
            for b0 in (0..batch).step_by(inputs) {
                groups.push(Group {
                    b0,
                    inputs: inputs.min(batch - b0),
                    k_lo: 0,
                    k_hi: blocks,
                });
            }
        } else {
            // One input's blocks do not fit together: take as many blocks as fit.
            let per_group = (capacity / (parts * p))
                .min(threads_per_dispatch / (parts * p / 2))
                .max(1);
            for b0 in 0..batch {
                for k_lo in (0..blocks).step_by(per_group) {
                    groups.push(Group {
                        b0,
                        inputs: 1,
                        k_lo,
                        k_hi: (k_lo + per_group).min(blocks),
                    });
                }
            }
        }
        let key = philox::key(seed);
        let base = SrhtParams {
            p_log2: p.trailing_zeros(),
            blocks: blocks as u32,
            parts: parts as u32,
            key_lo: key[0],
            key_hi: key[1],
            scale: scale(p, n_out, optical),
            ..Default::default()
        };
        Ok(Passes {
            d,
            n_out,
            p,
            blocks,
            parts,
            transpose,
            base,
            groups,
        })
    }

    /// The most work rows one dispatch group transforms.
    fn work_rows(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.inputs * (g.k_hi - g.k_lo) * self.parts)
            .max()
            .unwrap_or(0)
    }

    /// The dispatches from `input` (x forward, y transpose) to `output`, the passes of strides
    /// below `local`'s tile in workgroup memory (every pass on its own without one).
    fn plan(
        &self,
        gpu: &Gpu,
        input: &Tensor,
        output: &Tensor,
        local: Option<LocalConfig>,
    ) -> Result<Vec<Dispatch>> {
        let (p, parts, blocks) = (self.p, self.parts, self.blocks);
        let (in_len, out_len) = if self.transpose {
            (self.n_out, self.d)
        } else {
            (self.d, self.n_out)
        };
        // Checked before anything is created: a butterfly pass's constant loops, and the
        // output pass's blocks per dispatch (transpose).
        let max_blocks = max_output_blocks(gpu)?;
        let work = Tensor::empty(gpu, &[self.work_rows().max(1), p])?;
        // The modes without the local tile give it its least size (it is declared for all);
        // LEVELS counts in MODE 4 only (the others take its default, 4).
        let global = |mode: f64, levels: u32| {
            gpu.pipeline(
                &shaders::SRHT,
                &[
                    ("MODE", mode),
                    ("WG", f64::from(WG)),
                    ("TILE", 4.0),
                    ("TILE_WORDS", 4.0),
                    ("LEVELS", f64::from(levels)),
                ],
            )
        };
        let stage = global(0.0, 4)?;
        // MODE 4 by the passes per dispatch (1 to 4), compiled as they are first needed.
        let passes = |levels: u32| global(MODE_PASSES, levels);
        let finish = global(if self.transpose { 2.0 } else { 1.0 }, 4)?;
        let local = match local {
            Some(c) => {
                let constants = [
                    ("MODE", MODE_LOCAL),
                    ("WG", f64::from(c.threads)),
                    ("TILE", c.tile as f64),
                    ("TILE_WORDS", c.words() as f64),
                    ("PADDED", if c.padded { 1.0 } else { 0.0 }),
                ];
                Some((c.tile, gpu.pipeline(&shaders::SRHT, &constants)?))
            }
            None => None,
        };
        let mut dispatches = Vec::new();
        for g in &self.groups {
            let rows = g.inputs * (g.k_hi - g.k_lo) * parts;
            let row0 = (g.b0 * blocks + g.k_lo) * parts;
            let last = g.b0 + g.inputs - 1;
            // Input and output windows: whole rows, except the block columns of a transposed
            // input (its columns k p ..) or a forward output split by blocks.
            let in_stride = if self.transpose { p } else { 0 };
            let in_col0 = g.k_lo * in_stride;
            let (in_start, in_end) = if self.transpose {
                (
                    g.b0 * in_len + in_col0,
                    last * in_len + (g.k_hi * p).min(in_len),
                )
            } else {
                (g.b0 * in_len, (last + 1) * in_len)
            };
            let in_w = input.window(gpu, in_start, in_end - in_start);
            let (e0, e_end) = if self.transpose {
                (g.b0 * out_len, (last + 1) * out_len)
            } else {
                (
                    g.b0 * out_len + g.k_lo * p,
                    last * out_len + (g.k_hi * p).min(out_len),
                )
            };
            let out_w = output.window(gpu, e0, e_end - e0);
            let work_w = work.window(gpu, 0, rows * p);
            let base = SrhtParams {
                row0: row0 as u32,
                in_len: in_len as u32,
                in_stride: in_stride as u32,
                in_col0: in_col0 as u32,
                in_first: in_w.first,
                work_first: work_w.first,
                out_first: out_w.first,
                out_len: out_len as u32,
                b0: g.b0 as u32,
                k_lo: g.k_lo as u32,
                k_hi: g.k_hi as u32,
                ..self.base
            };
            let mut push = |pipeline: &std::sync::Arc<wgpu::ComputePipeline>,
                            params: SrhtParams,
                            workgroups: usize| {
                let uniform = gpu.uniform("speckle.srht.params", &params);
                let bind_group = gpu.bind_group(
                    pipeline,
                    &[
                        uniform.as_entire_binding(),
                        in_w.resource(),
                        work_w.resource(),
                        out_w.resource(),
                    ],
                );
                dispatches.push(Dispatch::kernel(
                    pipeline.clone(),
                    bind_group,
                    gpu.grid(workgroups as u32),
                ));
            };
            let threads = |n: usize| n.div_ceil(WG as usize);
            // Forward: D1 then H, D2 then H, D3 then H. Transpose: H, D3 then H, D2 then H,
            // and D1 in the output pass. Each H: the passes h < tile in one local dispatch,
            // then four passes per dispatch and the rest in one more; without a tile, one
            // dispatch per pass. The first dispatch reads the input or applies the signs.
            for s in 0..3u32 {
                let diagonal = if self.transpose { 3 - s } else { s };
                let signed = !(self.transpose && s == 0);
                let mut flags = 0;
                if s == 0 {
                    flags |= FLAG_FROM_INPUT;
                }
                if signed {
                    flags |= FLAG_SIGNS;
                }
                let params = SrhtParams {
                    rows: rows as u32,
                    flags,
                    diagonal,
                    ..base
                };
                let mut h = 1;
                if let Some((tile, pipeline)) = &local {
                    push(pipeline, params, rows * p / tile);
                    h = *tile;
                    flags = 0;
                    // The passes left, four per dispatch and the rest in one more.
                    while h < p {
                        let levels = (p / h).trailing_zeros().min(4);
                        let params = SrhtParams {
                            h: h as u32,
                            flags,
                            ..params
                        };
                        push(&passes(levels)?, params, threads((rows * p) >> levels));
                        h <<= levels;
                    }
                }
                while h < p {
                    let params = SrhtParams {
                        h: h as u32,
                        flags,
                        ..params
                    };
                    push(&stage, params, threads(rows * p / 2));
                    h *= 2;
                    flags = 0;
                }
            }
            if !self.transpose {
                let params = SrhtParams {
                    len: (e_end - e0) as u32,
                    e0: e0 as u32,
                    ..base
                };
                push(&finish, params, threads(e_end - e0));
                continue;
            }
            // The transpose sums the group's blocks in ranges of at most max_blocks, each
            // dispatch adding to what the earlier ones (and earlier groups) wrote.
            let mut k_lo = g.k_lo;
            while k_lo < g.k_hi {
                let k_hi = g.k_hi.min(k_lo.saturating_add(max_blocks));
                let params = SrhtParams {
                    len: (e_end - e0) as u32,
                    e0: e0 as u32,
                    flags: if k_lo > 0 { FLAG_ACCUMULATE } else { 0 },
                    k_lo: k_lo as u32,
                    k_hi: k_hi as u32,
                    ..base
                };
                push(&finish, params, threads(e_end - e0));
                k_lo = k_hi;
            }
        }
        Ok(dispatches)
    }
}
