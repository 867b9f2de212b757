// The uniform parameters and flags of the fused attention kernels (attention and
// attention_blocked); prepended by the host, no entry point.
// Keep in sync with AttentionParams in src/ops/attention.rs.
struct Params {
    batches: u32,     // batches in this dispatch
    heads: u32,       // H
    nk: u32,          // keys per batch
    row_stride: u32,  // H * D: elements between consecutive rows of q, k, v and o
    q_rows: u32,      // query rows per batch in this dispatch
    q_row0: u32,      // index of the first of them within its batch (for the causal mask)
    q_batch: u32,     // elements between batches in the q and o windows (Nq * H * D)
    q_blocks: u32,    // ceil(q_rows / BQ)
    q_first: u32,
    k_first: u32,
    v_first: u32,
    mask_first: u32,
    o_first: u32,
    flags: u32,       // FLAG_CAUSAL | FLAG_MASK
    scale: f32,
    // Key ranges (shaders/attention.wgsl only; 1 and nk elsewhere): the keys split into
    // `splits` ranges of `split_keys`, one per workgroup of a query block; with more than one,
    // range s writes its normalized partial output at o_first + s * o_split (same layout as
    // o) and each row's log-sum-exp at lse_first + s * lse_split + row * heads + h.
    splits: u32,
    split_keys: u32,
    o_split: u32,
    lse_first: u32,
    lse_split: u32,
}

// Keep in sync with the FLAG_ constants in src/ops/attention.rs.
const FLAG_CAUSAL: u32 = 1u;
const FLAG_MASK: u32 = 2u;
