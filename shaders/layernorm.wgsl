// layernorm: layer normalization of each row of a [rows, cols] matrix (Ba et al., 2016), and its
// Jacobian-vector product (forward-mode derivative):
//   mode 0 (value): y = gamma * xh + beta,  xh = (x - mu) * rstd,  rstd = 1 / sqrt(var + eps),
//   mode 1 (jvp):   y = gamma * rstd * (t - mean(t) - xh * mean(xh * t)),
// mu and var the row's mean and biased variance (divided by cols, as PyTorch), t a tangent of
// x of the same shape. gamma and beta are optional [cols] vectors (flags), default 1 and 0;
// beta does not enter the JVP.
//
// Statistics: one pass in f32 over v = x - s, shifted by the row's first value s = x[r, 0]
// (which makes them independent of a common offset of the row), then a second pass writes y.
// The pass walks the row in blocks of 4 WG values (shaders/lib/row_blocks.wgsl): in each pass
// a thread takes the values lid, lid + WG, lid + 2 WG and lid + 3 WG of the block (coalesced
// across the workgroup), forms their count, mean and sum of squared deviations from that
// mean (and, for the JVP, the mean of t and the co-moment sum((v - mean) (t - mean_t))), and
// merges them into its own by Chan et al.'s pairwise update:
//   n = na + nb, d = mean_b - mean_a, mean += d nb / n, m2 += m2_b + d^2 na nb / n,
// likewise for the co-moment; the workgroup merges the threads' statistics by a tree the same
// way. Then mu = s + mean, var = m2 / cols, and sum((x - mu) t) = the co-moment (as
// sum(x - mu) = 0). Two passes over the row instead of three (a sum, then the squared
// deviations from it): on lavapipe the 1024 x 4096 normalization took 22 ms against 29.
// Each y element is written by the invocation that read x and t at that index, after every
// read of the row by the workgroup (barriers), so y may alias x or t (in place).
//
// Entry points: `main` walks any row as above; `main_vec4`, which the host runs where cols
// and every *_first are multiples of 4, reads and writes whole vec4s, thread lid taking the
// vec4s lid, lid + WG, ... of the row (the same passes per thread; coalesced on GPUs, and one
// 16-byte access instead of four on lavapipe, whose storage accesses go lane by lane: the
// 1024 x 4096 normalization took 11-16 ms against 25-39 in one comparison); `main_held`, the
// same for rows of at most 4 * HELD * WG values, whose HELD vec4s of x (and t) per thread stay
// in registers between the statistics and the output, so that the row is read once instead
// of twice.
// Bindings (group 0): 0 uniform Params; 1 x (read_write); 2 t (read_write; mode 1, else x
// again, unread); 3 gamma (read); 4 beta (read); 5 y (read_write); as f32s for `main`, as
// vec4s (x4 ... y4) for `main_vec4` and `main_held`. x, t and y are read_write so that one
// buffer may be bound to several of them; absent gamma or beta are the host's placeholder
// (16 bytes).
// Dispatch: `rows` workgroups, one per row (split over x and y by `Gpu::grid`).
// Overrides: MODE (0 value, 1 jvp); WG (threads per workgroup, a power of two); HELD
// (`main_held`: vec4s per thread, ceil(cols / (4 WG)), 1 to MAX_HELD).
// Loops (per invocation, an upper bound counting a loop that runs n times as n + 1, as
// lavapipe does; `loops` in the host): 2 * (ceil(cols / (4 WG)) + 1) + log2(WG) + 1 (two
// passes over the blocks, or over the vec4s in `main_vec4`, as many, HELD each in
// `main_held`; one tree). The host
// refuses rows for which this passes the adapter's loop limit (lavapipe ends every loop of an
// invocation after 65,535 iterations, silently): a row's statistics need the whole row in one
// workgroup.

