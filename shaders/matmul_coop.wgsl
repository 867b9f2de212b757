// matmul_coop: C = op(A) * op(B) (+ C when FLAG_READ_C: beta = 1) with f16 operands and f32
// accumulation on the tensor cores, through wgpu's cooperative-matrix extension (16 x 16 x 16
// f16 -> f32 products), batched, op in {N, T} (host src/ops/matmul_coop.rs, for the
// f16-operand matmul of src/ops/matmul_f16.rs). m, n and k are multiples of 16; alpha = 1,
// no bias, no activation (the host runs the other f16 kernels otherwise).
//
// A workgroup is one subgroup (SG invocations, the adapter's fixed subgroup size) and
// computes a 64 x 64 tile of C as 4 x 4 cooperative 16 x 16 accumulators held in sixteen
// named variables; each step of 16 along k loads four tiles of op(A) and four of op(B)
// straight from the storage buffers (no workgroup memory: measured on an H200, this layout
// ran at 77 TFLOP/s against cuBLAS SGEMM's 51 in a prototype) by load_a and load_b of
// shaders/lib/coop_operands.wgsl. Tiles past the edge of C load the last whole tile instead
// (m and n are multiples of 16) and are not stored.
//
// The epilogue is a library piece: shaders/lib/coop_store.wgsl stores each accumulator into C
// (this kernel), shaders/lib/coop_store_paired.wgsl takes the modulus of complex pairs through
// workgroup memory (the variant matmul_coop_paired of the fused optical projection, host
// src/ops/project_optical.rs). Both define store_tile (called for each of the 16 tiles) and
// finish (called once after them, by the whole subgroup).
//
// Bindings (group 0): 0 uniform Params (shaders/lib/matmul_params.wgsl; alpha, beta, bias and
// activation fields unused); 1 a (read, f16); 2 b (read, f16); 3 c (read_write, f32).
// Element offsets are in elements; every *_first and leading dimension is a multiple of 16.
// Dispatch: (ceil(n / 64), ceil(m / 64), batch).
// Overrides: SG (invocations per workgroup: the subgroup size); TRANS_A, TRANS_B.
// Loops (per invocation, counting a loop of n iterations as n + 1 passes as lavapipe does; see
// matmul::loop_passes, which keeps every k block of a dispatch within the adapter's limit): k / 16
// + 1 for the k loop and a constant number for the stores. Requires SHADER_F16 and
// EXPERIMENTAL_COOPERATIVE_MATRIX with a 16 x 16 x 16 f16 -> f32 configuration.
//

enable f16;
enable wgpu_cooperative_matrix;

override SG: u32 = 32u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(SG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let m0 = wid.y * 64u;
    let n0 = wid.x * 64u;
    let a_base = p.a_first + wid.z * p.a_batch_stride;
    let b_base = p.b_first + wid.z * p.b_batch_stride;
    let c_base = p.c_first + wid.z * p.c_batch_stride;
    // Tile origins clamped to the last whole tile (m, n multiples of 16): loads stay inside.
    let i0 = min(m0, p.m - 16u);
    let i1 = min(m0 + 16u, p.m - 16u);
    let i2 = min(m0 + 32u, p.m - 16u);
    let i3 = min(m0 + 48u, p.m - 16u);
    let j0 = min(n0, p.n - 16u);
    let j1 = min(n0 + 16u, p.n - 16u);
    let j2 = min(n0 + 32u, p.n - 16u);
    let j3 = min(n0 + 48u, p.n - 16u);

    var c00 = start_tile(c_base, i0, j0);
    var c01 = start_tile(c_base, i0, j1);
    var c02 = start_tile(c_base, i0, j2);
    var c03 = start_tile(c_base, i0, j3);
    var c10 = start_tile(c_base, i1, j0);
    var c11 = start_tile(c_base, i1, j1);
    var c12 = start_tile(c_base, i1, j2);
    var c13 = start_tile(c_base, i1, j3);
    var c20 = start_tile(c_base, i2, j0);
    var c21 = start_tile(c_base, i2, j1);
    var c22 = start_tile(c_base, i2, j2);
    var c23 = start_tile(c_base, i2, j3);
    var c30 = start_tile(c_base, i3, j0);
    var c31 = start_tile(c_base, i3, j1);
    var c32 = start_tile(c_base, i3, j2);
    var c33 = start_tile(c_base, i3, j3);

    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        let a0 = load_a(a_base, i0, k0);
        let a1 = load_a(a_base, i1, k0);
        let a2 = load_a(a_base, i2, k0);
        let a3 = load_a(a_base, i3, k0);
        let b0 = load_b(b_base, k0, j0);
        let b1 = load_b(b_base, k0, j1);
        let b2 = load_b(b_base, k0, j2);
        let b3 = load_b(b_base, k0, j3);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c02 = coopMultiplyAdd(a0, b2, c02);
        c03 = coopMultiplyAdd(a0, b3, c03);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c12 = coopMultiplyAdd(a1, b2, c12);
        c13 = coopMultiplyAdd(a1, b3, c13);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c22 = coopMultiplyAdd(a2, b2, c22);
        c23 = coopMultiplyAdd(a2, b3, c23);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        c32 = coopMultiplyAdd(a3, b2, c32);
        c33 = coopMultiplyAdd(a3, b3, c33);
    }

    store_tile(c00, c_base, m0, n0);
    store_tile(c01, c_base, m0, n0 + 16u);
    store_tile(c02, c_base, m0, n0 + 32u);
    store_tile(c03, c_base, m0, n0 + 48u);
    store_tile(c10, c_base, m0 + 16u, n0);
    store_tile(c11, c_base, m0 + 16u, n0 + 16u);
    store_tile(c12, c_base, m0 + 16u, n0 + 32u);
    store_tile(c13, c_base, m0 + 16u, n0 + 48u);
    store_tile(c20, c_base, m0 + 32u, n0);
    store_tile(c21, c_base, m0 + 32u, n0 + 16u);
    store_tile(c22, c_base, m0 + 32u, n0 + 32u);
    store_tile(c23, c_base, m0 + 32u, n0 + 48u);
    store_tile(c30, c_base, m0 + 48u, n0);
    store_tile(c31, c_base, m0 + 48u, n0 + 16u);
    store_tile(c32, c_base, m0 + 48u, n0 + 32u);
    store_tile(c33, c_base, m0 + 48u, n0 + 48u);
    finish(c_base, m0, n0, lane);
}
