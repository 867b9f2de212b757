// roofline: the two ceilings of the measured roofline.
//   MODE 0 peak FMA throughput: invocation g (global index base + local) seeds ACC independent
//     vec4 accumulators a_j = s + (4j + lane) / 32 with s = (g & 0xffff) / 65536, runs `iters`
//     rounds of a_j = fma(a_j, mul, add) on each (ACC·4 independent chains, 2·ACC·4 flops a
//     round), and writes dst[dst_first + local] = a_0 + a_1 + ... + a_(ACC-1) (summed in order).
//     `iters`, `mul` and `add` come from the uniform, so the compiler can fold nothing.
//   MODE 1 copy bandwidth: dst[dst_first + g] = src[src_first + g] for g < n (vec4s), one vec4
//     per invocation. On lavapipe that runs 1.25 times as fast as a grid-stride loop over
//     8,192 workgroups (4.5 against 5.6 ms for 16 MiB), and a roofline must be the fastest
//     copy there is, or kernels measured against it reach fractions above 1.
//
// Bindings (group 0): 0 uniform Params; 1 src (read, vec4; MODE 1 only); 2 dst (read_write, vec4).
// Dispatch: ceil(n / WG) workgroups, split over x and y by `Gpu::grid`.
// Overrides: MODE; WG (threads per workgroup).
// Loops (per invocation, counting a loop that runs n times as n + 1, as lavapipe does):
// MODE 0 iters + 1 (the rounds; `fma_loops`: the host refuses more than the adapter's loop
// limit, since a chain cannot be split; lavapipe ends every loop of an invocation after 65,535
// iterations, silently); MODE 1 none.

// Keep in sync with RooflineParams in src/ops/roofline.rs.
struct Params {
    n: u32,         // MODE 0: invocations; MODE 1: vec4s copied
    iters: u32,     // MODE 0: rounds of the FMA chains
    _pad: u32,
    base: u32,      // MODE 0: global index of the first invocation (seeds)
    src_first: u32, // MODE 1: first vec4 of src
    dst_first: u32, // first vec4 of dst
    mul: f32,       // MODE 0: a <- fma(a, mul, add)
    add: f32,
}

override MODE: u32 = 0u;
override WG: u32 = 256u;

const ACC: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

fn fma_chains(local: u32) {
    let s = f32((p.base + local) & 0xffffu) * (1.0 / 65536.0);
    let lanes = vec4<f32>(0.0, 1.0, 2.0, 3.0) * (1.0 / 32.0);
    var a0 = vec4<f32>(s) + lanes;
    var a1 = a0 + vec4<f32>(4.0 / 32.0);
    var a2 = a0 + vec4<f32>(8.0 / 32.0);
    var a3 = a0 + vec4<f32>(12.0 / 32.0);
    var a4 = a0 + vec4<f32>(16.0 / 32.0);
    var a5 = a0 + vec4<f32>(20.0 / 32.0);
    var a6 = a0 + vec4<f32>(24.0 / 32.0);
    var a7 = a0 + vec4<f32>(28.0 / 32.0);
    let m = vec4<f32>(p.mul);
    let c = vec4<f32>(p.add);
    for (var k = 0u; k < p.iters; k++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    dst[p.dst_first + local] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = linear_workgroup(wid, nwg) * WG + lid;
    if (MODE == 0u) {
        if (g < p.n) { fma_chains(g); }
        return;
    }
    if (g < p.n) {
        dst[p.dst_first + g] = src[p.src_first + g];
    }
}
