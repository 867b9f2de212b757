// transpose: out[l][c, r] = x[l][r, c] for the r < rows, c < cols of a block of each of a
// dispatch's layers (host src/ops/transpose.rs), where
//   x[l][r, c] = x[x_first + l * layer_stride + r * x_stride + c],
//   out[l][c, r] = out[out_first + l * layer_stride + c * out_stride + r].
// A whole [rows, cols] matrix is the block with x_stride = cols and out_stride = rows; a block
// of a matrix too large for one binding is its sub-matrix, the windows starting at its corner.
// Each workgroup moves a 16 x 16 tile through workgroup memory: reads along x's rows, writes
// along out's rows, both consecutive across a subgroup's invocations. The tile's rows are 17
// words apart, so that the column a subgroup reads back (16 values 17 words apart) falls on
// 16 different banks. Every tile value read back was stored before the barrier by the
// invocation whose bounds check is the same one, so the tile needs no zero-initialization.
//
// The second entry point, main_blocks, is for CPU adapters, whose workgroup memory and
// barriers cost what the tile saves: each invocation moves a 4 x 4 block through registers,
// four vec4 reads along x's rows and four vec4 writes along out's. It needs rows, cols,
// strides and firsts multiples of 4. On lavapipe it moved 5.0-5.4 GB/s against 0.5-0.9 for
// main (16384 x 1024 and 1024 x 16384).
//
// Bindings (group 0): 0 uniform Params; 1 x (storage, read; f32, or vec4 in main_blocks);
// 2 out (storage, read_write; likewise).
// Dispatch: main (ceil(cols / 16), ceil(rows / 16), layers); main_blocks
// (ceil(cols / 256), rows / 4, layers).
// Overrides: none.
// Loops: none.

// Keep in sync with TransposeParams in src/ops/transpose.rs.
struct Params {
    rows: u32,          // rows of x's block (columns of out's)
    cols: u32,          // columns of x's block (rows of out's)
    x_stride: u32,      // values from one row of x to the next
    out_stride: u32,    // values from one row of out to the next
    x_first: u32,
    out_first: u32,
    layer_stride: u32,  // values from one layer to the next, in x and in out
    _pad: u32,
}

const TILE: u32 = 16u;
const PITCH: u32 = 17u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> tile: array<f32, 272>; // TILE rows of PITCH words

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let layer = wid.z * p.layer_stride;
    // Read: invocation (lid.x, lid.y) takes x[r, c] with r = row0 + lid.y, c = col0 + lid.x.
    let r = wid.y * TILE + lid.y;
    let c = wid.x * TILE + lid.x;
    if (r < p.rows && c < p.cols) {
        tile[lid.y * PITCH + lid.x] = x[p.x_first + layer + r * p.x_stride + c];
    }
    workgroupBarrier();
    // Write: the same invocation writes out[c', r'] = x[r', c'] with c' = col0 + lid.y and
    // r' = row0 + lid.x, so that consecutive invocations write consecutive values of out.
    let r2 = wid.y * TILE + lid.x;
    let c2 = wid.x * TILE + lid.y;
    if (r2 < p.rows && c2 < p.cols) {
        out[p.out_first + layer + c2 * p.out_stride + r2] = tile[lid.x * PITCH + lid.y];
    }
}

// The same bindings as vec4s, for main_blocks.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4<f32>>;

// 4 x 4 blocks in registers: invocation (j, i) reads rows 4i .. 4i+3 of x at vec4 column j
// and writes rows 4j .. 4j+3 of out at vec4 column i.
@compute @workgroup_size(64, 1, 1)
fn main_blocks(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = gid.x;
    let i = gid.y;
    if (4u * j >= p.cols || 4u * i >= p.rows) {
        return;
    }
    let layer = wid.z * p.layer_stride;
    let xs = p.x_stride / 4u;
    let xb = (p.x_first + layer) / 4u + 4u * i * xs + j;
    let a = x4[xb];
    let b = x4[xb + xs];
    let c = x4[xb + 2u * xs];
    let d = x4[xb + 3u * xs];
    let os = p.out_stride / 4u;
    let ob = (p.out_first + layer) / 4u + 4u * j * os + i;
    out4[ob] = vec4<f32>(a.x, b.x, c.x, d.x);
    out4[ob + os] = vec4<f32>(a.y, b.y, c.y, d.y);
    out4[ob + 2u * os] = vec4<f32>(a.z, b.z, c.z, d.z);
    out4[ob + 3u * os] = vec4<f32>(a.w, b.w, c.w, d.w);
}
