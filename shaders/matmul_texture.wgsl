// matmul_texture: the matmul variant for CPU adapters with 8-wide subgroups (lavapipe), same
// contract as matmul (host src/ops/matmul_texture.rs): batched
// C = act(alpha * op(A) * op(B) + beta * C + bias), op(A) and op(B) first copied into
// rgba32float texture arrays (4 consecutive values of a row per texel, zero padded along k) by
// buffer-to-texture copies where the layout allows, by matmul_pack otherwise.
//
// Why textures: lavapipe (Mesa 22.3) loads from storage buffers one invocation at a time, in a
// loop over the SIMD lanes, while texel fetches are vector gathers. Measured at n = 1024 on two
// cores: 1.3-2 GFLOP/s from storage buffers, 17-19 from textures. Each workgroup is one
// subgroup of 8 invocations; each computes 16 rows x 4 columns of C. The 16 rows are shared by
// the subgroup: each invocation fetches one texel of A (4 values of k) for one of them, and
// subgroupBroadcast hands every row to every invocation, so A costs 2 fetches per 4 k instead
// of 16. B costs 4 fetches (one texel for each of the 4 k).
//
// Bindings (group 0): 0 uniform Params (as matmul; a_batch_stride and b_batch_stride are the
// texture layer step per batch, 1 or 0 for a shared operand); 1 a_tex (op(A): m rows of
// ceil(k/4) texels, layer per batch); 2 b_tex (op(B): ceil(k/4)*4 rows of ceil(n/4) texels);
// 3 bias (read, a placeholder when absent); 4 c (read_write).
// Dispatch: (ceil(n / 32), ceil(m / 16), batch). Requires subgroups of exactly 8 invocations.
// Overrides: none.
// Trusted (compiled without runtime checks, see Kernel::trusted): texel coordinates are clamped
// inside the textures the host sized from m, n and k (rows to m - 1, texels to ceil(n/4) - 1,
// k texels below ceil(k/4), B rows below 4 * ceil(k/4)); layers are 0 or the batch index
// below the layer count; stores are guarded by m and n.

// Params and the FLAG_ constants: shaders/lib/matmul_params.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var a_tex: texture_2d_array<f32>;
@group(0) @binding(2) var b_tex: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Row i of the invocation's 16 x 4 block of C.
struct Tile {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
    r4: vec4<f32>,
    r5: vec4<f32>,
    r6: vec4<f32>,
    r7: vec4<f32>,
    r8: vec4<f32>,
    r9: vec4<f32>,
    r10: vec4<f32>,
    r11: vec4<f32>,
    r12: vec4<f32>,
    r13: vec4<f32>,
    r14: vec4<f32>,
    r15: vec4<f32>,
}

