// attention_f16: fused scaled-dot-product multi-head attention with f16 Q, K and V and f32
// accumulation (host src/ops/attention_f16.rs, f64 reference src/cpu/attention_f16.rs): the
// contract of shaders/attention.wgsl (layouts [B, N, H * D], scale, the top-left causal mask,
// Params) for head dimensions D that are multiples of 16 up to 128, at least 16 keys, no key
// mask; the output is f32.
//
// Algorithm (FlashAttention-2 style, one pass over the keys): a workgroup is one subgroup (SG
// invocations) and owns BQ = 32 query rows of one (batch, head). It walks the keys in blocks
// of BK (64, or 32 where workgroup memory is short), four steps per block, each followed by a
// barrier:
//   1. scores: Ss = Qs K_blockᵀ (BQ x BK, f32), by the tile library;
//   2. the online softmax, one row per invocation (rows lane, lane + SG, ...): the row's
//      maximum over the keys it sees updates the running maximum ms; P = exp(S - ms), rounded
//      to f16, goes to Ps (0 for the keys it does not see); the running sum ls adds the
//      rounded P, so that the output is an exact weighted mean of V with the weights the
//      product uses; the row of Os is rescaled by exp(ms_old - ms_new) when that is not 1;
//   3. accumulate: Os += Ps V_block (BQ x D, f32), by the tile library;
// and at the end O = Os / ls is stored for the rows the dispatch holds (0 for a row that saw
// no key; with the mask here every row sees key 0).
//
// The tile library does steps 1 and 3 and is the only difference between the two builds:
// shaders/lib/attention_f16_coop.wgsl on the tensor cores (16 x 16 x 16 cooperative matrices,
// K and V tiles loaded straight from the storage buffers), shaders/lib/attention_f16_portable.wgsl
// with one value per invocation (any adapter with SHADER_F16; it is how lavapipe tests
// everything else of this kernel). Both define scores(k_base, j0, lane) and
// accumulate(v_base, j0, lane), called in uniform control flow.
//
// Key tiles: tile t of the block at j0 starts at key min(j0 + 16 t, Nk - 16), so that every
// 16-row load stays inside K and V (Nk >= 16). A tile clamped back repeats keys of the tile
// before it: column c of tile t is key kj + c, which the row sees only if it is at least
// j0 + 16 t (and, with the causal mask, at most the row's query); P is 0 for the others, so
// they weigh nothing in the product.
//
// Workgroup memory (rows padded by 16 bytes so that the rows of a 16 x 16 load fall on other
// banks; the softmax's invocation r walks row r from column r on, so that the invocations of a
// subgroup touch different banks): Qs (BQ x D f16), Ss (BQ x BK f32), Ps (BQ x BK f16), Os
// (BQ x D f32), ms and ls (BQ f32): 4.2 + 8.7 + 4.6 + 8.7 KiB for D = 64, BK = 64. Every value
// read is written first (Qs, Os, ms and ls before the first barrier; Ss by every scores and Ps
// by every softmax step, each before a barrier; the pads are never read), so the host creates
// the pipeline without zero-initializing workgroup memory.
//
// The running max starts at -FLT_MAX rather than -inf (see shaders/attention.wgsl): the first
// rescale factor exp(-FLT_MAX - m') is 0 and multiplies an ls and Os that are still 0. Scores
// are scaled by scale * log2(e) and exponentiated with exp2.
//
// Loops: lavapipe ends all loops of an invocation after 65,535 passes in all, silently; the
// host bounds them (loop_iterations in src/ops/attention_f16.rs, counted as `looped` in
// src/ops/loop_limit.rs says) and cuts the keys into ranges that fit, or refuses what it
// cannot cut. The busiest invocation runs: the query tile (BQ * D / SG passes), the row state
// (BQ / SG), per block of BK keys the scores (coop: BK / 16 tiles of D / 16 steps; portable:
// BQ * BK / SG scores, one pass each), the softmax (BQ / SG rows of BK / 4, BK / 4 and D / 4
// passes), the accumulation (coop: D / 16 column tiles of BK / 16 steps; portable: BQ * D / SG
// outputs, one pass each), the stores (BQ * D / SG) and the log-sum-exps (BQ / SG): 123 passes
// per block at D = 64, BK = 64, SG = 64 in the portable build, so one range takes up to about
// 34,000 keys on lavapipe.
//
// Key ranges (split-KV), as in shaders/attention.wgsl: with p.splits > 1 each query block
// gets one workgroup per range of p.split_keys keys (whole blocks of BK, so that no block
// straddles two ranges), which writes its normalized partial output at o_first + s * o_split
// and each row's log-sum-exp into lse, for shaders/attention_combine.wgsl to merge.
//
// Bindings (group 0): 0 uniform Params (shaders/lib/attention_params.wgsl; mask_first unused,
// FLAG_MASK never set); 1 q, 2 k, 3 v (read, f16); 4 o (read_write, f32; the partial outputs
// with key ranges); 5 lse (read_write, [S, rows, heads]; an unused stand-in, never written,
// with one range). *_first are element offsets of the windows, multiples of 16 (as the row
// stride H * D is).
// Dispatch: batches * heads * q_blocks * splits workgroups (q_blocks = ceil(q_rows / BQ)),
// split over x and y by `Gpu::grid`; workgroup w serves key range w % splits, and with
// w' = w / splits query block w' % q_blocks of head (w' / q_blocks) % heads of batch
// w' / (q_blocks * heads).
// Overrides: SG (invocations per workgroup: the subgroup size for the coop build); D; BK.
// Requires SHADER_F16; the coop build also EXPERIMENTAL_COOPERATIVE_MATRIX with a
// 16 x 16 x 16 f16 -> f32 configuration.

