//! Random-feature attention (Performer, FAVOR+; Choromanski et al., "Rethinking Attention with
//! Performers", 2021): softmax attention approximated in `O(N·m·D)` per head instead of
//! `O(N²·D)`, with m positive orthogonal random features. Same operands as the exact kernel
//! ([`attention::run`](crate::ops::attention::run)): Q `[B, Nq, H·D]`, K and V `[B, Nk, H·D]`
//! (2-D inputs are one batch), head `h` in columns `h·D .. (h+1)·D`, output of Q's shape.
//!
//! # The estimator
//!
//! With the scale s (default `1/sqrt(D)`), q̃ = sqrt(|s|)·q and k̃ = ±sqrt(|s|)·k (the sign of
//! s), so that exp(s·q·k) = exp(q̃·k̃); for the default scale the inputs are scaled by
//! D^(−1/4). For w ~ N(0, I_D), E[exp(w·q̃ − ‖q̃‖²/2)·exp(w·k̃ − ‖k̃‖²/2)] = exp(q̃·k̃), so
//! the positive features
//!
//! > φ(x)_i = exp(w_i·x̃ − ‖x̃‖²/2) / sqrt(m), i < m,
//!
//! give an unbiased estimate φ(q)·φ(k) of the softmax kernel exp(s·q·k), with every term
//! positive (so the normalizer never cancels, unlike trigonometric features). The rows w_i of
//! W `[m, D]` are those of the `positive` [`Projection`](crate::projection::Projection) of
//! `seed`: with [`PerformerOptions::orthogonal`] (the default), orthogonal in blocks of D with
//! chi(D)-distributed norms ([`crate::projection::orthogonal`]), each row still N(0, I_D) so
//! the estimate stays unbiased, with lower variance; a new seed draws new features
//! (redrawing). The same W serves every head ([`crate::cpu::performer::projection_matrix`]).
//!
//! Attention is then `out_i = φ(q_i)ᵀ S / (φ(q_i)·z)` with `S = Σ_j φ(k_j) v_jᵀ` `[m, D]` and
//! `z = Σ_j φ(k_j)` `[m]`: linear in N.
//!
//! # Stabilizers: why they cancel
//!
//! exp(w·x̃ − ‖x̃‖²/2) overflows f32 for inputs of a few times unit norm. Both stabilizers
//! multiply features by a constant and cancel in the ratio:
//!
//! * Each **query** row is divided by its own largest feature, exp(max_i w_i·q̃ − ‖q̃‖²/2)
//!   (so ‖q̃‖²/2 drops out too): a factor c_i on φ(q_i) multiplies both the numerator
//!   φ(q_i)ᵀS and the normalizer φ(q_i)·z of row i, which only ever meet each other.
//! * The **keys** of one (batch, head) are all divided by one number, the largest
//!   w_f·k̃_j − ‖k̃_j‖²/2 over all keys j and features f: a common factor c on every φ(k_j)
//!   multiplies S and z alike, so it cancels for every query (and for every causal prefix).
//! * A maximum **per key** would not cancel: a factor c_j on φ(k_j) reweights key j inside
//!   Σ_j c_j (φ(q_i)·φ(k_j)) v_j / Σ_j c_j φ(q_i)·φ(k_j), i.e. multiplies its attention
//!   weight by c_j / (weighted mean of c), which changes the output.
//!
//! After them every feature is at most 1/sqrt(m) and every query row has one feature equal to
//! 1/sqrt(m), so nothing overflows, at any input norm. What f32 can still lose is range at
//! the bottom: key features more than e^87 below the (batch, head) maximum underflow to 0.
//! A query whose normalizer φ(q_i)·z underflows entirely outputs zeros (never NaN), as the
//! exact kernel does for a query that sees no key. Measured with D = 64, m = 256, N = 200 and
//! inputs uniform in [−a, a): no such row at a = 10; at a = 15, 2 % of the causal rows (early
//! queries see few keys); at a = 20, 0.4 % of the rows (causal: 15 %), far outside the range
//! where the estimator means anything (its variance grows like exp(‖q̃ + k̃‖²)).
//!
//! # Algorithms
//!
//! Per batch of the problem (several batches per pass while everything fits one storage
//! binding), one list of dispatches (`shaders/performer.wgsl` stages and batched
//! [`matmul`]s over the G = B·H (batch, head) pairs):
//!
//! 1. Projections `P = X̃ Wᵀ` for Q and K: one batched matmul each (W `[m, D]` shared by the
//!    batch, α = sqrt(|s|) applied as the matmul's alpha). The projection acts row by row, so
//!    X `[B, N, H·D]` is projected in place, viewed as `[B·H, N, D]`, and P comes out
//!    token-major (row (b·N + n)·H + h); a pass over part of the batches first copies its rows
//!    head-major.
//! 2. Features `φ = exp(P − stabilizer)/sqrt(m)`, written head-major `[G, N, m]` (padded for
//!    the causal scan), one invocation per row: for queries the row maximum is found and
//!    subtracted in the same pass; for keys a pass of row statistics (max over features minus
//!    ‖k̃‖²/2) and a per-(batch, head) maximum come first.
//! 3. V copied head-major with an appended column of ones, `[G, N, D+1]`: the product that
//!    gives S then also gives z, and the one that gives the numerator also gives the
//!    normalizer.
//! 4. Non-causal: `[S | z] = φ(K)ᵀ [V | 1]` (`[G, m, D+1]`), `[num | den] = φ(Q) [S | z]`
//!    (`[G, Nq, D+1]`): two batched matmuls. Causal: a **chunked scan**. Positions are cut
//!    into chunks of C ≈ sqrt(m·(D+1)) ([`chunk_size`]; zero-padded to a multiple of C,
//!    padding features are 0 so they add nothing), the G·(N/C) chunks are the batch of every
//!    matmul:
//!    * `[S_c | z_c] = φ(K_c)ᵀ [V_c | 1]` per chunk, then an exclusive scan over the chunks
//!      (one invocation per entry of `[m, D+1]`, a loop over N/C chunks) gives the state
//!      before each chunk;
//!    * inter-chunk: `[num | den]_c = φ(Q_c) [S | z]_{<c}`;
//!    * intra-chunk: `A_c = φ(Q_c) φ(K_c)ᵀ` `[C, C]`, lower triangle kept (key j <= query i),
//!      `[num | den]_c += A_c [V_c | 1]` (matmul with β = 1).
//!
//!    Every step is a large batched matmul or a pass over rows (fast on lavapipe, whose
//!    texture matmul is ten times its storage-buffer loops), the work is
//!    `O(N·m·D + N·C·(m + D))` and the scan's loop is only N/C long. Causal masking is
//!    top-left like the exact kernel: query i sees keys j <= i, also when Nq != Nk.
//! 5. `out = num / den`, written back to `[B, Nq, H·D]`.
//!
//! On adapters that end an invocation's loops after a number of passes
//! ([`Gpu::loop_limit`]: 65,535 on lavapipe, silently), the one pass that loops over a whole
//! sequence, the per-(batch, head) maximum of the keys' statistics, runs in blocks of rows
//! short enough and then over the blocks' maxima; the matmuls split their shared dimension.
//! What no split helps, widths (m features, D + 1 columns) and the causal scan's N / C chunks
//! past the limit, is an [`Error::LoopLimit`] before anything runs.
//!
//! Measured on lavapipe (2 cores, B = 1, H = 4, D = 64, medians; `tests/performer.rs`
//! `timings`): at N = 4096 the exact fused kernel took 1045 ms, Performer 156 ms with m = 64
//! and 458 ms with m = 256 (non-causal); the crossover is near N = 512 (m = 64) and N = 1536
//! (m = 256). Causal: near N = 2500 (m = 64) and N = 4096 (m = 256), the exact kernel skipping
//! the masked half.
//!
//! The f64 reference is [`crate::cpu::performer`].

