// The epilogue of matmul_coop_staged: each 16 x 16 accumulator stored into C. Prepended by
// the host, no entry point; uses the kernel's `p` (Params) and `c` (array<f32>, read_write).
// The kernel runs only where its tiles cover C exactly, so every tile is inside C and the
// store needs no test (a test on the tile's row would branch on subgroup_id).
//
// naga 30 does not emit the operands of coopStoreT itself: they are bound with `let` first.

// Stores the accumulator of C's tile at row, col; g and lane (the subgroup and the
// invocation in it) are the paired epilogue's.
fn store_tile(acc: coop_mat16x16<f32, C>, c_base: u32, row: u32, col: u32, g: u32, lane: u32) {
    let value = acc;
    let at = &c[c_base + row * p.ldc + col];
    let stride = p.ldc;
    coopStoreT(value, at, stride);
}
