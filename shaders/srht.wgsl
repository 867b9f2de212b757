// srht: the structured random projection (SORF-style) and its transpose. For each input x
// (zero-padded to n = p, a power of two), block k and part t (t = 1 only for the optical
// kind's imaginary transform),
//   M x = H D3 H D2 H D1 x,  D_s = diag of random signs, H the (unnormalized) Walsh-Hadamard
// transform; the blocks are stacked and the first n_out rows kept. The transpose (linear kind
// only) is M^T y_k = D1 H D2 H D3 H y_k, summed over the blocks k of each output row y, whose
// block k is its columns k p .. k p + p - 1 (zero past n_out). Work rows are (input b,
// block k, part t), global index (b * blocks + k) * parts + t, each p values long; a dispatch
// covers the work rows row0 .. row0 + rows - 1, which lie in inputs b0, b0 + 1, ...
//   MODE 0 stage: one radix-2 butterfly pass of H at stride h over every work row:
//       (v[i], v[i + h]) <- (a + b, a - b) for i with bit h clear, where a, b are read from the
//       input (FLAG_FROM_INPUT: the first stage; see `load`) or from the work row, and, on the
//       first stage of each H (FLAG_SIGNS), multiplied by the sign diagonal D_s, s = p.diagonal:
//       sign(j) = Rademacher entry j of row 0 of stream STREAM_DIAGONAL + 6k + 3t + s.
//   MODE 3 local stages: the butterfly passes h = 1, 2, ..., TILE / 2 at once, one workgroup per
//       tile of TILE consecutive values of a work row, in workgroup memory: loaded (as `load`
//       does, FLAG_FROM_INPUT and FLAG_SIGNS included, four consecutive values per Philox
//       block), transformed four passes at a time on 16 values per thread in registers (the
//       1 to 3 passes left in one more round on 2, 4 or 8 values), with a barrier after each
//       round, stored. The host runs the passes h >= TILE as MODE 4, four at a time and the
//       rest in one more dispatch. On lavapipe one dispatch per pass dominated (the b1 d65536
//       n131072 projection ran 51 passes over 512 KiB in 53 ms), and single passes cost as
//       much as rounds of four (p = 2^20 with tiles of 2,048, 11 + 9 passes, ran in 214 ms,
//       with tiles of 256, 8 + 12, in 127 ms, before the rounds of 2 to 8 values).
//   MODE 4 LEVELS passes at once (1 to 4): strides h, 2h, ... over every work row (after
//       MODE 3, never the first passes), each invocation on 2^LEVELS values in registers.
//   MODE 1 forward output: y[b, i] = scale * w(b, i / p, 0)[i % p] (linear), or
//       scale^2 * (w(b, i / p, 0)[i % p]^2 + w(b, i / p, 1)[i % p]^2) (optical).
//   MODE 2 transpose output: out[b, j] (+)= scale * sum over k in k_lo .. k_hi - 1 of
//       sign_{D1,k}(j) * w(b, k, 0)[j], for j < out_len (= d); FLAG_ACCUMULATE adds to out,
//       so that an input whose blocks span several dispatches sums them.
// The host's scale folds the three H's normalizations (p^-3/2) and sqrt(p / n_out) (linear)
// or sqrt(p / 2) (optical), so that E|y|^2 = |x|^2 or E[y_i] = |x|^2.
//
// Bindings (group 0): 0 uniform Params; 1 input (read: x forward, y transpose); 2 work
// (read_write); 3 output (read_write: y forward, x transpose).
// Dispatch: MODE 0: ceil(rows * p / 2 / WG) workgroups; MODE 1 and 2: ceil(len / WG); MODE 3:
// rows * p / TILE; MODE 4: ceil(rows * p / 2^LEVELS / WG); all split over x and y by
// `Gpu::grid`.
// Overrides: MODE; WG (threads per workgroup); TILE (MODE 3: values per tile, a power of two,
// at least 4 WG and at most p); PADDED and TILE_WORDS (MODE 3: the tile's layout, see `slot`);
// LEVELS (MODE 4: passes per dispatch, 1 to 4).
// Loops (per invocation, an upper bound counted as lavapipe counts them: a loop of n passes
// counts n + 1 plus one pass of each loop nested in it; `STAGE_LOOPS` and
// `transpose_output_loops` in the host): MODE 0 22 (each of the two loads may draw a sign,
// one Philox block whose round loop takes 11); MODE 1 none; MODE 2 (k_hi - k_lo) * 12 + 2 (a
// pass per block, each drawing a sign); MODE 3 L (1 + 11) + 1 to load (L = TILE / (4 WG)
// passes, each drawing one Philox block), R (TILE / (2 WG) + 1) + R + 1 for the R =
// ceil(log2(TILE) / 4) rounds (at most TILE / 2 groups each), 4 L + 1 to store (`local_loops`
// in the host); MODE 4 none.
// The host splits MODE 2's blocks over dispatches (FLAG_ACCUMULATE) so that this stays within
// the adapter's loop limit (lavapipe ends every loop of an invocation after 65,535
// iterations, silently).

