//! Graph attention (GAT, Veličković et al. 2018), one layer: `shaders/gat.wgsl`.
//!
//! For node features X `[N, F]`, a weight W `[F, H·F']` (head `h` uses columns
//! `h·F' .. (h+1)·F'`) and attention vectors A `[H, 2F']`, with `Wh = X W` viewed as
//! `[N, H, F']`:
//!
//! ```text
//! s_dst[i, h] = A[h, 0..F']   · Wh[i, h, :]        (the target's half)
//! s_src[j, h] = A[h, F'..2F'] · Wh[j, h, :]        (the source's half)
//! e_ij        = LeakyReLU(s_dst[i, h] + s_src[j, h], negative_slope)   for each edge j -> i
//! α_ij        = softmax of e_ij over the incoming edges of i (max-subtracted)
//! Y[i, h, :]  = Σ_j α_ij Wh[j, h, :]
//! ```
//!
//! Y is `[N, H·F']` (heads concatenated) or `[N, F']` (heads averaged, [`GatOptions::average`]).
//! **No activation is applied**: callers apply ELU (hidden layers of the paper) or whatever
//! they need with [`crate::ops::activation`]. A node with no incoming edge gets zeros; duplicate
//! edges count as separate edges; self loops are added only when asked.
//!
//! The job is one list of dispatches: `matmul` for Wh, a scores pass (one thread per node and
//! head), then the aggregation (one workgroup per target node and tile of 4 output features,
//! looping over heads and over the target's edges with an online softmax, so degrees are
//! unbounded). The graph goes to the GPU in CSR by target, built on the host by counting sort.
//!
//! Scores must stay finite in f32 (|s_dst + s_src| below ~3e38); any finite size is fine, since
//! every exponent is taken of a score minus a running maximum.
//!
//! Errors (never panics), each naming the numbers: X not 2-D, W rows ≠ F, W columns not
//! divisible by H, A not `[H, 2F']`, an edge index outside `0..N` (with the edge number), more
//! edges than u32 offsets hold, a non-finite slope, and the binding limit below.
//!
//! Limits: Wh (`N·H·F'` values) and the scores (`2·N·H`) are bound whole, because any node may
//! be the source of an edge; when either exceeds one storage binding ([`Gpu::binding_limit`])
//! [`plan`] returns [`Error::Limit`] naming the sizes. Everything else is split: the targets
//! into dispatches whose offsets, sources and output rows fit a binding, and a target with more
//! incoming edges than one binding holds into segments that carry the softmax state from one
//! dispatch to the next.
//!
//! Loops: an aggregation workgroup's threads walk the target's edges, WG apart, for every
//! head. On adapters that end an invocation's loops after a number of passes
//! ([`Gpu::loop_limit`]: 65,535 on lavapipe, silently) a target with more edges than keep
//! that walk within the limit ([`aggregate_loop_iterations`]) is split into segments the same
//! way; heads or features per head so many that not even one edge per thread fits are an
//! [`Error::LoopLimit`] before anything runs.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::loop_limit::{looped, most_within};
use crate::ops::matmul::{self, MatmulOptions};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Options of a GAT layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GatOptions {
    /// Add an edge (i, i) for every node, in addition to any the edge list holds.
    pub self_loops: bool,
    /// Average the heads (output `[N, F']`, the paper's last layer) instead of concatenating
    /// them (output `[N, H·F']`).
    pub average: bool,
    /// Slope of LeakyReLU for negative scores (the paper uses 0.2); must be finite.
    pub negative_slope: f32,
}

impl Default for GatOptions {
    fn default() -> Self {
        GatOptions {
            self_loops: false,
            average: false,
            negative_slope: 0.2,
        }
    }
}

/// The sizes of a GAT layer, checked by [`GatDims::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatDims {
    /// N: nodes (rows of X).
    pub nodes: usize,
    /// F: input features per node (columns of X, rows of W).
    pub features: usize,
    /// H: attention heads.
    pub heads: usize,
    /// F': output features per head (columns of W / H).
    pub head_features: usize,
}