use crate::cpu::performer as reference;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::attention::AttentionDims;
use crate::ops::loop_limit::looped;
use crate::ops::matmul::{self, MatmulOptions};
use crate::projection::DEFAULT_SEED;
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// The number of random features m of [`PerformerOptions::default`].
pub const DEFAULT_FEATURES: usize = 256;

/// Positions per chunk of the causal scan, C, for sequences of `n` positions, m = `features`
/// and head dimension `head_dim`: the multiple of 16 nearest sqrt(m·(D+1)), within 16..=256,
/// at most n. Why: per (batch, head) the scan materializes a state `[m, D+1]` for each of the
/// N/C chunks (N·m·(D+1)/C values, written, scanned and read back) while the intra-chunk
/// scores hold N·C values; their sum is smallest at C² = m·(D+1).
pub fn chunk_size(n: usize, features: usize, head_dim: usize) -> usize {
    let ideal = ((features * (head_dim + 1)) as f64).sqrt() / 16.0;
    let c = (ideal.round() as usize * 16).clamp(16, 256);
    c.min(n).max(1)
}

/// Options of [`run`], [`plan`], [`feature_map`] and [`kernel_estimate`]. `Default`: 256
/// orthogonal features from [`DEFAULT_SEED`], not causal, scale `1/sqrt(D)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerformerOptions {
    /// The number of random features m (at least 1).
    pub features: usize,
    /// The seed of W: the same seed gives the same features everywhere, a new one redraws.
    pub seed: u64,
    /// Causal mask aligned top-left: query `i` sees keys `j <= i`.
    pub causal: bool,
    /// Orthogonal random features (rows of W orthogonal in blocks of D, chi(D) norms); false
    /// draws independent N(0, 1) entries.
    pub orthogonal: bool,
    /// The softmax scale s (scores `s·q·k`); `None` is `1/sqrt(D)`. Must be finite.
    pub scale: Option<f32>,
}

impl Default for PerformerOptions {
    fn default() -> Self {
        PerformerOptions {
            features: DEFAULT_FEATURES,
            seed: DEFAULT_SEED,
            causal: false,
            orthogonal: true,
            scale: None,
        }
    }
}

impl PerformerOptions {
    /// The scale for head dimension `head_dim`, checked finite, with the number of features.
    pub fn resolved_scale(&self, head_dim: usize) -> Result<f32> {
        if self.features == 0 {
            return Err(Error::invalid(
                "performer needs at least one random feature, got features = 0",
            ));
        }
        let scale = self
            .scale
            .unwrap_or_else(|| (1.0 / (head_dim as f64).sqrt()) as f32);
        if !scale.is_finite() {
            return Err(Error::invalid(format!(
                "performer scale must be finite, got {scale}"
            )));
        }
        Ok(scale)
    }
}

/// Checks Q `[B, Nq, H·D]`, K and V `[B, Nk, H·D]` (all 2-D, as one batch, or all 3-D) and
/// `heads`, and derives the problem (as [`AttentionDims::new`], without its limit on D).
pub fn dims(q: &[usize], k: &[usize], v: &[usize], heads: usize) -> Result<AttentionDims> {
    AttentionDims::checked("performer", q, k, v, heads, None)
}

