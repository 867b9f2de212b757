// matmul_tiled: the workgroup-memory variant of matmul_vec4 (same contract and operand rules,
// host src/ops/matmul.rs): batched C = act(alpha * op(A) * op(B) + beta * C + bias), op in
// {N, T}, with n % 4 == 0, k % 4 == 0 where A (N) or B (T) runs along k, m % 4 == 0 where A (T)
// runs along m, every *_first a multiple of 4.
//
// A workgroup of T x T threads computes a BM x BN = 8T x 8T tile of C, each thread an 8 x 8
// block in named vec4 accumulators (Tile, shaders/lib/tile8.wgsl), k advancing BK = T
// at a time through workgroup memory:
// - Tiles: As holds op(A)'s BK x BM slice k-major (As[k][m], so a thread reads its 8 rows as
//   two vec4s), Bs holds op(B)'s BK x BN slice (Bs[k][n]). A thread's rows are 4ty .. 4ty+3
//   and 4ty+4T .. 4ty+4T+3, its columns 4tx .. 4tx+3 and 4tx+4T .. 4tx+4T+3: in a step of k
//   the threads of a row read neighbouring vec4s of Bs and the same vec4 of As (a broadcast),
//   so reads are free of bank conflicts. An operand that runs along k (A in N layout, B in T
//   layout) is transposed on its way in, one value at a time, and the 32 threads of a
//   subgroup would store into 8 banks, or 4 for the paired B (k rows 4j apart fall on the
//   same banks, and so do the two halves of a paired tile); so such a tile keeps the vec4
//   column c of its k row r at swizzled(r, c) = c ^ (r / 4) * (32 / T) ^ (c / T) * (16 / T),
//   which spreads those stores over all 32 banks and leaves the reads of a step a permutation
//   of consecutive vec4s.
// - Double buffering: two copies of each tile; the next slice is loaded from global memory
//   into registers (2 vec4s of A and 2 of B per thread, since the tiles hold 2T^2 vec4s each)
//   before the current one is multiplied, and stored into the other copy after it, so one
//   barrier per slice separates writing a copy from reading it.
// - Loads past the edges are clamped (rows to m - 1 or m - 4, vec4 columns to n - 4) and
//   zeroed past k; what clamped rows and columns compute is never stored.
// Operands are read through load_a4/load_b4 (shaders/lib/operands_f32.wgsl; operands_f16.wgsl
// makes the f16-input variant matmul_tiled_f16, accumulating in f32 all the same).
//
// PAIRED (the fused optical projection, host src/ops/project_optical.rs): op(B)'s columns
// come in blocks of 8, the real parts of 4 complex outputs and then their imaginary parts
// (column 8q + r is Re of output 4q + r for r < 4, Im of output 4q + r - 4 otherwise), and
// C = |op(A) op(B)|^2 has p.n / 2 columns: C[i, o] = Re^2 + Im^2.
// Staging permutes each tile's columns so that its first 4T hold the real parts and the last
// 4T the imaginary parts of the same 4T outputs: a thread's lo vec4 is then the real part of
// outputs n0 / 2 + 4tx .. +3 and its hi vec4 their imaginary part, and the modulus is taken in
// registers. Needs p.n % 8 == 0, one block along k (no FLAG_READ_C); alpha, bias and
// activation are not applied; p.ldc is C's row stride (n / 2 for a whole C).
//
// Bindings (group 0): 0 uniform Params; 1 a, 2 b (read; declared by the operand piece); 3 bias
// (read, f32, a placeholder when absent); 4 c (read_write, vec4). Element offsets are in
// elements of the operands.
// Dispatch: (ceil(n / (8 * T)), ceil(m / (8 * T)), batch).
// Overrides: T (threads along each of n and m, and k per slice: 8 or 16; both copies of both
// tiles take 128 T^2 bytes of workgroup memory, 32 KiB for T = 16); TRANS_A, TRANS_B; PAIRED.
// Loops (per invocation, counting a loop of n iterations as n + 1 passes as lavapipe does; see
// matmul::loop_passes, which keeps every k block of a dispatch within the adapter's limit):
// ceil(k / T) · (T + 2) + 1 (the slice loop around T + 1 passes of the step loop: 5/4 per k at
// T = 8, the most of the family) and a constant number for the stores.
// Workgroup memory is written before it is read (the prologue fills copy 0; every later slice
// is stored before the barrier that precedes its reads), so the host creates the pipeline
// without zero-initializing it.
// Trusted (compiled without runtime checks, see Kernel::trusted): global rows and columns are
// clamped as above and k indices compared with p.k before use; workgroup indices are below
// 2 * TILE_VEC4S by construction (v < 2 T^2, kk < T, ty, tx < T; paired_column maps
// [0, 8T) onto itself; swizzled permutes the columns of a k row); stores are guarded by m and n (n / 2 for PAIRED); the host binds windows spanning each operand's block for the m, n, k and batch it writes
// into Params; the divisors are the overrides T / 4 and 2T (the host allows T = 8 or 16).

