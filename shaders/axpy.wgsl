// axpy: the element-wise steps of the iterative solvers (src/reconstruct/), on rows b of a
// [rows, cols] domain, with a per-row coefficient c_b computed on the GPU from [rows] tensors,
// so that a solver's step sizes (ratios of sums of squares) never travel to the host:
//   c_b = alpha * num[b]^e_num * den[b]^e_den   (factors present per FLAG_NUM / FLAG_DEN;
//         0 when den[b] <= 0 or the result is not finite), or
//   c_b = alpha * sign(num[b])                  (FLAG_SIGN; sign(0) = +1).
// OP (a uniform value; x[b, i] at x_first + b * x_stride + i, x_stride 0 broadcasts one row;
// the same for w; y[b, i] at y_first + b * y_stride + i):
//   0 AXPY         y = y + c x              1 XPAY   y = x + c y
//   2 SCALE        y = c x                  3 MUL    y = c x y
//   4 MASK         y = 1 if x > 0 or w > 0, else 0
//   5 MASKED_DIFF  y = w (x - y)            6 SQRT   y = c sqrt(max(x, 0))
//   7 PAIR_MUL     pairs (i, i + half), i < half = cols: y[i] *= x[i], y[i + half] *= x[i]
//   8 AMPLITUDE    pairs: z = (x[i], x[i + half]), a = w[i]:
//                  (y[i], y[i + half]) = a z / |z| - z   ((a, 0) - z where |z| = 0)
// One invocation per element (per pair for 7 and 8). The host splits rows and columns so
// that every window fits one binding.
//
// Bindings (group 0): 0 uniform Params; 1 x; 2 y; 3 w; 4 num; 5 den (all storage
// read_write so that one buffer may be bound to several of them; absent ones are a
// placeholder).
// Dispatch: ceil(rows * cols / WG) workgroups, split over x and y by `Gpu::grid`.
// Overrides: WG (threads per workgroup); OP (the operation, an override so that only its
// formula is compiled: with a uniform code lavapipe evaluated every case for every element).
// Loops: none.

// Keep in sync with AxpyParams in src/ops/axpy.rs.
struct Params {
    rows: u32,
    cols: u32,      // elements (pairs for OP 7, 8) per row in this dispatch
    _pad: u32,
    flags: u32,
    x_first: u32,
    x_stride: u32,
    y_first: u32,
    y_stride: u32,
    w_first: u32,
    w_stride: u32,
    num_first: u32,
    den_first: u32,
    half: u32,      // pair distance for OP 7, 8
    alpha: f32,
    e_num: f32,
    e_den: f32,
}

// Keep in sync with the FLAG_ constants of src/ops/axpy.rs.
const FLAG_NUM: u32 = 1u;
const FLAG_DEN: u32 = 2u;
const FLAG_SIGN: u32 = 4u;

override WG: u32 = 256u;
override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> num: array<f32>;
@group(0) @binding(5) var<storage, read_write> den: array<f32>;

// v^e for the exponents the solvers use, exactly where possible.
fn power(v: f32, e: f32) -> f32 {
    if (e == 1.0) { return v; }
    if (e == -1.0) { return 1.0 / v; }
    if (e == 0.5) { return sqrt(max(v, 0.0)); }
    if (e == -0.5) { return inverseSqrt(v); }
    return pow(max(v, 0.0), e);
}

fn coefficient(b: u32) -> f32 {
    if ((p.flags & FLAG_SIGN) != 0u) {
        return select(-p.alpha, p.alpha, num[p.num_first + b] >= 0.0);
    }
    var c = p.alpha;
    if ((p.flags & FLAG_NUM) != 0u) {
        c = c * power(num[p.num_first + b], p.e_num);
    }
    if ((p.flags & FLAG_DEN) != 0u) {
        let d = den[p.den_first + b];
        if (!(d > 0.0)) { return 0.0; }
        c = c * power(d, p.e_den);
    }
    // NaN fails the comparison too.
    if (!(abs(c) <= 3.4028234663852886e38)) { return 0.0; }
    return c;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_workgroup(wid, nwg) * WG + lid;
    if (e >= p.rows * p.cols) { return; }
    let b = e / p.cols;
    let i = e % p.cols;
    let xi = p.x_first + b * p.x_stride + i;
    let yi = p.y_first + b * p.y_stride + i;
    let wi = p.w_first + b * p.w_stride + i;
    switch OP {
        case 0u: { y[yi] = y[yi] + coefficient(b) * x[xi]; }
        case 1u: { y[yi] = x[xi] + coefficient(b) * y[yi]; }
        case 2u: { y[yi] = coefficient(b) * x[xi]; }
        case 3u: { y[yi] = coefficient(b) * x[xi] * y[yi]; }
        case 4u: { y[yi] = select(0.0, 1.0, x[xi] > 0.0 || w[wi] > 0.0); }
        case 5u: { y[yi] = w[wi] * (x[xi] - y[yi]); }
        case 6u: { y[yi] = coefficient(b) * sqrt(max(x[xi], 0.0)); }
        case 7u: {
            let v = x[xi];
            y[yi] = v * y[yi];
            y[yi + p.half] = v * y[yi + p.half];
        }
        case 8u: {
            let re = x[xi];
            let im = x[xi + p.half];
            let a = w[wi];
            let mag = sqrt(re * re + im * im);
            var ph = vec2<f32>(1.0, 0.0);
            if (mag > 0.0) { ph = vec2<f32>(re, im) / mag; }
            y[yi] = a * ph.x - re;
            y[yi + p.half] = a * ph.y - im;
        }
        default: {}
    }
}
