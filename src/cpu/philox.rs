//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
//! counter-based generator behind every random matrix in speckle, and the reference of
//! `shaders/lib/philox.wgsl`. Both give bit-identical u32 words for the same key and counter.
//!
//! # The mapping (shared with the WGSL; keep the two in sync)
//!
//! - **Key**: a u64 seed `s` becomes the key `(s as u32, (s >> 32) as u32)`.
//! - **Counter**: entry `(i, j)` of the random matrix of stream `t` comes from the block with
//!   counter `(j / 4, i, t, 0)`; the block's words `w0..w3` give entries `j = 4q .. 4q + 3`.
//!   `i` is the row (output index), `j` the column (input index), `t` one of the [`Stream`]s,
//!   so that the real and imaginary parts of a complex matrix, sign diagonals, biases... are
//!   independent. Indices are u32: up to 2³² rows and 2³⁴ columns.
//! - **Uniform** in [0, 1): `(w >> 8) · 2⁻²⁴`, exact in f32 (bit-identical everywhere).
//!   [`uniform_open`] in (0, 1]: `((w >> 8) + 1) · 2⁻²⁴`.
//! - **Gaussian** N(0, 1) by Box–Muller on word pairs: with `u1 = uniform_open(w0)`,
//!   `u2 = uniform(w1)`, `r = sqrt(−2 ln u1)`, `θ = 2π u2`, entries `4q` and `4q + 1` are
//!   `r cos θ` and `r sin θ`; words `w2, w3` give entries `4q + 2` and `4q + 3` the same way.
//!   (WGSL's `log`, `cos` and `sin` are not correctly rounded: GPU Gaussians agree with these
//!   to about 1e-6 relative, not bit for bit.)
//! - **Rademacher** ±1: entry `4q + t` is +1 when the top bit of `w_t` is 0, else −1.
//! - **Uniform entry** `4q + t`: `uniform(w_t)`.

/// Multipliers and Weyl increments of Philox4x32 (Random123).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The independent streams of one seed. Keep in sync with `STREAM_*` in
/// `shaders/lib/philox.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Stream {
    /// The projection matrix (its real part for complex kinds).
    Matrix = 0,
    /// The imaginary part of a complex projection matrix.
    MatrixImaginary = 1,
    /// Per-row offsets (the phases b of random Fourier features).
    RowOffset = 2,
    /// Shot noise of the camera model ([`Camera`](crate::ops::project_finish::Camera)): the
    /// Gaussian entry (b, i) drives output row b (the batch row), column i, so every frame
    /// gets fresh noise.
    CameraNoise = 3,
    /// Sign diagonals of structured transforms: stream `Diagonal + k` for the k-th diagonal.
    Diagonal = 16,
}

/// One Philox4x32-10 block: the four output words for `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    }
    [c0, c1, c2, c3]
}

/// The key of a u64 seed.
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The four words holding entries `4q .. 4q + 3` of row `i` of `stream` (see the module docs).
pub fn block(seed: u64, stream: u32, i: u32, q: u32) -> [u32; 4] {
    philox4x32_10([q, i, stream, 0], key(seed))
}

/// Uniform in [0, 1) from the top 24 bits of `w`, exact in f32.
pub fn uniform(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in (0, 1] (never 0, so that its logarithm is finite).
pub fn uniform_open(w: u32) -> f32 {
    ((w >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// The two standard normals of Box–Muller on the word pair (`a`, `b`), computed in f64 from
/// the same f32 uniforms the GPU uses.
pub fn box_muller(a: u32, b: u32) -> (f64, f64) {
    let r = (-2.0 * f64::from(uniform_open(a)).ln()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * f64::from(uniform(b));
    (r * theta.cos(), r * theta.sin())
}

/// The four standard normals of a block, in entry order.
pub fn gaussians(words: [u32; 4]) -> [f64; 4] {
    let (g0, g1) = box_muller(words[0], words[1]);
    let (g2, g3) = box_muller(words[2], words[3]);
    [g0, g1, g2, g3]
}

/// Entry `j` of row `i` of `stream` as a standard normal.
pub fn gaussian_entry(seed: u64, stream: u32, i: u32, j: u64) -> f64 {
    let words = block(seed, stream, i, (j / 4) as u32);
    gaussians(words)[(j % 4) as usize]
}

/// Entry `j` of row `i` of `stream` as ±1.
pub fn rademacher_entry(seed: u64, stream: u32, i: u32, j: u64) -> f64 {
    let w = block(seed, stream, i, (j / 4) as u32)[(j % 4) as usize];
    if w >> 31 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// Entry `j` of row `i` of `stream` as a uniform in [0, 1).
pub fn uniform_entry(seed: u64, stream: u32, i: u32, j: u64) -> f64 {
    let w = block(seed, stream, i, (j / 4) as u32)[(j % 4) as usize];
    f64::from(uniform(w))
}
