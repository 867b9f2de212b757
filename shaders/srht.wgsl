// srht: the structured random projection (SORF-style): for each input x (zero-padded to p, a
// power of two), block k and part t (t = 1 only for the optical kind's imaginary transform),
//   M x = H D3 H D2 H D1 x,  D_s = diag of random signs, H the (unnormalized) Walsh-Hadamard
// transform; the blocks are stacked and the first n_out rows kept. Work rows are (input b,
// block k, part t) in that order, each p values long.
//   MODE 0 stage: one radix-2 butterfly pass of H at stride h over every work row:
//       (v[i], v[i + h]) <- (a + b, a - b) for i with bit h clear, where a, b are read from x
//       (FLAG_FROM_X: the first stage, zero past d) or from the work row, and, on the first
//       stage of each H (FLAG_SIGNS), multiplied by the sign diagonal D_s, s = p.diagonal:
//       sign(j) = Rademacher entry j of row 0 of stream STREAM_DIAGONAL + 6k + 3t + s.
//   MODE 1 output: y[b, i] = scale * w(b, i / p, 0)[i % p] (linear), or
//       scale^2 * (w(b, i / p, 0)[i % p]^2 + w(b, i / p, 1)[i % p]^2) (optical).
// The host's scale folds the three H's normalizations (p^-3/2) and sqrt(p / n_out) (linear)
// or sqrt(p / 2) (optical), so that E|y|^2 = |x|^2 or E[y_i] = |x|^2.
//
// Bindings (group 0): 0 uniform Params; 1 x (read); 2 work (read_write); 3 y (read_write).
// Dispatch: MODE 0: ceil(rows * p / 2 / WG) workgroups; MODE 1: ceil(len / WG); both split
// over x and y by `Gpu::grid`.
// Overrides: MODE; WG (threads per workgroup).

// Keep in sync with SrhtParams in src/ops/srht.rs.
struct Params {
    rows: u32,       // work rows in this dispatch (MODE 0)
    row0: u32,       // global index of the first
    p_log2: u32,
    h: u32,          // butterfly stride (MODE 0)
    d: u32,          // input length (row stride of x)
    blocks: u32,     // blocks per input
    parts: u32,      // 1, or 2 for the optical kind
    flags: u32,
    diagonal: u32,   // s in 0..3 (MODE 0 with FLAG_SIGNS)
    key_lo: u32,
    key_hi: u32,
    x_first: u32,    // x[first input of this dispatch's rows, 0]
    work_first: u32, // work[row0, 0]
    y_first: u32,    // MODE 1: y[b0, i0]
    len: u32,        // MODE 1: outputs in this dispatch
    e0: u32,         // MODE 1: global flat index of the first output
    n_out: u32,
    b0: u32,         // global index of the first input of x_first / the output window
    scale: f32,
    _pad: u32,
}

const FLAG_FROM_X: u32 = 1u;
const FLAG_SIGNS: u32 = 2u;

override MODE: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Value j of global work row r before the butterfly: from x or the work buffer, times the
// sign diagonal when asked.
fn load(r: u32, j: u32) -> f32 {
    var v: f32;
    if ((p.flags & FLAG_FROM_X) != 0u) {
        let b = r / (p.blocks * p.parts);
        v = select(0.0, x[p.x_first + (b - p.b0) * p.d + min(j, p.d - 1u)], j < p.d);
    } else {
        v = work[p.work_first + (r - p.row0) * (1u << p.p_log2) + j];
    }
    if ((p.flags & FLAG_SIGNS) != 0u) {
        let k = (r / p.parts) % p.blocks;
        let t = r % p.parts;
        let stream = STREAM_DIAGONAL + 6u * k + 3u * t + p.diagonal;
        let w = philox_block(vec2<u32>(p.key_lo, p.key_hi), stream, 0u, j / 4u);
        v *= philox_signs(w)[j % 4u];
    }
    return v;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = linear_workgroup(wid, nwg) * WG + lid;
    let n = 1u << p.p_log2;
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
    let b = e / p.n_out;
    let i = e % p.n_out;
    let row = ((b - p.b0) * p.blocks + i / n) * p.parts;
    let v = work[p.work_first + row * n + (i % n)];
    var out = p.scale * v;
    if (p.parts == 2u) {
        let w = work[p.work_first + (row + 1u) * n + (i % n)];
        out = p.scale * p.scale * (v * v + w * w);
    }
    y[p.y_first + t] = out;
}