// Params and the FLAG_ constants: shaders/lib/matmul_params.wgsl. Tile, step:
// shaders/lib/tile8.wgsl; store_tile: shaders/lib/matmul_tile.wgsl. a, b, load_a4, load_b4:
// the operand piece.

override T: u32 = 16u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override PAIRED: bool = false;

// vec4s in one copy of one tile: BK rows of BM / 4 (= 2T) vec4s.
override TILE_VEC4S: u32 = 2u * T * T;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

// Two copies of each tile: copy j of As starts at j * TILE_VEC4S; As[copy][k][m / 4].
var<workgroup> As: array<vec4<f32>, 2u * TILE_VEC4S>;
var<workgroup> Bs: array<vec4<f32>, 2u * TILE_VEC4S>;

// The four vec4s a thread moves from global to workgroup memory for one slice.
struct Staged {
    a0: vec4<f32>,
    a1: vec4<f32>,
    b0: vec4<f32>,
    b1: vec4<f32>,
}

// Where the thread's staged vec4 number v (0 <= v < 2 T^2) of a tile lies.
// A in N layout (vec4 along k): row v / (T/4) of the BM rows, k group v % (T/4).
// A in T layout (vec4 along m): k row v / (2T), m group v % (2T). B alike with n for m.
fn load_a_vec4(base: u32, m0: u32, k0: u32, v: u32) -> vec4<f32> {
    if (TRANS_A) {
        let kk = k0 + v / (2u * T);
        let col = min(m0 + 4u * (v % (2u * T)), p.m - 4u);
        let x = load_a4(base + min(kk, p.k - 1u) * p.lda + col);
        return select(x, vec4<f32>(0.0), kk >= p.k);
    }
    let row = min(m0 + v / (T / 4u), p.m - 1u);
    let kk = k0 + 4u * (v % (T / 4u));
    let x = load_a4(base + row * p.lda + min(kk, p.k - 4u));
    return select(x, vec4<f32>(0.0), kk >= p.k);
}

fn load_b_vec4(base: u32, n0: u32, k0: u32, v: u32) -> vec4<f32> {
    if (TRANS_B) {
        let col = min(n0 + v / (T / 4u), p.n - 1u);
        let kk = k0 + 4u * (v % (T / 4u));
        let x = load_b4(base + col * p.ldb + min(kk, p.k - 4u));
        return select(x, vec4<f32>(0.0), kk >= p.k);
    }
    let kk = k0 + v / (2u * T);
    let col = min(n0 + 4u * (v % (2u * T)), p.n - 4u);
    let x = load_b4(base + min(kk, p.k - 1u) * p.ldb + col);
    return select(x, vec4<f32>(0.0), kk >= p.k);
}

// Where vec4 column c of k row r of a tile lies, for a tile stored transposed (`on`; see the
// header). The mask is below T (T = 8 or 16: at most 6 ^ 2 and 6 ^ 1) and depends on c only
// through c / T, which it leaves alone: a permutation of the row's 2T columns.
fn swizzled(r: u32, c: u32, on: bool) -> u32 {
    return select(c, c ^ ((r / 4u) * (32u / T)) ^ ((c / T) * (16u / T)), on);
}

// Stores staged vec4 number v into copy `copy` of As: directly (T layout: it runs along m) or
// transposed into four k rows (N layout: it runs along k), at its swizzled column.
fn store_a(copy: u32, v: u32, x: vec4<f32>) {
    let base = copy * TILE_VEC4S;
    if (TRANS_A) {
        As[base + v] = x;
        return;
    }
    let row = v / (T / 4u);
    let kk = 4u * (v % (T / 4u));
    let at = base + kk * (2u * T) + swizzled(kk, row / 4u, true);
    let lane = row % 4u;
    As[at][lane] = x.x;
    As[at + 2u * T][lane] = x.y;
    As[at + 4u * T][lane] = x.z;
    As[at + 6u * T][lane] = x.w;
}

// PAIRED: where a tile's column c lands: real parts (c % 8 < 4) in the first 4T columns,
// imaginary parts in the last 4T, output 4 (c / 8) + c % 4 of the tile in both halves.
fn paired_column(c: u32) -> u32 {
    return select(c, ((c % 8u) / 4u) * 4u * T + 4u * (c / 8u) + c % 4u, PAIRED);
}