// Keep in sync with SrhtParams in src/ops/srht.rs.
struct Params {
    rows: u32,       // work rows in this dispatch (MODE 0)
    row0: u32,       // global index of the first
    p_log2: u32,
    h: u32,          // butterfly stride (MODE 0)
    in_len: u32,     // row length of the input: d forward, n_out transpose
    in_stride: u32,  // input columns per block: 0 forward (every block reads all of x), p transpose
    in_col0: u32,    // input column at in_first (k_lo * in_stride)
    blocks: u32,     // blocks per input
    parts: u32,      // 1, or 2 for the optical kind
    flags: u32,
    diagonal: u32,   // s in 0..3 (MODE 0 with FLAG_SIGNS)
    key_lo: u32,
    key_hi: u32,
    in_first: u32,   // input[b0, in_col0]
    work_first: u32, // work[row0, 0]
    out_first: u32,  // MODE 1 and 2: the output at e0
    len: u32,        // MODE 1 and 2: outputs in this dispatch
    e0: u32,         // MODE 1 and 2: global flat index of the first output
    out_len: u32,    // output row length: n_out forward, d transpose
    b0: u32,         // global index of the first input in this dispatch
    k_lo: u32,       // MODE 2: the blocks of each input held in work
    k_hi: u32,
    scale: f32,
    _pad: u32,
}

const FLAG_FROM_INPUT: u32 = 1u;
const FLAG_SIGNS: u32 = 2u;
const FLAG_ACCUMULATE: u32 = 4u;

override MODE: u32 = 0u;
override WG: u32 = 256u;
override TILE: u32 = 1024u;
// MODE 3: one unused word after every 16 values of the tile (GPUs), which spreads the rounds'
// accesses over the 32 banks of workgroup memory (see `slot`), and the tile's words: TILE, or
// TILE + TILE / 16 padded.
override PADDED: bool = false;
override TILE_WORDS: u32 = 1024u;
// MODE 4: passes per dispatch (1 to 4); an override so that only its round is compiled.
override LEVELS: u32 = 4u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> tile: array<f32, TILE_WORDS>;

// The word of tile value i. Unpadded, the first round's threads (16 consecutive values each)
// read and write 16 words apart: 32 threads on 2 of the 32 banks, a 16-way conflict, and the
// second round's two half-subgroups 256 words apart, on the same 16 banks. With a word after
// every 16 values, i + i / 16, thread k's values start at 17 k (all 32 banks), and the halves
// 272 words apart (16 banks apart); the loads' and the later rounds' consecutive values lose
// at most one pair per subgroup to a conflict.
fn slot(i: u32) -> u32 {
    if (PADDED) {
        return i + (i >> 4u);
    }
    return i;
}

fn sign(k: u32, t: u32, s: u32, j: u32) -> f32 {
    let stream = STREAM_DIAGONAL + 6u * k + 3u * t + s;
    let w = philox_block(vec2<u32>(p.key_lo, p.key_hi), stream, 0u, j / 4u);
    return philox_signs(w)[j % 4u];
}

// Value j of global work row r before the butterfly: from the input (column k * in_stride + j
// of input row b, zero past in_len) or the work buffer, times the sign diagonal when asked.
fn load(r: u32, j: u32) -> f32 {
    let k = (r / p.parts) % p.blocks;
    var v: f32;
    if ((p.flags & FLAG_FROM_INPUT) != 0u) {
        let b = r / (p.blocks * p.parts);
        let col = k * p.in_stride + j;
        // The clamp keeps the (discarded) read in bounds.
        let at = (b - p.b0) * p.in_len + min(col, p.in_len - 1u) - p.in_col0;
        v = select(0.0, input[p.in_first + at], col < p.in_len);
    } else {
        v = work[p.work_first + (r - p.row0) * (1u << p.p_log2) + j];
    }
    if ((p.flags & FLAG_SIGNS) != 0u) {
        v *= sign(k, r % p.parts, p.diagonal, j);
    }
    return v;
}

// The Walsh-Hadamard transform of 4 values (butterflies at strides 1 and 2).
fn h4(a: vec4<f32>) -> vec4<f32> {
    let b = vec4(a.x + a.y, a.x - a.y, a.z + a.w, a.z - a.w);
    return vec4(b.x + b.z, b.y + b.w, b.x - b.z, b.y - b.w);
}

