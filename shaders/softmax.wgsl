// softmax: numerically stable softmax along each row of a [rows, cols] matrix:
//   y[r, j] = exp(s*x[r, j] - M_r) / Z_r,  M_r = max_j s*x[r, j],  Z_r = sum_j exp(s*x[r, j] - M_r)
// over the unmasked columns of the row; masked entries are written as 0, and a row with every
// column masked is all zeros. Causal mask (PyTorch's is_causal, aligned top-left): the row with
// global index g is query i = g % causal_rows and sees columns j <= i.
//
// Three modes (override MODE), all one workgroup per (row, segment):
//   0 fused:     the whole row is in the binding; online (max, sum) per thread, a workgroup
//                reduction, then a second pass writes y. Reads x twice, writes y once.
//   1 stats:     rows longer than one binding are split into segments; writes the segment's
//                (max, sum) pair to stats[2 * (row * segments + segment)].
//   2 normalize: combines the row's segment stats into (M, Z) and writes the segment of y.
//
// Entry points: `main`, every mode; `main_vec4`, mode 0 where cols, x_first and y_first are
// multiples of 4 (the host's choice): thread lid takes the vec4s lid, lid + WG, ... of the row,
// one 16-byte access for four values (coalesced on GPUs; lavapipe's storage accesses go lane
// by lane); `main_held`, the same for rows of at most 4 * HELD * WG values, whose HELD vec4s
// per thread stay in registers between the statistics and the output, so that the row is
// read once instead of twice.
// Bindings (group 0): 0 uniform Params; 1 x (read); 2 y (read_write); 3 stats (read_write;
// not in `main_vec4`, whose x4 and y4 are x and y as vec4s).
// Dispatch: mode 0: `rows` workgroups (split over x and y by `Gpu::grid`); modes 1 and 2: one
// workgroup, for one row segment. Overrides: MODE; WG (threads per workgroup, a power of two).
// The passes over a row walk it in blocks of 4 WG values (shaders/lib/row_blocks.wgsl): in each
// pass a thread takes the values lid, lid + WG, lid + 2 WG and lid + 3 WG of the block
// (coalesced across the workgroup) and folds the four into its running (max, sum) at once, with
// one rescaling exp for the four. On lavapipe that took the 1024 x 4096 softmax from 45 ms to
// about 30 (one value per pass paid the loop's overhead and, with divergent lanes, both
// branches' exp for every value).
// Loops (per invocation, an upper bound counting a loop that runs n times as n + 1, as
// lavapipe does; `fused_loops` and `segment_loops` in the host), L = ceil(seg_len / (4 WG)):
// mode 0 2 (L + 1) + log2(WG) + 1 (two passes over the row's blocks, or of HELD = L vec4s in
// `main_held`, and the tree reduction);
// mode 1 L + 1 + log2(WG) + 1; mode 2 segments + 1 + L + 1. The host takes the segmented
// path, with segments short enough, where mode 0 would pass the adapter's loop limit
// (lavapipe ends every loop of an invocation after 65,535 iterations, silently).

// Keep in sync with SoftmaxParams in src/ops/softmax.rs.
struct Params {
    rows: u32,         // rows in this dispatch
    cols: u32,         // full row length (the row stride of x and y)
    seg_start: u32,    // first column of this dispatch's segment
    seg_len: u32,      // columns in the segment (= cols in mode 0)
    x_first: u32,      // element of the x binding holding (first row, seg_start)
    y_first: u32,      // same for y
    row_base: u32,     // global index of the dispatch's first row (for the mask and stats)
    causal_rows: u32,  // 0: no mask; else rows per causal block (the number of queries)
    scale: f32,
    segments: u32,     // segments per row (modes 1, 2)
    segment: u32,      // this dispatch's segment (modes 1, 2)
    _pad: u32,
}

override MODE: u32 = 0u;
override WG: u32 = 256u;
// `main_held`: the vec4s each thread holds, ceil(cols / (4 WG)), 1 to MAX_HELD.
override HELD: u32 = 1u;
const MAX_HELD: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
// `main_vec4`'s x and y, the same buffers as vec4s.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

var<workgroup> wg_max: array<f32, WG>;
var<workgroup> wg_sum: array<f32, WG>;

// A partial softmax state: running max m and sum s of exp(v - m); s == 0 means "no value yet"
// (so no infinity is ever needed as a starting max).
struct State {
    m: f32,
    s: f32,
}

fn combine(a: State, b: State) -> State {
    if (a.s == 0.0) { return b; }
    if (b.s == 0.0) { return a; }
    let m = max(a.m, b.m);
    return State(m, a.s * exp(a.m - m) + b.s * exp(b.m - m));
}

fn visible(row: u32, col: u32) -> bool {
    return p.causal_rows == 0u || col <= (row % p.causal_rows);
}

// The values of the segment's block from column j (shaders/lib/row_blocks.wgsl), scaled,
// and which of them are in the segment and unmasked.
struct Seen {
    seen: vec4<bool>,
    v: vec4<f32>,
}

fn seen_at(row: u32, x0: u32, j: u32) -> Seen {
    let b = block_at(j, p.seg_len);
    let c = p.seg_start + b.at;
    let seen = b.inside
        & vec4(visible(row, c.x), visible(row, c.y), visible(row, c.z), visible(row, c.w));
    let i = b.i;
    let v = p.scale * vec4(x[x0 + i.x], x[x0 + i.y], x[x0 + i.z], x[x0 + i.w]);
    return Seen(seen, v);
}

