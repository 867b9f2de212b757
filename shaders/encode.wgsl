// encode: input encoders for binary optical hardware (after lightonml's encoders), and the
// decoder of bit-plane encoding. The output is viewed as a matrix of `d` columns; one thread
// writes one output element (r, c) of the tile rows row0 .., columns col0 .. col0 + cols.
//   KIND 1 threshold: dst[r, c] = 1 if src[r, c] > level else 0   (rows = batch; bits = 1)
//   KIND 2 bitplane:  dst[r, c] = bit k of q(src[b, c]), b = r / bits, k = r % bits, where
//                     q(v) = clamp(floor(v + 0.5), 0, 2^bits - 1), the integer the value
//                     stands for (rows = batch * bits: plane k of sample b is row b * bits + k,
//                     k = 0 least significant). floor(v + 0.5) is evaluated exactly (see
//                     round_half_up), so q equals the f64 reference for every finite v.
//   KIND 3 decode:    dst[r, c] (+)= sum over k in plane0 .. plane0 + planes of
//                     2^k * src[r * bits + k, c]   (rows = batch; src = planes [batch, bits, d])
//                     accumulated from the least significant plane up (why: at the sum).
//                     With accumulate = 0 dst is not read (it may hold NaN poison); the host
//                     splits the planes over several dispatches (accumulate = 1 after the
//                     first) only when one sample's planes exceed a binding, and the order of
//                     the additions is the same either way, so the results are bit-identical.
// Non-finite inputs are outside the contract (drivers may assume finite values).
//
// Indices: src and dst are windows of larger tensors. Global flat indices (below 2^32, checked
// by the host) minus `*_base` (the global index the window starts at) plus `*_first` (where
// that element sits in the binding, after alignment) address the bindings.
//
// Bindings (group 0): 0 uniform Params; 1 src (read: x, or the planes for decode); 2 dst
// (read_write: the encoded output, or the decoded output). src and dst must not alias.
// Dispatch: ceil(len / WG) workgroups, len = rows * cols, split over x and y by `Gpu::grid`.
// Overrides: KIND (1 threshold, 2 bitplane, 3 decode); WG (threads per workgroup).
// Loops: constant, at most 17 iterations per invocation (KIND 3 loops over at most 16 planes,
// MAX_BITS in the host; a loop that runs n times counts n + 1 against lavapipe's budget, its
// exiting test included; KIND 1 and 2 have no loop), whatever the size.

// Keep in sync with EncodeParams in src/ops/encode.rs.
struct Params {
    len: u32,
    row0: u32,
    col0: u32,
    cols: u32,
    d: u32,
    bits: u32,
    src_base: u32,
    src_first: u32,
    dst_base: u32,
    dst_first: u32,
    plane0: u32,
    planes: u32,
    accumulate: u32,
    level: f32,
    _pad0: u32,
    _pad1: u32,
}

override KIND: u32 = 1u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = linear_workgroup(wid, nwg) * WG + lid;
    if (t >= p.len) {
        return;
    }
    let r = p.row0 + t / p.cols;
    let c = p.col0 + t % p.cols;
    let o = p.dst_first + (r * p.d + c - p.dst_base);
    switch KIND {
        case 1u: {
            let v = src[p.src_first + (r * p.d + c - p.src_base)];
            dst[o] = select(0.0, 1.0, v > p.level);
        }
        case 2u: {
            let v = src[p.src_first + ((r / p.bits) * p.d + c - p.src_base)];
            let top = f32((1u << p.bits) - 1u);
            let q = u32(clamp(round_half_up(v), 0.0, top));
            dst[o] = f32((q >> (r % p.bits)) & 1u);
        }
        case 3u, default: {
            // Least significant plane first: the terms 2^k * plane_k grow geometrically, so
            // adding them small to large keeps every partial sum below twice the last term
            // and the rounding error near 2 ulp of the result, where most-significant-first
            // (or Horner) carries about `bits` ulp. For 0/1 planes every partial sum is an
            // integer below 2^16: exact either way. 2^k is built exactly (exp2 need not be).
            var acc = 0.0;
            if (p.accumulate != 0u) {
                acc = dst[o];
            }
            for (var k = p.plane0; k < p.plane0 + p.planes; k++) {
                let plane = src[p.src_first + ((r * p.bits + k) * p.d + c - p.src_base)];
                acc += f32(1u << k) * plane;
            }
            dst[o] = acc;
        }
    }
}
