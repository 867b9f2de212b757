// activation: element-wise activations and their Jacobian-vector products, for 0 <= i < len:
//   mode 0 (value): y[i] = act(x[i]);
//   mode 1 (jvp):   y[i] = act'(x[i]) * t[i]  (forward-mode derivative at x along the tangent t),
// act chosen by a code (shaders/lib/activation.wgsl, `activate` and `activate_derivative`).
//
// Bindings (group 0): 0 uniform Params; 1 x (storage, read_write); 2 y (storage, read_write);
// 3 t (storage, read_write; the host's placeholder in mode 0). All are read_write so that
// in-place use binds one buffer to several of them (a read-only binding of a buffer that is
// also bound writable would be a usage conflict); each element is read before it is written,
// by the same invocation, so any aliasing of x, y and t is safe.
// Dispatch: ceil(len / (WG * PER_THREAD)) workgroups, split over x and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup).
// Loops: constant, 5 iterations per invocation (the loop over PER_THREAD = 4 elements; a loop
// that runs n times counts n + 1 against lavapipe's budget, its exiting test included; the
// activations have no loop), whatever the size.

// Keep in sync with ActivationParams in src/ops/activation.rs.
struct Params {
    len: u32,
    x_first: u32,
    y_first: u32,
    code: u32,
    param: f32,
    t_first: u32,  // mode 1: element of the t binding holding t[0]
    mode: u32,     // 0 value, 1 jvp
    _pad: u32,
}

const PER_THREAD: u32 = 4u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> t: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let base = linear_workgroup(wid, nwg) * WG * PER_THREAD;
    for (var j = 0u; j < PER_THREAD; j++) {
        let i = base + j * WG + lid;
        if (i < p.len) {
            if (p.mode == 0u) {
                y[p.y_first + i] = activate(x[p.x_first + i], p.code, p.param);
            } else {
                y[p.y_first + i] = activate_derivative(x[p.x_first + i], p.code, p.param) * t[p.t_first + i];
            }
        }
    }
}