fn store_b(copy: u32, v: u32, x: vec4<f32>) {
    let base = copy * TILE_VEC4S;
    if (!TRANS_B) {
        // vec4 group g of a k row holds columns 4g .. 4g+3: one half of one block of 8.
        let g = v % (2u * T);
        Bs[base + v - g + paired_column(4u * g) / 4u] = x;
        return;
    }
    let col = paired_column(v / (T / 4u));
    let kk = 4u * (v % (T / 4u));
    let at = base + kk * (2u * T) + swizzled(kk, col / 4u, true);
    let lane = col % 4u;
    Bs[at][lane] = x.x;
    Bs[at + 2u * T][lane] = x.y;
    Bs[at + 4u * T][lane] = x.z;
    Bs[at + 6u * T][lane] = x.w;
}

@compute @workgroup_size(T, T, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // No early return: every thread takes part in every barrier.
    let tx = lid.x;
    let ty = lid.y;
    let l = ty * T + tx;
    let m0 = wid.y * 8u * T;
    let n0 = wid.x * 8u * T;
    let a_base = p.a_first + wid.z * p.a_batch_stride;
    let b_base = p.b_first + wid.z * p.b_batch_stride;
    let c_base = p.c_first + wid.z * p.c_batch_stride;
    let second = T * T;
    let slices = (p.k + T - 1u) / T;

    var s: Staged;
    s.a0 = load_a_vec4(a_base, m0, 0u, l);
    s.a1 = load_a_vec4(a_base, m0, 0u, l + second);
    s.b0 = load_b_vec4(b_base, n0, 0u, l);
    s.b1 = load_b_vec4(b_base, n0, 0u, l + second);
    store_a(0u, l, s.a0);
    store_a(0u, l + second, s.a1);
    store_b(0u, l, s.b0);
    store_b(0u, l + second, s.b1);
    workgroupBarrier();

    var t: Tile;
    for (var slice = 0u; slice < slices; slice++) {
        let copy = slice % 2u;
        let next = slice + 1u < slices;
        if (next) {
            let k0 = (slice + 1u) * T;
            s.a0 = load_a_vec4(a_base, m0, k0, l);
            s.a1 = load_a_vec4(a_base, m0, k0, l + second);
            s.b0 = load_b_vec4(b_base, n0, k0, l);
            s.b1 = load_b_vec4(b_base, n0, k0, l + second);
        }
        let base = copy * TILE_VEC4S;
        for (var kk = 0u; kk < T; kk++) {
            let at = base + kk * (2u * T);
            let a0 = As[at + swizzled(kk, ty, !TRANS_A)];
            let a1 = As[at + swizzled(kk, ty + T, !TRANS_A)];
            let b0 = Bs[at + swizzled(kk, tx, TRANS_B)];
            let b1 = Bs[at + swizzled(kk, tx + T, TRANS_B)];
            t = step(t, a0, a1, b0, b1);
        }
        if (next) {
            store_a(1u - copy, l, s.a0);
            store_a(1u - copy, l + second, s.a1);
            store_b(1u - copy, l, s.b0);
            store_b(1u - copy, l + second, s.b1);
        }
        workgroupBarrier();
    }
    if (PAIRED) {
        store_paired_tile(c_base, t, m0 + 4u * ty, m0 + 4u * ty + 4u * T, n0 / 2u + 4u * tx);
        return;
    }
    store_tile(c_base, t, m0 + 4u * ty, m0 + 4u * ty + 4u * T, n0 + 4u * tx, n0 + 4u * tx + 4u * T);
}

// PAIRED: stores |re + i im|^2 at row, columns col .. col+3 of C if inside C.
fn store_paired(c_base: u32, row: u32, col: u32, re: vec4<f32>, im: vec4<f32>) {
    if (row >= p.m || col >= p.n / 2u) {
        return;
    }
    c[(c_base + row * p.ldc + col) / 4u] = fma(re, re, im * im);
}

// PAIRED: the thread's 8 rows (rows0 .. rows0+3 and rows1 .. rows1+3), each lo vec4 with its
// hi vec4 as the imaginary part, at output columns col .. col+3.
fn store_paired_tile(c_base: u32, t: Tile, rows0: u32, rows1: u32, col: u32) {
    store_paired(c_base, rows0 + 0u, col, t.r0l, t.r0h);
    store_paired(c_base, rows0 + 1u, col, t.r1l, t.r1h);
    store_paired(c_base, rows0 + 2u, col, t.r2l, t.r2h);
    store_paired(c_base, rows0 + 3u, col, t.r3l, t.r3h);
    store_paired(c_base, rows1 + 0u, col, t.r4l, t.r4h);
    store_paired(c_base, rows1 + 1u, col, t.r5l, t.r5h);
    store_paired(c_base, rows1 + 2u, col, t.r6l, t.r6h);
    store_paired(c_base, rows1 + 3u, col, t.r7l, t.r7h);
}