impl GatDims {
    /// Checks the shapes of X `[N, F]`, W `[F, H·F']` and A `[H, 2F']` for `heads` heads and
    /// derives the sizes. Errors name the shapes and the numbers that disagree.
    pub fn new(x: &[usize], w: &[usize], a: &[usize], heads: usize) -> Result<GatDims> {
        if x.len() != 2 || x.contains(&0) {
            return Err(Error::shape(
                "gat",
                format!("X must be [nodes, features] with both at least 1, got shape {x:?}"),
            ));
        }
        if w.len() != 2 || w.contains(&0) {
            return Err(Error::shape(
                "gat",
                format!("W must be [features, heads·head_features] with both at least 1, got shape {w:?}"),
            ));
        }
        if heads == 0 {
            return Err(Error::invalid("gat: heads must be at least 1, got 0"));
        }
        let (nodes, features) = (x[0], x[1]);
        if w[0] != features {
            return Err(Error::shape(
                "gat",
                format!(
                    "W has {} rows but X {x:?} has {features} features (W must be [F, H·F'])",
                    w[0]
                ),
            ));
        }
        if !w[1].is_multiple_of(heads) {
            return Err(Error::shape(
                "gat",
                format!(
                    "W has {} columns, not divisible by {heads} heads (W must be [F, H·F'])",
                    w[1]
                ),
            ));
        }
        let head_features = w[1] / heads;
        if a != [heads, 2 * head_features] {
            return Err(Error::shape(
                "gat",
                format!(
                    "A has shape {a:?} but {heads} heads of {head_features} features need \
                     [H, 2F'] = [{heads}, {}]",
                    2 * head_features
                ),
            ));
        }
        Ok(GatDims {
            nodes,
            features,
            heads,
            head_features,
        })
    }

    /// Columns of Wh: H·F'.
    pub fn wh_cols(&self) -> usize {
        self.heads * self.head_features
    }

    /// The shape of the output: `[N, F']` when averaging the heads, else `[N, H·F']`.
    pub fn output_shape(&self, average: bool) -> Vec<usize> {
        if average {
            vec![self.nodes, self.head_features]
        } else {
            vec![self.nodes, self.wh_cols()]
        }
    }
}

/// A graph in compressed sparse rows by target: the sources of the edges into node `i` are
/// `sources[offsets[i] .. offsets[i + 1]]`, in the order the edges were given (self loops, when
/// added, last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csr {
    /// N + 1 offsets into `sources`; `offsets[0] = 0`, `offsets[N]` = the number of edges.
    pub offsets: Vec<u32>,
    /// The source of every edge, grouped by target.
    pub sources: Vec<u32>,
}

impl Csr {
    /// Builds the CSR of `edges` (`[source, target]` pairs) over `nodes` nodes by counting
    /// sort, adding `(i, i)` for every node when `self_loops`. Errors name the edge, the value
    /// and N for an index out of range, and the counts when the edges do not fit u32.
    pub fn by_target(edges: &[[u32; 2]], nodes: usize, self_loops: bool) -> Result<Csr> {
        if nodes >= u32::MAX as usize {
            return Err(Error::invalid(format!(
                "gat: {nodes} nodes do not fit the u32 node indices of the GPU graph"
            )));
        }
        let total = edges.len() as u64 + if self_loops { nodes as u64 } else { 0 };
        if total > u64::from(u32::MAX) {
            return Err(Error::invalid(format!(
                "gat: {} edges{} make {total} edges, more than the u32 offsets of the GPU \
                 graph hold ({})",
                edges.len(),
                if self_loops {
                    format!(" plus {nodes} self loops")
                } else {
                    String::new()
                },
                u32::MAX
            )));
        }
        let mut counts = vec![0u32; nodes + 1];
        for (e, &[source, target]) in edges.iter().enumerate() {
            for (role, v) in [("source", source), ("target", target)] {
                if v as usize >= nodes {
                    return Err(Error::invalid(format!(
                        "gat: edge {e} ({source} -> {target}) has {role} {v}, outside the \
                         nodes 0..{nodes}"
                    )));
                }
            }
            counts[target as usize + 1] += 1;
        }
        if self_loops {
            for c in &mut counts[1..] {
                *c += 1;
            }
        }
        // Prefix sums: counts becomes the offsets (the total fits u32, checked above).
        for i in 1..=nodes {
            counts[i] += counts[i - 1];
        }
        let offsets = counts;
        let mut next = offsets[..nodes].to_vec();
        let mut sources = vec![0u32; total as usize];
        for &[source, target] in edges {
            let slot = &mut next[target as usize];
            sources[*slot as usize] = source;
            *slot += 1;
        }
        if self_loops {
            for (i, slot) in next.iter().enumerate() {
                sources[*slot as usize] = i as u32;
            }
        }
        Ok(Csr { offsets, sources })
    }

