// reduce: one value per row of a [rows, cols] window:
//   KIND 0 sum:  sum_j x[r, j]       KIND 1 sum of squares: sum_j x[r, j]^2
//   KIND 2 max:  max_j x[r, j]
// then, if p.sqrt != 0, the square root (the Euclidean norm from the sum of squares).
// The row is walked in blocks of 4 WG values (shaders/lib/row_blocks.wgsl): a thread adds
// the four values of each block into four accumulators of its own, which it merges at the
// end; the workgroup combines the threads' values by a tree, so the rounding error of a sum
// grows with cols / (4 WG) + 2 + log2(WG).
// Rows longer than one binding are reduced by segments into partial values, which the host
// reduces again (sum for sum and sum of squares, max for max).
//
// Entry points: `main`, any row; `main_vec4` where cols, row_stride and x_first are
// multiples of 4 (the host's choice): thread lid takes the vec4s lid, lid + WG, ... of the
// row, one 16-byte access for four values (coalesced on GPUs; lavapipe's storage accesses go
// lane by lane), the same number of passes.
// Bindings (group 0): 0 uniform Params; 1 x (read; x4, as vec4s, in `main_vec4`); 2 out
// (read_write), out[out_first + r * out_stride].
// Dispatch: `rows` workgroups, split over x and y by `Gpu::grid`.
// Overrides: KIND; WG (threads per workgroup, a power of two).
// Loops (per invocation, an upper bound counting a loop that runs n times as n + 1, as
// lavapipe does; `loops` in the host): ceil(cols / (4 WG)) + 1 + log2(WG) + 1 (the blocks
// and the tree). The host segments rows so that this stays within the adapter's loop limit
// (lavapipe ends every loop of an invocation after 65,535 iterations, silently).

// Keep in sync with ReduceParams in src/ops/reduce.rs.
struct Params {
    rows: u32,
    cols: u32,        // elements reduced per row
    row_stride: u32,  // distance between rows in x
    x_first: u32,
    out_first: u32,
    out_stride: u32,
    sqrt: u32,
    _pad: u32,
}

override KIND: u32 = 0u;
override WG: u32 = 256u;

// The lowest finite f32: the identity of max over finite values (no infinity needed).
const LOWEST: f32 = -3.4028234663852886e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// `main_vec4`'s x, the same buffer as vec4s.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;

var<workgroup> partial: array<f32, WG>;

fn merge(a: f32, b: f32) -> f32 {
    if (KIND == 2u) { return max(a, b); }
    return a + b;
}

fn identity() -> f32 {
    return select(0.0, LOWEST, KIND == 2u);
}

// The four accumulators with four more values.
fn accumulate(acc: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    if (KIND == 1u) {
        return fma(v, v, acc);
    } else if (KIND == 2u) {
        return max(acc, v);
    }
    return acc + v;
}

// Merges every thread's accumulators by a tree and stores row r's value.
fn finish(lid: u32, r: u32, acc: vec4<f32>) {
    partial[lid] = merge(merge(acc.x, acc.y), merge(acc.z, acc.w));
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] = merge(partial[lid], partial[lid + stride]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var v = partial[0];
        if (p.sqrt != 0u) { v = sqrt(v); }
        out[p.out_first + r * p.out_stride] = v;
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    if (r >= p.rows) { return; }
    let x0 = p.x_first + r * p.row_stride;
    var acc = vec4(identity());
    for (var j = lid; j < p.cols; j += 4u * WG) {
        // Values past the row's end take the identity.
        let b = block_at(j, p.cols);
        let i = b.i;
        let raw = vec4(x[x0 + i.x], x[x0 + i.y], x[x0 + i.z], x[x0 + i.w]);
        acc = accumulate(acc, select(vec4(identity()), raw, b.inside));
    }
    finish(lid, r, acc);
}

// Rows of whole vec4s (the host's choice where cols, row_stride and x_first are multiples of
// 4): thread lid takes the vec4s lid, lid + WG, ... of the row.
@compute @workgroup_size(WG)
fn main_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    if (r >= p.rows) { return; }
    let x0 = (p.x_first + r * p.row_stride) / 4u;
    var acc = vec4(identity());
    for (var q = lid; q < p.cols / 4u; q += WG) {
        acc = accumulate(acc, x4[x0 + q]);
    }
    finish(lid, r, acc);
}