// The Walsh-Hadamard transform of 16 values, value 4q + r in a[q][r]: strides 1 and 2 within
// each vec4, then 4 and 8 between them (the passes of H commute).
fn h16(a: array<vec4<f32>, 4>) -> array<vec4<f32>, 4> {
    let b0 = h4(a[0]);
    let b1 = h4(a[1]);
    let b2 = h4(a[2]);
    let b3 = h4(a[3]);
    let c0 = b0 + b1;
    let c1 = b0 - b1;
    let c2 = b2 + b3;
    let c3 = b2 - b3;
    return array<vec4<f32>, 4>(c0 + c2, c1 + c3, c0 - c2, c1 - c3);
}

// The Walsh-Hadamard transform of 8 values, value 4q + r in a[q][r].
fn h8(a: array<vec4<f32>, 2>) -> array<vec4<f32>, 2> {
    let b0 = h4(a[0]);
    let b1 = h4(a[1]);
    return array<vec4<f32>, 2>(b0 + b1, b0 - b1);
}

// The first of the 2^r values at stride 2^level of group g, for r passes from stride
// 2^level: groups enumerate the starts whose bits level .. level + r - 1 are clear.
fn group_start(g: u32, level: u32, r: u32) -> u32 {
    let low = g & ((1u << level) - 1u);
    return ((g >> level) << (level + r)) | low;
}

// Tile values o, o + h, o + 2h, o + 3h.
fn tile4(o: u32, h: u32) -> vec4<f32> {
    return vec4(
        tile[slot(o)],
        tile[slot(o + h)],
        tile[slot(o + 2u * h)],
        tile[slot(o + 3u * h)],
    );
}

fn set_tile4(o: u32, h: u32, v: vec4<f32>) {
    tile[slot(o)] = v.x;
    tile[slot(o + h)] = v.y;
    tile[slot(o + 2u * h)] = v.z;
    tile[slot(o + 3u * h)] = v.w;
}

// Work values o, o + h, o + 2h, o + 3h.
fn work4(o: u32, h: u32) -> vec4<f32> {
    return vec4(work[o], work[o + h], work[o + 2u * h], work[o + 3u * h]);
}

fn set_work4(o: u32, h: u32, v: vec4<f32>) {
    work[o] = v.x;
    work[o + h] = v.y;
    work[o + 2u * h] = v.z;
    work[o + 3u * h] = v.w;
}

// r passes (1 to 4) from stride h on the tile's 2^r values i, i + h, ..., in registers.
fn tile_round(i: u32, h: u32, r: u32) {
    switch r {
        case 4u: {
            let a = h16(array<vec4<f32>, 4>(
                tile4(i, h),
                tile4(i + 4u * h, h),
                tile4(i + 8u * h, h),
                tile4(i + 12u * h, h),
            ));
            set_tile4(i, h, a[0]);
            set_tile4(i + 4u * h, h, a[1]);
            set_tile4(i + 8u * h, h, a[2]);
            set_tile4(i + 12u * h, h, a[3]);
        }
        case 3u: {
            let a = h8(array<vec4<f32>, 2>(tile4(i, h), tile4(i + 4u * h, h)));
            set_tile4(i, h, a[0]);
            set_tile4(i + 4u * h, h, a[1]);
        }
        case 2u: {
            set_tile4(i, h, h4(tile4(i, h)));
        }
        default: {
            let a = tile[slot(i)];
            let b = tile[slot(i + h)];
            tile[slot(i)] = a + b;
            tile[slot(i + h)] = a - b;
        }
    }
}

// The same on the work buffer.
fn work_round(i: u32, h: u32, r: u32) {
    switch r {
        case 4u: {
            let a = h16(array<vec4<f32>, 4>(
                work4(i, h),
                work4(i + 4u * h, h),
                work4(i + 8u * h, h),
                work4(i + 12u * h, h),
            ));
            set_work4(i, h, a[0]);
            set_work4(i + 4u * h, h, a[1]);
            set_work4(i + 8u * h, h, a[2]);
            set_work4(i + 12u * h, h, a[3]);
        }
        case 3u: {
            let a = h8(array<vec4<f32>, 2>(work4(i, h), work4(i + 4u * h, h)));
            set_work4(i, h, a[0]);
            set_work4(i + 4u * h, h, a[1]);
        }
        case 2u: {
            set_work4(i, h, h4(work4(i, h)));
        }
        default: {
            let a = work[i];
            let b = work[i + h];
            work[i] = a + b;
            work[i + h] = a - b;
        }
    }
}

