// The tile library of attention_f16 on the tensor cores: the block's scores and the
// accumulation of P V as 16 x 16 x 16 cooperative-matrix products (f16 operands, f32
// accumulators). Prepended by the host, no entry point; uses the kernel's `p`, `k`, `v`, Qs,
// Ss, Ps, Os, D, BK, the row strides and tile_key. Called by the whole subgroup in uniform
// control flow (cooperative operations require it; naga checks it): every loop's count is an
// override or a Params value.
//
// Loops (counted in `Loops:` of shaders/attention_f16.wgsl): per block, the scores' BK / 16
// key tiles of D / 16 steps and the accumulation's D / 16 column tiles of BK / 16 steps.
//
// Q and P tiles are row-major in workgroup memory (coopLoadT); a K tile is read as Kᵀ, the
// column-major view of K's rows (coopLoad with the row stride); V tiles are row-major rows of
// V (coopLoadT). Each K or V tile loaded feeds both 16-row halves of the 32 query rows.
//
// naga 30 does not emit the operands of coopStoreT itself (the SPIR-V writer fails with "not
// cached"): every store binds them with `let` first.

enable wgpu_cooperative_matrix;

// Ss = Qs K_blockᵀ: for each 16-key tile, the two 16 x 16 score tiles over D / 16 steps.
fn scores(k_base: u32, j0: u32, lane: u32) {
    for (var t = 0u; t < BK / 16u; t++) {
        let kj = tile_key(j0, t);
        var s0 = coop_mat16x16<f32, C>();
        var s1 = coop_mat16x16<f32, C>();
        for (var dc = 0u; dc < D; dc += 16u) {
            let kt = coopLoad<coop_mat16x16<f16, B>>(&k[k_base + kj * p.row_stride + dc], p.row_stride);
            let q0 = coopLoadT<coop_mat16x16<f16, A>>(&Qs[dc], QLD);
            let q1 = coopLoadT<coop_mat16x16<f16, A>>(&Qs[16u * QLD + dc], QLD);
            s0 = coopMultiplyAdd(q0, kt, s0);
            s1 = coopMultiplyAdd(q1, kt, s1);
        }
        let v0 = s0;
        let at0 = &Ss[16u * t];
        let v1 = s1;
        let at1 = &Ss[16u * SLD + 16u * t];
        let stride = SLD;
        coopStoreT(v0, at0, stride);
        coopStoreT(v1, at1, stride);
    }
}

// Os += Ps V_block: for each 16 columns of the head, the two output tiles over the block's
// BK / 16 key tiles.
fn accumulate(v_base: u32, j0: u32, lane: u32) {
    for (var dc = 0u; dc < D; dc += 16u) {
        var o0 = coopLoadT<coop_mat16x16<f32, C>>(&Os[dc], OLD);
        var o1 = coopLoadT<coop_mat16x16<f32, C>>(&Os[16u * OLD + dc], OLD);
        for (var t = 0u; t < BK / 16u; t++) {
            let kj = tile_key(j0, t);
            let vt = coopLoadT<coop_mat16x16<f16, B>>(&v[v_base + kj * p.row_stride + dc], p.row_stride);
            let p0 = coopLoadT<coop_mat16x16<f16, A>>(&Ps[16u * t], PLD);
            let p1 = coopLoadT<coop_mat16x16<f16, A>>(&Ps[16u * PLD + 16u * t], PLD);
            o0 = coopMultiplyAdd(p0, vt, o0);
            o1 = coopMultiplyAdd(p1, vt, o1);
        }
        let v0 = o0;
        let at0 = &Os[dc];
        let v1 = o1;
        let at1 = &Os[16u * OLD + dc];
        let stride = OLD;
        coopStoreT(v0, at0, stride);
        coopStoreT(v1, at1, stride);
    }
}
