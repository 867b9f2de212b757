// The tile library of attention_f16 without cooperative matrices: the same two steps as
// shaders/lib/attention_f16_coop.wgsl, one value per invocation (f16 operands widened to f32,
// f32 sums), on any adapter with SHADER_F16. It reads the same clamped key tiles and writes
// the same Ss and Os, so that the rest of the kernel (query tile, online softmax, masks, key
// clamping, stores) is tested on adapters without tensor cores. Prepended by the host, no
// entry point; uses the kernel's `p`, `k`, `v`, Qs, Ss, Ps, Os, D, BK, SG, the row strides and
// tile_key.
//
// Loops (counted in `Loops:` of shaders/attention_f16.wgsl): per block, one pass per score
// (BQ * BK / SG) and one per output (BQ * D / SG). Each value's sum is spelled out, 16 terms
// per call, with no loop (D <= 128 and BK <= 64 are multiples of 16; the guards on the
// overrides fold away), in the order of a plain loop: lavapipe ends an invocation's loops
// after 65,535 passes in all, and one pass per term cost 4,429 passes per block of 64 keys at
// D = 64 (the kernel was wrong from 960 keys on); now the softmax is the larger part.

// acc + sum over u < 16 of Qs[qa + u] * k[ka + u], added in the order of u.
fn dot16(qa: u32, ka: u32, acc: f32) -> f32 {
    var s = acc;
    s = fma(f32(Qs[qa]), f32(k[ka]), s);
    s = fma(f32(Qs[qa + 1u]), f32(k[ka + 1u]), s);
    s = fma(f32(Qs[qa + 2u]), f32(k[ka + 2u]), s);
    s = fma(f32(Qs[qa + 3u]), f32(k[ka + 3u]), s);
    s = fma(f32(Qs[qa + 4u]), f32(k[ka + 4u]), s);
    s = fma(f32(Qs[qa + 5u]), f32(k[ka + 5u]), s);
    s = fma(f32(Qs[qa + 6u]), f32(k[ka + 6u]), s);
    s = fma(f32(Qs[qa + 7u]), f32(k[ka + 7u]), s);
    s = fma(f32(Qs[qa + 8u]), f32(k[ka + 8u]), s);
    s = fma(f32(Qs[qa + 9u]), f32(k[ka + 9u]), s);
    s = fma(f32(Qs[qa + 10u]), f32(k[ka + 10u]), s);
    s = fma(f32(Qs[qa + 11u]), f32(k[ka + 11u]), s);
    s = fma(f32(Qs[qa + 12u]), f32(k[ka + 12u]), s);
    s = fma(f32(Qs[qa + 13u]), f32(k[ka + 13u]), s);
    s = fma(f32(Qs[qa + 14u]), f32(k[ka + 14u]), s);
    s = fma(f32(Qs[qa + 15u]), f32(k[ka + 15u]), s);
    return s;
}

// acc + sum over u < 16 of Ps[pa + u] * v[va + u * stride], added in the order of u.
fn mix16(pa: u32, va: u32, stride: u32, acc: f32) -> f32 {
    var s = acc;
    s = fma(f32(Ps[pa]), f32(v[va]), s);
    s = fma(f32(Ps[pa + 1u]), f32(v[va + stride]), s);
    s = fma(f32(Ps[pa + 2u]), f32(v[va + 2u * stride]), s);
    s = fma(f32(Ps[pa + 3u]), f32(v[va + 3u * stride]), s);
    s = fma(f32(Ps[pa + 4u]), f32(v[va + 4u * stride]), s);
    s = fma(f32(Ps[pa + 5u]), f32(v[va + 5u * stride]), s);
    s = fma(f32(Ps[pa + 6u]), f32(v[va + 6u * stride]), s);
    s = fma(f32(Ps[pa + 7u]), f32(v[va + 7u * stride]), s);
    s = fma(f32(Ps[pa + 8u]), f32(v[va + 8u * stride]), s);
    s = fma(f32(Ps[pa + 9u]), f32(v[va + 9u * stride]), s);
    s = fma(f32(Ps[pa + 10u]), f32(v[va + 10u * stride]), s);
    s = fma(f32(Ps[pa + 11u]), f32(v[va + 11u * stride]), s);
    s = fma(f32(Ps[pa + 12u]), f32(v[va + 12u * stride]), s);
    s = fma(f32(Ps[pa + 13u]), f32(v[va + 13u * stride]), s);
    s = fma(f32(Ps[pa + 14u]), f32(v[va + 14u * stride]), s);
    s = fma(f32(Ps[pa + 15u]), f32(v[va + 15u * stride]), s);
    return s;
}

// Ss = Qs K_blockᵀ: each invocation some of the BQ x BK scores.
fn scores(k_base: u32, j0: u32, lane: u32) {
    for (var e = lane; e < BQ * BK; e += SG) {
        let r = e / BK;
        let c = e % BK;
        let key = tile_key(j0, c / 16u) + c % 16u;
        let ka = k_base + key * p.row_stride;
        let qa = r * QLD;
        var acc = dot16(qa, ka, 0.0);
        if (D > 16u) { acc = dot16(qa + 16u, ka + 16u, acc); }
        if (D > 32u) { acc = dot16(qa + 32u, ka + 32u, acc); }
        if (D > 48u) { acc = dot16(qa + 48u, ka + 48u, acc); }
        if (D > 64u) { acc = dot16(qa + 64u, ka + 64u, acc); }
        if (D > 80u) { acc = dot16(qa + 80u, ka + 80u, acc); }
        if (D > 96u) { acc = dot16(qa + 96u, ka + 96u, acc); }
        if (D > 112u) { acc = dot16(qa + 112u, ka + 112u, acc); }
        Ss[r * SLD + c] = acc;
    }
}

// Os += Ps V_block: each invocation some of the BQ x D outputs, the block's 16-key tiles in
// order.
fn accumulate(v_base: u32, j0: u32, lane: u32) {
    let stride = p.row_stride;
    for (var e = lane; e < BQ * D; e += SG) {
        let r = e / D;
        let d = e % D;
        let pa = r * PLD;
        let va = v_base + d;
        var acc = mix16(pa, va + tile_key(j0, 0u) * stride, stride, Os[r * OLD + d]);
        if (BK > 16u) { acc = mix16(pa + 16u, va + tile_key(j0, 1u) * stride, stride, acc); }
        if (BK > 32u) { acc = mix16(pa + 32u, va + tile_key(j0, 2u) * stride, stride, acc); }
        if (BK > 48u) { acc = mix16(pa + 48u, va + tile_key(j0, 3u) * stride, stride, acc); }
        Os[r * OLD + d] = acc;
    }
}