// Keep in sync with LayerNormParams in src/ops/layernorm.rs.
struct Params {
    rows: u32,
    cols: u32,
    x_first: u32,
    t_first: u32,
    y_first: u32,
    gamma_first: u32,
    beta_first: u32,
    flags: u32,       // 1: gamma present; 2: beta present
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const FLAG_GAMMA: u32 = 1u;
const FLAG_BETA: u32 = 2u;

override MODE: u32 = 0u;
override WG: u32 = 256u;
override HELD: u32 = 1u;
const MAX_HELD: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
// `main`'s bindings, element by element.
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> t: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
// `main_vec4`'s, the same buffers as vec4s (every *_first and cols multiples of 4).
@group(0) @binding(1) var<storage, read_write> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> t4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gamma4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> beta4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4<f32>>;

// A part of a row's statistics: its count n, the mean of v = x - s over it, m2 = the sum of
// (v - mean)^2, and, for the JVP, the mean of t and c = the sum of (v - mean) (t - mean_t).
struct Stats {
    n: u32,
    mean: f32,
    m2: f32,
    mean_t: f32,
    c: f32,
}

// The statistics of the union of two disjoint parts (Chan, Golub and LeVeque's update).
fn merge(a: Stats, b: Stats) -> Stats {
    let n = a.n + b.n;
    if (b.n == 0u) {
        return a;
    }
    let wb = f32(b.n) / f32(n);
    let cross = f32(a.n) * wb; // na nb / n
    let d = b.mean - a.mean;
    let dt = b.mean_t - a.mean_t;
    return Stats(
        n,
        a.mean + d * wb,
        a.m2 + b.m2 + d * d * cross,
        a.mean_t + dt * wb,
        a.c + b.c + d * dt * cross,
    );
}

var<workgroup> part_n: array<u32, WG>;
var<workgroup> part: array<vec4<f32>, WG>;

// The statistics of the whole row from every thread's `own`, returned to all threads.
fn workgroup_merge(lid: u32, own: Stats) -> Stats {
    part_n[lid] = own.n;
    part[lid] = vec4(own.mean, own.m2, own.mean_t, own.c);
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let a = part[lid];
            let b = part[lid + stride];
            let m = merge(
                Stats(part_n[lid], a.x, a.y, a.z, a.w),
                Stats(part_n[lid + stride], b.x, b.y, b.z, b.w),
            );
            part_n[lid] = m.n;
            part[lid] = vec4(m.mean, m.m2, m.mean_t, m.c);
        }
        workgroupBarrier();
    }
    let all = Stats(part_n[0], part[0].x, part[0].y, part[0].z, part[0].w);
    workgroupBarrier();
    return all;
}

fn total(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// The statistics of four values x of the row (and their tangents t, read in mode 1 only) of
// which `inside` are in it, shifted by s.
fn block_stats(xv: vec4<f32>, tv: vec4<f32>, inside: vec4<bool>, s: f32) -> Stats {
    let count = u32(inside.x) + u32(inside.y) + u32(inside.z) + u32(inside.w);
    let inv = 1.0 / f32(count);
    let v = select(vec4(0.0), xv - s, inside);
    let mean = total(v) * inv;
    let dv = select(vec4(0.0), v - mean, inside);
    var block = Stats(count, mean, dot(dv, dv), 0.0, 0.0);
    if (MODE == 1u) {
        let tm = select(vec4(0.0), tv, inside);
        block.mean_t = total(tm) * inv;
        block.c = dot(dv, select(vec4(0.0), tm - block.mean_t, inside));
    }
    return block;
}

// What the output pass needs of the row: the shift s, mu - s, 1 / sqrt(var + eps), the mean
// of t and the mean of xh * t.
struct Norm {
    s: f32,
    d: f32,
    rstd: f32,
    mean_t: f32,
    mean_xh_t: f32,
}

fn norm_of(row: Stats, s: f32) -> Norm {
    let n = f32(p.cols);
    let rstd = 1.0 / sqrt(row.m2 / n + p.eps);
    return Norm(s, row.mean, rstd, row.mean_t, row.c / n * rstd);
}

// The output for four values x (tangents t in mode 1), scales g and offsets o.
fn block_out(xv: vec4<f32>, tv: vec4<f32>, g: vec4<f32>, o: vec4<f32>, r: Norm) -> vec4<f32> {
    let xh = ((xv - r.s) - r.d) * r.rstd;
    if (MODE == 0u) {
        return fma(g, xh, o);
    }
    return g * r.rstd * ((tv - r.mean_t) - xh * r.mean_xh_t);
}

fn load_x(o: u32, i: vec4<u32>) -> vec4<f32> {
    return vec4(x[o + i.x], x[o + i.y], x[o + i.z], x[o + i.w]);
}

fn load_t(o: u32, i: vec4<u32>) -> vec4<f32> {
    if (MODE == 0u) {
        return vec4(0.0);
    }
    return vec4(t[o + i.x], t[o + i.y], t[o + i.z], t[o + i.w]);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let x0 = p.x_first + r * p.cols;
    let t0 = p.t_first + r * p.cols;
    let y0 = p.y_first + r * p.cols;
    let shift = x[x0];

    // Pass 1: the statistics.
    var own = Stats(0u, 0.0, 0.0, 0.0, 0.0);
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j, p.cols);
        own = merge(own, block_stats(load_x(x0, b.i), load_t(t0, b.i), b.inside, shift));
    }
    let norm = norm_of(workgroup_merge(lid, own), shift);

    // Pass 2: the output.
    let has_gamma = (p.flags & FLAG_GAMMA) != 0u;
    let has_beta = (p.flags & FLAG_BETA) != 0u;
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j, p.cols);
        let i = b.i;
        var g = vec4(1.0);
        if (has_gamma) {
            let o = p.gamma_first;
            g = vec4(gamma[o + i.x], gamma[o + i.y], gamma[o + i.z], gamma[o + i.w]);
        }
        var o = vec4(0.0);
        if (MODE == 0u && has_beta) {
            let f = p.beta_first;
            o = vec4(beta[f + i.x], beta[f + i.y], beta[f + i.z], beta[f + i.w]);
        }
        let out = block_out(load_x(x0, i), load_t(t0, i), g, o, norm);
        // Unrolled, not a loop: lavapipe counts every loop pass against its budget.
        if (b.inside.x) { y[y0 + b.at.x] = out.x; }
        if (b.inside.y) { y[y0 + b.at.y] = out.y; }
        if (b.inside.z) { y[y0 + b.at.z] = out.z; }
        if (b.inside.w) { y[y0 + b.at.w] = out.w; }
    }
}

