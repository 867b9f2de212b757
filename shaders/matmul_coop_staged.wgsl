// matmul_coop_staged: C = op(A) * op(B) (+ C when FLAG_READ_C: beta = 1) with f16 operands
// and f32 accumulation on the tensor cores, the operands staged through workgroup memory
// (host src/ops/matmul_coop_staged.rs, a configuration of the f16-operand matmul of
// src/ops/matmul_f16.rs: `2x2-coop`). m and n are multiples of 128 and k of 32; alpha = 1, no
// bias, no activation.
//
// A workgroup is four subgroups (2 x 2, SG invocations each) and computes a 128 x 128 tile of
// C; each subgroup holds a 64 x 64 quarter as 4 x 4 cooperative 16 x 16 accumulators in
// sixteen named variables, as matmul_coop does. The difference is the operands: matmul_coop
// has every subgroup load its own 64 x 16 of op(A) and 16 x 64 of op(B) from the storage
// buffers at each step of k, so each value is fetched by two subgroups of a 128 x 128 block
// and the loads' latency lies between the products. Here the workgroup fetches slabs of
// 128 x 32 of op(A) and 32 x 128 of op(B) once (each subgroup 4 of the 16 tiles of each
// slab), into double-buffered workgroup memory; the next slab's tiles are loaded into
// registers before the products of the current one and stored after them, so one barrier
// per slab separates the buffers' uses:
//
//     stage slab 0 into buffer 0; barrier
//     for each slab s: load slab s + 1's tiles (registers); products from buffer s % 2;
//                      store the tiles into buffer (s + 1) % 2; barrier
//
// The store of step s writes the buffer the products of step s - 1 read, after that step's
// barrier; the products of step s read what step s - 1 stored, before it. Slabs are stored
// row-major whatever the operands' layouts (load_a and load_b of
// shaders/lib/coop_operands.wgsl read a transposed operand with coopLoad; the tiles are
// stored with coopStoreT), with rows padded by 8 halves (16 bytes) so that the rows of a
// 16 x 16 load fall on different banks.
//
// Uniformity: cooperative operations must run in uniform control flow (naga checks it for
// the loads and products), and subgroup_id is not workgroup-uniform, so nothing branches on
// it: each subgroup's tiles are chosen by arithmetic on it, every loop runs a count fixed by
// constants or Params, and there are no edge tiles to skip (the host runs this kernel only
// where the 128-tiles and 32-slabs divide m, n and k exactly; matmul_coop takes the other
// shapes). Every workgroup-memory value read
// was stored before the barrier that precedes the read (the pads are never read), so the host
// creates the pipeline without zero-initializing workgroup memory.
//
// The epilogue is a library piece: shaders/lib/coop_staged_store.wgsl stores each accumulator
// into C (this kernel), shaders/lib/coop_staged_store_paired.wgsl takes the modulus of complex
// pairs through workgroup memory (the variant matmul_coop_staged_paired of the fused optical
// projection, host src/ops/project_optical.rs). Both define store_tile, called for each of the
// 16 tiles in uniform control flow.
//
// Bindings (group 0): 0 uniform Params (shaders/lib/matmul_params.wgsl; alpha, beta, bias and
// activation fields unused); 1 a (read, f16); 2 b (read, f16); 3 c (read_write, f32).
// Element offsets are in elements; every *_first and leading dimension is a multiple of 16.
// Dispatch: (n / 128, m / 128, batch). Overrides: SG (the subgroup size); TRANS_A, TRANS_B.
// Loops (per invocation, counting a loop of n iterations as n + 1 passes as lavapipe does; see
// matmul::loop_passes, which keeps every k block of a dispatch within the adapter's limit):
// k / 32 · 4 + 1 (the slab loop around 3 passes of its step loop) and a constant number for the
// stores.
// Requires SHADER_F16, SUBGROUP and EXPERIMENTAL_COOPERATIVE_MATRIX with a 16 x 16 x 16 f16 -> f32
// configuration.

enable f16;
enable wgpu_cooperative_matrix;

override SG: u32 = 32u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

