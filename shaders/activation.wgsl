// activation: y[i] = act(x[i]) for 0 <= i < len, act chosen by a code (shaders/lib/activation.wgsl).
//
// Bindings (group 0): 0 uniform Params; 1 x (storage, read_write); 2 y (storage, read_write).
// Both are read_write so that in-place use binds one buffer to both (a read-only binding of a
// buffer that is also bound writable would be a usage conflict).
// Dispatch: ceil(len / (WG * PER_THREAD)) workgroups, split over x and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup).

// Keep in sync with ActivationParams in src/ops/activation.rs.
struct Params {
    len: u32,
    x_first: u32,
    y_first: u32,
    code: u32,
    param: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const PER_THREAD: u32 = 4u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

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
            y[p.y_first + i] = activate(x[p.x_first + i], p.code, p.param);
        }
    }
}
