// matmul_vec4: the vec4 variant of matmul (same contract, host src/ops/matmul.rs) for operands
// whose rows are whole vec4s: batched C = act(alpha * op(A) * op(B) + beta * C + bias), op in
// {N, T}, with n % 4 == 0, k % 4 == 0 where A (N) or B (T) runs along k, m % 4 == 0 where A (T)
// runs along m, and every *_first a multiple of 4. The host checks this and otherwise runs
// matmul.wgsl.
//
// Register blocking: each thread computes an 8 x 8 block of C in sixteen named vec4<f32>
// accumulators (Tile, shaders/lib/tile8.wgsl), reading A and B as vec4s through
// load_a4/load_b4 (shaders/lib/operands_f32.wgsl; operands_f16.wgsl makes the f16-input
// variant matmul_vec4_f16), k advancing four at a time; no workgroup memory, no barriers. Its
// eight columns are two vec4s WG_X * 4 apart, so neighbouring threads read neighbouring vec4s.
// Rows and vec4 columns past the edge are clamped for loading and skipped for storing.
// Measured on an H200 (n = 4096): 8 x 8 per thread with vec4 loads ran at 0.53x cuBLAS SGEMM,
// the scalar 4 x 8 kernel at 0.35x.
//
// Bindings (group 0): 0 uniform Params; 1 a, 2 b (read; declared by the operand piece); 3 bias
// (read, f32, a placeholder when absent); 4 c (read_write, vec4). Element offsets are in
// elements of the operands.
// Dispatch: (ceil(n / (8 * WG_X)), ceil(m / (8 * WG_Y)), batch).
// Overrides: WG_X, WG_Y (threads per workgroup along n and m); TRANS_A, TRANS_B.
// Loops (per invocation, counting a loop of n iterations as n + 1 passes as lavapipe does; see
// matmul::loop_passes, which keeps every k block of a dispatch within the adapter's limit): k / 4
// + 1 for the k loop and a constant number for the stores.
// Trusted (compiled without runtime checks, see Kernel::trusted): rows are clamped to m - 1
// (m - 4 for vec4 row groups), vec4 columns to n - 4, k0 + 3 < k since k % 4 == 0, stores are
// guarded by m and n, and the host binds windows spanning each operand's block for the
// m, n, k and batch it writes into Params; divisions are by 4 only.

// Params and the FLAG_ constants: shaders/lib/matmul_params.wgsl. Tile, step:
// shaders/lib/tile8.wgsl; store_tile: shaders/lib/matmul_tile.wgsl. a, b, load_a4, load_b4:
// the operand piece.

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

// Operand values for four consecutive k: for A, rows 0-3 (lo) and 4-7 (hi) of the block;
// for B, columns lo and hi of the block.
struct Quad {
    lo0: vec4<f32>, hi0: vec4<f32>, lo1: vec4<f32>, hi1: vec4<f32>,
    lo2: vec4<f32>, hi2: vec4<f32>, lo3: vec4<f32>, hi3: vec4<f32>,
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
        q.lo0 = load_a4(base + (k0 + 0u) * p.lda + rows_lo.x);
        q.hi0 = load_a4(base + (k0 + 0u) * p.lda + rows_hi.x);
        q.lo1 = load_a4(base + (k0 + 1u) * p.lda + rows_lo.x);
        q.hi1 = load_a4(base + (k0 + 1u) * p.lda + rows_hi.x);
        q.lo2 = load_a4(base + (k0 + 2u) * p.lda + rows_lo.x);
        q.hi2 = load_a4(base + (k0 + 2u) * p.lda + rows_hi.x);
        q.lo3 = load_a4(base + (k0 + 3u) * p.lda + rows_lo.x);
        q.hi3 = load_a4(base + (k0 + 3u) * p.lda + rows_hi.x);
        return q;
    }
    let v0 = load_a4(base + rows_lo.x * p.lda + k0);
    let v1 = load_a4(base + rows_lo.y * p.lda + k0);
    let v2 = load_a4(base + rows_lo.z * p.lda + k0);
    let v3 = load_a4(base + rows_lo.w * p.lda + k0);
    let v4 = load_a4(base + rows_hi.x * p.lda + k0);
    let v5 = load_a4(base + rows_hi.y * p.lda + k0);
    let v6 = load_a4(base + rows_hi.z * p.lda + k0);
    let v7 = load_a4(base + rows_hi.w * p.lda + k0);
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
        let l0 = load_b4(base + (lo + 0u) * p.ldb + k0);
        let l1 = load_b4(base + (lo + 1u) * p.ldb + k0);
        let l2 = load_b4(base + (lo + 2u) * p.ldb + k0);
        let l3 = load_b4(base + (lo + 3u) * p.ldb + k0);
        let h0 = load_b4(base + (hi + 0u) * p.ldb + k0);
        let h1 = load_b4(base + (hi + 1u) * p.ldb + k0);
        let h2 = load_b4(base + (hi + 2u) * p.ldb + k0);
        let h3 = load_b4(base + (hi + 3u) * p.ldb + k0);
        q.lo0 = transpose4(l0, l1, l2, l3, 0u); q.hi0 = transpose4(h0, h1, h2, h3, 0u);
        q.lo1 = transpose4(l0, l1, l2, l3, 1u); q.hi1 = transpose4(h0, h1, h2, h3, 1u);
        q.lo2 = transpose4(l0, l1, l2, l3, 2u); q.hi2 = transpose4(h0, h1, h2, h3, 2u);
        q.lo3 = transpose4(l0, l1, l2, l3, 3u); q.hi3 = transpose4(h0, h1, h2, h3, 3u);
        return q;
    }
    q.lo0 = load_b4(base + (k0 + 0u) * p.ldb + lo);
    q.hi0 = load_b4(base + (k0 + 0u) * p.ldb + hi);
    q.lo1 = load_b4(base + (k0 + 1u) * p.ldb + lo);
    q.hi1 = load_b4(base + (k0 + 1u) * p.ldb + hi);
    q.lo2 = load_b4(base + (k0 + 2u) * p.ldb + lo);
    q.hi2 = load_b4(base + (k0 + 2u) * p.ldb + hi);
    q.lo3 = load_b4(base + (k0 + 3u) * p.ldb + lo);
    q.hi3 = load_b4(base + (k0 + 3u) * p.ldb + hi);
    return q;
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
    store_tile(c_base, t, row0, row0 + 4u, lo, col0 + WG_X * 4u);
}
