// performer: the element-wise and small-reduction stages of random-feature attention
// (Performer / FAVOR+, host src/ops/performer.rs); the products between them are matmul
// dispatches. One STAGE per pipeline.
//
// Notation: G = (batch, head) pairs in this dispatch, g = b * heads + h; head-major tensors are
// [G, n_rows, width] whose rows n < n_valid hold data and rows past it (the causal padding) are
// zero; X is [B, n_valid, row] with row = heads * head_dim, head h in columns h * head_dim ..
// The projections P = X~ W^T have m = width columns and one row per input row, either
// token-major (FLAG_TOKEN_MAJOR: the rows of X in order, row (b * n_valid + n) * heads + h,
// since the projection acts row by row on X viewed as [B * N * H, D]) or head-major
// (row g * n_rows + n, after a head-major copy of X); pr(g, n) denotes that row. Every stage
// but the scan gives one invocation a whole row: lavapipe loads and stores storage buffers one
// SIMD lane at a time, so the fewer accesses per element (row constants loaded once, no
// per-element index arithmetic) the faster; GPUs do not mind at these sizes.
//
//   STAGE 0 head-major copy, per row t = g * n_rows + n (count = G * n_rows):
//     dst[t, c] = src[b, n, h * head_dim + c]   (n < n_valid, c < head_dim)
//               = 1                             (n < n_valid, c == head_dim: the ones column
//                                                appended to V, whose product gives the
//                                                normalizer)
//               = 0                             (elsewhere: padding)
//   STAGE 1 row statistics, per row t = g * n_rows + n (count = G * n_rows), src = P:
//     dst[t] = max_f src[pr, f] - nrm,  dst[count + t] = nrm,
//     nrm = c0 * sum_d aux[pr, d]^2 (aux = X rows of head_dim, FLAG_NORM) or 0;
//     padding rows get LOWEST and 0.
//   STAGE 2 group maximum, in blocks of `chunk` rows: per (group, block) t = g * chunk_elems +
//     c, c < chunk_elems (count = G * chunk_elems): dst[t] = max src[g * n_rows + n] over
//     c * chunk <= n < min((c + 1) * chunk, n_valid) (LOWEST for none). One block per group
//     (chunk = n_valid) gives the group maxima; more, partial maxima that the host reduces the
//     same way, rows = blocks.
//   STAGE 3 features, per row t (count = G * n_rows), src = P, dst = phi [G, n_rows, width]:
//     dst[t, f] = c1 * exp(src[pr, f] - sub), sub = max_f src[pr, f] (FLAG_ROWMAX), else
//     aux[t] (+ aux2[g] with FLAG_GROUP); 0 on padding rows.
//   STAGE 4 causal mask of chunk x chunk blocks [L, chunk, chunk], in place, per row t = l *
//     chunk + i (count = L * chunk): dst[t, j] = 0 for j > i.
//   STAGE 5 exclusive scan over chunk chunks of chunk_elems values, in place, per (g, e),
//     e < chunk_elems (count = G * chunk_elems): dst[g, c, e] = sum_{c' < c} dst[g, c', e].
//   STAGE 6 normalize, per output row t = g * n_valid + n (count = G * n_valid), src
//     [G, n_rows, head_dim + 1]: dst[b, n, h * head_dim + d] = src[g, n, d] / src[g, n,
//     head_dim]; 0 where the normalizer is not positive (every product underflowed).
//
// Loops: lavapipe ends all loops of an invocation after 65,535 passes in all, silently; the
// host keeps each stage within it (stage_loop_iterations in src/ops/performer.rs, counted as
// `looped` in src/ops/loop_limit.rs says). An invocation loops over: STAGE 0 its row's
// head_dim and width columns (two loops); 1 head_dim, then width; 2 its block's `chunk` rows
// (the host sizes the blocks); 3 width, twice with FLAG_ROWMAX; 4 at most chunk - 1
// columns; 5 the `chunk` chunks of its sequence; 6 head_dim columns. Widths, head_dim and
// chunks past the limit are refused by the host.
//
// Bindings (group 0): 0 uniform Params; 1 src (read); 2 aux (read); 3 aux2 (read); 4 dst
// (read_write); unused ones are placeholders. Every index is offset by the binding's *_first.
// Dispatch: ceil(count / WG) workgroups, split over x and y by `Gpu::grid`.
// Overrides: STAGE (the codes above); WG (threads per workgroup).

