// matmul_pack: lays out an operand of matmul_texture, op(X) with `rows` x `cols` values per
// layer, as rows of rgba32float texels in a storage buffer, which the host then copies into
// the operand's texture array (buffer-to-texture copies): texel t of row r of layer l holds
// op(X)[l][r, 4t .. 4t+3], values past `cols` zero, so the consumer needs no bounds checks
// along k (the texture's texels and rows past the copied ones are zero from wgpu's
// initialization).
// op(X)[l][r, c] = x[x_first + (l / heads) * batch_stride + (l % heads) * head_stride
// + r * row_stride + c * col_stride]: a transposed operand is a swap of the two strides; the
// layers of attention's heads (layer b * H + h of a [B, N, H * D] tensor) use heads = H and
// head_stride = D, a matmul operand heads = 1; x_first includes the layout's first value (a
// range of attention's keys starts at its first key's row, batch_stride still a batch's).
//
// A dispatch writes rows r0 .. r0 + count - 1 of the layers layer0 .. layer0 + L - 1 (its
// grid's z, so that the divisions by `heads` are made once per workgroup), `out_stride` texels
// apart in the buffer (a multiple of 16: wgpu copies rows 256 bytes apart) and `count` rows
// from one layer to the next, texels 0 .. texels - 1 of each. ROWS_FIRST puts consecutive
// invocations on consecutive rows: for an operand stored transposed (row_stride 1) their
// four reads are then consecutive values, where consecutive texels would read values
// col_stride apart.
// On lavapipe the transposed operand B of 64 x 1024 times 1024 x 4096 took 10.7 ms to pack
// this way against 16.7 ms with one invocation per texel along its rows and stores into a
// storage texture (the product itself: 12 ms). Four texels per invocation from four vec4
// reads, transposed in registers, took 12.3 ms.
//
// Two entry points: main for an f32 operand, main_f16 for an f16 one (two values per 32-bit
// word, lower half first), widened to f32 as it is read, so that the f16-operand matmul runs
// through the same textures and kernel on lavapipe.
//
// Bindings (group 0): 0 uniform Params; 1 x (storage, read; f32, or u32 words in main_f16);
// 2 out (storage, read_write, vec4: the dispatch's rows, from its first).
// Dispatch: (ceil(count / 8), ceil(texels / 8), L) with ROWS_FIRST, else (ceil(texels / 8),
// ceil(count / 8), L).
// Overrides: ROWS_FIRST.
// Loops: constant, 5 iterations per invocation (the loop over a texel's 4 values; a loop that
// runs n times counts n + 1 against lavapipe's budget, its exiting test included), whatever
// the operand's size.
// Trusted (compiled without runtime checks, see Kernel::trusted): texels are written only for
// f < count, t < texels <= out_stride and the grid's L layers, inside the host's window of
// L * count * out_stride texels; values are read only for rows r0 + f of the operand (the
// host keeps r0 + count within them) and c < cols inside the operand's whole binding (the
// host's layouts, a key range's first row included, address values of the operand only); the
// divisor heads is at least 1 (the host clamps it).

// Keep in sync with PackParams in src/ops/matmul_texture.rs.
struct Params {
    cols: u32,
    texels: u32,       // ceil(cols / 4)
    out_stride: u32,   // texels from one row of out to the next
    x_first: u32,
    row_stride: u32,
    col_stride: u32,
    batch_stride: u32,
    heads: u32,
    head_stride: u32,
    layer0: u32,       // the dispatch's first layer
    r0: u32,           // its first row of each layer
    count: u32,        // its rows of each layer
}

override ROWS_FIRST: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
// The same binding as f16 words, read by main_f16 only.
@group(0) @binding(1) var<storage, read> xh: array<u32>;

// Element of x where row r of layer l starts (its column 0).
fn row_start(l: u32, r: u32) -> u32 {
    return p.x_first + (l / p.heads) * p.batch_stride + (l % p.heads) * p.head_stride
        + r * p.row_stride;
}

// The texel of invocation `gid` (workgroup `wid`): its position in the dispatch's rows
// (f, t), and the element where op(X)'s row starts, at column 0; `inside` false for
// invocations past the dispatch's texels.
struct Texel {
    inside: bool,
    f: u32,
    t: u32,
    base: u32,
}

fn texel(gid: vec3<u32>, wid: vec3<u32>) -> Texel {
    let f = select(gid.y, gid.x, ROWS_FIRST);
    let t = select(gid.x, gid.y, ROWS_FIRST);
    if (f >= p.count || t >= p.texels) {
        return Texel(false, f, t, 0u);
    }
    return Texel(true, f, t, row_start(p.layer0 + wid.z, p.r0 + f));
}

fn store(e: Texel, wid: vec3<u32>, v: vec4<f32>) {
    out[(wid.z * p.count + e.f) * p.out_stride + e.t] = v;
}

@compute @workgroup_size(8, 8, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let e = texel(gid, wid);
    if (!e.inside) {
        return;
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let c = e.t * 4u + i;
        if (c < p.cols) {
            v[i] = x[e.base + c * p.col_stride];
        }
    }
    store(e, wid, v);
}

// The same for an f16 operand: element i is half i % 2 of word i / 2 (x_first and the strides
// count halves).
@compute @workgroup_size(8, 8, 1)
fn main_f16(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let e = texel(gid, wid);
    if (!e.inside) {
        return;
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let c = e.t * 4u + i;
        if (c < p.cols) {
            let h = e.base + c * p.col_stride;
            v[i] = unpack2x16float(xh[h / 2u])[h % 2u];
        }
    }
    store(e, wid, v);
}
