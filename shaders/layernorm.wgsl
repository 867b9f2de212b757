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
// same two passes. Each thread accumulates a strided part of the row; the workgroup combines
// them by a tree, so rounding grows with cols / WG + log2(WG). Then a third pass writes y.
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
// lavapipe does; `loops` in the host): 3 * (ceil(cols / WG) + 1) + 2 * (log2(WG) + 1) (three
// strided passes, two trees). The host refuses rows for which this passes the adapter's loop
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
    var own = vec2<f32>(0.0, 0.0);
    for (var j = lid; j < p.cols; j += WG) {
        own.x += x[x0 + j] - shift;
        if (MODE == 1u) { own.y += t[t0 + j]; }
    }
    let s1 = workgroup_sum(lid, own);
    let d = s1.x / n;           // mu - s
    let mean_t = s1.y / n;

    // Pass 2: sum((x - mu)^2) and, for the JVP, sum((x - mu) * t).
    own = vec2<f32>(0.0, 0.0);
    for (var j = lid; j < p.cols; j += WG) {
        let c = (x[x0 + j] - shift) - d;
        own.x = fma(c, c, own.x);
        if (MODE == 1u) { own.y = fma(c, t[t0 + j], own.y); }
    }
    let s2 = workgroup_sum(lid, own);
    let rstd = 1.0 / sqrt(s2.x / n + p.eps);
    let mean_xh_t = s2.y / n * rstd;

    // Pass 3: the output.
    let has_gamma = (p.flags & FLAG_GAMMA) != 0u;
    let has_beta = (p.flags & FLAG_BETA) != 0u;
    for (var j = lid; j < p.cols; j += WG) {
        let xh = ((x[x0 + j] - shift) - d) * rstd;
        var g = 1.0;
        if (has_gamma) { g = gamma[p.gamma_first + j]; }
        if (MODE == 0u) {
            var b = 0.0;
            if (has_beta) { b = beta[p.beta_first + j]; }
            y[y0 + j] = fma(g, xh, b);
        } else {
            y[y0 + j] = g * rstd * ((t[t0 + j] - mean_t) - xh * mean_xh_t);
        }
    }
}
