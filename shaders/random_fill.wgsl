// random_fill: out[r, c] = scale * X(seed, stream, row0 + r, c) for r < rows, c < cols, with X
// from Philox4x32-10 (shaders/lib/philox.wgsl; mapping in src/cpu/philox.rs):
//   DIST 0 bits: the raw u32 word, bit-cast to f32 (scale unused), for bit-exact checks
//   DIST 1 uniform in [0, 1)     DIST 2 standard normal (Box-Muller)     DIST 3 +-1
//   DIST 4 sparse: +1 with probability p, -1 with probability p, else 0 (p = sparse_p)
//   DIST 5 uniform in [-1, 1): 2u - 1 from the DIST 1 draw u (exact in f32)
// out is row-major with row stride cols. Each invocation makes one Philox block: four
// consecutive entries of a row. A materialized projection matrix is this kernel's output.
// With paired != 0, two streams interleaved in blocks of 4 rows (the layout of the fused
// optical projection, src/ops/project_optical.rs): global row 8q + t is row 4q + t of `stream`
// for t < 4 and row 4q + t - 4 of `pair_stream` otherwise.
//
// Bindings (group 0): 0 uniform Params; 1 out (storage, read_write).
// Dispatch: ceil(rows * ceil(cols / 4) / WG) workgroups, split over x and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup); DIST (the distribution, an override so that only its
// formula is compiled: with a uniform code lavapipe evaluated every case for every block, and
// a uniform fill cost as much as a Gaussian one).
// Loops: constant, at most 16 iterations per invocation (one Philox block, whose round loop
// runs 10, and the store loop of 4; a loop that runs n times counts n + 1 against lavapipe's
// budget, its exiting test included), whatever the tensor's size.

// Keep in sync with RandomFillParams in src/ops/random_fill.rs.
struct Params {
    rows: u32,
    cols: u32,
    row0: u32,
    out_first: u32,
    _pad: u32,
    stream: u32,
    key_lo: u32,
    key_hi: u32,
    scale: f32,
    sparse_p: f32,
    pair_stream: u32,
    paired: u32,
}

override WG: u32 = 256u;
override DIST: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let quads = (p.cols + 3u) / 4u;
    let id = linear_workgroup(wid, nwg) * WG + lid;
    if (id >= p.rows * quads) {
        return;
    }
    let r = id / quads;
    let q = id % quads;
    var row = p.row0 + r;
    var stream = p.stream;
    if (p.paired != 0u) {
        stream = select(p.stream, p.pair_stream, row % 8u >= 4u);
        row = 4u * (row / 8u) + row % 4u;
    }
    let w = philox_block(vec2<u32>(p.key_lo, p.key_hi), stream, row, q);
    var v: vec4<f32>;
    switch DIST {
        case 0u: { v = bitcast<vec4<f32>>(w); }
        case 1u: { v = p.scale * philox_uniform(w); }
        case 2u: { v = p.scale * philox_gaussians(w); }
        case 3u: { v = p.scale * philox_signs(w); }
        case 5u: { v = p.scale * (2.0 * philox_uniform(w) - vec4<f32>(1.0)); }
        default: {
            let u = philox_uniform(w);
            let plus = select(vec4<f32>(0.0), vec4<f32>(1.0), u < vec4<f32>(p.sparse_p));
            let minus = select(vec4<f32>(0.0), vec4<f32>(1.0), u >= vec4<f32>(p.sparse_p) & u < vec4<f32>(2.0 * p.sparse_p));
            v = p.scale * (plus - minus);
        }
    }
    let base = p.out_first + r * p.cols + q * 4u;
    for (var t = 0u; t < 4u; t++) {
        if (q * 4u + t < p.cols) {
            out[base + t] = v[t];
        }
    }
}