    /// The number of edges.
    pub fn edges(&self) -> usize {
        self.sources.len()
    }

    /// The number of incoming edges of node `i`.
    pub fn degree(&self, i: usize) -> usize {
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }
}

/// Converts integer edge data, e.g. read from `.npy` by [`crate::npy::read_indices`], of shape
/// `[num_edges, 2]` (each row: source j, target i; a message flows from j to i) into edge
/// pairs, checking every index against `nodes`. Errors name the edge (row), the value and N.
pub fn edges_from_npy_values(
    values: &[i64],
    shape: &[usize],
    nodes: usize,
) -> Result<Vec<[u32; 2]>> {
    if shape.len() != 2 || shape[1] != 2 {
        let hint = if shape.len() == 2 && shape[0] == 2 {
            " (this looks like PyTorch Geometric's [2, num_edges] edge_index: transpose it)"
        } else {
            ""
        };
        return Err(Error::shape(
            "gat",
            format!("edges must have shape [num_edges, 2] (source, target), got {shape:?}{hint}"),
        ));
    }
    if values.len() != shape[0] * 2 {
        return Err(Error::shape(
            "gat",
            format!(
                "edges of shape {shape:?} hold {} values but {} were given",
                shape[0] * 2,
                values.len()
            ),
        ));
    }
    values
        .chunks_exact(2)
        .enumerate()
        .map(|(e, pair)| {
            let mut out = [0u32; 2];
            for (k, (role, &v)) in ["source", "target"].iter().zip(pair).enumerate() {
                if v < 0 || v as u64 >= nodes as u64 {
                    return Err(Error::invalid(format!(
                        "gat: edge {e} ({} -> {}) has {role} {v}, outside the nodes 0..{nodes}",
                        pair[0], pair[1]
                    )));
                }
                out[k] = v as u32;
            }
            Ok(out)
        })
        .collect()
}

/// Uniform parameters of `shaders/gat.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GatParams {
    nodes: u32,
    heads: u32,
    fout: u32,
    tiles: u32,
    count: u32,
    target_base: u32,
    offsets_first: u32,
    sources_first: u32,
    edge_base: u32,
    edge_lo: u32,
    edge_hi: u32,
    y_first: u32,
    flags: u32,
    slope: f32,
    _pad0: u32,
    _pad1: u32,
}

const MODE_SCORES: u32 = 0;
const MODE_AGGREGATE: u32 = 1;
// Keep in sync with the FLAG_ constants in shaders/gat.wgsl.
const FLAG_CARRY_IN: u32 = 1;
const FLAG_FINAL: u32 = 2;
const FLAG_AVERAGE: u32 = 4;
/// Output features per aggregation workgroup (one vec4 accumulator per thread).
const TILE: usize = 4;
/// Floats of one carried softmax state (m, s, acc.xyzw).
const STATE_FLOATS: usize = 6;
/// Threads per workgroup of the scores pass (one thread per node and head, no reduction).
const SCORES_WG: u32 = 64;

/// Threads per aggregation workgroup: about the mean in-degree (each thread then walks about
/// one edge of a typical target, and a hub's threads walk many), a power of two for the tree
/// reduction, at least 8 on CPU adapters (one SIMD row on lavapipe) or 32 on GPUs (a warp),
/// at most 256 and the adapter's limit.
fn aggregate_workgroup_size(gpu: &Gpu, edges: usize, nodes: usize) -> u32 {
    let max = gpu.limits().max_compute_invocations_per_workgroup.min(256);
    let max = 1u32 << (31 - max.max(1).leading_zeros());
    let min = if gpu.is_cpu() { 8 } else { 32 }.min(max);
    let mean = edges.div_ceil(nodes.max(1)).clamp(1, 1 << 16) as u32;
    mean.next_power_of_two().clamp(min, max)
}

/// An upper bound of the loop passes of the busiest invocation of the scores pass (mode 0),
/// counted as `looped` says (`Loops:` in `shaders/gat.wgsl`): one loop over the F' features
/// of its (node, head) pair.
pub fn scores_loop_iterations(head_features: usize) -> u64 {
    looped(head_features as u64, 0, 0)
}