// Four k at once: ca and cb hold this invocation's A texel for rows lane and 8 + lane;
// b0..b3 hold B's values at the four k for the invocation's 4 columns.
fn step(t: Tile, ca: vec4<f32>, cb: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> Tile {
    var o: Tile;
    let a0 = subgroupBroadcast(ca, 0u);
    o.r0 = fma(vec4<f32>(a0.x), b0, fma(vec4<f32>(a0.y), b1, fma(vec4<f32>(a0.z), b2, fma(vec4<f32>(a0.w), b3, t.r0))));
    let a1 = subgroupBroadcast(ca, 1u);
    o.r1 = fma(vec4<f32>(a1.x), b0, fma(vec4<f32>(a1.y), b1, fma(vec4<f32>(a1.z), b2, fma(vec4<f32>(a1.w), b3, t.r1))));
    let a2 = subgroupBroadcast(ca, 2u);
    o.r2 = fma(vec4<f32>(a2.x), b0, fma(vec4<f32>(a2.y), b1, fma(vec4<f32>(a2.z), b2, fma(vec4<f32>(a2.w), b3, t.r2))));
    let a3 = subgroupBroadcast(ca, 3u);
    o.r3 = fma(vec4<f32>(a3.x), b0, fma(vec4<f32>(a3.y), b1, fma(vec4<f32>(a3.z), b2, fma(vec4<f32>(a3.w), b3, t.r3))));
    let a4 = subgroupBroadcast(ca, 4u);
    o.r4 = fma(vec4<f32>(a4.x), b0, fma(vec4<f32>(a4.y), b1, fma(vec4<f32>(a4.z), b2, fma(vec4<f32>(a4.w), b3, t.r4))));
    let a5 = subgroupBroadcast(ca, 5u);
    o.r5 = fma(vec4<f32>(a5.x), b0, fma(vec4<f32>(a5.y), b1, fma(vec4<f32>(a5.z), b2, fma(vec4<f32>(a5.w), b3, t.r5))));
    let a6 = subgroupBroadcast(ca, 6u);
    o.r6 = fma(vec4<f32>(a6.x), b0, fma(vec4<f32>(a6.y), b1, fma(vec4<f32>(a6.z), b2, fma(vec4<f32>(a6.w), b3, t.r6))));
    let a7 = subgroupBroadcast(ca, 7u);
    o.r7 = fma(vec4<f32>(a7.x), b0, fma(vec4<f32>(a7.y), b1, fma(vec4<f32>(a7.z), b2, fma(vec4<f32>(a7.w), b3, t.r7))));
    let a8 = subgroupBroadcast(cb, 0u);
    o.r8 = fma(vec4<f32>(a8.x), b0, fma(vec4<f32>(a8.y), b1, fma(vec4<f32>(a8.z), b2, fma(vec4<f32>(a8.w), b3, t.r8))));
    let a9 = subgroupBroadcast(cb, 1u);
    o.r9 = fma(vec4<f32>(a9.x), b0, fma(vec4<f32>(a9.y), b1, fma(vec4<f32>(a9.z), b2, fma(vec4<f32>(a9.w), b3, t.r9))));
    let a10 = subgroupBroadcast(cb, 2u);
    o.r10 = fma(vec4<f32>(a10.x), b0, fma(vec4<f32>(a10.y), b1, fma(vec4<f32>(a10.z), b2, fma(vec4<f32>(a10.w), b3, t.r10))));
    let a11 = subgroupBroadcast(cb, 3u);
    o.r11 = fma(vec4<f32>(a11.x), b0, fma(vec4<f32>(a11.y), b1, fma(vec4<f32>(a11.z), b2, fma(vec4<f32>(a11.w), b3, t.r11))));
    let a12 = subgroupBroadcast(cb, 4u);
    o.r12 = fma(vec4<f32>(a12.x), b0, fma(vec4<f32>(a12.y), b1, fma(vec4<f32>(a12.z), b2, fma(vec4<f32>(a12.w), b3, t.r12))));
    let a13 = subgroupBroadcast(cb, 5u);
    o.r13 = fma(vec4<f32>(a13.x), b0, fma(vec4<f32>(a13.y), b1, fma(vec4<f32>(a13.z), b2, fma(vec4<f32>(a13.w), b3, t.r13))));
    let a14 = subgroupBroadcast(cb, 6u);
    o.r14 = fma(vec4<f32>(a14.x), b0, fma(vec4<f32>(a14.y), b1, fma(vec4<f32>(a14.z), b2, fma(vec4<f32>(a14.w), b3, t.r14))));
    let a15 = subgroupBroadcast(cb, 7u);
    o.r15 = fma(vec4<f32>(a15.x), b0, fma(vec4<f32>(a15.y), b1, fma(vec4<f32>(a15.z), b2, fma(vec4<f32>(a15.w), b3, t.r15))));
    return o;
}

// store4 (the epilogue and the store): shaders/lib/matmul_store.wgsl.

@compute @workgroup_size(8, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = wid.y * 16u;
    let texel = wid.x * 8u + lane;
    let col0 = texel * 4u;
    let cols = col0 + vec4<u32>(0u, 1u, 2u, 3u);
    let a_layer = wid.z * p.a_batch_stride;
    let b_layer = wid.z * p.b_batch_stride;
    let c_base = p.c_first + wid.z * p.c_batch_stride;
    // Clamped fetches stay inside the textures; what they add lands outside C and is dropped.
    let row_a = min(row0 + lane, p.m - 1u);
    let row_b = min(row0 + 8u + lane, p.m - 1u);
    let tx = min(texel, (p.n + 3u) / 4u - 1u);

    var t: Tile;
    for (var kq = 0u; kq < (p.k + 3u) / 4u; kq++) {
        let ca = textureLoad(a_tex, vec2<u32>(kq, row_a), a_layer, 0);
        let cb = textureLoad(a_tex, vec2<u32>(kq, row_b), a_layer, 0);
        let b0 = textureLoad(b_tex, vec2<u32>(tx, kq * 4u), b_layer, 0);
        let b1 = textureLoad(b_tex, vec2<u32>(tx, kq * 4u + 1u), b_layer, 0);
        let b2 = textureLoad(b_tex, vec2<u32>(tx, kq * 4u + 2u), b_layer, 0);
        let b3 = textureLoad(b_tex, vec2<u32>(tx, kq * 4u + 3u), b_layer, 0);
        t = step(t, ca, cb, b0, b1, b2, b3);
    }

    store4(c_base, row0 + 0u, cols, t.r0);
    store4(c_base, row0 + 1u, cols, t.r1);
    store4(c_base, row0 + 2u, cols, t.r2);
    store4(c_base, row0 + 3u, cols, t.r3);
    store4(c_base, row0 + 4u, cols, t.r4);
    store4(c_base, row0 + 5u, cols, t.r5);
    store4(c_base, row0 + 6u, cols, t.r6);
    store4(c_base, row0 + 7u, cols, t.r7);
    store4(c_base, row0 + 8u, cols, t.r8);
    store4(c_base, row0 + 9u, cols, t.r9);
    store4(c_base, row0 + 10u, cols, t.r10);
    store4(c_base, row0 + 11u, cols, t.r11);
    store4(c_base, row0 + 12u, cols, t.r12);
    store4(c_base, row0 + 13u, cols, t.r13);
    store4(c_base, row0 + 14u, cols, t.r14);
    store4(c_base, row0 + 15u, cols, t.r15);
}