/// Floating-point operations of the matmuls of one [`plan`] (the element-wise passes not
/// counted): projections `2·G·(Nq + Nk)·D·m`, `[S | z]` and the numerator `2·G·(Nq + Nk)·m·(D+1)`
/// (padded lengths when causal), and for the causal scan the intra-chunk products
/// `2·G·N·C·(m + D + 1)`.
pub fn flops(dims: &AttentionDims, features: usize, causal: bool) -> f64 {
    let lay = Layout::new(dims, features, causal);
    let g = (dims.batch * dims.heads) as f64;
    let (m, d) = (features as f64, dims.head_dim as f64);
    let (nq, nk) = (lay.nq_rows as f64, lay.nk_rows as f64);
    let mut f = 2.0 * g * (nq + nk) * d * m + 2.0 * g * (nq + nk) * m * (d + 1.0);
    if causal {
        f += 2.0 * g * nq * lay.chunk as f64 * (m + d + 1.0);
    }
    f
}

/// W `[m, D]` of `options` (seed, features, orthogonal) for head dimension `head_dim`, as f32
/// on the GPU: [`crate::cpu::performer::projection_matrix`], generated on the CPU.
pub fn projection_matrix(gpu: &Gpu, head_dim: usize, options: &PerformerOptions) -> Result<Tensor> {
    options.resolved_scale(head_dim)?;
    let w =
        reference::projection_matrix(options.features, head_dim, options.seed, options.orthogonal)?;
    let w: Vec<f32> = w.into_iter().map(|x| x as f32).collect();
    Tensor::from_slice(gpu, &w, &[options.features, head_dim])
}

/// Uniform parameters of `shaders/performer.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PerformerParams {
    count: u32,
    heads: u32,
    n_valid: u32,
    n_rows: u32,
    head_dim: u32,
    width: u32,
    row: u32,
    src_first: u32,
    aux_first: u32,
    aux2_first: u32,
    dst_first: u32,
    flags: u32,
    chunk: u32,
    chunk_elems: u32,
    c0: f32,
    c1: f32,
}

// Keep in sync with the STAGE codes of shaders/performer.wgsl.
const STAGE_HEAD_MAJOR: u32 = 0;
const STAGE_ROW_STATS: u32 = 1;
const STAGE_GROUP_MAX: u32 = 2;
const STAGE_FEATURES: u32 = 3;
const STAGE_CAUSAL_MASK: u32 = 4;
const STAGE_CHUNK_SCAN: u32 = 5;
const STAGE_NORMALIZE: u32 = 6;

// Keep in sync with the FLAG_ constants of shaders/performer.wgsl.
const FLAG_NORM: u32 = 1;
const FLAG_GROUP: u32 = 2;
const FLAG_ROWMAX: u32 = 4;
const FLAG_TOKEN_MAJOR: u32 = 8;

/// Threads per workgroup of the stages (one row each).
const WG: u32 = 64;

/// A range of a tensor bound by one stage: (tensor, first element, length).
type Span<'a> = (&'a Tensor, usize, usize);

/// The storage bindings of one stage: `src`, `aux`, `aux2` (read; `None` binds a placeholder)
/// and `dst` (read-write).
struct Bindings<'a> {
    src: Option<Span<'a>>,
    aux: Option<Span<'a>>,
    aux2: Option<Span<'a>>,
    dst: Span<'a>,
}

/// The name of `stage` in loop-limit errors.
fn stage_name(stage: u32) -> &'static str {
    match stage {
        STAGE_HEAD_MAJOR => "performer (head-major copy)",
        STAGE_ROW_STATS => "performer (row statistics)",
        STAGE_GROUP_MAX => "performer (group maximum)",
        STAGE_FEATURES => "performer (features)",
        STAGE_CAUSAL_MASK => "performer (causal mask)",
        STAGE_CHUNK_SCAN => "performer (chunk scan)",
        _ => "performer (normalize)",
    }
}

/// An upper bound of the loop passes of the busiest invocation of `stage` with `p`, counted as
/// [`looped`] says (`Loops:` in `shaders/performer.wgsl`; loops behind run-time branches count
/// as taken): the head-major copy and the row statistics loop over head_dim, then width
/// columns; the group maximum over its block's `chunk` rows; the features over width columns
/// three times (padding rows' zeros, the row maximum, the features); the causal mask over at
/// most chunk − 1 columns; the scan over its `chunk` chunks; the normalization over head_dim.
fn stage_loop_iterations(stage: u32, p: &PerformerParams) -> u64 {
    let (head_dim, width, chunk) = (
        u64::from(p.head_dim),
        u64::from(p.width),
        u64::from(p.chunk),
    );
    match stage {
        STAGE_HEAD_MAJOR | STAGE_ROW_STATS => looped(head_dim, 0, 0) + looped(width, 0, 0),
        STAGE_GROUP_MAX | STAGE_CHUNK_SCAN => looped(chunk, 0, 0),
        STAGE_FEATURES => 3 * looped(width, 0, 0),
        STAGE_CAUSAL_MASK => looped(chunk.saturating_sub(1), 0, 0),
        _ => looped(head_dim, 0, 0),
    }
}

