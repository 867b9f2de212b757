// matmul_vec4: the vec4 variant of matmul (same contract, host src/ops/matmul.rs) for operands
// whose rows are whole vec4s: batched C = act(alpha * op(A) * op(B) + beta * C + bias), op in
// {N, T}, with n % 4 == 0, k % 4 == 0 where A (N) or B (T) runs along k, m % 4 == 0 where A (T)
// runs along m, and every *_first a multiple of 4. The host checks this and otherwise runs
// matmul.wgsl.
//
// Register blocking: each thread computes an 8 x 8 block of C in sixteen named vec4<f32>
// accumulators (fields of Tile, updated by value so that no array is indexed at run time),
// reading A and B as vec4s, k advancing four at a time; no workgroup memory, no barriers. Its
// eight columns are two vec4s WG_X * 4 apart, so neighbouring threads read neighbouring vec4s.
// Rows and vec4 columns past the edge are clamped for loading and skipped for storing.
// Measured on an H200 (n = 4096): 8 x 8 per thread with vec4 loads ran at 0.53x cuBLAS SGEMM,
// the scalar 4 x 8 kernel at 0.35x.
//
// Bindings (group 0): 0 uniform Params; 1 a (read, vec4); 2 b (read, vec4); 3 bias (read, f32,
// a placeholder when absent); 4 c (read_write, vec4). Element offsets are in f32 units.
// Dispatch: (ceil(n / (8 * WG_X)), ceil(m / (8 * WG_Y)), batch).
// Overrides: WG_X, WG_Y (threads per workgroup along n and m); TRANS_A, TRANS_B.

// Params and the FLAG_ constants: shaders/lib/matmul_params.wgsl.

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

// The 8 x 8 accumulator block: row r, columns lo (first vec4) and hi (second vec4).
struct Tile {
    r0l: vec4<f32>, r0h: vec4<f32>, r1l: vec4<f32>, r1h: vec4<f32>,
    r2l: vec4<f32>, r2h: vec4<f32>, r3l: vec4<f32>, r3h: vec4<f32>,
    r4l: vec4<f32>, r4h: vec4<f32>, r5l: vec4<f32>, r5h: vec4<f32>,
    r6l: vec4<f32>, r6h: vec4<f32>, r7l: vec4<f32>, r7h: vec4<f32>,
}

// Operand values for four consecutive k: for A, rows 0-3 (lo) and 4-7 (hi) of the block;
// for B, columns lo and hi of the block.
struct Quad {
    lo0: vec4<f32>, hi0: vec4<f32>, lo1: vec4<f32>, hi1: vec4<f32>,
    lo2: vec4<f32>, hi2: vec4<f32>, lo3: vec4<f32>, hi3: vec4<f32>,
}

// One k: t += a_col (8 rows) outer b_row (8 columns).
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

// Four row-major vec4s (4 x 4 values) transposed: column j of the result is row j's values.
fn transpose4(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, j: u32) -> vec4<f32> {
    return vec4<f32>(v0[j], v1[j], v2[j], v3[j]);
}

// A's values at k = k0 .. k0+3 for the block's 8 rows (row indices already clamped).
// N: A[row, k0..k0+3] is one vec4 per row. T: A[k, g..g+3] is one vec4 per k and row group.
fn load_a(base: u32, rows_lo: vec4<u32>, rows_hi: vec4<u32>, k0: u32) -> Quad {
    var q: Quad;
    if (TRANS_A) {
        q.lo0 = a[(base + (k0 + 0u) * p.lda + rows_lo.x) / 4u];
        q.hi0 = a[(base + (k0 + 0u) * p.lda + rows_hi.x) / 4u];
        q.lo1 = a[(base + (k0 + 1u) * p.lda + rows_lo.x) / 4u];
        q.hi1 = a[(base + (k0 + 1u) * p.lda + rows_hi.x) / 4u];
        q.lo2 = a[(base + (k0 + 2u) * p.lda + rows_lo.x) / 4u];
        q.hi2 = a[(base + (k0 + 2u) * p.lda + rows_hi.x) / 4u];
        q.lo3 = a[(base + (k0 + 3u) * p.lda + rows_lo.x) / 4u];
        q.hi3 = a[(base + (k0 + 3u) * p.lda + rows_hi.x) / 4u];
        return q;
    }
    let v0 = a[(base + rows_lo.x * p.lda + k0) / 4u];
    let v1 = a[(base + rows_lo.y * p.lda + k0) / 4u];
    let v2 = a[(base + rows_lo.z * p.lda + k0) / 4u];
    let v3 = a[(base + rows_lo.w * p.lda + k0) / 4u];
    let v4 = a[(base + rows_hi.x * p.lda + k0) / 4u];
    let v5 = a[(base + rows_hi.y * p.lda + k0) / 4u];
    let v6 = a[(base + rows_hi.z * p.lda + k0) / 4u];
    let v7 = a[(base + rows_hi.w * p.lda + k0) / 4u];
    q.lo0 = transpose4(v0, v1, v2, v3, 0u); q.hi0 = transpose4(v4, v5, v6, v7, 0u);
    q.lo1 = transpose4(v0, v1, v2, v3, 1u); q.hi1 = transpose4(v4, v5, v6, v7, 1u);
    q.lo2 = transpose4(v0, v1, v2, v3, 2u); q.hi2 = transpose4(v4, v5, v6, v7, 2u);
    q.lo3 = transpose4(v0, v1, v2, v3, 3u); q.hi3 = transpose4(v4, v5, v6, v7, 3u);
    return q;
}

