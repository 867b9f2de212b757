// attention_blocked: fused scaled-dot-product multi-head attention, register-blocked (host
// src/ops/attention_blocked.rs, f64 reference src/cpu/attention.rs): the contract of
// shaders/attention.wgsl (layouts, scale, the top-left causal mask, Params) for head
// dimensions D = 8 * TX (32 or 64) and no key mask.
//
// Algorithm (FlashAttention-2 style, one pass, f32 throughout): a workgroup of TX x TY threads
// owns BQ = 8 TY query rows of one (batch, head), the scaled query tile held in workgroup
// memory, and walks the keys in tiles of BK = D. Per key tile, both products are 8 x 8
// register blocks per thread (Tile and step, shaders/lib/tile8.wgsl), as in matmul_tiled:
//   S = Q K^T (BQ x BK): thread (tx, ty) holds rows 4ty .. 4ty+3 and 4ty+4TY .. 4ty+4TY+3 of
//       the tile, keys 4tx .. 4tx+3 and 4tx+4TX .. 4tx+4TX+3;
//   the online softmax: each row's maximum over the tile (partial maxima of the TX threads of
//       a row through workgroup memory) updates the running maximum m; the running output and
//       the thread's partial row sums l are rescaled by exp(m_old - m_new); P = exp(S - m) for
//       the keys the row sees, 0 for the others (past Nk, or past the query with the causal
//       mask), goes to workgroup memory;
//   O += P V (BQ x D): the thread holds the same rows and columns 4tx .. 4tx+3, 4tx+4TX ..
//       4tx+4TX+3 of the output.
// At the end the partial row sums are added up (workgroup memory again) and O / l is stored; a
// row that saw no key would get zeros (every row sees key 0 here). Per step of either product a
// thread reads 4 vec4s of workgroup memory for 64 FMAs; threads of a row read neighbouring
// vec4s and the same vec4 of the other operand (a broadcast), so reads are free of bank
// conflicts.
//
// Workgroup memory: Qs (the scaled query tile, Qs[d][row], BQ * D values), KVs (the key tile
// transposed, Ks[d][key] with each row's vec4 columns swizzled (key_column), then the value
// tile, Vs[key][col]: BK * D values) and Ps (the
// probabilities, Ps[key][row] with each row's vec4 columns swizzled (prob_at), BK * BQ values,
// which also holds the partial maxima and sums);
// 4 * (BQ * D + D * D + D * BQ) bytes: 48 KiB for D = 64, TY = 8; 32 KiB for D = 64, TY = 4.
// Every value is written before it is read (Qs before the first barrier; each KVs and Ps use
// is preceded by its writes and a barrier), so the host creates the pipeline without
// zero-initializing workgroup memory. Rows past the dispatch's query rows and keys past Nk
// load the last row instead (clamped, finite) and are never stored or weighted.
//
// The running max starts at -FLT_MAX rather than -inf (see shaders/attention.wgsl): the first
// rescale factor exp(-FLT_MAX - m') is 0 and multiplies an l and O that are still 0.
//
// Loops: lavapipe ends all loops of an invocation after 65,535 passes in all, silently, and
// every invocation walks all the keys its block needs in its range, so the host cuts the keys
// into ranges that fit, or refuses what it cannot cut (BlockedConfig::loop_iterations in
// src/ops/attention_blocked.rs, counted as `looped` in src/ops/loop_limit.rs says): the query
// tile's load (BQ * D4 / (TX * TY) passes), then per tile of D keys one pass of the tile loop
// around the key and value loads (D * D4 / (TX * TY) each), both products' D steps and the
// maxima's reduction (TX - 1), and at the end the sums' reduction (TX - 1) and the two stores
// of 4 log-sum-exps: 205 passes per tile at D = 64, TY = 4, about 20,400 keys per range on
// lavapipe (measured before ranges: right up to 21,248 keys, wrong from 21,312).
//
// Key ranges (split-KV), as in shaders/attention.wgsl: with p.splits > 1 each query block
// gets one workgroup per range of p.split_keys keys (whole tiles of D), which writes its
// normalized partial output at o_first + s * o_split and each row's log-sum-exp m + log(l)
// into lse (by the row's first thread), for shaders/attention_combine.wgsl to merge.
//
// Bindings (group 0): 0 uniform Params (shaders/lib/attention_params.wgsl; mask_first unused,
// FLAG_MASK never set); 1 q, 2 k, 3 v (read, vec4); 4 o (read_write, vec4; the partial outputs
// with key ranges); 5 lse (read_write, [S, rows, heads]; an unused stand-in, never written,
// with one range). *_first are element offsets of the windows (multiples of 4, as the row
// stride H * D is).
// Dispatch: batches * heads * q_blocks * splits workgroups (q_blocks = ceil(q_rows / BQ)),
// split over x and y by `Gpu::grid`; workgroup w serves key range w % splits, and with
// w' = w / splits query block w' % q_blocks of head (w' / q_blocks) % heads of batch
// w' / (q_blocks * heads).
// Overrides: TX (4 or 8: D = BK = 8 TX); TY (threads along the queries: BQ = 8 TY).
// Trusted (compiled without runtime checks, see Kernel::trusted): global rows are clamped
// below q_rows and Nk, whose rows the host's windows hold (q_rows per batch at q_batch
// apart, Nk per batch of K and V), and stores are guarded by q_rows; workgroup indices are
// below their arrays by construction (c4 < D4 and key, row < D, BQ give 4 c4 + 3 < D rows of
// D4 or BQ4 vec4s; key_column permutes a row's D4 columns; tx < TX, ty < TY, so 4tx + 4TX + 3 < D and ty + TY < BQ4); the divisors
// are the overrides D4, BQ4 and 4, and q_blocks, heads and splits, which the host keeps >= 1;
// log-sum-exps are written only with splits > 1, below q_rows, into the host's [S, rows,
// heads] buffer; every loop is bounded by overrides or by Params.

