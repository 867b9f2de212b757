// The 8 x 8 register block of the vec4 matmul kernels (matmul_vec4, matmul_tiled) and of the
// register-blocked attention (attention_blocked): 8 rows of two vec4s of columns, and its
// outer-product step. Prepended by the host, no entry point.

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
