// The tile library of attention_f16 without cooperative matrices: the same two steps as
// shaders/lib/attention_f16_coop.wgsl, one value per invocation (f16 operands widened to f32,
// f32 sums), on any adapter with SHADER_F16. It reads the same clamped key tiles and writes
// the same Ss and Os, so that the rest of the kernel (query tile, online softmax, masks, key
// clamping, stores) is tested on adapters without tensor cores. Prepended by the host, no
// entry point; uses the kernel's `p`, `k`, `v`, Qs, Ss, Ps, Os, D, BK, SG, the row strides and
// tile_key.

// Ss = Qs K_blockᵀ: each invocation some of the BQ x BK scores.
fn scores(k_base: u32, j0: u32, lane: u32) {
    for (var e = lane; e < BQ * BK; e += SG) {
        let r = e / BK;
        let c = e % BK;
        let key = tile_key(j0, c / 16u) + c % 16u;
        let row = k_base + key * p.row_stride;
        var acc = 0.0;
        for (var d = 0u; d < D; d++) {
            acc = fma(f32(Qs[r * QLD + d]), f32(k[row + d]), acc);
        }
        Ss[r * SLD + c] = acc;
    }
}

// Os += Ps V_block: each invocation some of the BQ x D outputs.
fn accumulate(v_base: u32, j0: u32, lane: u32) {
    for (var e = lane; e < BQ * D; e += SG) {
        let r = e / D;
        let d = e % D;
        var acc = Os[r * OLD + d];
        for (var c = 0u; c < BK; c++) {
            let key = tile_key(j0, c / 16u) + c % 16u;
            acc = fma(f32(Ps[r * PLD + c]), f32(v[v_base + key * p.row_stride + d]), acc);
        }
        Os[r * OLD + d] = acc;
    }
}