/// An upper bound of the loop passes of the busiest invocation of an aggregation workgroup of
/// `workgroup` threads (a power of two) that takes at most `edges` edges of one target, with
/// `heads` heads, counted as `looped` says (`Loops:` in `shaders/gat.wgsl`): per head the
/// walk over the edges (edges / WG passes), the tree reduction (log2 WG) and the store of the
/// tile (its 4 values; only thread 0 stores, but a branch costs its loops all the same); at
/// the end the averaged tile's store.
pub fn aggregate_loop_iterations(heads: usize, workgroup: u32, edges: usize) -> u64 {
    let walk = looped((edges as u64).div_ceil(u64::from(workgroup)), 0, 0);
    let tree = looped(u64::from(workgroup.trailing_zeros()), 0, 0);
    let store = looped(TILE as u64, 0, 0);
    looped(heads as u64, walk + tree + store, 3) + store
}

/// The most edges of one target that one aggregation dispatch (workgroups of `wg` threads,
/// `heads` heads) may take: `capacity` (one binding), or fewer where the adapter's loop limit
/// allows fewer ([`aggregate_loop_iterations`]); larger targets go in segments. An
/// [`Error::LoopLimit`] where not even one edge per thread fits.
fn segment_edges(gpu: &Gpu, heads: usize, wg: u32, capacity: usize) -> Result<usize> {
    let most = most_within(
        gpu,
        "gat (aggregation)",
        1,
        capacity as u64,
        |edges| aggregate_loop_iterations(heads, wg, edges as usize),
        &format!("{heads} heads leave no room for one edge per thread; use fewer heads per layer"),
    )?;
    Ok(most.map_or(capacity, |m| m as usize))
}

/// A u32 storage buffer uploaded from the host (offsets or sources of the CSR). It holds at
/// least one element so that a window is never empty.
struct U32Buffer {
    buffer: wgpu::Buffer,
    len: usize,
}

impl U32Buffer {
    fn upload(gpu: &Gpu, label: &str, data: &[u32]) -> Result<U32Buffer> {
        let len = data.len().max(1);
        let buffer = gpu.create_buffer(
            label,
            len as u64 * 4,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )?;
        if !data.is_empty() {
            gpu.queue()
                .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        }
        Ok(U32Buffer { buffer, len })
    }

    /// Elements `start .. start + len` (at least one, clamped into the buffer), bound at the
    /// largest aligned offset at or before the start, as [`Tensor`] windows are. Returns the
    /// binding, the element of the binding holding the first bound element, and the global
    /// index of that element.
    fn window(
        &self,
        gpu: &Gpu,
        start: usize,
        len: usize,
    ) -> (wgpu::BindingResource<'_>, u32, usize) {
        let start = start.min(self.len - 1);
        let len = len.clamp(1, self.len - start);
        let align = gpu.binding_alignment().max(4);
        let start_bytes = start as u64 * 4;
        let offset = start_bytes / align * align;
        let end_bytes = (start + len) as u64 * 4;
        let binding = wgpu::BufferBinding {
            buffer: &self.buffer,
            offset,
            size: std::num::NonZeroU64::new(end_bytes - offset),
        };
        (
            wgpu::BindingResource::Buffer(binding),
            ((start_bytes - offset) / 4) as u32,
            start,
        )
    }
}

/// Checks that a whole-bound array of `len` values fits one binding of `capacity` values.
fn check_whole(gpu: &Gpu, what: String, len: usize, capacity: usize) -> Result<()> {
    if len > capacity {
        return Err(Error::Limit {
            what: format!("gat: {what}, bound whole"),
            needed: len as u64 * 4,
            limit: gpu.binding_limit(),
            limit_name: "max_storage_buffer_binding_size",
        });
    }
    Ok(())
}

