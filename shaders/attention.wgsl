// attention: fused scaled-dot-product multi-head attention (host src/ops/attention.rs, f64
// reference src/cpu/attention.rs):
//   O[b, i, h, :] = sum_j softmax_j(scale * Q[b, i, h, :] . K[b, j, h, :]) * V[b, j, h, :]
// over the keys j that query i sees: all of them, or with the causal flag only j <= i (aligned
// top-left like PyTorch's is_causal, also when Nq != Nk), and with a key mask only those with
// mask[b, j] != 0. A query that sees no key at all gets zeros, never NaN.
//
// Layout: Q and O are [B, Nq, H*D], K and V [B, Nk, H*D], row-major f32; head h occupies
// columns h*D .. h*D + D - 1 of a row (numpy's reshape(B, N, H, D)). The mask is [B, Nk].
//
// Algorithm (FlashAttention-style, one pass, f32 throughout): a workgroup owns BQ = WG / T query
// rows of one (batch, head) and walks the keys in tiles of BK. Each tile's K and V rows (zero
// padded to D4P vec4s) and which of its keys may be seen go to workgroup memory; then every
// query row updates its running max m, running sum l and output accumulator acc, 4 keys at a
// time (online softmax: when the max grows from m to m', l and acc are first rescaled by
// exp(m - m')). The Nq x Nk score matrix never exists: memory is O((Nq + Nk) * D).
//
// Threads: a group of T threads owns one query row; thread t of the group owns the vec4
// columns t, t + T, ..., t + (DV - 1) * T of the head (interleaved, so the group reads
// consecutive vec4s of a K or V row at once). DV <= 8, so D <= 32 * T. The query slice and the
// accumulator are 8 named vec4s, not an indexed array, so that they stay in registers; the
// DV > n guards fold away once the overrides are set. A score is the sum over the group of its
// threads' partial dot products, reduced for 4 keys at once (a vec4):
//   SUBGROUPS = true:  a butterfly of subgroupShuffleXor over the group's T lanes (the host
//                      keeps T <= the adapter's smallest subgroup and WG a multiple of its
//                      largest, so subgroups are whole and split into whole groups). Groups
//                      are formed from subgroup lanes (subgroupExclusiveAdd(1) is the lane
//                      while all lanes are active) and claim their query row from a
//                      workgroup counter: no assumption on how subgroups tile the workgroup.
//                      (T == 1 has nothing to reduce and maps threads like the other path.)
//   SUBGROUPS = false: through workgroup memory (part), one more barrier per tile; T == 1
//                      needs no reduction at all.
// Either way every thread of a group ends with bit-identical scores (each butterfly step adds
// the same two values in both lanes; the workgroup path sums in one order), so the group
// agrees on m and l.
//
// The running max starts at -FLT_MAX rather than -inf (WGSL has no infinity literal, and
// drivers may assume finite math): the first rescale factor exp(-FLT_MAX - m') is 0, as
// exp(-inf) would be, and multiplies an l and acc that are still 0. Keys that may not be seen
// get weight 0 through select, never through exp of a huge negative number.
//
// Loops: lavapipe ends all loops of an invocation after 65,535 passes in all, silently, and
// every invocation walks all the keys its block needs in its range (up to split_keys), so the
// host cuts the keys into ranges that fit, or refuses what it cannot cut
// (AttentionConfig::loop_iterations in src/ops/attention.rs, counted as
// `looped` in src/ops/loop_limit.rs says). Per tile of BK keys the busiest invocation passes
// once through the tile loop and loops over the K and V loads (KV_LEN / WG passes), the key
// flags (BK / WG), the partial scores (workgroup path, T > 1: BK / 4) and the BK / 4 chunks,
// each around its reduction (subgroup path: log2 T; workgroup path, T > 1: T). Measured on
// lavapipe: the subgroup variant with D = 64 (T = 4, BK = 32) is right up to 49,920 keys and
// wrong from 49,952 on, as that count says.
//
// Key ranges (split-KV): with p.splits > 1 the keys are cut into ranges of p.split_keys (a
// multiple of BK) and each query block gets one workgroup per range, which walks only its
// range and writes its normalized partial output (zeros where its rows saw no key) and each
// row's log-sum-exp lse = m + log(l) of the scaled scores (NEG where none was seen) into
// buffers that shaders/attention_combine.wgsl merges into O. More workgroups for problems
// with few query blocks (decoding), and fewer loop passes per invocation. p.splits = 1 is
// the whole key sequence in one pass, written to O directly.
//
// Bindings (group 0): 0 uniform Params; 1 q (read); 2 k (read); 3 v (read); 4 mask (read; a
// placeholder when there is no key mask); 5 o (read_write; the partial outputs [S, ...] with
// key ranges); 6 lse (read_write, [S, rows, heads]; an unused stand-in, never written, with
// one range). The host binds windows of the tensors: *_first is the element of a binding
// where the dispatch's first row starts.
// Dispatch: batches * heads * q_blocks * splits workgroups, q_blocks = ceil(q_rows / BQ),
// split over x and y by `Gpu::grid`; workgroup w serves key range w % splits, and with
// w' = w / splits query block w' % q_blocks of head (w' / q_blocks) % heads of batch
// w' / (q_blocks * heads).
// Overrides: D (head dimension, 1..=256); T (threads per query, a power of two); DV (vec4s
// per thread, ceil(ceil(D / 4) / T) <= 8); BK (keys per tile, a multiple of 4); WG (threads per
// workgroup, a multiple of T); KV_LEN = BK * DV * T (vec4s of a K or V tile); PART_LEN
// (BK / 4 * WG when SUBGROUPS is false and T > 1, else 1); SUBGROUPS (the variant).
//
// Adapters without subgroups: naga rejects a module that merely contains subgroup operations
// there, even if an override makes them unreachable. For the workgroup variant the host
// therefore compiles this file with the block between the "subgroup helpers" markers replaced
// by the "//|" stand-ins that follow it (`portable_source` in src/ops/attention.rs).

