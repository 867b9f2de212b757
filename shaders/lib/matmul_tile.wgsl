// The 8 x 8 register block of the vec4 matmul kernels (matmul_vec4, matmul_tiled) and its
// epilogue; prepended by the host, no entry point. Needs the kernel's `p: Params`,
// `bias: array<f32>` and `c: array<vec4<f32>>` (shaders/lib/matmul_params.wgsl).

// The 8 x 8 accumulator block: row r, columns lo (first vec4) and hi (second vec4). Named
// fields updated by value, so that no array is indexed at run time (such arrays leave the
// registers: 0.38 TFLOP/s against 24.5 on an H200).
struct Tile {
    r0l: vec4<f32>, r0h: vec4<f32>, r1l: vec4<f32>, r1h: vec4<f32>,
    r2l: vec4<f32>, r2h: vec4<f32>, r3l: vec4<f32>, r3h: vec4<f32>,
    r4l: vec4<f32>, r4h: vec4<f32>, r5l: vec4<f32>, r5h: vec4<f32>,
    r6l: vec4<f32>, r6h: vec4<f32>, r7l: vec4<f32>, r7h: vec4<f32>,
}

// One k: t += a_col (rows 0-3 in al, 4-7 in ah) outer b_row (columns lo in bl, hi in bh).
fn step(t: Tile, al: vec4<f32>, ah: vec4<f32>, bl: vec4<f32>, bh: vec4<f32>) -> Tile {
    var o: Tile;
    o.r0l = fma(vec4<f32>(al.x), bl, t.r0l); o.r0h = fma(vec4<f32>(al.x), bh, t.r0h);
    o.r1l = fma(vec4<f32>(al.y), bl, t.r1l); o.r1h = fma(vec4<f32>(al.y), bh, t.r1h);
    o.r2l = fma(vec4<f32>(al.z), bl, t.r2l); o.r2h = fma(vec4<f32>(al.z), bh, t.r2h);
    o.r3l = fma(vec4<f32>(al.w), bl, t.r3l); o.r3h = fma(vec4<f32>(al.w), bh, t.r3h);
    o.r4l = fma(vec4<f32>(ah.x), bl, t.r4l); o.r4h = fma(vec4<f32>(ah.x), bh, t.r4h);
    o.r5l = fma(vec4<f32>(ah.y), bl, t.r5l); o.r5h = fma(vec4<f32>(ah.y), bh, t.r5h);
    o.r6l = fma(vec4<f32>(ah.z), bl, t.r6l); o.r6h = fma(vec4<f32>(ah.z), bh, t.r6h);
    o.r7l = fma(vec4<f32>(ah.w), bl, t.r7l); o.r7h = fma(vec4<f32>(ah.w), bh, t.r7h);
    return o;
}

// Finishes and stores one vec4 of C (row, columns col .. col+3) if it is inside C.
fn store4(c_base: u32, row: u32, col: u32, acc: vec4<f32>) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    let i = (c_base + row * p.ldc + col) / 4u;
    var v = p.alpha * acc;
    if ((p.flags & FLAG_READ_C) != 0u) {
        v = fma(vec4<f32>(p.beta), c[i], v);
    }
    if ((p.flags & FLAG_EPILOGUE) != 0u) {
        if ((p.flags & FLAG_BIAS) != 0u) {
            let bb = p.bias_first + col;
            v += vec4<f32>(bias[bb], bias[bb + 1u], bias[bb + 2u], bias[bb + 3u]);
        }
        v = vec4<f32>(
            activate(v.x, p.activation, p.activation_param),
            activate(v.y, p.activation, p.activation_param),
            activate(v.z, p.activation, p.activation_param),
            activate(v.w, p.activation, p.activation_param),
        );
    }
    c[i] = v;
}

// Stores the block: rows rows0 .. rows0+3 from the r0..r3 fields and rows1 .. rows1+3 from
// r4..r7, columns lo .. lo+3 and hi .. hi+3.
fn store_tile(c_base: u32, t: Tile, rows0: u32, rows1: u32, lo: u32, hi: u32) {
    store4(c_base, rows0 + 0u, lo, t.r0l); store4(c_base, rows0 + 0u, hi, t.r0h);
    store4(c_base, rows0 + 1u, lo, t.r1l); store4(c_base, rows0 + 1u, hi, t.r1h);
    store4(c_base, rows0 + 2u, lo, t.r2l); store4(c_base, rows0 + 2u, hi, t.r2h);
    store4(c_base, rows0 + 3u, lo, t.r3l); store4(c_base, rows0 + 3u, hi, t.r3h);
    store4(c_base, rows1 + 0u, lo, t.r4l); store4(c_base, rows1 + 0u, hi, t.r4h);
    store4(c_base, rows1 + 1u, lo, t.r5l); store4(c_base, rows1 + 1u, hi, t.r5h);
    store4(c_base, rows1 + 2u, lo, t.r6l); store4(c_base, rows1 + 2u, hi, t.r6h);
    store4(c_base, rows1 + 3u, lo, t.r7l); store4(c_base, rows1 + 3u, hi, t.r7h);
}
