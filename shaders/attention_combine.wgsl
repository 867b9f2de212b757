// attention_combine: merges S partial attention outputs computed over disjoint ranges of keys
// (split-KV, the combine step of flash-decoding; host src/ops/attention_combine.rs, f64
// reference src/cpu/attention_combine.rs). For every row r and head h, with top the largest
// lse[s, r, h] over the ranges s:
//   out[r, h*D + d] = sum_s w_s * partials[s, r, h*D + d] / sum_s w_s,  w_s = exp(lse[s, r, h] - top)
// where a range with lse = NEG (-FLT_MAX: it showed the row no key) has w_s = 0, and a row
// that no range showed a key gets exact zeros. A term of weight 0 is left out through select,
// so whatever a range with lse = NEG left in its partial row (NaN included) never reaches out.
//
// Layout (row-major f32): partials [S, R, H*D] (R = B*Nq query rows, batches folded in; head h
// occupies columns h*D .. h*D + D - 1 of a row), lse [S, R, H], out [R, H*D].
//
// One invocation per output element of a block of `rows` rows and `cols` consecutive columns
// of a row (all H*D of them unless one row exceeds a binding), over `splits` consecutive ranges.
// The host binds windows of the tensors: *_first is the element of a binding where the block's
// first (range, row, column) is; the lse window starts at the head of the block's first column
// (col_offset is that column's position within its head). When the ranges do not fit one
// dispatch (bindings or loop limit), the host dispatches blocks of ranges in order and this
// kernel carries each element's state across them: the running top in `top`, the running
// sum of weights in `sum`, and the unnormalized weighted sum in `out` itself (rescaled by
// exp(top_old - top_new) as the top grows); the last block divides. FLAG_FIRST starts from
// the empty state (top NEG, sums 0) without reading anything; FLAG_LAST writes the result.
//
// NEG is -FLT_MAX rather than -inf (WGSL has no infinity literal and drivers may assume
// finite math). exp(NEG - t) for t > NEG is 0, so an empty running state rescales to 0; a
// running top of NEG after every range means no range saw a key, and then the sum of weights
// is 0 (else the range holding the top contributes exp(0) = 1), which the last block tests.
//
// Bindings (group 0): 0 uniform Params; 1 partials (read); 2 lse (read); 3 out (read_write:
// the running weighted sum between blocks of ranges); 4 top, 5 sum (read_write, [R, H*D]
// scratch laid out like out; an unused stand-in when one dispatch takes all the ranges).
// Dispatch: ceil(rows * cols / WG) workgroups, split over x and y by `Gpu::grid`; invocations
// past rows * cols return at once.
// Overrides: WG (threads per workgroup).
// Loops: two loops over the dispatch's ranges (the block's top, then the weighted sums): 2 *
// (splits + 1) passes per invocation (`loop_iterations` in the host, counted as `looped` in
// src/ops/loop_limit.rs says); the host cuts the ranges into blocks that fit the adapter's
// loop limit.

// Keep in sync with AttentionCombineParams in src/ops/attention_combine.rs.
struct Params {
    rows: u32,          // rows in this dispatch
    cols: u32,          // columns of a row in this dispatch
    splits: u32,        // ranges in this dispatch
    row_len: u32,       // H*D: the row stride of partials, out, top and sum
    heads: u32,         // H: the row stride of lse
    head_dim: u32,      // D
    col_offset: u32,    // position of the block's first column within its head
    flags: u32,         // FLAG_FIRST | FLAG_LAST
    part_first: u32,    // element of the partials binding holding (first range, row, column)
    part_split: u32,    // stride of partials between ranges (R*H*D; 0 with one range)
    lse_first: u32,     // element of the lse binding holding (first range, row, head)
    lse_split: u32,     // stride of lse between ranges (R*H; 0 with one range)
    out_first: u32,     // element of the out binding holding (first row, column)
    top_first: u32,     // the same for top
    sum_first: u32,     // the same for sum
    _pad: u32,
}

// Keep in sync with the FLAG_ constants of src/ops/attention_combine.rs.
const FLAG_FIRST: u32 = 1u;
const FLAG_LAST: u32 = 2u;

// -FLT_MAX: the lse of a range that saw no key, and the running top before any range did.
const NEG: f32 = -3.40282347e38;

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> top: array<f32>;
@group(0) @binding(5) var<storage, read_write> sum: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_workgroup(wid, nwg) * WG + lid;
    if (e >= p.rows * p.cols) { return; }
    let i = e / p.cols;
    let j = e % p.cols;
    let pi = p.part_first + i * p.row_len + j;
    let li = p.lse_first + i * p.heads + (p.col_offset + j) / p.head_dim;
    let oi = p.out_first + i * p.row_len + j;
    let ti = p.top_first + i * p.row_len + j;
    let si = p.sum_first + i * p.row_len + j;

    // The running state of the ranges before this dispatch's.
    var m = NEG;
    var l = 0.0;
    var acc = 0.0;
    if ((p.flags & FLAG_FIRST) == 0u) {
        m = top[ti];
        l = sum[si];
        acc = out[oi];
    }
    // The top over the ranges so far. A comparison, not max(): NaN or -inf lse is no key.
    var t = m;
    for (var s = 0u; s < p.splits; s++) {
        let v = lse[li + s * p.lse_split];
        t = select(t, v, v > t);
    }
    // m <= t. An empty state (m NEG) has l and acc 0 and stays so, without computing
    // exp(NEG - t), which is -inf's exp for a huge t.
    let rescale = select(exp(m - t), 0.0, m == NEG);
    l = l * rescale;
    acc = acc * rescale;
    for (var s = 0u; s < p.splits; s++) {
        let v = lse[li + s * p.lse_split];
        let w = select(0.0, exp(v - t), v > NEG);
        l = l + w;
        acc = acc + select(0.0, w * partials[pi + s * p.part_split], w > 0.0);
    }
    if ((p.flags & FLAG_LAST) != 0u) {
        out[oi] = select(0.0, acc / l, l > 0.0);
    } else {
        out[oi] = acc;
        top[ti] = t;
        sum[si] = l;
    }
}