// Params and the FLAG_ constants: shaders/lib/attention_params.wgsl.

// -FLT_MAX: the running max before any key was seen.
const NEG: f32 = -3.40282347e38;

override D: u32 = 64u;
override T: u32 = 4u;
override DV: u32 = 4u;
override BK: u32 = 32u;
override WG: u32 = 128u;
override KV_LEN: u32 = 512u;
override PART_LEN: u32 = 1u;
override SUBGROUPS: bool = false;
// vec4s per row of a K or V tile, and query rows per workgroup.
override D4P: u32 = DV * T;
override BQ: u32 = WG / T;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

var<workgroup> kt: array<vec4<f32>, KV_LEN>;  // key j of the tile, vec4 column c at j * D4P + c
var<workgroup> vt: array<vec4<f32>, KV_LEN>;
var<workgroup> seen: array<f32, BK>;           // 1 where key j exists and the mask allows it
var<workgroup> part: array<vec4<f32>, PART_LEN>; // partial scores, 4 keys per vec4 (workgroup path)
var<workgroup> rows_claimed: atomic<u32>;      // query rows handed out (subgroup path)

// ---- subgroup helpers: begin ----
// This invocation's lane: its rank among the active lanes, all of which are active where it
// is called.
fn sg_lane() -> u32 {
    return subgroupExclusiveAdd(1u);
}

fn sg_shuffle(value: u32, lane: u32) -> u32 {
    return subgroupShuffle(value, lane);
}

