// Exact rounding shared by kernels (prepended by the host; no entry point).

// floor(v + 0.5) without rounding the sum: in f32, v + 0.5 rounds up for v just below a
// half (0.49999997 + 0.5 == 1.0), which would disagree with the exact definition (and the
// f64 CPU references). v - floor(v) is exact for every finite f32, so this is the exact
// round-half-up of v.
fn round_half_up(v: f32) -> f32 {
    let f = floor(v);
    return f + select(0.0, 1.0, v - f >= 0.5);
}