/// [`Error::LoopLimit`] where a stage of this problem would loop past the adapter's limit in
/// one invocation, before anything is planned; the remedy names what to make smaller. The
/// group maximum is split into blocks that fit ([`group_max_rows`]), the matmuls split their
/// shared dimension; what is left are the widths (m features, D + 1 columns of V) and, with
/// the causal mask, the scan's N / C chunks.
fn check_stage_loops(gpu: &Gpu, lay: &Layout) -> Result<()> {
    let d = &lay.dims;
    let (hd, m) = (d.head_dim as u32, lay.m as u32);
    let at = |head_dim: u32, width: u32, chunk: u32| PerformerParams {
        head_dim,
        width,
        chunk,
        ..Default::default()
    };
    let dims_note = format!("D = {}, m = {} features", d.head_dim, lay.m);
    let mut checks = vec![
        (
            STAGE_HEAD_MAJOR,
            at(hd, hd + 1, 0),
            "a smaller head dimension D",
        ),
        (
            STAGE_ROW_STATS,
            at(hd, m, 0),
            "fewer features m or a smaller D",
        ),
        (STAGE_FEATURES, at(0, m, 0), "fewer features m"),
        // Blocks of 2 rows at least, so that each level of maxima shortens the rows.
        (STAGE_GROUP_MAX, at(0, 0, 2), "no problem fits"),
        (STAGE_NORMALIZE, at(hd, 0, 0), "a smaller head dimension D"),
    ];
    if lay.causal {
        checks.push((
            STAGE_CAUSAL_MASK,
            at(0, 0, lay.chunk as u32),
            "no causal problem fits",
        ));
        checks.push((
            STAGE_CHUNK_SCAN,
            at(0, 0, lay.chunks as u32),
            "shorter sequences (the causal scan loops over N / C chunks) or no causal mask",
        ));
    }
    for (stage, params, what) in checks {
        gpu.check_loops(
            stage_name(stage),
            stage_loop_iterations(stage, &params),
            &format!("{what} ({dims_note}, N = {})", d.nq.max(d.nk)),
        )?;
    }
    Ok(())
}

/// Rows of a group one invocation of the group maximum reduces: all `n` without a loop limit,
/// else as many as keep its loop within the limit (one pass per row and one to leave), at
/// least 2 where n allows, so that every level of maxima shortens the rows
/// ([`check_stage_loops`] refuses a limit below 3).
fn group_max_rows(gpu: &Gpu, n: usize) -> Result<usize> {
    let n = n.max(1);
    Ok(match gpu.loop_limit()? {
        Some(limit) => usize::try_from(limit.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .max(2)
            .min(n),
        None => n,
    })
}

/// One dispatch of `stage` over `params.count` invocations. Checks the stage's loops against
/// the adapter's limit once more ([`stage_loop_iterations`]; [`check_stage_loops`] already
/// did, before anything was planned).
fn stage(gpu: &Gpu, stage: u32, mut params: PerformerParams, b: Bindings<'_>) -> Result<Dispatch> {
    gpu.check_loops(
        stage_name(stage),
        stage_loop_iterations(stage, &params),
        "a smaller problem (the planner's own check should have said which; please report)",
    )?;
    let l = gpu.limits();
    let wg = WG
        .min(l.max_compute_invocations_per_workgroup)
        .min(l.max_compute_workgroup_size_x);
    let pipeline = gpu.pipeline(
        &shaders::PERFORMER,
        &[("STAGE", f64::from(stage)), ("WG", f64::from(wg))],
    )?;
    let sw = b.src.map(|(t, start, n)| t.window(gpu, start, n));
    let aw = b.aux.map(|(t, start, n)| t.window(gpu, start, n));
    let a2w = b.aux2.map(|(t, start, n)| t.window(gpu, start, n));
    let dw = b.dst.0.window(gpu, b.dst.1, b.dst.2);
    params.src_first = sw.as_ref().map_or(0, |w| w.first);
    params.aux_first = aw.as_ref().map_or(0, |w| w.first);
    params.aux2_first = a2w.as_ref().map_or(0, |w| w.first);
    params.dst_first = dw.first;
    let uniform = gpu.uniform("speckle.performer.params", &params);
    let bind_group = gpu.bind_group(
        &pipeline,
        &[
            uniform.as_entire_binding(),
            Window::or_placeholder(sw.as_ref(), gpu),
            Window::or_placeholder(aw.as_ref(), gpu),
            Window::or_placeholder(a2w.as_ref(), gpu),
            dw.resource(),
        ],
    );
    Ok(Dispatch::kernel(
        pipeline,
        bind_group,
        gpu.grid(params.count.div_ceil(wg)),
    ))
}

/// Sequence lengths after padding and the causal chunking.
#[derive(Clone, Copy, Debug)]
struct Layout {
    dims: AttentionDims,
    m: usize,
    causal: bool,
    /// Positions per chunk (causal), else 0.
    chunk: usize,
    /// Chunks per sequence (causal), else 1.
    chunks: usize,
    /// Rows per (batch, head) of the head-major Q tensors (Nq, or the padded length when
    /// causal).
    nq_rows: usize,
    /// Rows per (batch, head) of the head-major K and V tensors.
    nk_rows: usize,
}

impl Layout {
    fn new(dims: &AttentionDims, m: usize, causal: bool) -> Layout {
        if causal {
            let n = dims.nq.max(dims.nk);
            let chunk = chunk_size(n, m, dims.head_dim);
            let chunks = n.div_ceil(chunk);
            Layout {
                dims: *dims,
                m,
                causal,
                chunk,
                chunks,
                nq_rows: chunks * chunk,
                nk_rows: chunks * chunk,
            }
        } else {
            Layout {
                dims: *dims,
                m,
                causal,
                chunk: 0,
                chunks: 1,
                nq_rows: dims.nq,
                nk_rows: dims.nk,
            }
        }
    }

    /// The largest number of elements one batch puts in any single tensor or window.
    fn per_batch(&self) -> usize {
        let d = &self.dims;
        let (h, hd, m) = (d.heads, d.head_dim, self.m);
        let rows = self.nq_rows.max(self.nk_rows);
        [
            rows * h * (hd + 1),
            h * rows * m,
            2 * h * rows,
            h * self.chunks * m * (hd + 1),
            h * self.chunks * self.chunk * self.chunk,
        ]
        .into_iter()
        .max()
        .unwrap_or(1)
    }
}

/// The stabilizer the feature finish subtracts (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stabilizer {
    /// None: exactly φ(x) = exp(w·x̃ − ‖x̃‖²/2)/sqrt(m) (the estimator; may overflow).
    Exact,
    /// Per row: exp(w·x̃ − max_f w_f·x̃)/sqrt(m) (queries).
    RowMax,
    /// One maximum per (batch, head) over all rows and features (keys).
    GroupMax,
}

