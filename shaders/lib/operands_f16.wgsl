// The operands A and B of the vec4 matmul kernels as f16 (bindings 1 and 2): IEEE binary16
// values packed two per u32, little end first (the layout of an f16 array), read four at a
// time and widened to f32 with unpack2x16float, which every adapter has (no SHADER_F16
// needed). The same interface as shaders/lib/operands_f32.wgsl; prepended by the host, no
// entry point. Offsets are in elements and multiples of 4.

@group(0) @binding(1) var<storage, read> a: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> b: array<vec2<u32>>;

// A's values at elements i .. i+3.
fn load_a4(i: u32) -> vec4<f32> {
    let w = a[i / 4u];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

// B's values at elements i .. i+3.
fn load_b4(i: u32) -> vec4<f32> {
    let w = b[i / 4u];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