enable f16;

// -FLT_MAX: the running max before any key was seen.
const NEG: f32 = -3.40282347e38;
const LOG2E: f32 = 1.44269504;

override SG: u32 = 32u;
override D: u32 = 64u;
override BK: u32 = 64u;
const BQ: u32 = 32u;
// Row strides of the workgroup tiles, in elements: 16 bytes of padding each.
override QLD: u32 = D + 8u;
override SLD: u32 = BK + 4u;
override PLD: u32 = BK + 8u;
override OLD: u32 = D + 4u;
// The arrays' lengths, named: naga 30 gives an array length that mixes a const and an override
// an override without a name, which its pipeline-constant pass cannot process.
override QS_LEN: u32 = BQ * QLD;
override SS_LEN: u32 = BQ * SLD;
override PS_LEN: u32 = BQ * PLD;
override OS_LEN: u32 = BQ * OLD;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f16>;
@group(0) @binding(2) var<storage, read> k: array<f16>;
@group(0) @binding(3) var<storage, read> v: array<f16>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

var<workgroup> Qs: array<f16, QS_LEN>;
var<workgroup> Ss: array<f32, SS_LEN>;
var<workgroup> Ps: array<f16, PS_LEN>;
var<workgroup> Os: array<f32, OS_LEN>;
var<workgroup> ms: array<f32, BQ>;
var<workgroup> ls: array<f32, BQ>;

// The first key of tile t of the block at j0 (clamped so that its 16 rows lie inside K).
fn tile_key(j0: u32, t: u32) -> u32 {
    return min(j0 + 16u * t, p.nk - 16u);
}

// Whether a row with query `query` sees column c of the block at j0: not a key that a tile
// clamped back repeats from the tile before, nor (causal) past the query.
fn sees(c: u32, j0: u32, query: u32, causal: bool) -> bool {
    let t = c / 16u;
    let key = tile_key(j0, t) + c % 16u;
    return key >= j0 + 16u * t && (!causal || key <= query);
}

// The larger of m and row r's scaled score of column c, where the row sees it.
fn max_seen(m: f32, r: u32, c: u32, j0: u32, query: u32, causal: bool, scale: f32) -> f32 {
    if (sees(c, j0, query, causal)) {
        return max(m, Ss[r * SLD + c] * scale);
    }
    return m;
}

// Writes row r's weight of column c (f16; 0 where unseen or not live) to Ps and returns it.
fn weigh(r: u32, c: u32, j0: u32, query: u32, live: bool, causal: bool, scale: f32, m: f32) -> f32 {
    var weight = 0.0h;
    if (live && sees(c, j0, query, causal)) {
        weight = f16(exp2(Ss[r * SLD + c] * scale - m));
    }
    Ps[r * PLD + c] = weight;
    return f32(weight);
}

