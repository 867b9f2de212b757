// activation: element-wise activations and their Jacobian-vector products, for 0 <= i < len:
//   MODE 0 (value): y[i] = act(x[i]);
//   MODE 1 (jvp):   y[i] = act'(x[i]) * t[i]  (forward-mode derivative at x along the tangent t),
// act chosen by the code ACT (shaders/lib/activation.wgsl, `activate` and
// `activate_derivative`).
//
// Two entry points, one per way of reading the windows:
//   main_vec4: each invocation takes one vec4, elements 4g .. 4g + 3, of windows whose first
//              element and len are multiples of 4 (their bindings hold whole vec4s): the
//              whole vec4s of every tensor the host plans.
//   main:      each invocation takes one element, with any firsts and len: the host runs it on
//              a tensor's tail of 1 to 3 elements.
// One vec4 per invocation reads and writes 16 bytes per lane: coalesced on GPUs, and on
// lavapipe 6.6 times faster than four scalars per invocation in a loop (4.1 against 27 ms
// for 4 Mi elements; the copy-bandwidth kernel of the roofline took 5.6 ms in that run).
//
// ACT and MODE are overrides, not uniforms: the compiler keeps only the chosen formula. With a
// uniform code, lavapipe evaluated every case of the switch for every element (per-lane masks),
// which cost 1.6 times the memory traffic's time.
//
// Bindings (group 0): 0 uniform Params; 1 x (storage, read_write); 2 y (storage, read_write);
// 3 t (storage, read_write; the host's unused-output buffer in MODE 0, never read then).
// All are read_write so that in-place use binds one buffer to several of them (a read-only
// binding of a buffer that is also bound writable would be a usage conflict); each element is
// read before it is written, by the same invocation, so any aliasing of x, y and t is safe.
// Dispatch: ceil(len / WG) workgroups for main, ceil(len / (4 WG)) for main_vec4, split over x
// and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup), ACT (the activation code), MODE (0 value, 1 jvp).
// Loops: none.

// Keep in sync with ActivationParams in src/ops/activation.rs.
struct Params {
    len: u32,      // elements (main) or vec4s (main_vec4)
    x_first: u32,  // element of the x binding holding x[0] (vec4s in main_vec4)
    y_first: u32,  // the same for y
    t_first: u32,  // the same for t (MODE 1)
    param: f32,    // the activation's parameter (slope, level)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 256u;
override ACT: u32 = 0u;
override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> t: array<f32>;
// The same bindings read as vec4s, by main_vec4 only.
@group(0) @binding(1) var<storage, read_write> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> t4: array<vec4<f32>>;

fn apply(v: f32) -> f32 {
    return activate(v, ACT, p.param);
}

fn slope(v: f32) -> f32 {
    return activate_derivative(v, ACT, p.param);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_workgroup(wid, nwg) * WG + lid;
    if (i >= p.len) {
        return;
    }
    let v = x[p.x_first + i];
    if (MODE == 0u) {
        y[p.y_first + i] = apply(v);
    } else {
        y[p.y_first + i] = slope(v) * t[p.t_first + i];
    }
}

@compute @workgroup_size(WG)
fn main_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_workgroup(wid, nwg) * WG + lid;
    if (i >= p.len) {
        return;
    }
    let v = x4[p.x_first + i];
    if (MODE == 0u) {
        y4[p.y_first + i] = vec4(apply(v.x), apply(v.y), apply(v.z), apply(v.w));
    } else {
        let d = vec4(slope(v.x), slope(v.y), slope(v.z), slope(v.w));
        y4[p.y_first + i] = d * t4[p.t_first + i];
    }
}
