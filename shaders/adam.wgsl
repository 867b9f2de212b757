// adam: one Adam step (Kingma & Ba), element-wise on a parameter tensor w with gradient g and
// moment estimates m, v (same length):
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   w = w - lr * (m * c1) / (sqrt(v * c2) + eps)
// where c1 = 1 / (1 - beta1^t), c2 = 1 / (1 - beta2^t) are the bias corrections of step t
// (computed on the host).
//
// Bindings (group 0): 0 uniform Params; 1 g (read); 2 w (read_write); 3 m (read_write);
// 4 v (read_write).
// Dispatch: ceil(len / WG) workgroups (split over x and y by `Gpu::grid`), one element per
// thread. Overrides: WG (threads per workgroup).
// Loops: none.

// Keep in sync with AdamParams in src/ops/adam.rs.
struct Params {
    len: u32,      // elements in this dispatch
    g_first: u32,  // element of each binding where the dispatch's range starts
    w_first: u32,
    m_first: u32,
    v_first: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    c1: f32,
    c2: f32,
    _pad: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_workgroup(wid, nwg) * WG + lid;
    if (i >= p.len) { return; }
    let gi = g[p.g_first + i];
    let mi = p.beta1 * m[p.m_first + i] + (1.0 - p.beta1) * gi;
    let vi = p.beta2 * v[p.v_first + i] + (1.0 - p.beta2) * gi * gi;
    m[p.m_first + i] = mi;
    v[p.v_first + i] = vi;
    w[p.w_first + i] = w[p.w_first + i] - p.lr * (mi * p.c1) / (sqrt(vi * p.c2) + p.eps);
}
