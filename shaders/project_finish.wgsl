// project_finish: the non-linearity of a projection kind, in place on the accumulated linear
// part re (and im). For flat element e of a [batch, n_out] window (global flat index
// e0 + e, so b = (e0 + e) / n_out and i = (e0 + e) % n_out):
//   KIND 1 optical:  y = re^2 + im^2                          (|R x|^2)
//   KIND 2 rff:      y = out_scale * cos(re + 2 pi u_i)       (random Fourier features; u_i
//                    uniform from Philox, stream STREAM_ROW_OFFSET, row i, column 0)
//   KIND 3 relu:     y = out_scale * max(re, 0)               (random ReLU features)
//   KIND 4 positive: y = out_scale * exp(re - norms[b] / 2)   (positive random features;
//                    norms[b] = |x_b|^2)
//   KIND 5 camera:   a camera recording the optical intensity re >= 0 (E[re] = |x|^2):
//                    lambda = gain * max(re, 0)               (expected photo-electrons)
//                    v = lambda + sqrt(lambda) * z            (with noise: shot noise, the
//                        Gaussian approximation of Poisson(lambda); z = the standard
//                        Gaussian entry (b, i) of stream STREAM_CAMERA_NOISE under the key
//                        of the noise seed, so every frame b gets fresh noise and reruns
//                        are identical)
//                    v = lambda                               (without noise)
//                    y = clamp(floor(v + 0.5), 0, 2^bits - 1) (quantization, saturating;
//                        max_level = 2^bits - 1)
//                    lambda is capped at 2^24 so that gain * re or the noise never overflows
//                    to inf (inf - inf would be NaN); no output changes, because
//                    max_level <= 65535 and |z| <= sqrt(2 ln 2^24) < 5.8 make every
//                    lambda >= 2^24 saturate anyway.
// Linear kinds need no finish.
//
// Bindings (group 0): 0 uniform Params; 1 re (read_write, becomes y); 2 im (read; a
// placeholder unless optical); 3 norms (read; a placeholder unless positive).
// Dispatch: ceil(len / WG) workgroups, split over x and y by `Gpu::grid`.
// Overrides: KIND (the codes above); WG (threads per workgroup).
// Loops: constant, at most 11 iterations per invocation (KIND 2 and 5 draw one Philox block,
// whose round loop runs 10; a loop that runs n times counts n + 1 against lavapipe's budget,
// its exiting test included), whatever the size.

// Keep in sync with ProjectFinishParams in src/ops/project_finish.rs.
struct Params {
    len: u32,
    e0: u32,
    n_out: u32,
    re_first: u32,
    im_first: u32,
    key_lo: u32,
    key_hi: u32,
    out_scale: f32,
    gain: f32,
    max_level: f32,
    noise: u32,
    _pad0: u32,
}

// The cap on the camera's lambda (see KIND 5 above).
const CAMERA_LAMBDA_CAP: f32 = 16777216.0;

override KIND: u32 = 1u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> re: array<f32>;
@group(0) @binding(2) var<storage, read> im: array<f32>;
@group(0) @binding(3) var<storage, read> norms: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_workgroup(wid, nwg) * WG + lid;
    if (e >= p.len) {
        return;
    }
    let k = p.re_first + e;
    let v = re[k];
    var y: f32;
    switch KIND {
        case 1u: {
            let w = im[p.im_first + e];
            y = v * v + w * w;
        }
        case 2u: {
            let i = (p.e0 + e) % p.n_out;
            let u = philox_uniform(philox_block(vec2<u32>(p.key_lo, p.key_hi), STREAM_ROW_OFFSET, i, 0u)).x;
            y = p.out_scale * cos(v + TWO_PI * u);
        }
        case 3u: {
            y = p.out_scale * max(v, 0.0);
        }
        case 4u: {
            let b = (p.e0 + e) / p.n_out;
            y = p.out_scale * exp(v - 0.5 * norms[b]);
        }
        case 5u, default: {
            let lambda = min(p.gain * max(v, 0.0), CAMERA_LAMBDA_CAP);
            var s = lambda;
            if (p.noise != 0u) {
                let b = (p.e0 + e) / p.n_out;
                let i = (p.e0 + e) % p.n_out;
                let key = vec2<u32>(p.key_lo, p.key_hi);
                let block = philox_block(key, STREAM_CAMERA_NOISE, b, i / 4u);
                let z = philox_gaussians(block)[i % 4u];
                s = lambda + sqrt(lambda) * z;
            }
            y = clamp(round_half_up(s), 0.0, p.max_level);
        }
    }
    re[k] = y;
}
