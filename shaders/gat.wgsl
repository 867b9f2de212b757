// gat: one graph-attention layer (GAT, Veličković et al. 2018) over a graph stored in CSR by
// target. With Wh = X W viewed as [N, H, F'] (computed before this kernel by `matmul`):
//   s_dst[i, h] = a_h[0 .. F'] · Wh[i, h, :]        (the target's half of a_h)
//   s_src[j, h] = a_h[F' .. 2F'] · Wh[j, h, :]      (the source's half)
//   e_ij        = LeakyReLU(s_dst[i, h] + s_src[j, h], slope)   for every edge j -> i
//   alpha_ij    = exp(e_ij - max_j e_ij) / sum_j exp(e_ij - max_j e_ij)   over i's incoming edges
//   y[i, h, :]  = sum_j alpha_ij Wh[j, h, :]
// heads concatenated (y is [N, H·F']) or averaged (y is [N, F']). No activation is applied.
// A target with no incoming edge gets zeros. Duplicate edges count as separate edges.
//
// Two modes (override MODE):
//   0 scores:    one thread per (node, head) pair g = n·H + h, for the pairs 0 .. count; writes
//                s_dst to scores[g] and s_src to scores[N·H + g]. One dispatch for all nodes.
//   1 aggregate: one workgroup per (target t of the dispatch, tile of 4 output features),
//                looping over the heads. For each head every thread walks the target's edges
//                lid, lid + WG, ... keeping its own online-softmax state (running max m, sum s
//                of exp(e - m), vec4 accumulator of exp(e - m)·Wh[j, h, tile]). There is no
//                barrier per edge and no per-edge storage, so the degree is unbounded and a hub
//                costs only its own edges; one tree reduction per head then combines the WG
//                states. Target t's edges are offsets[t] .. offsets[t + 1] (a CSR window),
//                clamped to [edge_lo, edge_hi); thread 0 writes the tile of y.
// Segments: a target with more edges than one binding holds is processed by several dispatches
// of that one target (edge_lo .. edge_hi each); its (m, s, acc) states go from one to the next
// through `carry` (FLAG_CARRY_IN: start from carry; without FLAG_FINAL: write carry, not y).
//
// Loops: lavapipe ends all loops of an invocation after 65,535 passes in all, silently. Mode 0
// loops over F'; mode 1, per head, over its share of the target's edges in the dispatch
// (ceil(edges / WG) passes), the tree reduction (log2 WG) and thread 0's store (4), then the
// averaged store (4). The host bounds this (aggregate_loop_iterations in src/ops/gat.rs,
// counted as `looped` in src/ops/loop_limit.rs says) and gives a target with more edges than
// fit segments, as it does for one larger than a binding.
//
// Bindings (group 0): 0 uniform Params; 1 wh (read, the whole [N, H·F'] Wh, since any node may
// be a source); 2 a (read, [H, 2F'], mode 0); 3 scores (read_write, [2·N·H]: s_dst then s_src);
// 4 offsets (read, u32 window: offsets[target_base ..= target_base + count]); 5 sources (read,
// u32 window of the CSR source list, edge `edge_base` at sources_first); 6 y (read_write,
// window of the dispatch's output rows); 7 carry (read_write, [H, tiles, 6] states: m, s, acc).
// Bindings a mode does not use are bound to a placeholder.
// Dispatch: mode 0: ceil(count / WG) workgroups; mode 1: count · tiles workgroups; both split
// over x and y by `Gpu::grid`. Overrides: MODE; WG (threads per workgroup, a power of two for
// the tree reduction).

// Keep in sync with GatParams in src/ops/gat.rs.
struct Params {
    nodes: u32,         // N
    heads: u32,         // H
    fout: u32,          // F', features per head
    tiles: u32,         // ceil(F' / 4): feature tiles per head
    count: u32,         // mode 0: (node, head) pairs; mode 1: targets in this dispatch
    target_base: u32,   // global index of the dispatch's first target
    offsets_first: u32, // element of `offsets` holding offsets[target_base]
    sources_first: u32, // element of `sources` holding edge `edge_base`
    edge_base: u32,     // global (CSR) index of the edge bound at sources_first
    edge_lo: u32,       // edges outside [edge_lo, edge_hi) are skipped (segments)
    edge_hi: u32,
    y_first: u32,       // element of `y` holding the first target's output row
    flags: u32,         // FLAG_* below
    slope: f32,         // LeakyReLU negative slope
    _pad0: u32,
    _pad1: u32,
}

const FLAG_CARRY_IN: u32 = 1u; // start each state from `carry` (a later segment)
const FLAG_FINAL: u32 = 2u;    // write y (else write the states to `carry`)
const FLAG_AVERAGE: u32 = 4u;  // average the heads instead of concatenating them

override MODE: u32 = 1u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wh: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read> sources: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> carry: array<f32>;

var<workgroup> wg_m: array<f32, WG>;
var<workgroup> wg_s: array<f32, WG>;
var<workgroup> wg_acc: array<vec4<f32>, WG>;

// A partial softmax state: running max m, sum s of exp(e - m), acc = sum of exp(e - m)·Wh.
// s == 0 means "no edge yet" (once an edge is in, the maximum's own term makes s >= 1), so no
// infinity is ever needed as a starting max.
struct State {
    m: f32,
    s: f32,
    acc: vec4<f32>,
}

