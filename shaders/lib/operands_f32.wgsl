// The operands A and B of the vec4 matmul kernels as f32 (bindings 1 and 2); prepended by the
// host, no entry point. shaders/lib/operands_f16.wgsl is the same interface over f16 data.
// Offsets are in elements and multiples of 4.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

// A's values at elements i .. i+3.
fn load_a4(i: u32) -> vec4<f32> {
    return a[i / 4u];
}

// B's values at elements i .. i+3.
fn load_b4(i: u32) -> vec4<f32> {
    return b[i / 4u];
}
