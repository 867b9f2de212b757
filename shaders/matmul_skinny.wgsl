// matmul_skinny: the matmul variant for products of a few rows (same contract as matmul, host
// src/ops/matmul_skinny.rs): batched C = act(alpha * A * op(B) + beta * C + bias) for m <= 8,
// A not transposed, op(B) in {N, T}, k % 4 == 0, n % 4 == 0 where B is N, and A's, B's and the
// windows' firsts multiples of 4 (the host checks this and otherwise runs the other kernels).
//
// Such products read all of B for a few rows of C: they are bound by B's bytes, and the
// square-tiled kernels, whose threads each compute 8 rows, spend most of their work on rows
// that do not exist. Here each invocation computes all ROWS rows of 4 columns of C: per 4
// values of k it reads 4 vec4s of B (N: the 4 rows k..k+3 at its columns; T: its 4 columns'
// rows at k..k+3) and one vec4 of each row of A, whose address is the same for every
// invocation of the workgroup (lavapipe then loads it once, not lane by lane).
//
// Lanes along k (LANES > 1, B transposed only): each group of LANES consecutive invocations
// shares the group's 4 columns, lane j taking the k values 4j .. 4j + 3 of every 4 * LANES, so
// that a group reads 16 * LANES consecutive bytes of each of its 4 rows of B per step (with
// one lane per group, a subgroup's lanes read 16 bytes from each of 4 * 32 different rows).
// The lanes' sums meet in workgroup memory; lane j finishes rows j, j + LANES, ...
//
// Split k: the grid's y runs over `slices` slices of `slice_k` values of k (a multiple of 4),
// so that a product with few columns still fills the adapter. With one slice, main finishes
// C itself; with more, it writes each slice's sums to a scratch buffer of
// [slices, batch, m, n] values (bound as c) and the entry point `combine` adds them in slice
// order and finishes C.
//
// Bindings (group 0): 0 uniform Params; 1 a (read, vec4), or in combine the scratch `parts`
// (read); 2 b (read, vec4; main only); 3 bias (read, a placeholder when absent); 4 c
// (read_write; main with several slices: the scratch).
// Dispatch: main (ceil(n / (4 * GROUPS)), slices, batch); combine (ceil(n / (4 * WG)), m,
// batch): there each invocation adds the slices of 4 columns, whatever LANES.
// Overrides: WG (threads per workgroup, a multiple of LANES); LANES (invocations per group of
// 4 columns, 1 by default); ROWS (m, 1 to 8: the rows are unrolled); TRANS_B.
// Workgroup memory: SUMS = ROWS * (WG + 1) vec4s where LANES > 1 (every value read is written
// first by the same workgroup, before a barrier, so zero-initialization is off).
// Loops (per invocation, counting a loop of n iterations as n + 1 passes as lavapipe does):
// main slice_k / 4 + 1 for its k loop and a constant number for the stores; combine
// slices + 1; the host keeps slice_k / 4 within the adapter's loop limit.

// Params and the FLAG_ constants: shaders/lib/matmul_params.wgsl; store4:
// shaders/lib/matmul_store.wgsl; activate: shaders/lib/activation.wgsl.

override WG: u32 = 64u;
override LANES: u32 = 1u;
override ROWS: u32 = 8u;
override TRANS_B: bool = false;
// Groups of 4 columns per workgroup; the padded pitch of the lanes' sums per row; their
// length, set by the host to ROWS * PITCH where LANES > 1 (1 otherwise: no memory).
override GROUPS: u32 = WG / LANES;
override PITCH: u32 = WG + 1u;
override SUMS: u32 = 1u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
// The slices' sums, read by combine only (main writes them through c).
@group(0) @binding(1) var<storage, read> parts: array<f32>;
// The lanes' sums: row r of invocation i at r * PITCH + i (LANES > 1 only).
var<workgroup> lane_sums: array<vec4<f32>, SUMS>;

// The 8 rows' sums for the invocation's 4 columns (rows past ROWS stay unused).
struct Acc {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
}

