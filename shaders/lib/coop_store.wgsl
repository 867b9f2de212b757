// The epilogue of matmul_coop: each 16 x 16 accumulator stored into C. Prepended by the host,
// no entry point; uses the kernel's `p` (Params) and `c` (array<f32>, read_write).
//
// naga 30 does not emit the operands of coopStoreT itself (the SPIR-V writer fails with
// "not cached"): store_tile binds each of them with `let` first.

// Stores the accumulator of the tile whose origin is row, col, if that origin is inside C.
fn store_tile(acc: coop_mat16x16<f32, C>, c_base: u32, row: u32, col: u32) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    let value = acc;
    let at = &c[c_base + row * p.ldc + col];
    let stride = p.ldc;
    coopStoreT(value, at, stride);
}

// Nothing is left after the tiles are stored.
fn finish(c_base: u32, m0: u32, n0: u32, lane: u32) {}