/// The tensors of one feature computation for `groups` (batch, head) pairs.
struct FeatureJob<'a> {
    /// The input `[B, N, H·D]` and the first element of this pass's batches.
    x: &'a Tensor,
    x_start: usize,
    groups: usize,
    heads: usize,
    /// Rows with data (N) and rows of the head-major features (padded).
    n_valid: usize,
    n_rows: usize,
    head_dim: usize,
    w: &'a Tensor,
    /// Multiplies x before the projection (sqrt(|s|), with the sign of s for keys).
    alpha: f32,
    stabilizer: Stabilizer,
    /// `Some([G, n_rows, D])`: X is first copied head-major there (a pass over part of the
    /// batches, whose rows a matmul cannot address in place); `None`: X itself, viewed as
    /// `[G, N, D]`, is projected (the projection acts row by row), giving P token-major.
    xh: Option<&'a Tensor>,
    /// `[G, N, m]` (token-major) or `[G, n_rows, m]`: the projections.
    p: &'a Tensor,
    /// `[G, n_rows, m]`: the features.
    phi: &'a Tensor,
    /// `[2, G·n_rows]`: row statistics and ‖x̃‖²/2.
    stat: &'a Tensor,
    /// `[G]`: the group maxima (used by [`Stabilizer::GroupMax`]).
    gmax: &'a Tensor,
}

/// Dispatches computing the (stabilized) features of `job.x` into `job.phi`.
fn plan_features(gpu: &Gpu, job: &FeatureJob<'_>) -> Result<Vec<Dispatch>> {
    let (g, d) = (job.groups, job.head_dim);
    let m = job.phi.shape()[job.phi.shape().len() - 1];
    let rows = g * job.n_rows;
    let row = job.heads * d;
    let x_len = (g / job.heads) * job.n_valid * row;
    let mut base = PerformerParams {
        heads: job.heads as u32,
        n_valid: job.n_valid as u32,
        n_rows: job.n_rows as u32,
        head_dim: d as u32,
        row: row as u32,
        ..Default::default()
    };
    let mut out = Vec::new();
    // The rows the projection reads: X in place (token-major) or its head-major copy.
    let x_rows: Span<'_> = match job.xh {
        Some(xh) => {
            out.push(stage(
                gpu,
                STAGE_HEAD_MAJOR,
                PerformerParams {
                    count: rows as u32,
                    width: d as u32,
                    ..base
                },
                Bindings {
                    src: Some((job.x, job.x_start, x_len)),
                    aux: None,
                    aux2: None,
                    dst: (xh, 0, xh.len()),
                },
            )?);
            out.extend(matmul::plan(
                gpu,
                xh,
                job.w,
                job.p,
                &MatmulOptions {
                    trans_b: true,
                    alpha: job.alpha,
                    ..Default::default()
                },
            )?);
            (xh, 0, xh.len())
        }
        None => {
            if job.x_start != 0 || job.x.len() != x_len {
                return Err(Error::invalid(
                    "performer: projecting in place needs the whole input (a bug if seen)",
                ));
            }
            base.flags = FLAG_TOKEN_MAJOR;
            let xv = job.x.view(&[g, job.n_valid, d])?;
            out.extend(matmul::plan(
                gpu,
                &xv,
                job.w,
                job.p,
                &MatmulOptions {
                    trans_b: true,
                    alpha: job.alpha,
                    ..Default::default()
                },
            )?);
            (job.x, 0, x_len)
        }
    };
    let projections: Span<'_> = (job.p, 0, job.p.len());
    let features = |flags: u32, aux: Option<Span<'_>>, aux2: Option<Span<'_>>| {
        stage(
            gpu,
            STAGE_FEATURES,
            PerformerParams {
                count: rows as u32,
                width: m as u32,
                flags: base.flags | flags,
                c1: (1.0 / (m as f64).sqrt()) as f32,
                ..base
            },
            Bindings {
                src: Some(projections),
                aux,
                aux2,
                dst: (job.phi, 0, job.phi.len()),
            },
        )
    };
    if job.stabilizer == Stabilizer::RowMax {
        // Queries: the row maximum, found and subtracted in the same pass.
        out.push(features(FLAG_ROWMAX, None, None)?);
        return Ok(out);
    }
    out.push(stage(
        gpu,
        STAGE_ROW_STATS,
        PerformerParams {
            count: rows as u32,
            width: m as u32,
            flags: base.flags | FLAG_NORM,
            c0: job.alpha * job.alpha / 2.0,
            ..base
        },
        Bindings {
            src: Some(projections),
            aux: Some(x_rows),
            aux2: None,
            dst: (job.stat, 0, 2 * rows),
        },
    )?);
    let norms: Span<'_> = (job.stat, rows, rows);
    if job.stabilizer == Stabilizer::Exact {
        out.push(features(0, Some(norms), None)?);
        return Ok(out);
    }
    // The group maxima in blocks of rows short enough for the adapter's loop limit (one block
    // per group without one); a level's partial maxima are the rows of the next, until one
    // block per group is left. Two scratch tensors take turns between levels.
    let per = group_max_rows(gpu, job.n_valid)?;
    let first_blocks = job.n_valid.div_ceil(per);
    let scratch = if first_blocks > 1 {
        vec![
            Tensor::empty(gpu, &[g * first_blocks])?,
            Tensor::empty(gpu, &[g * first_blocks])?,
        ]
    } else {
        Vec::new()
    };
    let (mut src, mut n_rows, mut n_valid): (Span<'_>, usize, usize) =
        ((job.stat, 0, rows), job.n_rows, job.n_valid);
    for level in 0.. {
        let blocks = n_valid.div_ceil(per);
        let dst: Span<'_> = if blocks == 1 {
            (job.gmax, 0, g)
        } else {
            (&scratch[level % 2], 0, g * blocks)
        };
        out.push(stage(
            gpu,
            STAGE_GROUP_MAX,
            PerformerParams {
                count: (g * blocks) as u32,
                n_rows: n_rows as u32,
                n_valid: n_valid as u32,
                chunk: per as u32,
                chunk_elems: blocks as u32,
                ..base
            },
            Bindings {
                src: Some(src),
                aux: None,
                aux2: None,
                dst,
            },
        )?);
        if blocks == 1 {
            break;
        }
        (src, n_rows, n_valid) = (dst, blocks, blocks);
    }
    out.push(features(FLAG_GROUP, Some(norms), Some((job.gmax, 0, g)))?);
    Ok(out)
}