// Params and the FLAG_ constants: shaders/lib/attention_params.wgsl. Tile, step:
// shaders/lib/tile8.wgsl. linear_workgroup: shaders/lib/grid.wgsl.

// -FLT_MAX: the running max before any key was seen.
const NEG: f32 = -3.40282347e38;

override TX: u32 = 8u;
override TY: u32 = 8u;
// The head dimension and keys per tile; query rows per workgroup; vec4s along D and BQ.
override D: u32 = 8u * TX;
override BQ: u32 = 8u * TY;
override D4: u32 = 2u * TX;
override BQ4: u32 = 2u * TY;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

var<workgroup> Qs: array<vec4<f32>, D * BQ4>;  // Qs[d][row / 4]
var<workgroup> KVs: array<vec4<f32>, D * D4>;  // Ks[d][key / 4], then Vs[key][col / 4]
var<workgroup> Ps: array<vec4<f32>, D * BQ4>;  // Ps[key][row / 4]; partial maxima and sums

// Values per row for the thread's 8 rows: rows 4ty .. 4ty+3 in lo, 4ty+4TY .. in hi.
struct Rows {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// Which of the keys `keys` query `row` (its index within its batch) sees.
fn visible(keys: vec4<u32>, row: u32) -> vec4<bool> {
    let inside = keys < vec4<u32>(p.nk);
    if ((p.flags & FLAG_CAUSAL) == 0u) {
        return inside;
    }
    return inside & (keys <= vec4<u32>(row));
}

// The largest of the values that are seen (NEG when none is).
fn seen_max(a: vec4<f32>, sa: vec4<bool>, b: vec4<f32>, sb: vec4<bool>) -> f32 {
    let x = max(select(vec4<f32>(NEG), a, sa), select(vec4<f32>(NEG), b, sb));
    return max(max(x.x, x.y), max(x.z, x.w));
}

// exp(s - m) where seen, else 0.
fn weights(s: vec4<f32>, m: f32, seen: vec4<bool>) -> vec4<f32> {
    return select(vec4<f32>(0.0), exp(s - vec4<f32>(m)), seen);
}

// Where thread column t keeps its partial values of query rows 4c .. 4c + 3 in Ps during a
// reduction: row t of Ps at column c ^ (t % min(8, BQ4)), so that the 8 threads of a
// workgroup row, which store the same c for t = 0 .. 7, hit different banks; a permutation of
// the row's BQ4 columns.
fn part_at(t: u32, c: u32) -> u32 {
    return t * BQ4 + (c ^ (t & (min(8u, BQ4) - 1u)));
}

// Adds the thread's partial row values to the workgroup's: all TX threads of each row write
// theirs into Ps, and every thread reads back the reduction (max or sum) for its rows.
// Starts and ends with a barrier, so Ps may be in use before and after.
fn reduce_rows(part: Rows, tx: u32, ty: u32, take_max: bool) -> Rows {
    workgroupBarrier();
    Ps[part_at(tx, ty)] = part.lo;
    Ps[part_at(tx, ty + TY)] = part.hi;
    workgroupBarrier();
    var r = Rows(Ps[part_at(0u, ty)], Ps[part_at(0u, ty + TY)]);
    for (var t = 1u; t < TX; t++) {
        let lo = Ps[part_at(t, ty)];
        let hi = Ps[part_at(t, ty + TY)];
        if (take_max) {
            r = Rows(max(r.lo, lo), max(r.hi, hi));
        } else {
            r = Rows(r.lo + lo, r.hi + hi);
        }
    }
    workgroupBarrier();
    return r;
}

// Where row d of the transposed key tile keeps its vec4 column c (keys 4c .. 4c + 3): at
// c ^ ((d / 4) % 8), a permutation of the row's D4 columns (D4 = 8 or 16, a power of two of
// at least 8). Rows lie 32 or 64 words apart, a multiple of the 32 banks, so without it the
// 32 transposing stores of a subgroup (4 keys of one column, 8 vec4s of d: rows 4 apart)
// would hit the same 4 banks; with it they hit all 32. (With 16 threads per key, as before,
// they hit 2.) A step's reads stay a permutation of consecutive vec4s.
fn key_column(d: u32, c: u32) -> u32 {
    return c ^ ((d / 4u) % 8u);
}

// Multiplies each row of the block by its factor.
fn scale_rows(t: Tile, f: Rows) -> Tile {
    var o: Tile;
    o.r0l = t.r0l * f.lo.x; o.r0h = t.r0h * f.lo.x;
    o.r1l = t.r1l * f.lo.y; o.r1h = t.r1h * f.lo.y;
    o.r2l = t.r2l * f.lo.z; o.r2h = t.r2h * f.lo.z;
    o.r3l = t.r3l * f.lo.w; o.r3h = t.r3h * f.lo.w;
    o.r4l = t.r4l * f.hi.x; o.r4h = t.r4h * f.hi.x;
    o.r5l = t.r5l * f.hi.y; o.r5h = t.r5h * f.hi.y;
    o.r6l = t.r6l * f.hi.z; o.r6h = t.r6h * f.hi.z;
    o.r7l = t.r7l * f.hi.w; o.r7h = t.r7h * f.hi.w;
    return o;
}

// Where row `key` of the probability tile keeps its vec4 column c (query rows 4c .. 4c + 3):
// at c ^ ((key / 4) % min(8, BQ4)), a permutation of the row's BQ4 columns (a power of two).
// The 8 threads of a row of the workgroup store keys 4 apart, whose rows lie a multiple of the
// 32 banks apart: unswizzled their vec4 stores would all hit the same 4 banks.
fn prob_at(key: u32, c: u32) -> u32 {
    return key * BQ4 + (c ^ ((key / 4u) & (min(8u, BQ4) - 1u)));
}

// Stores the thread's 8 probability rows for its 8 keys into Ps[key][row / 4] (columns
// swizzled by prob_at).
fn store_weights(w: Tile, tx: u32, ty: u32) {
    let lo = 4u * tx;
    let hi = 4u * tx + 4u * TX;
    Ps[prob_at(lo + 0u, ty)] = vec4<f32>(w.r0l.x, w.r1l.x, w.r2l.x, w.r3l.x);
    Ps[prob_at(lo + 0u, ty + TY)] = vec4<f32>(w.r4l.x, w.r5l.x, w.r6l.x, w.r7l.x);
    Ps[prob_at(hi + 0u, ty)] = vec4<f32>(w.r0h.x, w.r1h.x, w.r2h.x, w.r3h.x);
    Ps[prob_at(hi + 0u, ty + TY)] = vec4<f32>(w.r4h.x, w.r5h.x, w.r6h.x, w.r7h.x);
    Ps[prob_at(lo + 1u, ty)] = vec4<f32>(w.r0l.y, w.r1l.y, w.r2l.y, w.r3l.y);
    Ps[prob_at(lo + 1u, ty + TY)] = vec4<f32>(w.r4l.y, w.r5l.y, w.r6l.y, w.r7l.y);
    Ps[prob_at(hi + 1u, ty)] = vec4<f32>(w.r0h.y, w.r1h.y, w.r2h.y, w.r3h.y);
    Ps[prob_at(hi + 1u, ty + TY)] = vec4<f32>(w.r4h.y, w.r5h.y, w.r6h.y, w.r7h.y);
    Ps[prob_at(lo + 2u, ty)] = vec4<f32>(w.r0l.z, w.r1l.z, w.r2l.z, w.r3l.z);
    Ps[prob_at(lo + 2u, ty + TY)] = vec4<f32>(w.r4l.z, w.r5l.z, w.r6l.z, w.r7l.z);
    Ps[prob_at(hi + 2u, ty)] = vec4<f32>(w.r0h.z, w.r1h.z, w.r2h.z, w.r3h.z);
    Ps[prob_at(hi + 2u, ty + TY)] = vec4<f32>(w.r4h.z, w.r5h.z, w.r6h.z, w.r7h.z);
    Ps[prob_at(lo + 3u, ty)] = vec4<f32>(w.r0l.w, w.r1l.w, w.r2l.w, w.r3l.w);
    Ps[prob_at(lo + 3u, ty + TY)] = vec4<f32>(w.r4l.w, w.r5l.w, w.r6l.w, w.r7l.w);
    Ps[prob_at(hi + 3u, ty)] = vec4<f32>(w.r0h.w, w.r1h.w, w.r2h.w, w.r3h.w);
    Ps[prob_at(hi + 3u, ty + TY)] = vec4<f32>(w.r4h.w, w.r5h.w, w.r6h.w, w.r7h.w);
}

// Stores the log-sum-exps of rows row .. row + 3 (within the dispatch's query rows) that exist,
// at [split][batch * q_rows + row][head].
fn store_lse(split: u32, batch: u32, head: u32, row: u32, values: vec4<f32>) {
    for (var i = 0u; i < 4u; i++) {
        if (row + i < p.q_rows) {
            lse[p.lse_first + split * p.lse_split + (batch * p.q_rows + row + i) * p.heads + head] = values[i];
        }
    }
}

// Stores row `row` (within the dispatch's query rows) of the output if it exists.
fn store_row(o_base: u32, row: u32, tx: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= p.q_rows) {
        return;
    }
    let at = (o_base + row * p.row_stride) / 4u;
    o[at + tx] = lo;
    o[at + tx + TX] = hi;
}