// Step 2 for row r (query `query` within its batch; `live`: the row is one of the dispatch's).
// Columns go 4 per loop pass (BK and D are multiples of 16), in the order of a plain loop, to
// spend a quarter of the loop passes (see Loops above).
fn softmax_row(r: u32, j0: u32, query: u32, live: bool, causal: bool, scale: f32) {
    let m_old = ms[r];
    var m_new = m_old;
    if (live) {
        for (var i = 0u; i < BK; i += 4u) {
            m_new = max_seen(m_new, r, (i + r) % BK, j0, query, causal, scale);
            m_new = max_seen(m_new, r, (i + r + 1u) % BK, j0, query, causal, scale);
            m_new = max_seen(m_new, r, (i + r + 2u) % BK, j0, query, causal, scale);
            m_new = max_seen(m_new, r, (i + r + 3u) % BK, j0, query, causal, scale);
        }
    }
    var sum = 0.0;
    for (var i = 0u; i < BK; i += 4u) {
        sum += weigh(r, (i + r) % BK, j0, query, live, causal, scale, m_new);
        sum += weigh(r, (i + r + 1u) % BK, j0, query, live, causal, scale, m_new);
        sum += weigh(r, (i + r + 2u) % BK, j0, query, live, causal, scale, m_new);
        sum += weigh(r, (i + r + 3u) % BK, j0, query, live, causal, scale, m_new);
    }
    let alpha = exp2(m_old - m_new);
    ms[r] = m_new;
    ls[r] = ls[r] * alpha + sum;
    if (alpha != 1.0) {
        let o0 = r * OLD;
        for (var i = 0u; i < D; i += 4u) {
            Os[o0 + (i + r) % D] *= alpha;
            Os[o0 + (i + r + 1u) % D] *= alpha;
            Os[o0 + (i + r + 2u) % D] *= alpha;
            Os[o0 + (i + r + 3u) % D] *= alpha;
        }
    }
}

@compute @workgroup_size(SG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let wk = linear_workgroup(wid, nwg);
    if (wk >= p.batches * p.heads * p.q_blocks * p.splits) {
        return; // the whole workgroup: barriers and cooperative operations stay uniform
    }
    let split = wk % p.splits;
    let w = wk / p.splits;
    let qb = w % p.q_blocks;
    let head = (w / p.q_blocks) % p.heads;
    let batch = w / (p.q_blocks * p.heads);
    let row0 = qb * BQ;
    let q_base = p.q_first + batch * p.q_batch + head * D;
    let o_base = p.o_first + split * p.o_split + batch * p.q_batch + head * D;
    let k_base = p.k_first + batch * p.nk * p.row_stride + head * D;
    let v_base = p.v_first + batch * p.nk * p.row_stride + head * D;
    let causal = (p.flags & FLAG_CAUSAL) != 0u;
    let scale = p.scale * LOG2E;

    // The query tile (zeros past the dispatch's rows), a zero output, the row state.
    for (var e = lane; e < BQ * D; e += SG) {
        let r = e / D;
        let d = e % D;
        var x = 0.0h;
        if (row0 + r < p.q_rows) {
            x = q[q_base + (row0 + r) * p.row_stride + d];
        }
        Qs[r * QLD + d] = x;
        Os[r * OLD + d] = 0.0;
    }
    for (var r = lane; r < BQ; r += SG) {
        ms[r] = NEG;
        ls[r] = 0.0;
    }
    // The keys the workgroup needs of its range: all, or with the causal mask those up to its
    // last row.
    let keys_start = split * p.split_keys;
    var keys_end = min(p.nk, keys_start + p.split_keys);
    if (causal) {
        keys_end = min(p.nk, p.q_row0 + min(row0 + BQ, p.q_rows));
    }
    workgroupBarrier();

    for (var j0 = keys_start; j0 < keys_end; j0 += BK) {
        scores(k_base, j0, lane);
        workgroupBarrier();
        for (var r = lane; r < BQ; r += SG) {
            softmax_row(r, j0, p.q_row0 + row0 + r, row0 + r < p.q_rows, causal, scale);
        }
        workgroupBarrier();
        accumulate(v_base, j0, lane);
        workgroupBarrier();
    }

    for (var e = lane; e < BQ * D; e += SG) {
        let r = e / D;
        let d = e % D;
        if (row0 + r < p.q_rows) {
            let l = ls[r];
            o[o_base + (row0 + r) * p.row_stride + d] = select(0.0, Os[r * OLD + d] / l, l > 0.0);
        }
    }
    // With key ranges, each row's log-sum-exp of the scaled scores in natural units (ms is in
    // base 2): (ms + log2 ls) / log2(e), NEG where the row saw no key.
    if (p.splits > 1u) {
        for (var r = lane; r < BQ; r += SG) {
            if (row0 + r < p.q_rows) {
                let l = ls[r];
                let at = p.lse_first + split * p.lse_split + (batch * p.q_rows + row0 + r) * p.heads + head;
                lse[at] = select(NEG, (ms[r] + log2(l)) / LOG2E, l > 0.0);
            }
        }
    }
}