const TILE: u32 = 128u;        // rows and columns of C per workgroup
const KS: u32 = 32u;           // k per slab
const A_LD: u32 = KS + 8u;     // row stride of an A slab [128][32] in halves, padded
const B_LD: u32 = TILE + 8u;   // row stride of a B slab [32][128] in halves, padded
const A_SLAB: u32 = TILE * A_LD;
const B_SLAB: u32 = KS * B_LD;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> As: array<f16, 2u * A_SLAB>;
var<workgroup> Bs: array<f16, 2u * B_SLAB>;

// Slab tile t (0..16) of this subgroup's share: A tiles are 8 row tiles x 2 k tiles (t = 2r +
// kk), B tiles 2 k tiles x 8 column tiles (t = 8kk + cc). Subgroup g stages tiles 4g..4g+3 of
// each slab. a_row .. b_col give the tile's origin in its slab.
fn a_row(t: u32) -> u32 { return 16u * (t / 2u); }
fn a_col(t: u32) -> u32 { return 16u * (t % 2u); }
fn b_row(t: u32) -> u32 { return 16u * (t / 8u); }
fn b_col(t: u32) -> u32 { return 16u * (t % 8u); }

// naga 30 does not emit the operands of coopStoreT itself: each is bound with `let` first.
fn put_a(v: coop_mat16x16<f16, A>, buf: u32, t: u32) {
    let value = v;
    let at = &As[buf * A_SLAB + a_row(t) * A_LD + a_col(t)];
    let stride = A_LD;
    coopStoreT(value, at, stride);
}

fn put_b(v: coop_mat16x16<f16, B>, buf: u32, t: u32) {
    let value = v;
    let at = &Bs[buf * B_SLAB + b_row(t) * B_LD + b_col(t)];
    let stride = B_LD;
    coopStoreT(value, at, stride);
}

// Tile i (0..4) of this subgroup's 64 rows of the A slab at kk (0, 1), from buffer buf.
fn get_a(buf: u32, row0: u32, i: u32, kk: u32) -> coop_mat16x16<f16, A> {
    return coopLoadT<coop_mat16x16<f16, A>>(
        &As[buf * A_SLAB + (row0 + 16u * i) * A_LD + 16u * kk], A_LD);
}

// Tile j (0..4) of this subgroup's 64 columns of the B slab at kk, from buffer buf.
fn get_b(buf: u32, col0: u32, j: u32, kk: u32) -> coop_mat16x16<f16, B> {
    return coopLoadT<coop_mat16x16<f16, B>>(
        &Bs[buf * B_SLAB + 16u * kk * B_LD + col0 + 16u * j], B_LD);
}

