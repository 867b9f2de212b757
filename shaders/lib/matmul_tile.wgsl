// The epilogue of the vec4 matmul kernels (matmul_vec4, matmul_tiled): their 8 x 8 register
// block (Tile, shaders/lib/tile8.wgsl) finished and stored. Prepended by the host, no entry
// point. Needs the kernel's `p: Params`, `bias: array<f32>` and `c: array<vec4<f32>>`
// (shaders/lib/matmul_params.wgsl).

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
