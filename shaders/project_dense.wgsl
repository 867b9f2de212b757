// project_dense: the matrix-free random projection and its transpose. For output rows i of
// this dispatch and inputs b of its batch group (at most 8), adds the chunk j0 <= j < j0 + cols
// of R x:
//   re[b, i] += sum_j R(i, j) x[b, j],   im[b, i] += sum_j I(i, j) x[b, j]  (complex kinds)
// where R(i, j) = scale * X(seed, STREAM_MATRIX, i, j) and I(i, j) = scale *
// X(seed, STREAM_MATRIX_IMAGINARY, i, j) are regenerated from Philox4x32-10 (mapping in
// src/cpu/philox.rs, distributions as in random_fill.wgsl): R is never stored. Each
// invocation makes one output row: one Philox block gives 4 entries, used for every input of
// the batch group, so the generator's cost is shared across the batch.
// With TRANSPOSE, the adjoint: for output columns j0 <= j < j0 + cols and the chunk of rows
// row0 <= i < row0 + rows, adds
//   out[b, j] += sum_i R(i, j) u[b, i] (+ sum_i I(i, j) v[b, i] for complex kinds)
// (the transpose of the real operator x -> (R x, I x)); each invocation makes 4 consecutive
// columns j = 4q .. 4q + 3 from the Philox block (i, q) of every row i.
// The first chunk overwrites the accumulators (FLAG_FIRST), later ones add to them; the
// host splits rows and columns so that every dispatch stays short (GPU drivers reset a
// device whose dispatch runs for seconds). project_finish applies the kind's non-linearity.
//
// Bindings (group 0): 0 uniform Params; 1 x (read; x[b, j] at x_first + b * d + (j - j0)); 2 re
// (read_write; re[b, row0 + r] at re_first + b * n_out + r); 3 im (read_write, same layout; a
// placeholder for real kinds).
// With TRANSPOSE: 1 u (read; u[b, i] at x_first + b * n_out + (i - row0)); 2 out (read_write;
// out[b, j] at re_first + b * d + (j - j0)); 3 v (read, bound read_write; the layout of u; a
// placeholder for real kinds).
// Dispatch: ceil(rows / WG) workgroups (with TRANSPOSE: ceil(ceil(cols / 4) / WG)), split over
// x and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup); TRANSPOSE; DIST (2 Gaussian, 3 Rademacher, 4 sparse:
// random_fill's codes; an override so that only its formula is compiled: with a uniform code
// lavapipe evaluated every case for every Philox block).
// Loops (per invocation, an upper bound counted as lavapipe counts them: a loop of n passes
// counts n + 1 plus one pass of each loop nested in it, and loops behind the run-time
// `complex` flag count as if it were set; `forward_loops` and `transpose_loops` in the host):
// forward 23 * ceil(cols / 4) + 21 (a pass of the column loop per 4 columns, each drawing a
// Philox block of R and one of I, whose round loops take 11 each; then the store loops over
// the batch group, 9 each); with TRANSPOSE 23 * rows + 53 (a pass per row, each drawing two
// blocks; the store loops over the batch group and, per input, 4 columns: 50). The host caps
// cols and rows per dispatch so that this stays within the adapter's loop limit (lavapipe
// ends every loop of an invocation after 65,535 iterations, silently).

// Keep in sync with ProjectDenseParams in src/ops/project_dense.rs.
struct Params {
    rows: u32,      // output rows in this dispatch
    row0: u32,      // global index of the first
    cols: u32,      // columns in this chunk
    j0: u32,        // global index of the first (a multiple of 4)
    d: u32,         // row stride of x
    n_out: u32,     // row stride of re and im
    batch: u32,     // inputs in this group, 1..8
    x_first: u32,   // x[first input of the group, j0]
    re_first: u32,  // re[first input of the group, row0]
    im_first: u32,
    _pad: u32,
    flags: u32,
    key_lo: u32,
    key_hi: u32,
    scale: f32,
    sparse_p: f32,
}

const FLAG_FIRST: u32 = 1u;   // overwrite the accumulators instead of adding
const FLAG_COMPLEX: u32 = 2u; // also accumulate the imaginary part

override WG: u32 = 64u;
override TRANSPOSE: bool = false;
override DIST: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> re: array<f32>;
@group(0) @binding(3) var<storage, read_write> im: array<f32>;

// Accumulators of the 8 batch slots.
struct Acc {
    a0: f32, a1: f32, a2: f32, a3: f32, a4: f32, a5: f32, a6: f32, a7: f32,
}

// Four entries of row i from one Philox block, in random_fill's distributions.
fn entries(stream: u32, i: u32, q: u32) -> vec4<f32> {
    let w = philox_block(vec2<u32>(p.key_lo, p.key_hi), stream, i, q);
    switch DIST {
        case 3u: { return p.scale * philox_signs(w); }
        case 4u: {
            let u = philox_uniform(w);
            let plus = select(vec4<f32>(0.0), vec4<f32>(1.0), u < vec4<f32>(p.sparse_p));
            let minus = select(vec4<f32>(0.0), vec4<f32>(1.0), u >= vec4<f32>(p.sparse_p) & u < vec4<f32>(2.0 * p.sparse_p));
            return p.scale * (plus - minus);
        }
        default: { return p.scale * philox_gaussians(w); }
    }
}

// x[b, j .. j+3] with the columns past the chunk read as 0.
fn x4(b: u32, j: u32) -> vec4<f32> {
    let base = p.x_first + b * p.d + (j - p.j0);
    let left = p.j0 + p.cols - j; // > 0
    return vec4<f32>(
        x[base],
        select(0.0, x[base + min(1u, left - 1u)], left > 1u),
        select(0.0, x[base + min(2u, left - 1u)], left > 2u),
        select(0.0, x[base + min(3u, left - 1u)], left > 3u),
    );
}