// Values j .. j + 3 (j a multiple of 4) of global work row r, as four `load`s give them, with
// the signs of one Philox block.
fn load4(r: u32, j: u32) -> vec4<f32> {
    let k = (r / p.parts) % p.blocks;
    var v: vec4<f32>;
    if ((p.flags & FLAG_FROM_INPUT) != 0u) {
        let b = r / (p.blocks * p.parts);
        let col = vec4(k * p.in_stride + j) + vec4(0u, 1u, 2u, 3u);
        // The clamp keeps the (discarded) reads in bounds.
        let at = vec4((b - p.b0) * p.in_len - p.in_col0) + min(col, vec4(p.in_len - 1u));
        let o = p.in_first;
        let raw = vec4(input[o + at.x], input[o + at.y], input[o + at.z], input[o + at.w]);
        v = select(vec4(0.0), raw, col < vec4(p.in_len));
    } else {
        let o = p.work_first + (r - p.row0) * (1u << p.p_log2) + j;
        v = vec4(work[o], work[o + 1u], work[o + 2u], work[o + 3u]);
    }
    if ((p.flags & FLAG_SIGNS) != 0u) {
        let stream = STREAM_DIAGONAL + 6u * k + 3u * (r % p.parts) + p.diagonal;
        v *= philox_signs(philox_block(vec2<u32>(p.key_lo, p.key_hi), stream, 0u, j / 4u));
    }
    return v;
}

// MODE 3: the passes h < TILE over one tile in workgroup memory (see the header).
fn local_stages(w: u32, lid: u32) {
    let n = 1u << p.p_log2;
    let tiles = n / TILE;
    // Uniform per workgroup, so returning here keeps the barriers below in uniform control flow.
    if (w >= p.rows * tiles) {
        return;
    }
    let r = p.row0 + w / tiles;
    let j0 = (w % tiles) * TILE;
    for (var q = lid; q < TILE / 4u; q += WG) {
        let v = load4(r, j0 + 4u * q);
        tile[slot(4u * q)] = v.x;
        tile[slot(4u * q + 1u)] = v.y;
        tile[slot(4u * q + 2u)] = v.z;
        tile[slot(4u * q + 3u)] = v.w;
    }
    workgroupBarrier();
    // Four passes at a time (strides h, 2h, 4h, 8h) on 16 values per thread in registers,
    // the 1 to 3 passes left in one more round. The round sizes are constants of the
    // pipeline (TILE is an override): lavapipe evaluates every case of a switch on a value
    // it does not know, and a round of four had cost as much as all four cases.
    let levels = firstTrailingBit(TILE);
    var level = 0u;
    for (; level + 4u <= levels; level += 4u) {
        for (var g = lid; g < TILE / 16u; g += WG) {
            tile_round(group_start(g, level, 4u), 1u << level, 4u);
        }
        workgroupBarrier();
    }
    let rest = levels % 4u;
    if (rest > 0u) {
        for (var g = lid; g < (TILE >> rest); g += WG) {
            tile_round(group_start(g, level, rest), 1u << level, rest);
        }
        workgroupBarrier();
    }
    let base = p.work_first + (r - p.row0) * n + j0;
    for (var q = lid; q < TILE; q += WG) {
        work[base + q] = tile[slot(q)];
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if (MODE == 3u) {
        local_stages(linear_workgroup(wid, nwg), lid);
        return;
    }
    let t = linear_workgroup(wid, nwg) * WG + lid;
    let n = 1u << p.p_log2;
    if (MODE == 4u) {
        let groups = n >> LEVELS;
        if (t >= p.rows * groups) {
            return;
        }
        let base = p.work_first + (t / groups) * n;
        let i = base + group_start(t % groups, firstTrailingBit(p.h), LEVELS);
        work_round(i, p.h, LEVELS);
        return;
    }
    if (MODE == 0u) {
        let half = n / 2u;
        if (t >= p.rows * half) {
            return;
        }
        let r = p.row0 + t / half;
        let k = t % half;
        let i = (k / p.h) * 2u * p.h + (k % p.h);
        let a = load(r, i);
        let b = load(r, i + p.h);
        let base = p.work_first + (r - p.row0) * n;
        work[base + i] = a + b;
        work[base + i + p.h] = a - b;
        return;
    }
    if (t >= p.len) {
        return;
    }
    let e = p.e0 + t;
    let b = e / p.out_len;
    let i = e % p.out_len;
    if (MODE == 1u) {
        let row = (b * p.blocks + i / n) * p.parts - p.row0;
        let v = work[p.work_first + row * n + (i % n)];
        var y = p.scale * v;
        if (p.parts == 2u) {
            let w = work[p.work_first + (row + 1u) * n + (i % n)];
            y = p.scale * p.scale * (v * v + w * w);
        }
        out[p.out_first + t] = y;
        return;
    }
    var sum = 0.0;
    for (var k = p.k_lo; k < p.k_hi; k++) {
        let row = b * p.blocks + k - p.row0;
        sum += sign(k, 0u, 0u, i) * work[p.work_first + row * n + i];
    }
    var x = p.scale * sum;
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        x += out[p.out_first + t];
    }
    out[p.out_first + t] = x;
}
