// The operand tiles of the tensor-core matmuls (matmul_coop, matmul_coop_staged): 16 x 16
// cooperative matrices of op(A) and op(B) from the storage buffers, and the accumulator's
// start. Prepended by the host, no entry point; uses the kernel's `p` (Params), `a` and `b`
// (array<f16>) and `c` (array<f32>) and its TRANS_A and TRANS_B overrides. Row-major data
// loads with coopLoadT, column-major (a transposed operand) with coopLoad.

// The 16 x 16 tile of op(A) at rows i0.., k0.. (A stored [m, k] row-major, or [k, m]).
fn load_a(base: u32, i0: u32, k0: u32) -> coop_mat16x16<f16, A> {
    if (TRANS_A) {
        return coopLoad<coop_mat16x16<f16, A>>(&a[base + k0 * p.lda + i0], p.lda);
    }
    return coopLoadT<coop_mat16x16<f16, A>>(&a[base + i0 * p.lda + k0], p.lda);
}

// The 16 x 16 tile of op(B) at rows k0.., columns j0.. (B stored [k, n], or [n, k]).
fn load_b(base: u32, k0: u32, j0: u32) -> coop_mat16x16<f16, B> {
    if (TRANS_B) {
        return coopLoad<coop_mat16x16<f16, B>>(&b[base + j0 * p.ldb + k0], p.ldb);
    }
    return coopLoadT<coop_mat16x16<f16, B>>(&b[base + k0 * p.ldb + j0], p.ldb);
}

// The accumulator of C's tile at i0, j0: zero, or C's values when FLAG_READ_C (the k blocks
// after the first of a split product).
fn start_tile(c_base: u32, i0: u32, j0: u32) -> coop_mat16x16<f32, C> {
    if ((p.flags & FLAG_READ_C) != 0u) {
        return coopLoadT<coop_mat16x16<f32, C>>(&c[c_base + i0 * p.ldc + j0], p.ldc);
    }
    return coop_mat16x16<f32, C>();
}
