// layernorm: layer normalization of each row of a [rows, cols] matrix (Ba et al., 2016), and its
// Jacobian-vector product (forward-mode derivative):
//   mode 0 (value): y = gamma * xh + beta,  xh = (x - mu) * rstd,  rstd = 1 / sqrt(var + eps),
//   mode 1 (jvp):   y = gamma * rstd * (t - mean(t) - xh * mean(xh * t)),
// mu and var the row's mean and biased variance (divided by cols, as PyTorch), t a tangent of
// x of the same shape. gamma and beta are optional [cols] vectors (flags), default 1 and 0;
// beta does not enter the JVP.
//
// Statistics: two passes in f32, shifted by the row's first value s = x[r, 0] (which makes the
// sums independent of a common offset of the row): mu = s + sum(x - s) / cols, then
// var = sum(((x - s) - (mu - s))^2) / cols and, in mode 1, sum(t) and sum((x - mu) * t) in the
// same two passes. The passes walk the row in blocks of 4 WG values: in each pass a thread
// takes the values lid, lid + WG, lid + 2 WG and lid + 3 WG of the block (coalesced across the
// workgroup) into four sums of its own, merged at the end; the workgroup combines the
// threads' sums by a tree, so rounding grows with cols / (4 WG) + 2 + log2(WG). Then a third
// pass writes y. Four values per pass: on lavapipe one value per pass paid the loop's
// overhead for each.
// Each y element is written by the invocation that read x and t at that index, after every
// read of the row by the workgroup (barriers), so y may alias x or t (in place).
//
// Bindings (group 0): 0 uniform Params; 1 x (read_write); 2 t (read_write; mode 1, else x
// again, unread); 3 gamma (read); 4 beta (read); 5 y (read_write). x, t and y are
// read_write so that one buffer may be bound to several of them; absent gamma or beta are the
// host's placeholder.
// Dispatch: `rows` workgroups, one per row (split over x and y by `Gpu::grid`).
// Overrides: MODE (0 value, 1 jvp); WG (threads per workgroup, a power of two).
// Loops (per invocation, an upper bound counting a loop that runs n times as n + 1, as
// lavapipe does; `loops` in the host): 3 * (ceil(cols / (4 WG)) + 1) + 2 * (log2(WG) + 1)
// (three passes over the blocks, two trees). The host refuses rows for which this passes the adapter's loop
// limit (lavapipe ends every loop of an invocation after 65,535 iterations, silently): a
// row's statistics need the whole row in one workgroup.

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

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> t: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<vec2<f32>, WG>;

// The sum of every thread's `own` over the workgroup, returned to all threads.
fn workgroup_sum(lid: u32, own: vec2<f32>) -> vec2<f32> {
    partial[lid] = own;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] = partial[lid] + partial[lid + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// The columns j, j + WG, j + 2 WG and j + 3 WG of a row (j = lid + a multiple of 4 WG):
// which are in the row, the columns, and the columns to read (the row's last for those
// outside, whose values are unused).
struct Block {
    inside: vec4<bool>,
    at: vec4<u32>,
    i: vec4<u32>,
}

fn block_at(j: u32) -> Block {
    let at = vec4(j, j + WG, j + 2u * WG, j + 3u * WG);
    let last = vec4(p.cols - 1u);
    return Block(at <= last, at, min(at, last));
}

fn load_x(o: u32, i: vec4<u32>) -> vec4<f32> {
    return vec4(x[o + i.x], x[o + i.y], x[o + i.z], x[o + i.w]);
}

fn load_t(o: u32, i: vec4<u32>) -> vec4<f32> {
    return vec4(t[o + i.x], t[o + i.y], t[o + i.z], t[o + i.w]);
}

fn load_gamma(i: vec4<u32>) -> vec4<f32> {
    let o = p.gamma_first;
    return vec4(gamma[o + i.x], gamma[o + i.y], gamma[o + i.z], gamma[o + i.w]);
}

fn load_beta(i: vec4<u32>) -> vec4<f32> {
    let o = p.beta_first;
    return vec4(beta[o + i.x], beta[o + i.y], beta[o + i.z], beta[o + i.w]);
}

fn total(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
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
    let n = f32(p.cols);
    let shift = x[x0];

    // Pass 1: sum(x - s) and, for the JVP, sum(t).
    var sx = vec4(0.0);
    var st = vec4(0.0);
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j);
        sx += select(vec4(0.0), load_x(x0, b.i) - shift, b.inside);
        if (MODE == 1u) { st += select(vec4(0.0), load_t(t0, b.i), b.inside); }
    }
    let s1 = workgroup_sum(lid, vec2(total(sx), total(st)));
    let d = s1.x / n;           // mu - s
    let mean_t = s1.y / n;

    // Pass 2: sum((x - mu)^2) and, for the JVP, sum((x - mu) * t).
    var sc = vec4(0.0);
    var sct = vec4(0.0);
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j);
        let c = select(vec4(0.0), (load_x(x0, b.i) - shift) - d, b.inside);
        sc = fma(c, c, sc);
        if (MODE == 1u) { sct = fma(c, load_t(t0, b.i), sct); }
    }
    let s2 = workgroup_sum(lid, vec2(total(sc), total(sct)));
    let rstd = 1.0 / sqrt(s2.x / n + p.eps);
    let mean_xh_t = s2.y / n * rstd;

    // Pass 3: the output.
    let has_gamma = (p.flags & FLAG_GAMMA) != 0u;
    let has_beta = (p.flags & FLAG_BETA) != 0u;
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j);
        let xh = ((load_x(x0, b.i) - shift) - d) * rstd;
        var g = vec4(1.0);
        if (has_gamma) { g = load_gamma(b.i); }
        var out: vec4<f32>;
        if (MODE == 0u) {
            var o = vec4(0.0);
            if (has_beta) { o = load_beta(b.i); }
            out = fma(g, xh, o);
        } else {
            out = g * rstd * ((load_t(t0, b.i) - mean_t) - xh * mean_xh_t);
        }
        // Unrolled, not a loop: lavapipe counts every loop pass against its budget.
        if (b.inside.x) { y[y0 + b.at.x] = out.x; }
        if (b.inside.y) { y[y0 + b.at.y] = out.y; }
        if (b.inside.z) { y[y0 + b.at.z] = out.z; }
        if (b.inside.w) { y[y0 + b.at.w] = out.w; }
    }
}