@compute @workgroup_size(TX, TY, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let wk = linear_workgroup(wid, nwg);
    if (wk >= p.batches * p.heads * p.q_blocks * p.splits) {
        return; // the whole workgroup: barriers below stay uniform
    }
    let split = wk % p.splits;
    let w = wk / p.splits;
    let tx = lid.x;
    let ty = lid.y;
    let l = ty * TX + tx;
    let threads = TX * TY;
    let qb = w % p.q_blocks;
    let head = (w / p.q_blocks) % p.heads;
    let batch = w / (p.q_blocks * p.heads);
    let row0 = qb * BQ;
    let q_base = p.q_first + batch * p.q_batch + head * D;
    let o_base = p.o_first + split * p.o_split + batch * p.q_batch + head * D;
    let k_base = p.k_first + batch * p.nk * p.row_stride + head * D;
    let v_base = p.v_first + batch * p.nk * p.row_stride + head * D;

    // The scaled query tile, transposed: Qs[d][row / 4].
    for (var e = l; e < BQ * D4; e += threads) {
        let row = e / D4;
        let c4 = e % D4;
        let r = min(row0 + row, p.q_rows - 1u);
        let x = p.scale * q[(q_base + r * p.row_stride) / 4u + c4];
        let at = 4u * c4 * BQ4 + row / 4u;
        let lane = row % 4u;
        Qs[at][lane] = x.x;
        Qs[at + BQ4][lane] = x.y;
        Qs[at + 2u * BQ4][lane] = x.z;
        Qs[at + 3u * BQ4][lane] = x.w;
    }

    // The thread's query rows within their batch (for the causal mask), and the keys the
    // workgroup needs of its range: all, or with the causal mask those up to its last query
    // row.
    let rows_lo = vec4<u32>(p.q_row0 + row0 + 4u * ty) + vec4<u32>(0u, 1u, 2u, 3u);
    let rows_hi = rows_lo + vec4<u32>(4u * TY);
    let keys_start = split * p.split_keys;
    var keys_end = min(p.nk, keys_start + p.split_keys);
    if ((p.flags & FLAG_CAUSAL) != 0u) {
        keys_end = min(p.nk, p.q_row0 + min(row0 + BQ, p.q_rows));
    }

    var m = Rows(vec4<f32>(NEG), vec4<f32>(NEG));
    var sums = Rows(vec4<f32>(0.0), vec4<f32>(0.0));
    var acc: Tile;
    for (var k0 = keys_start; k0 < keys_end; k0 += D) {
        workgroupBarrier(); // the previous tile's reads of KVs (and Qs' writes) are done
        // Keys go fastest within groups of 4, so that 32 consecutive threads hold 4 keys of
        // one vec4 column and 8 vec4s of d: with the swizzle, their stores hit 32 banks.
        for (var e = l; e < D * D4; e += threads) {
            let group = e / (4u * D4);
            let within = e % (4u * D4);
            let key = 4u * group + within % 4u;
            let c4 = within / 4u;
            let r = min(k0 + key, p.nk - 1u);
            let x = k[(k_base + r * p.row_stride) / 4u + c4];
            let at = 4u * c4 * D4 + key_column(4u * c4, group);
            let lane = key % 4u;
            KVs[at][lane] = x.x;
            KVs[at + D4][lane] = x.y;
            KVs[at + 2u * D4][lane] = x.z;
            KVs[at + 3u * D4][lane] = x.w;
        }
        workgroupBarrier();
        var s: Tile;
        for (var d = 0u; d < D; d++) {
            let qa = d * BQ4;
            let ka = d * D4;
            let k_lo = KVs[ka + key_column(d, tx)];
            let k_hi = KVs[ka + key_column(d, tx + TX)];
            s = step(s, Qs[qa + ty], Qs[qa + ty + TY], k_lo, k_hi);
        }
        let keys_lo = vec4<u32>(k0 + 4u * tx) + vec4<u32>(0u, 1u, 2u, 3u);
        let keys_hi = keys_lo + vec4<u32>(4u * TX);
        let v0l = visible(keys_lo, rows_lo.x);
        let v0h = visible(keys_hi, rows_lo.x);
        let v1l = visible(keys_lo, rows_lo.y);
        let v1h = visible(keys_hi, rows_lo.y);
        let v2l = visible(keys_lo, rows_lo.z);
        let v2h = visible(keys_hi, rows_lo.z);
        let v3l = visible(keys_lo, rows_lo.w);
        let v3h = visible(keys_hi, rows_lo.w);
        let v4l = visible(keys_lo, rows_hi.x);
        let v4h = visible(keys_hi, rows_hi.x);
        let v5l = visible(keys_lo, rows_hi.y);
        let v5h = visible(keys_hi, rows_hi.y);
        let v6l = visible(keys_lo, rows_hi.z);
        let v6h = visible(keys_hi, rows_hi.z);
        let v7l = visible(keys_lo, rows_hi.w);
        let v7h = visible(keys_hi, rows_hi.w);
        let part = Rows(
            vec4<f32>(seen_max(s.r0l, v0l, s.r0h, v0h), seen_max(s.r1l, v1l, s.r1h, v1h), seen_max(s.r2l, v2l, s.r2h, v2h), seen_max(s.r3l, v3l, s.r3h, v3h)),
            vec4<f32>(seen_max(s.r4l, v4l, s.r4h, v4h), seen_max(s.r5l, v5l, s.r5h, v5h), seen_max(s.r6l, v6l, s.r6h, v6h), seen_max(s.r7l, v7l, s.r7h, v7h)),
        );
        let tile_max = reduce_rows(part, tx, ty, true);
        let m_new = Rows(max(m.lo, tile_max.lo), max(m.hi, tile_max.hi));
        let rescale = Rows(exp(m.lo - m_new.lo), exp(m.hi - m_new.hi));
        m = m_new;
        acc = scale_rows(acc, rescale);
        var pw: Tile;
        pw.r0l = weights(s.r0l, m.lo.x, v0l); pw.r0h = weights(s.r0h, m.lo.x, v0h);
        pw.r1l = weights(s.r1l, m.lo.y, v1l); pw.r1h = weights(s.r1h, m.lo.y, v1h);
        pw.r2l = weights(s.r2l, m.lo.z, v2l); pw.r2h = weights(s.r2h, m.lo.z, v2h);
        pw.r3l = weights(s.r3l, m.lo.w, v3l); pw.r3h = weights(s.r3h, m.lo.w, v3h);
        pw.r4l = weights(s.r4l, m.hi.x, v4l); pw.r4h = weights(s.r4h, m.hi.x, v4h);
        pw.r5l = weights(s.r5l, m.hi.y, v5l); pw.r5h = weights(s.r5h, m.hi.y, v5h);
        pw.r6l = weights(s.r6l, m.hi.z, v6l); pw.r6h = weights(s.r6h, m.hi.z, v6h);
        pw.r7l = weights(s.r7l, m.hi.w, v7l); pw.r7h = weights(s.r7h, m.hi.w, v7h);
        let tile_sums = Rows(
            vec4<f32>(dot(pw.r0l + pw.r0h, vec4<f32>(1.0)), dot(pw.r1l + pw.r1h, vec4<f32>(1.0)), dot(pw.r2l + pw.r2h, vec4<f32>(1.0)), dot(pw.r3l + pw.r3h, vec4<f32>(1.0))),
            vec4<f32>(dot(pw.r4l + pw.r4h, vec4<f32>(1.0)), dot(pw.r5l + pw.r5h, vec4<f32>(1.0)), dot(pw.r6l + pw.r6h, vec4<f32>(1.0)), dot(pw.r7l + pw.r7h, vec4<f32>(1.0))),
        );
        sums = Rows(fma(sums.lo, rescale.lo, tile_sums.lo), fma(sums.hi, rescale.hi, tile_sums.hi));
        // reduce_rows ended with a barrier: every thread has read the maxima, and every read
        // of the key tile happened before its middle one.
        store_weights(pw, tx, ty);
        for (var e = l; e < D * D4; e += threads) {
            let key = e / D4;
            let r = min(k0 + key, p.nk - 1u);
            KVs[e] = v[(v_base + r * p.row_stride) / 4u + e % D4];
        }
        workgroupBarrier();
        for (var key = 0u; key < D; key++) {
            let va = key * D4;
            let p_lo = Ps[prob_at(key, ty)];
            let p_hi = Ps[prob_at(key, ty + TY)];
            acc = step(acc, p_lo, p_hi, KVs[va + tx], KVs[va + tx + TX]);
        }
    }

    let total = reduce_rows(sums, tx, ty, false);
    let inv = Rows(
        select(vec4<f32>(0.0), 1.0 / total.lo, total.lo > vec4<f32>(0.0)),
        select(vec4<f32>(0.0), 1.0 / total.hi, total.hi > vec4<f32>(0.0)),
    );
    let out = scale_rows(acc, inv);
    // With key ranges, each row's log-sum-exp of the scaled scores (NEG where it saw no key),
    // written by the row's first thread.
    if (p.splits > 1u && tx == 0u) {
        let lse_lo = select(vec4<f32>(NEG), m.lo + log(total.lo), total.lo > vec4<f32>(0.0));
        let lse_hi = select(vec4<f32>(NEG), m.hi + log(total.hi), total.hi > vec4<f32>(0.0));
        store_lse(split, batch, head, row0 + 4u * ty, lse_lo);
        store_lse(split, batch, head, row0 + 4u * ty + 4u * TY, lse_hi);
    }
    store_row(o_base, row0 + 4u * ty + 0u, tx, out.r0l, out.r0h);
    store_row(o_base, row0 + 4u * ty + 1u, tx, out.r1l, out.r1h);
    store_row(o_base, row0 + 4u * ty + 2u, tx, out.r2l, out.r2h);
    store_row(o_base, row0 + 4u * ty + 3u, tx, out.r3l, out.r3h);
    store_row(o_base, row0 + 4u * ty + 4u * TY + 0u, tx, out.r4l, out.r4h);
    store_row(o_base, row0 + 4u * ty + 4u * TY + 1u, tx, out.r5l, out.r5h);
    store_row(o_base, row0 + 4u * ty + 4u * TY + 2u, tx, out.r6l, out.r6h);
    store_row(o_base, row0 + 4u * ty + 4u * TY + 3u, tx, out.r7l, out.r7h);
}