/// The work space of one pass over `batches` batches.
struct Workspace {
    batches: usize,
    /// Head-major copies of Q and K (passes over part of the batches only).
    qh: Option<Tensor>,
    kh: Option<Tensor>,
    vh: Tensor,
    pq: Tensor,
    pk: Tensor,
    fq: Tensor,
    fk: Tensor,
    stat_q: Tensor,
    stat_k: Tensor,
    gmax: Tensor,
    kv: Tensor,
    oh: Tensor,
    scores: Option<Tensor>,
}

impl Workspace {
    fn new(gpu: &Gpu, lay: &Layout, batches: usize) -> Result<Workspace> {
        let g = batches * lay.dims.heads;
        let (d, m) = (lay.dims.head_dim, lay.m);
        let (nq, nk) = (lay.nq_rows, lay.nk_rows);
        let in_place = batches == lay.dims.batch;
        let copy = |rows: usize| -> Result<Option<Tensor>> {
            if in_place {
                Ok(None)
            } else {
                Ok(Some(Tensor::empty(gpu, &[g, rows, d])?))
            }
        };
        // Token-major projections have the unpadded rows.
        let (pq_rows, pk_rows) = if in_place {
            (lay.dims.nq, lay.dims.nk)
        } else {
            (nq, nk)
        };
        Ok(Workspace {
            batches,
            qh: copy(nq)?,
            kh: copy(nk)?,
            vh: Tensor::empty(gpu, &[g, nk, d + 1])?,
            pq: Tensor::empty(gpu, &[g, pq_rows, m])?,
            pk: Tensor::empty(gpu, &[g, pk_rows, m])?,
            fq: Tensor::empty(gpu, &[g, nq, m])?,
            fk: Tensor::empty(gpu, &[g, nk, m])?,
            stat_q: Tensor::empty(gpu, &[2, g * nq])?,
            stat_k: Tensor::empty(gpu, &[2, g * nk])?,
            gmax: Tensor::empty(gpu, &[g])?,
            kv: Tensor::empty(gpu, &[g * lay.chunks, m, d + 1])?,
            oh: Tensor::empty(gpu, &[g, nq, d + 1])?,
            scores: if lay.causal {
                Some(Tensor::empty(gpu, &[g * lay.chunks, lay.chunk, lay.chunk])?)
            } else {
                None
            },
        })
    }
}

/// The inputs, output and constants of one planned attention.
struct Problem<'a> {
    q: &'a Tensor,
    k: &'a Tensor,
    v: &'a Tensor,
    out: &'a Tensor,
    w: &'a Tensor,
    lay: Layout,
    scale: f32,
}

