// The epilogue of matmul_coop_paired (the fused optical projection, host
// src/ops/project_optical.rs): C = |op(A) op(B)|^2 over complex pairs of op(B)'s columns, which
// come in blocks of 8: column 8q + r is Re of output 4q + r for r < 4, Im of output 4q + r - 4
// otherwise, so C has p.n / 2 columns and row stride p.ldc. Prepended by the host, no entry
// point; uses the kernel's `p` (Params), `c` (array<f32>, read_write) and its workgroup of one
// subgroup of SG invocations.
//
// The layout of a cooperative matrix's elements over the invocations is the driver's, so
// store_tile puts each accumulator into workgroup memory (the 64 x 64 tile, row-major) and
// finish, after a barrier, reads each output's real and imaginary parts from there. Every
// element of S is written by the 16 store_tile calls before the barrier (tiles outside C
// included: they are never read into C), so the host creates the pipeline without
// zero-initializing workgroup memory. Outputs of rows >= p.m or columns >= p.n / 2 are not
// stored (m and n are multiples of 16, so a tile is wholly inside or wholly outside C).

var<workgroup> S: array<f32, 4096>;

// Stores the accumulator of the tile whose origin is row, col (multiples of 16; m0 and n0 are
// multiples of 64) at its place in S.
fn store_tile(acc: coop_mat16x16<f32, C>, c_base: u32, row: u32, col: u32) {
    let value = acc;
    let at = &S[(row % 64u) * 64u + col % 64u];
    let stride = 64u;
    coopStoreT(value, at, stride);
}

// |re + i im|^2 of the tile's 64 rows x 32 outputs, as 512 row-quads of 4 outputs.
fn finish(c_base: u32, m0: u32, n0: u32, lane: u32) {
    workgroupBarrier();
    for (var e = lane; e < 512u; e += SG) {
        let r = e / 8u;
        let q = e % 8u;
        let row = m0 + r;
        let col = n0 / 2u + 4u * q;
        if (row < p.m && col < p.n / 2u) {
            let s = r * 64u + 8u * q;
            let at = c_base + row * p.ldc + col;
            for (var t = 0u; t < 4u; t++) {
                let re = S[s + t];
                let im = S[s + 4u + t];
                c[at + t] = fma(re, re, im * im);
            }
        }
    }
}