// Sum over the aligned group of T lanes, returned to all of them.
fn sg_group_sum(value: vec4<f32>) -> vec4<f32> {
    var s = value;
    for (var m = 1u; m < T; m = m << 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
}
// ---- subgroup helpers: end ----
//| fn sg_lane() -> u32 { return 0u; }
//| fn sg_shuffle(value: u32, lane: u32) -> u32 { return value; }
//| fn sg_group_sum(value: vec4<f32>) -> vec4<f32> { return value; }

// A thread's DV vec4 columns of one row of a head (c0 = column t, c1 = t + T, ...).
struct Slice {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
    c4: vec4<f32>,
    c5: vec4<f32>,
    c6: vec4<f32>,
    c7: vec4<f32>,
}

// Columns 4c .. 4c + 3 of the head starting at element `base`, zero past D.
fn load_q(base: u32, c: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    let d = 4u * c;
    if (d < D) { r.x = q[base + d]; }
    if (d + 1u < D) { r.y = q[base + d + 1u]; }
    if (d + 2u < D) { r.z = q[base + d + 2u]; }
    if (d + 3u < D) { r.w = q[base + d + 3u]; }
    return r;
}

fn load_k(base: u32, c: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    let d = 4u * c;
    if (d < D) { r.x = k[base + d]; }
    if (d + 1u < D) { r.y = k[base + d + 1u]; }
    if (d + 2u < D) { r.z = k[base + d + 2u]; }
    if (d + 3u < D) { r.w = k[base + d + 3u]; }
    return r;
}

fn load_v(base: u32, c: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    let d = 4u * c;
    if (d < D) { r.x = v[base + d]; }
    if (d + 1u < D) { r.y = v[base + d + 1u]; }
    if (d + 2u < D) { r.z = v[base + d + 2u]; }
    if (d + 3u < D) { r.w = v[base + d + 3u]; }
    return r;
}

fn store_o(base: u32, c: u32, value: vec4<f32>) {
    let d = 4u * c;
    if (d < D) { o[base + d] = value.x; }
    if (d + 1u < D) { o[base + d + 1u] = value.y; }
    if (d + 2u < D) { o[base + d + 2u] = value.z; }
    if (d + 3u < D) { o[base + d + 3u] = value.w; }
}

// The thread's slice of (scale * query row), zero in the padding columns.
fn load_query(base: u32, t: u32) -> Slice {
    var s: Slice;
    s.c0 = p.scale * load_q(base, t);
    if (DV > 1u) { s.c1 = p.scale * load_q(base, t + T); }
    if (DV > 2u) { s.c2 = p.scale * load_q(base, t + 2u * T); }
    if (DV > 3u) { s.c3 = p.scale * load_q(base, t + 3u * T); }
    if (DV > 4u) { s.c4 = p.scale * load_q(base, t + 4u * T); }
    if (DV > 5u) { s.c5 = p.scale * load_q(base, t + 5u * T); }
    if (DV > 6u) { s.c6 = p.scale * load_q(base, t + 6u * T); }
    if (DV > 7u) { s.c7 = p.scale * load_q(base, t + 7u * T); }
    return s;
}

// The thread's part of the dot product of its query slice with tile key j.
fn key_dot(s: Slice, j: u32, t: u32) -> f32 {
    let r = j * D4P + t;
    var acc = dot(s.c0, kt[r]);
    if (DV > 1u) { acc += dot(s.c1, kt[r + T]); }
    if (DV > 2u) { acc += dot(s.c2, kt[r + 2u * T]); }
    if (DV > 3u) { acc += dot(s.c3, kt[r + 3u * T]); }
    if (DV > 4u) { acc += dot(s.c4, kt[r + 4u * T]); }
    if (DV > 5u) { acc += dot(s.c5, kt[r + 5u * T]); }
    if (DV > 6u) { acc += dot(s.c6, kt[r + 6u * T]); }
    if (DV > 7u) { acc += dot(s.c7, kt[r + 7u * T]); }
    return acc;
}

// Partial scores of tile keys j .. j + 3.
fn partial_scores(s: Slice, j: u32, t: u32) -> vec4<f32> {
    return vec4<f32>(key_dot(s, j, t), key_dot(s, j + 1u, t), key_dot(s, j + 2u, t), key_dot(s, j + 3u, t));
}

// One column of the accumulator: a * c + sum_u w[u] * V[j + u, column at vec4 r].
fn mix_keys(a: vec4<f32>, c: f32, w: vec4<f32>, r: u32) -> vec4<f32> {
    let v0 = vt[r];
    let v1 = vt[r + D4P];
    let v2 = vt[r + 2u * D4P];
    let v3 = vt[r + 3u * D4P];
    return fma(vec4<f32>(w.w), v3, fma(vec4<f32>(w.z), v2, fma(vec4<f32>(w.y), v1, fma(vec4<f32>(w.x), v0, a * c))));
}

fn store_row(base: u32, t: u32, a: Slice, inv: f32) {
    store_o(base, t, a.c0 * inv);
    if (DV > 1u) { store_o(base, t + T, a.c1 * inv); }
    if (DV > 2u) { store_o(base, t + 2u * T, a.c2 * inv); }
    if (DV > 3u) { store_o(base, t + 3u * T, a.c3 * inv); }
    if (DV > 4u) { store_o(base, t + 4u * T, a.c4 * inv); }
    if (DV > 5u) { store_o(base, t + 5u * T, a.c5 * inv); }
    if (DV > 6u) { store_o(base, t + 6u * T, a.c6 * inv); }
    if (DV > 7u) { store_o(base, t + 7u * T, a.c7 * inv); }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wk = linear_workgroup(wid, nwg);
    let split = wk % p.splits;
    let w = wk / p.splits;
    let qb = w % p.q_blocks;
    let h = (w / p.q_blocks) % p.heads;
    let b = w / (p.q_blocks * p.heads);
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (b >= p.batches) { return; }

    // The query row (slot of the block) and the columns (t) this thread serves.
    var slot = lid / T;
    var t = lid % T;
    // With T == 1 a thread is a group: nothing to reduce, any mapping will do.
    if (SUBGROUPS && T > 1u) {
        let lane = sg_lane();
        t = lane % T;
        var claimed = 0u;
        if (t == 0u) {
            claimed = atomicAdd(&rows_claimed, 1u);
        }
        slot = sg_shuffle(claimed, lane - t);
    }
    let row = qb * BQ + slot;       // query row among this dispatch's rows of batch b
    let live = row < p.q_rows;      // idle threads still load tiles and meet the barriers
    let qrow = p.q_row0 + row;      // query index within the batch, for the causal mask
    let head = h * D;
    let qs = load_query(p.q_first + b * p.q_batch + min(row, p.q_rows - 1u) * p.row_stride + head, t);

    // Keys the block needs of its range: with the causal mask, none past its last query.
    let kstart = split * p.split_keys;
    var kend = min(p.nk, kstart + p.split_keys);
    if ((p.flags & FLAG_CAUSAL) != 0u) {
        kend = min(kend, p.q_row0 + min(qb * BQ + BQ, p.q_rows));
    }
    let kv_base = b * p.nk * p.row_stride + head;

    var m = NEG;
    var l = 0.0;
    // The accumulator: vec4 columns t, t + T, ... (named variables, see the header).
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    for (var k0 = kstart; k0 < kend; k0 += BK) {
        workgroupBarrier(); // every thread is done with the previous tile
        for (var e = lid; e < KV_LEN; e += WG) {
            let key = k0 + e / D4P;
            let c = e % D4P;
            var kv = vec4<f32>(0.0);
            var vv = vec4<f32>(0.0);
            // Zeros past the last key: a weight of 0 times stale data could be NaN.
            if (key < kend) {
                let r = kv_base + key * p.row_stride;
                kv = load_k(p.k_first + r, c);
                vv = load_v(p.v_first + r, c);
            }
            kt[e] = kv;
            vt[e] = vv;
        }
        for (var j = lid; j < BK; j += WG) {
            let key = k0 + j;
            var ok = 0.0;
            if (key < kend) {
                ok = 1.0;
                if ((p.flags & FLAG_MASK) != 0u && mask[p.mask_first + b * p.nk + key] == 0.0) {
                    ok = 0.0;
                }
            }
            seen[j] = ok;
        }
        workgroupBarrier();

        let chunks = (min(BK, kend - k0) + 3u) / 4u;
        if (!SUBGROUPS && T > 1u) {
            for (var jq = 0u; jq < chunks; jq++) {
                part[jq * WG + lid] = partial_scores(qs, 4u * jq, t);
            }
            workgroupBarrier();
        }
        for (var jq = 0u; jq < chunks; jq++) {
            let j = 4u * jq;
            var s: vec4<f32>;
            if (SUBGROUPS) {
                s = sg_group_sum(partial_scores(qs, j, t));
            } else if (T == 1u) {
                s = partial_scores(qs, j, t);
            } else {
                s = vec4<f32>(0.0);
                let g = jq * WG + slot * T;
                for (var u = 0u; u < T; u++) {
                    s += part[g + u];
                }
            }
            var vis = vec4<f32>(seen[j], seen[j + 1u], seen[j + 2u], seen[j + 3u]) != vec4<f32>(0.0);
            if ((p.flags & FLAG_CAUSAL) != 0u) {
                let keys = vec4<u32>(k0 + j) + vec4<u32>(0u, 1u, 2u, 3u);
                vis = vis & (keys <= vec4<u32>(qrow));
            }
            let sv = select(vec4<f32>(NEG), s, vis);
            let m_new = max(m, max(max(sv.x, sv.y), max(sv.z, sv.w)));
            let c = exp(m - m_new);
            let wts = select(vec4<f32>(0.0), exp(sv - vec4<f32>(m_new)), vis);
            l = l * c + ((wts.x + wts.y) + (wts.z + wts.w));
            // acc * c + the weighted V rows of tile keys j .. j + 3.
            let r = j * D4P + t;
            a0 = mix_keys(a0, c, wts, r);
            if (DV > 1u) { a1 = mix_keys(a1, c, wts, r + T); }
            if (DV > 2u) { a2 = mix_keys(a2, c, wts, r + 2u * T); }
            if (DV > 3u) { a3 = mix_keys(a3, c, wts, r + 3u * T); }
            if (DV > 4u) { a4 = mix_keys(a4, c, wts, r + 4u * T); }
            if (DV > 5u) { a5 = mix_keys(a5, c, wts, r + 5u * T); }
            if (DV > 6u) { a6 = mix_keys(a6, c, wts, r + 6u * T); }
            if (DV > 7u) { a7 = mix_keys(a7, c, wts, r + 7u * T); }
            m = m_new;
        }
    }

    if (live) {
        // No key seen: l == 0 and acc == 0, and the row is zeros.
        let inv = select(0.0, 1.0 / l, l > 0.0);
        let at = p.o_first + split * p.o_split + b * p.q_batch + row * p.row_stride + head;
        store_row(at, t, Slice(a0, a1, a2, a3, a4, a5, a6, a7), inv);
        if (p.splits > 1u && t == 0u) {
            let r = b * p.q_rows + row;
            lse[p.lse_first + split * p.lse_split + r * p.heads + h] = select(NEG, m + log(l), l > 0.0);
        }
    }
}