/// The dispatches of batches `b0 .. b0 + ws.batches`.
fn plan_pass(gpu: &Gpu, pb: &Problem<'_>, b0: usize, ws: &Workspace) -> Result<Vec<Dispatch>> {
    let lay = &pb.lay;
    let dims = &lay.dims;
    let (d, m, heads) = (dims.head_dim, lay.m, dims.heads);
    let g = ws.batches * heads;
    let row = dims.row_len();
    let (aq, ak) = reference::input_factors(f64::from(pb.scale));
    let mut out = Vec::new();
    // 1-3: features of the queries (row maxima) and keys (one maximum per head).
    out.extend(plan_features(
        gpu,
        &FeatureJob {
            x: pb.q,
            x_start: b0 * dims.nq * row,
            groups: g,
            heads,
            n_valid: dims.nq,
            n_rows: lay.nq_rows,
            head_dim: d,
            w: pb.w,
            alpha: aq as f32,
            stabilizer: Stabilizer::RowMax,
            xh: ws.qh.as_ref(),
            p: &ws.pq,
            phi: &ws.fq,
            stat: &ws.stat_q,
            gmax: &ws.gmax,
        },
    )?);
    out.extend(plan_features(
        gpu,
        &FeatureJob {
            x: pb.k,
            x_start: b0 * dims.nk * row,
            groups: g,
            heads,
            n_valid: dims.nk,
            n_rows: lay.nk_rows,
            head_dim: d,
            w: pb.w,
            alpha: ak as f32,
            stabilizer: Stabilizer::GroupMax,
            xh: ws.kh.as_ref(),
            p: &ws.pk,
            phi: &ws.fk,
            stat: &ws.stat_k,
            gmax: &ws.gmax,
        },
    )?);
    // [V | 1], head-major.
    out.push(stage(
        gpu,
        STAGE_HEAD_MAJOR,
        PerformerParams {
            count: (g * lay.nk_rows) as u32,
            heads: heads as u32,
            n_valid: dims.nk as u32,
            n_rows: lay.nk_rows as u32,
            head_dim: d as u32,
            width: (d + 1) as u32,
            row: row as u32,
            ..Default::default()
        },
        Bindings {
            src: Some((pb.v, b0 * dims.nk * row, ws.batches * dims.nk * row)),
            aux: None,
            aux2: None,
            dst: (&ws.vh, 0, ws.vh.len()),
        },
    )?);
    let (fq, fk) = (&ws.fq, &ws.fk);
    if lay.causal {
        let (c, nc) = (lay.chunk, lay.chunks);
        let l = g * nc;
        let fq = fq.view(&[l, c, m])?;
        let fk = fk.view(&[l, c, m])?;
        let vc = ws.vh.view(&[l, c, d + 1])?;
        let oc = ws.oh.view(&[l, c, d + 1])?;
        // Per chunk [S_c | z_c], then the exclusive scan over chunks.
        out.extend(matmul::plan(
            gpu,
            &fk,
            &vc,
            &ws.kv,
            &MatmulOptions {
                trans_a: true,
                ..Default::default()
            },
        )?);
        out.push(stage(
            gpu,
            STAGE_CHUNK_SCAN,
            PerformerParams {
                count: (g * m * (d + 1)) as u32,
                chunk: nc as u32,
                chunk_elems: (m * (d + 1)) as u32,
                ..Default::default()
            },
            Bindings {
                src: None,
                aux: None,
                aux2: None,
                dst: (&ws.kv, 0, ws.kv.len()),
            },
        )?);
        // Inter-chunk: φ(Q_c) [S | z]_{<c}.
        out.extend(matmul::plan(
            gpu,
            &fq,
            &ws.kv,
            &oc,
            &MatmulOptions::default(),
        )?);
        // Intra-chunk: the masked quadratic form.
        let scores = ws
            .scores
            .as_ref()
            .ok_or_else(|| Error::invalid("performer: causal work space without scores"))?;
        out.extend(matmul::plan(
            gpu,
            &fq,
            &fk,
            scores,
            &MatmulOptions {
                trans_b: true,
                ..Default::default()
            },
        )?);
        out.push(stage(
            gpu,
            STAGE_CAUSAL_MASK,
            PerformerParams {
                count: (l * c) as u32,
                chunk: c as u32,
                ..Default::default()
            },
            Bindings {
                src: None,
                aux: None,
                aux2: None,
                dst: (scores, 0, scores.len()),
            },
        )?);
        out.extend(matmul::plan(
            gpu,
            scores,
            &vc,
            &oc,
            &MatmulOptions {
                beta: 1.0,
                ..Default::default()
            },
        )?);
    } else {
        out.extend(matmul::plan(
            gpu,
            fk,
            &ws.vh,
            &ws.kv,
            &MatmulOptions {
                trans_a: true,
                ..Default::default()
            },
        )?);
        out.extend(matmul::plan(
            gpu,
            fq,
            &ws.kv,
            &ws.oh,
            &MatmulOptions::default(),
        )?);
    }
    // out = num / den, back to [B, Nq, H·D].
    out.push(stage(
        gpu,
        STAGE_NORMALIZE,
        PerformerParams {
            count: (g * dims.nq) as u32,
            heads: heads as u32,
            n_valid: dims.nq as u32,
            n_rows: lay.nq_rows as u32,
            head_dim: d as u32,
            row: row as u32,
            ..Default::default()
        },
        Bindings {
            src: Some((&ws.oh, 0, ws.oh.len())),
            aux: None,
            aux2: None,
            dst: (pb.out, b0 * dims.nq * row, ws.batches * dims.nq * row),
        },
    )?);
    Ok(out)
}

/// Batches per pass: as many as keep every tensor and window in one storage binding.
fn batches_per_pass(gpu: &Gpu, lay: &Layout) -> Result<usize> {
    let capacity = window_capacity(gpu);
    let per_batch = lay.per_batch();
    if per_batch > capacity {
        let d = &lay.dims;
        return Err(Error::invalid(format!(
            "performer: one batch needs a work tensor of {per_batch} values ({} bytes; H = {}, \
             Nq = {}, Nk = {}, D = {}, m = {}), more than one storage binding holds ({} bytes); \
             use fewer heads, keys or features per call",
            per_batch as u64 * 4,
            d.heads,
            d.nq,
            d.nk,
            d.head_dim,
            lay.m,
            capacity as u64 * 4
        )));
    }
    Ok((capacity / per_batch).clamp(1, lay.dims.batch))
}