// acc += e . x[b, j..j+3] for every input of the group.
fn accumulate(t: Acc, e: vec4<f32>, j: u32) -> Acc {
    var o = t;
    o.a0 += dot(e, x4(0u, j));
    if (p.batch > 1u) { o.a1 += dot(e, x4(1u, j)); }
    if (p.batch > 2u) { o.a2 += dot(e, x4(2u, j)); }
    if (p.batch > 3u) { o.a3 += dot(e, x4(3u, j)); }
    if (p.batch > 4u) { o.a4 += dot(e, x4(4u, j)); }
    if (p.batch > 5u) { o.a5 += dot(e, x4(5u, j)); }
    if (p.batch > 6u) { o.a6 += dot(e, x4(6u, j)); }
    if (p.batch > 7u) { o.a7 += dot(e, x4(7u, j)); }
    return o;
}

// Adds (or, for the first chunk, writes) row r's accumulators to re or im.
fn store(r: u32, t: Acc, is_re: bool) {
    let values = array<f32, 8>(t.a0, t.a1, t.a2, t.a3, t.a4, t.a5, t.a6, t.a7);
    let first = (p.flags & FLAG_FIRST) != 0u;
    for (var b = 0u; b < p.batch; b++) {
        if (is_re) {
            let k = p.re_first + b * p.n_out + r;
            re[k] = select(re[k] + values[b], values[b], first);
        } else {
            let k = p.im_first + b * p.n_out + r;
            im[k] = select(im[k] + values[b], values[b], first);
        }
    }
}

// Accumulators of the 8 batch slots for 4 output columns (TRANSPOSE).
struct Acc4 {
    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
    a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
}

// u[b, i] (imaginary: v[b, i]) of row i of the chunk (TRANSPOSE).
fn u_at(b: u32, i: u32, imaginary: bool) -> f32 {
    if (imaginary) {
        return im[p.im_first + b * p.n_out + (i - p.row0)];
    }
    return x[p.x_first + b * p.n_out + (i - p.row0)];
}

// acc += e * u[b, i] for every input of the group (TRANSPOSE).
fn accumulate_t(t: Acc4, e: vec4<f32>, i: u32, imaginary: bool) -> Acc4 {
    var o = t;
    o.a0 = fma(e, vec4<f32>(u_at(0u, i, imaginary)), o.a0);
    if (p.batch > 1u) { o.a1 = fma(e, vec4<f32>(u_at(1u, i, imaginary)), o.a1); }
    if (p.batch > 2u) { o.a2 = fma(e, vec4<f32>(u_at(2u, i, imaginary)), o.a2); }
    if (p.batch > 3u) { o.a3 = fma(e, vec4<f32>(u_at(3u, i, imaginary)), o.a3); }
    if (p.batch > 4u) { o.a4 = fma(e, vec4<f32>(u_at(4u, i, imaginary)), o.a4); }
    if (p.batch > 5u) { o.a5 = fma(e, vec4<f32>(u_at(5u, i, imaginary)), o.a5); }
    if (p.batch > 6u) { o.a6 = fma(e, vec4<f32>(u_at(6u, i, imaginary)), o.a6); }
    if (p.batch > 7u) { o.a7 = fma(e, vec4<f32>(u_at(7u, i, imaginary)), o.a7); }
    return o;
}

// Adds (or, for the first chunk, writes) columns j .. j+3 (those inside the dispatch) of the
// accumulators to out (TRANSPOSE).
fn store_t(j: u32, t: Acc4) {
    let values = array<vec4<f32>, 8>(t.a0, t.a1, t.a2, t.a3, t.a4, t.a5, t.a6, t.a7);
    let first = (p.flags & FLAG_FIRST) != 0u;
    let left = min(4u, p.j0 + p.cols - j);
    for (var b = 0u; b < p.batch; b++) {
        let v = values[b];
        for (var c = 0u; c < left; c++) {
            let k = p.re_first + b * p.d + (j - p.j0) + c;
            re[k] = select(re[k] + v[c], v[c], first);
        }
    }
}

fn transposed(q: u32) {
    let j = p.j0 + 4u * q;
    if (j >= p.j0 + p.cols) {
        return;
    }
    let complex = (p.flags & FLAG_COMPLEX) != 0u;
    let quad = j / 4u;
    var acc: Acc4;
    for (var i = p.row0; i < p.row0 + p.rows; i++) {
        acc = accumulate_t(acc, entries(STREAM_MATRIX, i, quad), i, false);
        if (complex) {
            acc = accumulate_t(acc, entries(STREAM_MATRIX_IMAGINARY, i, quad), i, true);
        }
    }
    store_t(j, acc);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = linear_workgroup(wid, nwg) * WG + lid;
    if (TRANSPOSE) {
        transposed(r);
        return;
    }
    if (r >= p.rows) {
        return;
    }
    let i = p.row0 + r;
    let complex = (p.flags & FLAG_COMPLEX) != 0u;
    var acc_re: Acc;
    var acc_im: Acc;
    for (var j = p.j0; j < p.j0 + p.cols; j += 4u) {
        let q = j / 4u;
        acc_re = accumulate(acc_re, entries(STREAM_MATRIX, i, q), j);
        if (complex) {
            acc_im = accumulate(acc_im, entries(STREAM_MATRIX_IMAGINARY, i, q), j);
        }
    }
    store(r, acc_re, true);
    if (complex) {
        store(r, acc_im, false);
    }
}
