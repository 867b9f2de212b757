// cross_entropy: softmax cross-entropy of each row of logits z [rows, cols] against an integer
// label per row, with its gradient, in one pass over the row:
//   M_r = max_j z[r, j],  Z_r = sum_j exp(z[r, j] - M_r),  p[r, j] = exp(z[r, j] - M_r) / Z_r
//   loss[r]    = log(Z_r) + M_r - z[r, label_r]            (= -log p[r, label_r], stable)
//   grad[r, j] = grad_scale * (p[r, j] - [j == label_r])     (dL/dz; grad_scale = 1/batch for
//                                                             the mean loss)
//   correct[r] = 1 if argmax_j z[r, j] == label_r else 0      (ties: the lowest index wins)
// Labels are f32 holding integers in [0, cols); any other label (negative, fractional, too
// large, NaN) gives loss NaN, correct 0 and a NaN gradient row, so it can never pass silently.
//
// Bindings (group 0): 0 uniform Params; 1 z (read); 2 labels (read); 3 grad (read_write);
// 4 loss (read_write); 5 correct (read_write).
// Dispatch: `rows` workgroups, one per row (split over x and y by `Gpu::grid`).
// Overrides: WG (threads per workgroup, a power of two).
// Loops (per invocation, an upper bound counting a loop that runs n times as n + 1, as lavapipe
// does; `loops` in the host): 2 * (ceil(cols / (4 WG)) + 1) + log2(WG) + 1 (two passes over the
// row's blocks of 4 WG values, shaders/lib/row_blocks.wgsl; the tree). In each pass a thread
// takes the values lid, lid + WG, lid + 2 WG and lid + 3 WG of a block (coalesced across the
// workgroup) and folds the four into its running state at once; on lavapipe one value per pass
// paid the loop's overhead for each. The host refuses rows for which this passes the adapter's
// loop limit (lavapipe ends every loop of an invocation after 65,535 iterations, silently).

// Keep in sync with CrossEntropyParams in src/ops/cross_entropy.rs.
struct Params {
    rows: u32,          // rows in this dispatch
    cols: u32,          // classes (row length of z and grad)
    z_first: u32,       // element of the z binding holding row 0 of the dispatch
    grad_first: u32,    // same for grad
    label_first: u32,   // element of the labels binding holding the dispatch's first label
    loss_first: u32,    // same for loss
    correct_first: u32, // same for correct
    grad_scale: f32,    // multiplies the gradient (1/batch for the mean loss)
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<f32>;

var<workgroup> wg_max: array<f32, WG>;
var<workgroup> wg_sum: array<f32, WG>;
var<workgroup> wg_arg: array<u32, WG>;

// A partial state: running max m (first reached at column a) and sum s of exp(v - m); s == 0
// means "no value yet".
struct State {
    m: f32,
    s: f32,
    a: u32,
}

fn combine(x: State, y: State) -> State {
    if (x.s == 0.0) { return y; }
    if (y.s == 0.0) { return x; }
    let m = max(x.m, y.m);
    var a = min(x.a, y.a);
    if (x.m > y.m) { a = x.a; } else if (y.m > x.m) { a = y.a; }
    return State(m, x.s * exp(x.m - m) + y.s * exp(y.m - m), a);
}

fn load_z(o: u32, i: vec4<u32>) -> vec4<f32> {
    return vec4(z[o + i.x], z[o + i.y], z[o + i.z], z[o + i.w]);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg);
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (r >= p.rows) { return; }
    let z0 = p.z_first + r * p.cols;
    let g0 = p.grad_first + r * p.cols;

    var own = State(0.0, 0.0, 0u);
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j, p.cols);
        let v = load_z(z0, b.i);
        // The block's max over its columns in the row (those past the end count as its
        // first value, which is in the row: they cannot raise the max), reached first at
        // the lowest of its columns; columns grow with the component.
        let w = select(vec4(v.x), v, b.inside);
        let m4 = max(max(w.x, w.y), max(w.z, w.w));
        let later = select(select(b.at.w, b.at.z, w.z == m4), b.at.y, w.y == m4);
        let a4 = select(later, b.at.x, w.x == m4);
        // A thread's blocks come in column order, so on a tie its earlier column stays.
        var m = m4;
        var a = a4;
        if (own.s != 0.0 && own.m >= m4) {
            m = own.m;
            a = own.a;
        }
        let e = select(vec4(0.0), exp(v - m), b.inside);
        // Before the first value own.m is no max: exp(own.m - m) may overflow there.
        let carried = select(0.0, own.s * exp(own.m - m), own.s != 0.0);
        own = State(m, carried + ((e.x + e.y) + (e.z + e.w)), a);
    }
    wg_max[lid] = own.m;
    wg_sum[lid] = own.s;
    wg_arg[lid] = own.a;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let c = combine(
                State(wg_max[lid], wg_sum[lid], wg_arg[lid]),
                State(wg_max[lid + stride], wg_sum[lid + stride], wg_arg[lid + stride]),
            );
            wg_max[lid] = c.m;
            wg_sum[lid] = c.s;
            wg_arg[lid] = c.a;
        }
        workgroupBarrier();
    }
    let total = State(wg_max[0], wg_sum[0], wg_arg[0]);

    let lf = labels[p.label_first + r];
    let valid = lf >= 0.0 && lf < f32(p.cols) && floor(lf) == lf;
    let label = select(0u, u32(lf), valid);
    let nan = bitcast<f32>(0x7fc00000u);
    if (lid == 0u) {
        var l = log(total.s) + total.m - z[z0 + label];
        if (!valid) { l = nan; }
        loss[p.loss_first + r] = l;
        correct[p.correct_first + r] = select(0.0, 1.0, valid && total.a == label);
    }
    let inv = 1.0 / total.s;
    for (var j = lid; j < p.cols; j += 4u * WG) {
        let b = block_at(j, p.cols);
        let prob = exp(load_z(z0, b.i) - total.m) * inv;
        var g = p.grad_scale * (prob - select(vec4(0.0), vec4(1.0), b.at == vec4(label)));
        if (!valid) { g = vec4(nan); }
        // Unrolled, not a loop: lavapipe counts every loop pass against its budget.
        if (b.inside.x) { grad[g0 + b.at.x] = g.x; }
        if (b.inside.y) { grad[g0 + b.at.y] = g.y; }
        if (b.inside.z) { grad[g0 + b.at.z] = g.z; }
        if (b.inside.w) { grad[g0 + b.at.w] = g.w; }
    }
}