/// Plans `out = performer(q, k, v)` with `heads` heads (see the module docs). `out` has the
/// shape of `q` and must not share a buffer with an input. The work space and W are allocated
/// here and kept alive by the returned dispatches, so running them again (a benchmark) times
/// the GPU work alone.
pub fn plan(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    out: &Tensor,
    heads: usize,
    options: &PerformerOptions,
) -> Result<Vec<Dispatch>> {
    let dims = dims(q.shape(), k.shape(), v.shape(), heads)?;
    if out.shape() != q.shape() {
        return Err(Error::shape(
            "performer",
            format!(
                "the output has shape {:?} but must have Q's shape {:?}",
                out.shape(),
                q.shape()
            ),
        ));
    }
    if [q, k, v].iter().any(|t| t.buffer() == out.buffer()) {
        return Err(Error::invalid(
            "performer: the output must not share a buffer with Q, K or V",
        ));
    }
    let scale = options.resolved_scale(dims.head_dim)?;
    let lay = Layout::new(&dims, options.features, options.causal);
    check_stage_loops(gpu, &lay)?;
    let per_pass = batches_per_pass(gpu, &lay)?;
    let w = projection_matrix(gpu, dims.head_dim, options)?;
    let problem = Problem {
        q,
        k,
        v,
        out,
        w: &w,
        lay,
        scale,
    };
    // At most two work spaces: one for full passes, one for a shorter last pass.
    let mut spaces: Vec<Workspace> = Vec::new();
    let mut dispatches = Vec::new();
    for b0 in (0..dims.batch).step_by(per_pass) {
        let batches = per_pass.min(dims.batch - b0);
        let ws = match spaces.iter().position(|s| s.batches == batches) {
            Some(i) => &spaces[i],
            None => {
                spaces.push(Workspace::new(gpu, &lay, batches)?);
                &spaces[spaces.len() - 1]
            }
        };
        dispatches.extend(plan_pass(gpu, &problem, b0, ws)?);
    }
    Ok(dispatches)
}

/// Returns `performer(q, k, v)` as a new tensor of Q's shape (see [`plan`]).
pub fn run(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    options: &PerformerOptions,
) -> Result<Tensor> {
    let out = Tensor::empty(gpu, q.shape())?;
    gpu.execute(&plan(gpu, q, k, v, &out, heads, options)?)?;
    Ok(out)
}

/// Checks that a whole-problem tensor of `len` values fits one binding (the estimator helpers
/// run in one pass).
fn fits(gpu: &Gpu, what: &str, len: usize) -> Result<()> {
    let capacity = window_capacity(gpu);
    if len > capacity {
        return Err(Error::invalid(format!(
            "performer: {what} holds {len} values ({} bytes), more than one storage binding \
             ({} bytes); use fewer batches, rows or features per call",
            len as u64 * 4,
            capacity as u64 * 4
        )));
    }
    Ok(())
}

/// The features of `x` (`[B, N, H·D]` or 2-D) as queries (`key` false) or keys, without
/// stabilizer, `[B, H, N, m]`.
fn features_of(
    gpu: &Gpu,
    x: &Tensor,
    heads: usize,
    options: &PerformerOptions,
    key: bool,
) -> Result<Tensor> {
    let dims = dims(x.shape(), x.shape(), x.shape(), heads)?;
    let scale = options.resolved_scale(dims.head_dim)?;
    let (g, n, d, m) = (dims.batch * heads, dims.nq, dims.head_dim, options.features);
    check_stage_loops(gpu, &Layout::new(&dims, m, false))?;
    fits(gpu, "the features [B, H, N, m]", g * n * m)?;
    fits(gpu, "the input", x.len())?;
    let w = projection_matrix(gpu, d, options)?;
    let (aq, ak) = reference::input_factors(f64::from(scale));
    let p = Tensor::empty(gpu, &[g, n, m])?;
    let phi = Tensor::empty(gpu, &[g, n, m])?;
    let stat = Tensor::empty(gpu, &[2, g * n])?;
    let gmax = Tensor::empty(gpu, &[g])?;
    let dispatches = plan_features(
        gpu,
        &FeatureJob {
            x,
            x_start: 0,
            groups: g,
            heads,
            n_valid: n,
            n_rows: n,
            head_dim: d,
            w: &w,
            alpha: if key { ak } else { aq } as f32,
            stabilizer: Stabilizer::Exact,
            xh: None,
            p: &p,
            phi: &phi,
            stat: &stat,
            gmax: &gmax,
        },
    )?;
    gpu.execute(&dispatches)?;
    phi.reshape(&[dims.batch, heads, n, m])
}

/// φ(x) for `x` `[B, N, H·D]` (2-D: one batch), `[B, H, N, m]`: the query features
/// exp(w_i·x̃ − ‖x̃‖²/2)/sqrt(m) with x̃ = sqrt(|s|)·x, **without** stabilizer, so that
/// φ(q)·φ(k) estimates exp(s·q·k) (for s >= 0; [`kernel_estimate`] handles the sign). They
/// overflow f32 once w·x̃ − ‖x̃‖²/2 exceeds about 88; attention ([`run`]) is stabilized.
/// `options.causal` is ignored.
pub fn feature_map(
    gpu: &Gpu,
    x: &Tensor,
    heads: usize,
    options: &PerformerOptions,
) -> Result<Tensor> {
    features_of(gpu, x, heads, options, false)
}

/// φ(q)·φ(k) for every (query, key) pair of each (batch, head), `[B, H, Nq, Nk]`, for Q
/// `[B, Nq, H·D]` and K `[B, Nk, H·D]`: the unbiased random-feature estimate of the softmax
/// kernel exp(s·q·k) (unstabilized, as [`feature_map`]).
pub fn kernel_estimate(
    gpu: &Gpu,
    q: &Tensor,
    k: &Tensor,
    heads: usize,
    options: &PerformerOptions,
) -> Result<Tensor> {
    let dims = dims(q.shape(), k.shape(), k.shape(), heads)?;
    let g = dims.batch * heads;
    let fq = features_of(gpu, q, heads, options, false)?;
    let fk = features_of(gpu, k, heads, options, true)?;
    let fq = fq.reshape(&[g, dims.nq, options.features])?;
    let fk = fk.reshape(&[g, dims.nk, options.features])?;
    let est = matmul::run(
        gpu,
        &fq,
        &fk,
        &MatmulOptions {
            trans_b: true,
            ..Default::default()
        },
    )?;
    est.reshape(&[dims.batch, heads, dims.nq, dims.nk])
}
