// loop_limit: how many loop iterations one invocation may run before the adapter ends its
// loops (host src/ops/loop_limit.rs, reference src/cpu/loop_limit.rs). One invocation runs
// `outer` iterations of a loop whose body runs `inner` iterations of a second loop, counts the
// inner bodies it completes and writes the count:
//   out[0] = the inner bodies run (outer * inner where nothing stops the loops).
//
// Why: llvmpipe (lavapipe; Mesa's gallivm, LP_MAX_TGSI_LOOP_ITERATIONS in Mesa 22.3) gives
// each invocation one budget of 65,535 loop iterations, shared by every loop of the shader and
// counted on each pass through any loop's end, and when it is spent leaves every loop at once,
// silently. A kernel that loops more per invocation computes a wrong result with no error (a
// matmul with k = 300,000 returned 65,535 for a sum of 300,000 ones). The host runs this probe
// once per device and plans every kernel so that no invocation loops more than the count.
//
// The bounds are uniforms, so that no compiler can unroll the loops or know their trip counts.
//
// Bindings (group 0): 0 uniform Params; 1 out (read_write, u32; one value).
// Dispatch: one workgroup of one invocation.
// Overrides: none.
// Loops: outer · (inner + 2) + 1 passes, as lavapipe counts them (a loop of n iterations
// makes n + 1 passes, and each pass of the outer loop one more of the inner): what the probe
// measures, so never planned against a limit.

// Keep in sync with LoopLimitParams in src/ops/loop_limit.rs.
struct Params {
    outer: u32,
    inner: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(1)
fn main() {
    var count = 0u;
    for (var i = 0u; i < p.outer; i++) {
        for (var j = 0u; j < p.inner; j++) {
            count += 1u;
        }
    }
    out[0] = count;
}