@compute @workgroup_size(WG)
fn main_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let c4 = p.cols / 4u;
    let x0 = p.x_first / 4u + r * c4;
    let t0 = p.t_first / 4u + r * c4;
    let y0 = p.y_first / 4u + r * c4;
    let shift = x4[x0].x;
    let inside = vec4(true);

    var own = Stats(0u, 0.0, 0.0, 0.0, 0.0);
    for (var q = lid; q < c4; q += WG) {
        var tv = vec4(0.0);
        if (MODE == 1u) { tv = t4[t0 + q]; }
        own = merge(own, block_stats(x4[x0 + q], tv, inside, shift));
    }
    let norm = norm_of(workgroup_merge(lid, own), shift);

    let has_gamma = (p.flags & FLAG_GAMMA) != 0u;
    let has_beta = (p.flags & FLAG_BETA) != 0u;
    for (var q = lid; q < c4; q += WG) {
        var g = vec4(1.0);
        if (has_gamma) { g = gamma4[p.gamma_first / 4u + q]; }
        var o = vec4(0.0);
        if (MODE == 0u && has_beta) { o = beta4[p.beta_first / 4u + q]; }
        var tv = vec4(0.0);
        if (MODE == 1u) { tv = t4[t0 + q]; }
        y4[y0 + q] = block_out(x4[x0 + q], tv, g, o, norm);
    }
}

// Mode 0 or 1 over rows of whole vec4s of at most 4 * HELD * WG values: thread lid reads the
// vec4s lid + k WG (k < HELD) of x (and t) once, keeps them for the output, and otherwise
// computes as main_vec4 does. Every read precedes the barriers of the statistics, so y may
// alias x or t here too.
@compute @workgroup_size(WG)
fn main_held(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let c4 = p.cols / 4u;
    let x0 = p.x_first / 4u + r * c4;
    let t0 = p.t_first / 4u + r * c4;
    let y0 = p.y_first / 4u + r * c4;
    let shift = x4[x0].x;
    let inside = vec4(true);
    // Indexed by the unrolled loops' constants (HELD is fixed when the pipeline is made).
    var xs: array<vec4<f32>, MAX_HELD>;
    var ts: array<vec4<f32>, MAX_HELD>;
    var own = Stats(0u, 0.0, 0.0, 0.0, 0.0);
    for (var k = 0u; k < HELD; k++) {
        let q = lid + k * WG;
        if (q < c4) {
            xs[k] = x4[x0 + q];
            if (MODE == 1u) { ts[k] = t4[t0 + q]; }
            own = merge(own, block_stats(xs[k], ts[k], inside, shift));
        }
    }
    let norm = norm_of(workgroup_merge(lid, own), shift);

    let has_gamma = (p.flags & FLAG_GAMMA) != 0u;
    let has_beta = (p.flags & FLAG_BETA) != 0u;
    for (var k = 0u; k < HELD; k++) {
        let q = lid + k * WG;
        if (q < c4) {
            var g = vec4(1.0);
            if (has_gamma) { g = gamma4[p.gamma_first / 4u + q]; }
            var o = vec4(0.0);
            if (MODE == 0u && has_beta) { o = beta4[p.beta_first / 4u + q]; }
            y4[y0 + q] = block_out(xs[k], ts[k], g, o, norm);
        }
    }
}
