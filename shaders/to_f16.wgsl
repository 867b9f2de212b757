// to_f16: converts f32 values to IEEE binary16, two per u32 word, lower half first (the
// layout of an f16 array, which the f16-operand matmuls read): for 0 <= w < words,
//   out[w] = pack2x16float(vec2(x[2w], x[2w + 1])),
// with x[i] = 0 for i >= len (an odd count's last word). Values beyond f16's finite range are
// saturated to +-65504 first (pack2x16float leaves them unspecified); rounding is the
// adapter's f32 -> f16 conversion (WGSL allows either neighbour of an inexact value; the
// tests allow one f16 ulp against round-to-nearest-even).
//
// Bindings (group 0): 0 uniform Params; 1 x (read; x[i] at x_first + i); 2 out (read_write,
// u32; out[w] at out_first + w).
// Dispatch: ceil(words / WG) workgroups, split over x and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup).
// Loops: none.

// Keep in sync with ToF16Params in src/ops/to_f16.rs.
struct Params {
    words: u32,     // words written by this dispatch
    len: u32,       // values of x in this dispatch (2 * words or 2 * words - 1)
    x_first: u32,
    out_first: u32,
}

const F16_MAX: f32 = 65504.0;

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = linear_workgroup(wid, nwg) * WG + lid;
    if (w >= p.words) {
        return;
    }
    let i = 2u * w;
    let lo = clamp(x[p.x_first + i], -F16_MAX, F16_MAX);
    var hi = 0.0;
    if (i + 1u < p.len) {
        hi = clamp(x[p.x_first + i + 1u], -F16_MAX, F16_MAX);
    }
    out[p.out_first + w] = pack2x16float(vec2<f32>(lo, hi));
}