// Keep in sync with PerformerParams in src/ops/performer.rs.
struct Params {
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

// Keep in sync with the FLAG_ constants of src/ops/performer.rs.
const FLAG_NORM: u32 = 1u;
const FLAG_GROUP: u32 = 2u;
const FLAG_ROWMAX: u32 = 4u;
const FLAG_TOKEN_MAJOR: u32 = 8u;

// The lowest finite f32: the identity of max over finite values.
const LOWEST: f32 = -3.4028234663852886e38;

override STAGE: u32 = 0u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read> aux2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// The row of P (and of X) that holds row n of group g.
fn p_row(g: u32, n: u32) -> u32 {
    if ((p.flags & FLAG_TOKEN_MAJOR) != 0u) {
        return ((g / p.heads) * p.n_valid + n) * p.heads + g % p.heads;
    }
    return g * p.n_rows + n;
}

fn head_major(t: u32) {
    let n = t % p.n_rows;
    let g = t / p.n_rows;
    let d0 = p.dst_first + t * p.width;
    var c = 0u;
    if (n < p.n_valid) {
        let s0 = p.src_first + ((g / p.heads) * p.n_valid + n) * p.row + (g % p.heads) * p.head_dim;
        for (; c < p.head_dim; c++) {
            dst[d0 + c] = src[s0 + c];
        }
        if (c < p.width) {
            dst[d0 + c] = 1.0;
            c++;
        }
    }
    for (; c < p.width; c++) {
        dst[d0 + c] = 0.0;
    }
}

fn row_max(s0: u32) -> f32 {
    var mx = LOWEST;
    for (var f = 0u; f < p.width; f++) {
        mx = max(mx, src[s0 + f]);
    }
    return mx;
}

fn row_stats(t: u32) {
    let n = t % p.n_rows;
    var stat = LOWEST;
    var nrm = 0.0;
    if (n < p.n_valid) {
        let pr = p_row(t / p.n_rows, n);
        if ((p.flags & FLAG_NORM) != 0u) {
            let a0 = p.aux_first + pr * p.head_dim;
            var ss = 0.0;
            for (var d = 0u; d < p.head_dim; d++) {
                let x = aux[a0 + d];
                ss = fma(x, x, ss);
            }
            nrm = p.c0 * ss;
        }
        stat = row_max(p.src_first + pr * p.width) - nrm;
    }
    dst[p.dst_first + t] = stat;
    dst[p.dst_first + p.count + t] = nrm;
}

fn group_max(t: u32) {
    let g = t / p.chunk_elems;
    let first = (t % p.chunk_elems) * p.chunk;
    let end = min(first + p.chunk, p.n_valid);
    var mx = LOWEST;
    let s0 = p.src_first + g * p.n_rows;
    for (var n = first; n < end; n++) {
        mx = max(mx, src[s0 + n]);
    }
    dst[p.dst_first + t] = mx;
}

fn features(t: u32) {
    let n = t % p.n_rows;
    let g = t / p.n_rows;
    let d0 = p.dst_first + t * p.width;
    if (n >= p.n_valid) {
        for (var f = 0u; f < p.width; f++) {
            dst[d0 + f] = 0.0;
        }
        return;
    }
    let s0 = p.src_first + p_row(g, n) * p.width;
    var sub: f32;
    if ((p.flags & FLAG_ROWMAX) != 0u) {
        sub = row_max(s0);
    } else {
        sub = aux[p.aux_first + t];
        if ((p.flags & FLAG_GROUP) != 0u) {
            sub += aux2[p.aux2_first + g];
        }
    }
    for (var f = 0u; f < p.width; f++) {
        dst[d0 + f] = p.c1 * exp(src[s0 + f] - sub);
    }
}

fn causal_mask(t: u32) {
    let d0 = p.dst_first + t * p.chunk;
    for (var j = t % p.chunk + 1u; j < p.chunk; j++) {
        dst[d0 + j] = 0.0;
    }
}

fn chunk_scan(t: u32) {
    let g = t / p.chunk_elems;
    let e = t % p.chunk_elems;
    var k = p.dst_first + g * p.chunk * p.chunk_elems + e;
    var run = 0.0;
    for (var c = 0u; c < p.chunk; c++) {
        let x = dst[k];
        dst[k] = run;
        run += x;
        k += p.chunk_elems;
    }
}

fn normalize(t: u32) {
    let n = t % p.n_valid;
    let g = t / p.n_valid;
    let s0 = p.src_first + (g * p.n_rows + n) * (p.head_dim + 1u);
    let den = src[s0 + p.head_dim];
    let d0 = p.dst_first + ((g / p.heads) * p.n_valid + n) * p.row + (g % p.heads) * p.head_dim;
    for (var d = 0u; d < p.head_dim; d++) {
        dst[d0 + d] = select(0.0, src[s0 + d] / den, den > 0.0);
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = linear_workgroup(wid, nwg) * WG + lid;
    if (t >= p.count) {
        return;
    }
    switch STAGE {
        case 0u: { head_major(t); }
        case 1u: { row_stats(t); }
        case 2u: { group_max(t); }
        case 3u: { features(t); }
        case 4u: { causal_mask(t); }
        case 5u: { chunk_scan(t); }
        case 6u, default: { normalize(t); }
    }
}