fn combine(x: State, z: State) -> State {
    if (x.s == 0.0) { return z; }
    if (z.s == 0.0) { return x; }
    let m = max(x.m, z.m);
    // Both factors are exp of a non-positive number: at most 1, so nothing overflows.
    let fx = exp(x.m - m);
    let fz = exp(z.m - m);
    return State(m, x.s * fx + z.s * fz, x.acc * fx + z.acc * fz);
}

fn leaky_relu(v: f32) -> f32 {
    return select(p.slope * v, v, v > 0.0);
}

// Wh[j, h, f0 .. f0 + 4), zeros past F'. Indices are clamped so that no load leaves the row.
fn wh_tile(j: u32, h: u32, f0: u32) -> vec4<f32> {
    let row = (j * p.heads + h) * p.fout;
    let last = p.fout - 1u;
    return vec4<f32>(
        wh[row + min(f0, last)],
        select(0.0, wh[row + min(f0 + 1u, last)], f0 + 1u < p.fout),
        select(0.0, wh[row + min(f0 + 2u, last)], f0 + 2u < p.fout),
        select(0.0, wh[row + min(f0 + 3u, last)], f0 + 3u < p.fout),
    );
}

// Writes the first min(4, F' - f0) components of v at y[base + f0 ..].
fn store_tile(base: u32, f0: u32, v: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        if (f0 + c < p.fout) {
            y[base + f0 + c] = v[c];
        }
    }
}

// Mode 0: both scores of (node, head) pair g.
fn node_scores(g: u32) {
    let n = g / p.heads;
    let h = g % p.heads;
    let row = g * p.fout; // = (n·H + h)·F'
    let a0 = h * 2u * p.fout;
    var dst = 0.0;
    var src = 0.0;
    for (var f = 0u; f < p.fout; f++) {
        let v = wh[row + f];
        dst += a[a0 + f] * v;
        src += a[a0 + p.fout + f] * v;
    }
    scores[g] = dst;
    scores[p.nodes * p.heads + g] = src;
}

// Reduces every thread's state to one, returned to all threads.
fn workgroup_combine(lid: u32, own: State) -> State {
    wg_m[lid] = own.m;
    wg_s[lid] = own.s;
    wg_acc[lid] = own.acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let c = combine(
                State(wg_m[lid], wg_s[lid], wg_acc[lid]),
                State(wg_m[lid + stride], wg_s[lid + stride], wg_acc[lid + stride]),
            );
            wg_m[lid] = c.m;
            wg_s[lid] = c.s;
            wg_acc[lid] = c.acc;
        }
        workgroupBarrier();
    }
    let r = State(wg_m[0], wg_s[0], wg_acc[0]);
    // The next head reuses the arrays: nobody may write them before everyone has read [0].
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = linear_workgroup(wid, nwg);
    if (MODE == 0u) {
        let g = w * WG + lid;
        if (g < p.count) {
            node_scores(g);
        }
        return;
    }
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (w >= p.count * p.tiles) { return; }
    let t = w / p.tiles;
    let tile = w % p.tiles;
    let f0 = tile * 4u;
    let i = p.target_base + t;
    let lo = max(offsets[p.offsets_first + t], p.edge_lo);
    let hi = min(offsets[p.offsets_first + t + 1u], p.edge_hi);
    let src_scores = p.nodes * p.heads;
    let final_pass = (p.flags & FLAG_FINAL) != 0u;
    let average = (p.flags & FLAG_AVERAGE) != 0u;
    var mean = vec4<f32>(0.0);
    for (var h = 0u; h < p.heads; h++) {
        let s_dst = scores[i * p.heads + h];
        var own = State(0.0, 0.0, vec4<f32>(0.0));
        for (var k = lo + lid; k < hi; k += WG) {
            let j = sources[p.sources_first + (k - p.edge_base)];
            let e = leaky_relu(s_dst + scores[src_scores + j * p.heads + h]);
            let v = wh_tile(j, h, f0);
            if (own.s == 0.0) {
                own = State(e, 1.0, v);
            } else if (e > own.m) {
                // A new maximum: rescale what was summed against the old one.
                let f = exp(own.m - e);
                own = State(e, own.s * f + 1.0, own.acc * f + v);
            } else {
                let q = exp(e - own.m);
                own.s += q;
                own.acc += q * v;
            }
        }
        var total = workgroup_combine(lid, own);
        if (lid == 0u) {
            let slot = (h * p.tiles + tile) * 6u;
            if ((p.flags & FLAG_CARRY_IN) != 0u) {
                let before = State(
                    carry[slot],
                    carry[slot + 1u],
                    vec4<f32>(carry[slot + 2u], carry[slot + 3u], carry[slot + 4u], carry[slot + 5u]),
                );
                total = combine(before, total);
            }
            if (final_pass) {
                let inv = select(0.0, 1.0 / total.s, total.s > 0.0);
                let out = total.acc * inv;
                if (average) {
                    mean += out;
                } else {
                    store_tile(p.y_first + (t * p.heads + h) * p.fout, f0, out);
                }
            } else {
                carry[slot] = total.m;
                carry[slot + 1u] = total.s;
                carry[slot + 2u] = total.acc.x;
                carry[slot + 3u] = total.acc.y;
                carry[slot + 4u] = total.acc.z;
                carry[slot + 5u] = total.acc.w;
            }
        }
    }
    if (lid == 0u && final_pass && average) {
        store_tile(p.y_first + t * p.fout, f0, mean / f32(p.heads));
    }
}
