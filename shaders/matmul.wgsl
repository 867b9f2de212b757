// matmul: batched C = act(alpha * op(A) * op(B) + beta * C + bias), op in {N, T}.
// op(A) is m x k, op(B) is k x n, C is m x n, all row-major; bias has n entries (one per column).
// A is read as A[row * lda + kk] (N) or A[kk * lda + row] (T), B as B[kk * ldb + col] (N) or
// B[col * ldb + kk] (T); batch b adds b * stride to each operand (stride 0 broadcasts).
//
// Register blocking: each thread computes a 4 x 8 block of C in eight named vec4<f32>
// accumulators (a private array indexed at run time would leave registers), with no
// workgroup memory and no barriers. Its eight columns are two groups of four, WG_X * 4 apart,
// so neighbouring threads read neighbouring vec4s of B and C. Rows and columns past the edge
// are clamped for loading and skipped for storing, so any m, n, k >= 1 works.
//
// Bindings (group 0): 0 uniform Params; 1 a (read); 2 b (read); 3 bias (read, a placeholder
// when absent); 4 c (read_write). Every `*_first` is the element of its binding where this
// dispatch's block starts (the host binds windows of large operands; see src/ops/matmul.rs).
// Dispatch: (ceil(n / (8 * WG_X)), ceil(m / (4 * WG_Y)), batch).
// Overrides: WG_X, WG_Y (threads per workgroup along n and m); TRANS_A, TRANS_B.
// Loops (per invocation, counting a loop of n iterations as n + 1 passes as lavapipe does; see
// matmul::loop_passes, which keeps every k block of a dispatch within the adapter's limit): k + 1
// for the k loop and 8 · 5 for the stores.
// Trusted (compiled without runtime checks, see Kernel::trusted): rows and columns are clamped
// to m - 1 and n - 1 before every load, k runs below p.k, stores are guarded by m and n, and
// the host binds windows that span (rows - 1) * ld + cols of each operand for the m, n, k and
// batch it writes into Params; no division by a parameter.

// Params and the FLAG_ constants: shaders/lib/matmul_params.wgsl.

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn load_a(base: u32, row: u32, kk: u32) -> f32 {
    if (TRANS_A) {
        return a[base + kk * p.lda + row];
    }
    return a[base + row * p.lda + kk];
}

fn load_b(base: u32, kk: u32, cols: vec4<u32>) -> vec4<f32> {
    if (TRANS_B) {
        return vec4<f32>(
            b[base + cols.x * p.ldb + kk],
            b[base + cols.y * p.ldb + kk],
            b[base + cols.z * p.ldb + kk],
            b[base + cols.w * p.ldb + kk],
        );
    }
    let r = base + kk * p.ldb;
    return vec4<f32>(b[r + cols.x], b[r + cols.y], b[r + cols.z], b[r + cols.w]);
}

// store4 (the epilogue and the store): shaders/lib/matmul_store.wgsl.

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = (wid.y * WG_Y + lid.y) * 4u;
    let col0 = wid.x * WG_X * 8u + lid.x * 4u;
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    let a_base = p.a_first + wid.z * p.a_batch_stride;
    let b_base = p.b_first + wid.z * p.b_batch_stride;
    let c_base = p.c_first + wid.z * p.c_batch_stride;

    // Clamped indices keep every load inside the operands.
    let last_row = p.m - 1u;
    let last_col = vec4<u32>(p.n - 1u);
    let r0 = row0;
    let r1 = min(row0 + 1u, last_row);
    let r2 = min(row0 + 2u, last_row);
    let r3 = min(row0 + 3u, last_row);
    let lo = col0 + vec4<u32>(0u, 1u, 2u, 3u);
    let hi = lo + vec4<u32>(WG_X * 4u);
    let lo_c = min(lo, last_col);
    let hi_c = min(hi, last_col);

    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);

    for (var kk = 0u; kk < p.k; kk++) {
        let bl = load_b(b_base, kk, lo_c);
        let bh = load_b(b_base, kk, hi_c);
        let a0 = vec4<f32>(load_a(a_base, r0, kk));
        let a1 = vec4<f32>(load_a(a_base, r1, kk));
        let a2 = vec4<f32>(load_a(a_base, r2, kk));
        let a3 = vec4<f32>(load_a(a_base, r3, kk));
        acc0l = fma(a0, bl, acc0l);
        acc0h = fma(a0, bh, acc0h);
        acc1l = fma(a1, bl, acc1l);
        acc1h = fma(a1, bh, acc1h);
        acc2l = fma(a2, bl, acc2l);
        acc2h = fma(a2, bh, acc2h);
        acc3l = fma(a3, bl, acc3l);
        acc3h = fma(a3, bh, acc3h);
    }

    store4(c_base, row0, lo, acc0l);
    store4(c_base, row0, hi, acc0h);
    store4(c_base, row0 + 1u, lo, acc1l);
    store4(c_base, row0 + 1u, hi, acc1h);
    store4(c_base, row0 + 2u, lo, acc2l);
    store4(c_base, row0 + 2u, hi, acc2h);
    store4(c_base, row0 + 3u, lo, acc3l);
    store4(c_base, row0 + 3u, hi, acc3h);
}