/// Plans `y = GAT(x, edges, w, a)` (see the module docs): Wh by matmul, the scores, then the
/// aggregation, as one list of dispatches. `edges` are `[source j, target i]` pairs (a message
/// flows from j to i); `y` must have the output shape ([`GatDims::output_shape`]).
#[expect(
    clippy::too_many_arguments,
    reason = "the layer's inputs as `run` takes them, plus the output"
)]
pub fn plan(
    gpu: &Gpu,
    x: &Tensor,
    edges: &[[u32; 2]],
    w: &Tensor,
    a: &Tensor,
    heads: usize,
    options: &GatOptions,
    y: &Tensor,
) -> Result<Vec<Dispatch>> {
    let d = GatDims::new(x.shape(), w.shape(), a.shape(), heads)?;
    let out_shape = d.output_shape(options.average);
    if y.shape() != out_shape.as_slice() {
        return Err(Error::shape(
            "gat",
            format!(
                "Y has shape {:?} but {} nodes with {heads} heads of {} features{} give {out_shape:?}",
                y.shape(),
                d.nodes,
                d.head_features,
                if options.average { ", averaged," } else { "" }
            ),
        ));
    }
    if !options.negative_slope.is_finite() {
        return Err(Error::invalid(format!(
            "gat: negative_slope must be finite, got {}",
            options.negative_slope
        )));
    }
    let csr = Csr::by_target(edges, d.nodes, options.self_loops)?;
    let capacity = window_capacity(gpu);
    let (n, hf, fout) = (d.nodes, d.wh_cols(), d.head_features);
    let pairs = n * heads;
    check_whole(
        gpu,
        format!("Wh = X·W of shape [{n}, {hf}]"),
        n * hf,
        capacity,
    )?;
    check_whole(
        gpu,
        format!("the attention scores of {n} nodes × {heads} heads (2·N·H values)"),
        2 * pairs,
        capacity,
    )?;
    check_whole(
        gpu,
        format!("A of shape {:?}", a.shape()),
        a.len(),
        capacity,
    )?;

    // The loop limit, before anything is planned: the scores pass loops over F', and targets
    // with more edges than an aggregation dispatch may walk go in segments.
    gpu.check_loops(
        "gat (scores)",
        scores_loop_iterations(fout),
        &format!("use fewer features per head (F' = {fout})"),
    )?;
    let wg = aggregate_workgroup_size(gpu, csr.edges(), n);
    let segment = segment_edges(gpu, heads, wg, capacity)?;

    let mut dispatches = Vec::new();
    let wh = Tensor::empty(gpu, &[n, hf])?;
    dispatches.extend(matmul::plan(gpu, x, w, &wh, &MatmulOptions::default())?);

    let tiles = fout.div_ceil(TILE);
    let base = GatParams {
        nodes: n as u32,
        heads: heads as u32,
        fout: fout as u32,
        tiles: tiles as u32,
        count: 0,
        target_base: 0,
        offsets_first: 0,
        sources_first: 0,
        edge_base: 0,
        edge_lo: 0,
        edge_hi: u32::MAX,
        y_first: 0,
        flags: if options.average { FLAG_AVERAGE } else { 0 },
        slope: options.negative_slope,
        _pad0: 0,
        _pad1: 0,
    };
    let scores = Tensor::empty(gpu, &[2 * pairs])?;
    let wh_all = wh.window(gpu, 0, wh.len());
    let scores_all = scores.window(gpu, 0, scores.len());

    let offsets = U32Buffer::upload(gpu, "speckle.gat.offsets", &csr.offsets)?;
    let sources = U32Buffer::upload(gpu, "speckle.gat.sources", &csr.sources)?;
    let a_all = a.window(gpu, 0, a.len());
    // The placeholder is bound at most once per dispatch: a buffer bound both read-only and
    // read-write in one dispatch is a usage conflict, so unused read-only slots get a real
    // (small) window instead.
    let placeholder = || gpu.placeholder().as_entire_binding();

    // Scores: one thread per (node, head) pair, one dispatch (the pairs fit one binding).
    let scores_pipeline = pipeline(gpu, MODE_SCORES, SCORES_WG)?;
    let uniform = gpu.uniform(
        "speckle.gat.params",
        &GatParams {
            count: pairs as u32,
            ..base
        },
    );
    let bind_group = gpu.bind_group(
        &scores_pipeline,
        &[
            uniform.as_entire_binding(),
            wh_all.resource(),
            a_all.resource(),
            scores_all.resource(),
            offsets.window(gpu, 0, 1).0,
            sources.window(gpu, 0, 1).0,
            y.window(gpu, 0, 1).resource(),
            placeholder(),
        ],
    );
    dispatches.push(Dispatch::kernel(
        scores_pipeline,
        bind_group,
        gpu.grid(pairs.div_ceil(SCORES_WG as usize) as u32),
    ));

    // Aggregation: runs of consecutive targets whose offsets, sources and output rows each fit
    // one binding; a target with more edges than one dispatch may take (`segment`: one
    // binding, or the loop limit) alone, in segments.
    let pipeline = pipeline(gpu, MODE_AGGREGATE, wg)?;
    let out_cols = out_shape[1];
    let max_targets = (capacity - 1)
        .min(capacity / out_cols)
        .min(gpu.max_grid() / tiles)
        .max(1);
    let edge_at = |t: usize| csr.offsets[t] as usize;
    // The softmax states carried between the segments of targets larger than one dispatch.
    let hub = |t: usize| csr.degree(t) > segment;
    let carry = if (0..n).any(hub) {
        let len = heads * tiles * STATE_FLOATS;
        check_whole(
            gpu,
            format!("the softmax states of {heads} heads × {tiles} feature tiles"),
            len,
            capacity,
        )?;
        Some(Tensor::empty(gpu, &[len])?)
    } else {
        None
    };
    let mut aggregate = |t0: usize, count: usize, lo: usize, hi: usize, flags: u32| {
        let (offsets_binding, offsets_first, _) = offsets.window(gpu, t0, count + 1);
        let (sources_binding, sources_first, edge_base) = sources.window(gpu, lo, hi - lo);
        let yw = y.window(gpu, t0 * out_cols, count * out_cols);
        let carry_binding = match &carry {
            Some(c) => c.buffer().as_entire_binding(),
            None => placeholder(),
        };
        let params = GatParams {
            count: count as u32,
            target_base: t0 as u32,
            offsets_first,
            sources_first,
            edge_base: edge_base as u32,
            edge_lo: lo as u32,
            edge_hi: hi as u32,
            y_first: yw.first,
            flags: base.flags | flags,
            ..base
        };
        let uniform = gpu.uniform("speckle.gat.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                wh_all.resource(),
                a_all.resource(),
                scores_all.resource(),
                offsets_binding,
                sources_binding,
                yw.resource(),
                carry_binding,
            ],
        );
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid((count * tiles) as u32),
        ));
    };
    let mut t0 = 0;
    while t0 < n {
        if hub(t0) {
            // A hub larger than one dispatch: segments of at most `segment` edges, in order,
            // each continuing the softmax state the previous one left in `carry`.
            let (lo, hi) = (edge_at(t0), edge_at(t0 + 1));
            let segments = (hi - lo).div_ceil(segment);
            let len = (hi - lo).div_ceil(segments);
            for s in 0..segments {
                let start = lo + s * len;
                let end = (start + len).min(hi);
                let mut flags = 0;
                if s > 0 {
                    flags |= FLAG_CARRY_IN;
                }
                if s + 1 == segments {
                    flags |= FLAG_FINAL;
                }
                aggregate(t0, 1, start, end, flags);
            }
            t0 += 1;
            continue;
        }
        let mut t1 = t0 + 1;
        while t1 < n
            && t1 - t0 < max_targets
            && !hub(t1)
            && edge_at(t1 + 1) - edge_at(t0) <= capacity
        {
            t1 += 1;
        }
        aggregate(t0, t1 - t0, edge_at(t0), edge_at(t1), FLAG_FINAL);
        t0 = t1;
    }
    Ok(dispatches)
}

fn pipeline(gpu: &Gpu, mode: u32, wg: u32) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
    gpu.pipeline(
        &shaders::GAT,
        &[("MODE", f64::from(mode)), ("WG", f64::from(wg))],
    )
}

/// Returns one GAT layer's output (see the module docs) as a new tensor: `[N, H·F']` with the
/// heads concatenated, or `[N, F']` with [`GatOptions::average`]. `edges` are `[source j,
/// target i]` pairs (a message flows from j to i). No activation is applied.
pub fn run(
    gpu: &Gpu,
    x: &Tensor,
    edges: &[[u32; 2]],
    w: &Tensor,
    a: &Tensor,
    heads: usize,
    options: &GatOptions,
) -> Result<Tensor> {
    let d = GatDims::new(x.shape(), w.shape(), a.shape(), heads)?;
    let y = Tensor::empty(gpu, &d.output_shape(options.average))?;
    gpu.execute(&plan(gpu, x, edges, w, a, heads, options, &y)?)?;
    Ok(y)
}