@compute @workgroup_size(4u * SG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) g: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let wm0 = wid.y * TILE;
    let wn0 = wid.x * TILE;
    let a_base = p.a_first + wid.z * p.a_batch_stride;
    let b_base = p.b_first + wid.z * p.b_batch_stride;
    let c_base = p.c_first + wid.z * p.c_batch_stride;
    // This subgroup's quarter of the workgroup's tile, in the slabs and in C.
    let row0 = 64u * (g / 2u);
    let col0 = 64u * (g % 2u);
    let m0 = wm0 + row0;
    let n0 = wn0 + col0;
    // Its share of each slab's tiles.
    let t0 = 4u * g;
    let t1 = t0 + 1u;
    let t2 = t0 + 2u;
    let t3 = t0 + 3u;

    var c00 = start_tile(c_base, m0, n0);
    var c01 = start_tile(c_base, m0, n0 + 16u);
    var c02 = start_tile(c_base, m0, n0 + 32u);
    var c03 = start_tile(c_base, m0, n0 + 48u);
    var c10 = start_tile(c_base, m0 + 16u, n0);
    var c11 = start_tile(c_base, m0 + 16u, n0 + 16u);
    var c12 = start_tile(c_base, m0 + 16u, n0 + 32u);
    var c13 = start_tile(c_base, m0 + 16u, n0 + 48u);
    var c20 = start_tile(c_base, m0 + 32u, n0);
    var c21 = start_tile(c_base, m0 + 32u, n0 + 16u);
    var c22 = start_tile(c_base, m0 + 32u, n0 + 32u);
    var c23 = start_tile(c_base, m0 + 32u, n0 + 48u);
    var c30 = start_tile(c_base, m0 + 48u, n0);
    var c31 = start_tile(c_base, m0 + 48u, n0 + 16u);
    var c32 = start_tile(c_base, m0 + 48u, n0 + 32u);
    var c33 = start_tile(c_base, m0 + 48u, n0 + 48u);

    // Slab 0 into buffer 0.
    put_a(load_a(a_base, wm0 + a_row(t0), a_col(t0)), 0u, t0);
    put_a(load_a(a_base, wm0 + a_row(t1), a_col(t1)), 0u, t1);
    put_a(load_a(a_base, wm0 + a_row(t2), a_col(t2)), 0u, t2);
    put_a(load_a(a_base, wm0 + a_row(t3), a_col(t3)), 0u, t3);
    put_b(load_b(b_base, b_row(t0), wn0 + b_col(t0)), 0u, t0);
    put_b(load_b(b_base, b_row(t1), wn0 + b_col(t1)), 0u, t1);
    put_b(load_b(b_base, b_row(t2), wn0 + b_col(t2)), 0u, t2);
    put_b(load_b(b_base, b_row(t3), wn0 + b_col(t3)), 0u, t3);
    workgroupBarrier();

    let slabs = p.k / KS;
    for (var s = 0u; s < slabs; s++) {
        let cur = s % 2u;
        let nxt = 1u - cur;
        // The next slab's tiles (the last step reloads slab s: they are not stored).
        let kn = min(s + 1u, slabs - 1u) * KS;
        let pa0 = load_a(a_base, wm0 + a_row(t0), kn + a_col(t0));
        let pa1 = load_a(a_base, wm0 + a_row(t1), kn + a_col(t1));
        let pa2 = load_a(a_base, wm0 + a_row(t2), kn + a_col(t2));
        let pa3 = load_a(a_base, wm0 + a_row(t3), kn + a_col(t3));
        let pb0 = load_b(b_base, kn + b_row(t0), wn0 + b_col(t0));
        let pb1 = load_b(b_base, kn + b_row(t1), wn0 + b_col(t1));
        let pb2 = load_b(b_base, kn + b_row(t2), wn0 + b_col(t2));
        let pb3 = load_b(b_base, kn + b_row(t3), wn0 + b_col(t3));

        for (var kk = 0u; kk < 2u; kk++) {
            let a0 = get_a(cur, row0, 0u, kk);
            let a1 = get_a(cur, row0, 1u, kk);
            let a2 = get_a(cur, row0, 2u, kk);
            let a3 = get_a(cur, row0, 3u, kk);
            let b0 = get_b(cur, col0, 0u, kk);
            let b1 = get_b(cur, col0, 1u, kk);
            let b2 = get_b(cur, col0, 2u, kk);
            let b3 = get_b(cur, col0, 3u, kk);
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

        if (s + 1u < slabs) {
            put_a(pa0, nxt, t0);
            put_a(pa1, nxt, t1);
            put_a(pa2, nxt, t2);
            put_a(pa3, nxt, t3);
            put_b(pb0, nxt, t0);
            put_b(pb1, nxt, t1);
            put_b(pb2, nxt, t2);
            put_b(pb3, nxt, t3);
        }
        workgroupBarrier();
    }

    store_tile(c00, c_base, m0, n0, g, lane);
    store_tile(c01, c_base, m0, n0 + 16u, g, lane);
    store_tile(c02, c_base, m0, n0 + 32u, g, lane);
    store_tile(c03, c_base, m0, n0 + 48u, g, lane);
    store_tile(c10, c_base, m0 + 16u, n0, g, lane);
    store_tile(c11, c_base, m0 + 16u, n0 + 16u, g, lane);
    store_tile(c12, c_base, m0 + 16u, n0 + 32u, g, lane);
    store_tile(c13, c_base, m0 + 16u, n0 + 48u, g, lane);
    store_tile(c20, c_base, m0 + 32u, n0, g, lane);
    store_tile(c21, c_base, m0 + 32u, n0 + 16u, g, lane);
    store_tile(c22, c_base, m0 + 32u, n0 + 32u, g, lane);
    store_tile(c23, c_base, m0 + 32u, n0 + 48u, g, lane);
    store_tile(c30, c_base, m0 + 48u, n0, g, lane);
    store_tile(c31, c_base, m0 + 48u, n0 + 16u, g, lane);
    store_tile(c32, c_base, m0 + 48u, n0 + 32u, g, lane);
    store_tile(c33, c_base, m0 + 48u, n0 + 48u, g, lane);
}