// B's values at k = k0 .. k0+3 for the block's two column vec4s starting at lo and hi.
// N: B[k, lo..lo+3] is one vec4 per k. T: B[col, k0..k0+3] is one vec4 per column.
fn load_b(base: u32, lo: u32, hi: u32, k0: u32) -> Quad {
    var q: Quad;
    if (TRANS_B) {
        let l0 = b[(base + (lo + 0u) * p.ldb + k0) / 4u];
        let l1 = b[(base + (lo + 1u) * p.ldb + k0) / 4u];
        let l2 = b[(base + (lo + 2u) * p.ldb + k0) / 4u];
        let l3 = b[(base + (lo + 3u) * p.ldb + k0) / 4u];
        let h0 = b[(base + (hi + 0u) * p.ldb + k0) / 4u];
        let h1 = b[(base + (hi + 1u) * p.ldb + k0) / 4u];
        let h2 = b[(base + (hi + 2u) * p.ldb + k0) / 4u];
        let h3 = b[(base + (hi + 3u) * p.ldb + k0) / 4u];
        q.lo0 = transpose4(l0, l1, l2, l3, 0u); q.hi0 = transpose4(h0, h1, h2, h3, 0u);
        q.lo1 = transpose4(l0, l1, l2, l3, 1u); q.hi1 = transpose4(h0, h1, h2, h3, 1u);
        q.lo2 = transpose4(l0, l1, l2, l3, 2u); q.hi2 = transpose4(h0, h1, h2, h3, 2u);
        q.lo3 = transpose4(l0, l1, l2, l3, 3u); q.hi3 = transpose4(h0, h1, h2, h3, 3u);
        return q;
    }
    q.lo0 = b[(base + (k0 + 0u) * p.ldb + lo) / 4u];
    q.hi0 = b[(base + (k0 + 0u) * p.ldb + hi) / 4u];
    q.lo1 = b[(base + (k0 + 1u) * p.ldb + lo) / 4u];
    q.hi1 = b[(base + (k0 + 1u) * p.ldb + hi) / 4u];
    q.lo2 = b[(base + (k0 + 2u) * p.ldb + lo) / 4u];
    q.hi2 = b[(base + (k0 + 2u) * p.ldb + hi) / 4u];
    q.lo3 = b[(base + (k0 + 3u) * p.ldb + lo) / 4u];
    q.hi3 = b[(base + (k0 + 3u) * p.ldb + hi) / 4u];
    return q;
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

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = (wid.y * WG_Y + lid.y) * 8u;
    let col0 = wid.x * WG_X * 8u + lid.x * 4u;
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    let a_base = p.a_first + wid.z * p.a_batch_stride;
    let b_base = p.b_first + wid.z * p.b_batch_stride;
    let c_base = p.c_first + wid.z * p.c_batch_stride;

    // Clamped loads: rows one by one (N) or by groups of four (T, m % 4 == 0), columns by vec4.
    let last_row = vec4<u32>(p.m - 1u);
    var rows_lo = min(row0 + vec4<u32>(0u, 1u, 2u, 3u), last_row);
    var rows_hi = min(row0 + vec4<u32>(4u, 5u, 6u, 7u), last_row);
    if (TRANS_A) {
        rows_hi = vec4<u32>(min(row0 + 4u, p.m - 4u));
    }
    let lo = col0;
    let hi = min(col0 + WG_X * 4u, p.n - 4u);

    var t: Tile;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        let qa = load_a(a_base, rows_lo, rows_hi, k0);
        let qb = load_b(b_base, lo, hi, k0);
        t = step(t, qa.lo0, qa.hi0, qb.lo0, qb.hi0);
        t = step(t, qa.lo1, qa.hi1, qb.lo1, qb.hi1);
        t = step(t, qa.lo2, qa.hi2, qb.lo2, qb.hi2);
        t = step(t, qa.lo3, qa.hi3, qb.lo3, qb.hi3);
    }

    let hi_store = col0 + WG_X * 4u;
    store4(c_base, row0 + 0u, lo, t.r0l); store4(c_base, row0 + 0u, hi_store, t.r0h);
    store4(c_base, row0 + 1u, lo, t.r1l); store4(c_base, row0 + 1u, hi_store, t.r1h);
    store4(c_base, row0 + 2u, lo, t.r2l); store4(c_base, row0 + 2u, hi_store, t.r2h);
    store4(c_base, row0 + 3u, lo, t.r3l); store4(c_base, row0 + 3u, hi_store, t.r3h);
    store4(c_base, row0 + 4u, lo, t.r4l); store4(c_base, row0 + 4u, hi_store, t.r4h);
    store4(c_base, row0 + 5u, lo, t.r5l); store4(c_base, row0 + 5u, hi_store, t.r5h);
    store4(c_base, row0 + 6u, lo, t.r6l); store4(c_base, row0 + 6u, hi_store, t.r6h);
    store4(c_base, row0 + 7u, lo, t.r7l); store4(c_base, row0 + 7u, hi_store, t.r7h);
}