// acc + x (4 values of one row of A at k..k+3) times the 4 x 4 block of op(B) at k..k+3 and
// the invocation's columns, given as its 4 rows (N: row k + i of B, the 4 columns) or its 4
// columns (T: the column's values at k..k+3).
fn step(acc: vec4<f32>, x: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    if (TRANS_B) {
        return acc + vec4<f32>(dot(x, b0), dot(x, b1), dot(x, b2), dot(x, b3));
    }
    return fma(vec4<f32>(x.x), b0, fma(vec4<f32>(x.y), b1, fma(vec4<f32>(x.z), b2, fma(vec4<f32>(x.w), b3, acc))));
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let z = wid.z;
    let lane = lid % LANES;
    let col = (wid.x * GROUPS + lid / LANES) * 4u;
    let slice_lo = wid.y * p.slice_k;
    let k_hi = min(p.k, slice_lo + p.slice_k);
    // vec4 indices: A's row r at k is a_row + r * lda4 + k / 4.
    let a_row = (p.a_first + z * p.a_batch_stride) / 4u;
    let lda4 = p.lda / 4u;
    let b_base = p.b_first + z * p.b_batch_stride;
    // The invocation's columns, clamped for loading (an invocation past n loads column n - 1
    // or the last vec4 and stores nothing).
    let last = p.n - 1u;
    let cols = min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
    var acc: Acc;
    for (var k = slice_lo + 4u * lane; k < k_hi; k += 4u * LANES) {
        var b0: vec4<f32>;
        var b1: vec4<f32>;
        var b2: vec4<f32>;
        var b3: vec4<f32>;
        if (TRANS_B) {
            let q = (b_base + k) / 4u;
            let ldb4 = p.ldb / 4u;
            b0 = b[q + cols.x * ldb4];
            b1 = b[q + cols.y * ldb4];
            b2 = b[q + cols.z * ldb4];
            b3 = b[q + cols.w * ldb4];
        } else {
            let q = (b_base + k * p.ldb + min(col, p.n - 4u)) / 4u;
            let ldb4 = p.ldb / 4u;
            b0 = b[q];
            b1 = b[q + ldb4];
            b2 = b[q + 2u * ldb4];
            b3 = b[q + 3u * ldb4];
        }
        let ka = a_row + k / 4u;
        acc.r0 = step(acc.r0, a[ka], b0, b1, b2, b3);
        if (ROWS > 1u) { acc.r1 = step(acc.r1, a[ka + lda4], b0, b1, b2, b3); }
        if (ROWS > 2u) { acc.r2 = step(acc.r2, a[ka + 2u * lda4], b0, b1, b2, b3); }
        if (ROWS > 3u) { acc.r3 = step(acc.r3, a[ka + 3u * lda4], b0, b1, b2, b3); }
        if (ROWS > 4u) { acc.r4 = step(acc.r4, a[ka + 4u * lda4], b0, b1, b2, b3); }
        if (ROWS > 5u) { acc.r5 = step(acc.r5, a[ka + 5u * lda4], b0, b1, b2, b3); }
        if (ROWS > 6u) { acc.r6 = step(acc.r6, a[ka + 6u * lda4], b0, b1, b2, b3); }
        if (ROWS > 7u) { acc.r7 = step(acc.r7, a[ka + 7u * lda4], b0, b1, b2, b3); }
    }
    if (LANES > 1u) {
        reduce_lanes(wid, nwg, lid, lane, col, acc);
        return;
    }
    if (col >= p.n) {
        return;
    }
    let columns = vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u);
    if (p.slices == 1u) {
        let c_base = p.c_first + z * p.c_batch_stride;
        store4(c_base, 0u, columns, acc.r0);
        if (ROWS > 1u) { store4(c_base, 1u, columns, acc.r1); }
        if (ROWS > 2u) { store4(c_base, 2u, columns, acc.r2); }
        if (ROWS > 3u) { store4(c_base, 3u, columns, acc.r3); }
        if (ROWS > 4u) { store4(c_base, 4u, columns, acc.r4); }
        if (ROWS > 5u) { store4(c_base, 5u, columns, acc.r5); }
        if (ROWS > 6u) { store4(c_base, 6u, columns, acc.r6); }
        if (ROWS > 7u) { store4(c_base, 7u, columns, acc.r7); }
        return;
    }
    // The slice's sums: row r of this slice and batch at parts[((y * batch + z) * m + r) * n].
    let base = p.c_first + (wid.y * nwg.z + z) * p.m * p.n + col;
    store_part(base, col, acc.r0);
    if (ROWS > 1u) { store_part(base + p.n, col, acc.r1); }
    if (ROWS > 2u) { store_part(base + 2u * p.n, col, acc.r2); }
    if (ROWS > 3u) { store_part(base + 3u * p.n, col, acc.r3); }
    if (ROWS > 4u) { store_part(base + 4u * p.n, col, acc.r4); }
    if (ROWS > 5u) { store_part(base + 5u * p.n, col, acc.r5); }
    if (ROWS > 6u) { store_part(base + 6u * p.n, col, acc.r6); }
    if (ROWS > 7u) { store_part(base + 7u * p.n, col, acc.r7); }
}