// `own` with the four values v folded in, of which those `seen` count: one rescaling exp for
// the four.
fn fold(own: State, v: vec4<f32>, seen: vec4<bool>) -> State {
    if (!any(seen)) {
        return own;
    }
    // The block's own max over its seen values; a value that is not seen counts as the max
    // itself, so it cannot raise it, and adds nothing to the sum.
    let later = select(select(v.w, v.z, seen.z), v.y, seen.y);
    let first = select(later, v.x, seen.x);
    let w = select(vec4(first), v, seen);
    var m = max(max(w.x, w.y), max(w.z, w.w));
    if (own.s != 0.0) {
        m = max(m, own.m);
    }
    let e = select(vec4(0.0), exp(v - m), seen);
    // Before the first value own.m is no max: exp(own.m - m) may overflow there.
    let carried = select(0.0, own.s * exp(own.m - m), own.s != 0.0);
    return State(m, carried + ((e.x + e.y) + (e.z + e.w)));
}

// Reduces every thread's state to one, returned to all threads.
fn workgroup_combine(lid: u32, own: State) -> State {
    wg_max[lid] = own.m;
    wg_sum[lid] = own.s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let c = combine(State(wg_max[lid], wg_sum[lid]), State(wg_max[lid + stride], wg_sum[lid + stride]));
            wg_max[lid] = c.m;
            wg_sum[lid] = c.s;
        }
        workgroupBarrier();
    }
    let r = State(wg_max[0], wg_sum[0]);
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = select(0u, linear_workgroup(wid, nwg), MODE == 0u);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let row = p.row_base + r;
    let x0 = p.x_first + r * p.cols;
    let y0 = p.y_first + r * p.cols;

    var total = State(0.0, 0.0);
    if (MODE == 2u) {
        for (var s = 0u; s < p.segments; s++) {
            total = combine(total, State(stats[2u * (row * p.segments + s)], stats[2u * (row * p.segments + s) + 1u]));
        }
    } else {
        var own = State(0.0, 0.0);
        for (var j = lid; j < p.seg_len; j += 4u * WG) {
            let b = seen_at(row, x0, j);
            own = fold(own, b.v, b.seen);
        }
        total = workgroup_combine(lid, own);
        if (MODE == 1u) {
            if (lid == 0u) {
                stats[2u * (row * p.segments + p.segment)] = total.m;
                stats[2u * (row * p.segments + p.segment) + 1u] = total.s;
            }
            return;
        }
    }
    let inv = select(0.0, 1.0 / total.s, total.s > 0.0);
    for (var j = lid; j < p.seg_len; j += 4u * WG) {
        let b = seen_at(row, x0, j);
        let out = select(vec4(0.0), exp(b.v - total.m) * inv, b.seen);
        y[y0 + j] = out.x;
        if (j + WG < p.seg_len) { y[y0 + j + WG] = out.y; }
        if (j + 2u * WG < p.seg_len) { y[y0 + j + 2u * WG] = out.z; }
        if (j + 3u * WG < p.seg_len) { y[y0 + j + 3u * WG] = out.w; }
    }
}

// Mode 0 over rows of whole vec4s (the host's choice where cols, x_first and y_first are
// multiples of 4): thread lid takes the vec4s lid, lid + WG, ... of the row.
@compute @workgroup_size(WG)
fn main_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let row = p.row_base + r;
    let c4 = p.cols / 4u;
    let x0 = p.x_first / 4u + r * c4;
    let y0 = p.y_first / 4u + r * c4;
    var own = State(0.0, 0.0);
    for (var q = lid; q < c4; q += WG) {
        own = fold(own, p.scale * x4[x0 + q], seen4(row, q));
    }
    let total = workgroup_combine(lid, own);
    let inv = select(0.0, 1.0 / total.s, total.s > 0.0);
    for (var q = lid; q < c4; q += WG) {
        let v = p.scale * x4[x0 + q];
        y4[y0 + q] = select(vec4(0.0), exp(v - total.m) * inv, seen4(row, q));
    }
}

// Mode 0 over rows of whole vec4s of at most 4 * HELD * WG values: thread lid reads the vec4s
// lid + k WG (k < HELD) once, keeps them for the output, and folds them as main_vec4 does.
@compute @workgroup_size(WG)
fn main_held(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let row = p.row_base + r;
    let c4 = p.cols / 4u;
    let x0 = p.x_first / 4u + r * c4;
    let y0 = p.y_first / 4u + r * c4;
    // Indexed by the unrolled loops' constants (HELD is fixed when the pipeline is made).
    var held: array<vec4<f32>, MAX_HELD>;
    var own = State(0.0, 0.0);
    for (var k = 0u; k < HELD; k++) {
        let q = lid + k * WG;
        if (q < c4) {
            held[k] = p.scale * x4[x0 + q];
            own = fold(own, held[k], seen4(row, q));
        }
    }
    let total = workgroup_combine(lid, own);
    let inv = select(0.0, 1.0 / total.s, total.s > 0.0);
    for (var k = 0u; k < HELD; k++) {
        let q = lid + k * WG;
        if (q < c4) {
            y4[y0 + q] = select(vec4(0.0), exp(held[k] - total.m) * inv, seen4(row, q));
        }
    }
}

// Which of the row's columns 4q .. 4q + 3 the mask lets through.
fn seen4(row: u32, q: u32) -> vec4<bool> {
    let c = 4u * q;
    return vec4(visible(row, c), visible(row, c + 1u), visible(row, c + 2u), visible(row, c + 3u));
}
