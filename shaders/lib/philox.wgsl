// Philox4x32-10 and the distributions built on it (prepended by the host; no entry point).
// The reference, and the documentation of the mapping from (seed, stream, i, j) to values, is
// src/cpu/philox.rs; keep the two in sync:
//   key = (seed low 32 bits, seed high 32 bits); entry (i, j) of stream t comes from the block
//   with counter (j / 4, i, t, 0), word j % 4; uniform = (w >> 8) * 2^-24; Box-Muller on word
//   pairs (w0, w1) -> entries 0, 1 and (w2, w3) -> entries 2, 3; Rademacher from the top bit.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const TWO_PI: f32 = 6.283185307179586;

// Streams; keep in sync with `Stream` in src/cpu/philox.rs.
const STREAM_MATRIX: u32 = 0u;
const STREAM_MATRIX_IMAGINARY: u32 = 1u;
const STREAM_ROW_OFFSET: u32 = 2u;
const STREAM_CAMERA_NOISE: u32 = 3u; // camera shot noise: entry (b, i) for output row b, column i
const STREAM_DIAGONAL: u32 = 16u;

// The high 32 bits of the 64-bit product a * b (WGSL has no 64-bit integers).
fn mul_hi(a: u32, b: u32) -> u32 {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let m1 = a1 * b0 + ((a0 * b0) >> 16u);
    let m2 = a0 * b1 + (m1 & 0xffffu);
    return a1 * b1 + (m1 >> 16u) + (m2 >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k += vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let hi0 = mul_hi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mul_hi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// The four words holding entries 4q .. 4q+3 of row i of a stream.
fn philox_block(key: vec2<u32>, stream: u32, i: u32, q: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(q, i, stream, 0u), key);
}

// Uniform in [0, 1) from the top 24 bits, exact in f32.
fn philox_uniform(w: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(w >> vec4<u32>(8u)) * (1.0 / 16777216.0);
}

// The four standard normals of a block (Box-Muller on (w0, w1) and (w2, w3)).
fn philox_gaussians(w: vec4<u32>) -> vec4<f32> {
    let u_open = vec2<f32>((vec2<u32>(w.x, w.z) >> vec2<u32>(8u)) + vec2<u32>(1u)) * (1.0 / 16777216.0);
    let u = vec2<f32>(vec2<u32>(w.y, w.w) >> vec2<u32>(8u)) * (1.0 / 16777216.0);
    let r = sqrt(-2.0 * log(u_open));
    let theta = TWO_PI * u;
    return vec4<f32>(r.x * cos(theta.x), r.x * sin(theta.x), r.y * cos(theta.y), r.y * sin(theta.y));
}

// +1 or -1 from the top bit of each word.
fn philox_signs(w: vec4<u32>) -> vec4<f32> {
    return select(vec4<f32>(1.0), vec4<f32>(-1.0), (w >> vec4<u32>(31u)) == vec4<u32>(1u));
}
