// The epilogue of matmul_coop_staged_paired (the fused optical projection on tensor cores,
// host src/ops/project_optical.rs): C = |op(A) op(B)|^2 over complex pairs of op(B)'s columns,
// which come in blocks of 8: column 8q + r is Re of output 4q + r for r < 4, Im of output
// 4q + r - 4 otherwise, so C has p.n / 2 columns and row stride p.ldc. A 16-column tile holds
// two whole blocks: 8 outputs of each of its 16 rows. Prepended by the host, no entry point;
// uses the kernel's `p`, `c` and SG.
//
// The layout of a cooperative matrix's elements over the invocations is the driver's, so each
// subgroup stores its tile into its own 16 x 16 of SP, and after a barrier its invocations
// read each output's real and imaginary parts from there; a second barrier keeps the next
// tile's store from overwriting what is still being read. The 16 calls are made by every
// subgroup in the same order, so the barriers are reached in uniform control flow. Every SP
// value read was stored before the barrier that precedes the read, so the host creates the
// pipeline without zero-initializing workgroup memory. Every output is inside C (the kernel
// runs only where its tiles cover C exactly).

var<workgroup> SP: array<f32, 1024>;  // subgroup g's tile at 256 g, row-major, stride 16

fn store_tile(acc: coop_mat16x16<f32, C>, c_base: u32, row: u32, col: u32, g: u32, lane: u32) {
    let value = acc;
    let at = &SP[256u * g];
    let stride = 16u;
    coopStoreT(value, at, stride);
    workgroupBarrier();
    // 128 outputs: row r, output o = 4 * (pair block) + t.
    for (var e = lane; e < 128u; e += SG) {
        let r = e / 8u;
        let o = e % 8u;
        let s = 256u * g + 16u * r + 8u * (o / 4u) + o % 4u;
        let re = SP[s];
        let im = SP[s + 4u];
        c[c_base + (row + r) * p.ldc + col / 2u + o] = fma(re, re, im * im);
    }
    workgroupBarrier();
}
