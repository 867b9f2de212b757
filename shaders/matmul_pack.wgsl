// matmul_pack: copies an operand of matmul_texture, op(X) with `rows` x `cols` values per
// batch, from a storage buffer into an rgba32float texture array: texel (x, y) of layer l holds
// op(X)[l][y, 4x .. 4x+3]. Values past `cols`, and rows from `rows` to the texture's height,
// are written as zeros, so the consumer needs no bounds checks along k.
// op(X)[l][r, c] = x[x_first + (l / heads) * batch_stride + (l % heads) * head_stride
// + r * row_stride + c * col_stride]: a transposed operand is a swap of the two strides; the
// layers of attention's heads (layer b * H + h of a [B, N, H * D] tensor) use heads = H and
// head_stride = D, a matmul operand heads = 1; x_first includes the layout's first value (a
// range of attention's keys starts at its first key's row, batch_stride still a batch's).
//
// Bindings (group 0): 0 uniform Params; 1 x (storage, read); 2 out (write-only storage texture
// array, rgba32float).
// Dispatch: (ceil(texels_x / 8), ceil(height / 8), layers), one invocation per texel.
// Overrides: none.
// Loops: constant, 5 iterations per invocation (the loop over a texel's 4 values; a loop that
// runs n times counts n + 1 against lavapipe's budget, its exiting test included), whatever
// the operand's size.
// Trusted (compiled without runtime checks, see Kernel::trusted): texels are written only
// below texels_x and height, which the host sets to the texture's own size; values are read
// only for r < rows and c < cols inside the operand's whole binding (the host's layouts,
// a key range's first row included, address values of the operand only); the divisor heads
// is at least 1 (the host clamps it).

// Keep in sync with PackParams in src/ops/matmul_texture.rs.
struct Params {
    rows: u32,
    cols: u32,
    texels_x: u32,
    height: u32,
    x_first: u32,
    row_stride: u32,
    col_stride: u32,
    batch_stride: u32,
    heads: u32,
    head_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var out: texture_storage_2d_array<rgba32float, write>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let tx = gid.x;
    let r = gid.y;
    if (tx >= p.texels_x || r >= p.height) {
        return;
    }
    var v = vec4<f32>(0.0);
    if (r < p.rows) {
        let layer = (gid.z / p.heads) * p.batch_stride + (gid.z % p.heads) * p.head_stride;
        let base = p.x_first + layer + r * p.row_stride;
        for (var i = 0u; i < 4u; i++) {
            let c = tx * 4u + i;
            if (c < p.cols) {
                v[i] = x[base + c * p.col_stride];
            }
        }
    }
    textureStore(out, vec2<u32>(tx, r), gid.z, v);
}