// The groups of LANES invocations add their sums: every invocation writes its ROWS rows, then
// lane j of each group adds the group's values of rows j, j + LANES, ... in lane order and
// stores them as main does with one lane (finished, or the slice's sums).
fn reduce_lanes(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, lane: u32, col: u32, acc: Acc) {
    lane_sums[lid] = acc.r0;
    if (ROWS > 1u) { lane_sums[PITCH + lid] = acc.r1; }
    if (ROWS > 2u) { lane_sums[2u * PITCH + lid] = acc.r2; }
    if (ROWS > 3u) { lane_sums[3u * PITCH + lid] = acc.r3; }
    if (ROWS > 4u) { lane_sums[4u * PITCH + lid] = acc.r4; }
    if (ROWS > 5u) { lane_sums[5u * PITCH + lid] = acc.r5; }
    if (ROWS > 6u) { lane_sums[6u * PITCH + lid] = acc.r6; }
    if (ROWS > 7u) { lane_sums[7u * PITCH + lid] = acc.r7; }
    workgroupBarrier();
    if (col >= p.n) {
        return;
    }
    let columns = vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u);
    let first = lid - lane;
    for (var r = lane; r < ROWS; r += LANES) {
        var sum = vec4<f32>(0.0);
        for (var l = 0u; l < LANES; l++) {
            sum += lane_sums[r * PITCH + first + l];
        }
        if (p.slices == 1u) {
            store4(p.c_first + wid.z * p.c_batch_stride, r, columns, sum);
        } else {
            store_part(p.c_first + ((wid.y * nwg.z + wid.z) * p.m + r) * p.n + col, col, sum);
        }
    }
}

// Stores the values of `v` whose columns col .. col + 3 are below n, unfinished, from `at`.
fn store_part(at: u32, col: u32, v: vec4<f32>) {
    for (var i = 0u; i < 4u; i++) {
        if (col + i < p.n) {
            c[at + i] = v[i];
        }
    }
}

@compute @workgroup_size(WG)
fn combine(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let z = wid.z;
    let r = wid.y;
    let col = (wid.x * WG + lid) * 4u;
    if (col >= p.n) {
        return;
    }
    let columns = vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u);
    let last = vec4<u32>(p.n - 1u);
    let at = min(columns, last);
    var sum = vec4<f32>(0.0);
    let per_slice = nwg.z * p.m * p.n;
    let first = (z * p.m + r) * p.n;
    for (var s = 0u; s < p.slices; s++) {
        let o = s * per_slice + first;
        sum += vec4<f32>(parts[o + at.x], parts[o + at.y], parts[o + at.z], parts[o + at.w]);
    }
    store4(p.c_first + z * p.c_batch_stride, r, columns, sum);
}
