//! The loop-limit probe: what it measures on the test adapter (on lavapipe, a budget shared
//! by all loops of an invocation, which ends them silently), and that `Gpu::loop_limit`
//! reports it, lowered by `GpuOptions::max_loop_iterations`.

mod common;

use common::{gpu, gpu_with_loop_limit};
use speckle::cpu::loop_limit::loop_count;
use speckle::ops::loop_limit::{count, PROBE_ITERATIONS};

#[test]
fn the_probe_counts_every_iteration_below_the_limit_and_stops_at_it() {
    let gpu = gpu();
    let limit = gpu.loop_limit().unwrap();
    // Well inside any limit: every iteration runs, nested or not.
    for (outer, inner) in [(1, 1000), (10, 100), (0, 5), (5, 0)] {
        assert_eq!(
            count(gpu, outer, inner).unwrap(),
            loop_count(outer, inner),
            "{outer} x {inner}"
        );
    }
    match limit {
        None => {
            // No limit: the probe's loop and a nested one of more passes than lavapipe's
            // budget both run through.
            assert_eq!(
                count(gpu, 1, PROBE_ITERATIONS).unwrap(),
                loop_count(1, PROBE_ITERATIONS)
            );
            assert_eq!(count(gpu, 300, 300).unwrap(), loop_count(300, 300));
        }
        Some(limit) => {
            assert!(
                limit >= 1000,
                "a limit of {limit} iterations is implausibly low"
            );
            let below = u32::try_from(limit / 2).unwrap();
            assert_eq!(count(gpu, 1, below).unwrap(), u64::from(below));
            // Past the limit the loop ends early, without an error.
            let past = u32::try_from(limit + 1000).unwrap();
            assert_eq!(count(gpu, 1, past).unwrap(), limit);
            // The budget is shared: the passes of both loops of a nested pair count, so the
            // inner bodies stop short of the limit (outer · (inner + 1) passes would be
            // needed for all of them).
            let inner = 300u32;
            let outer = u32::try_from(limit / u64::from(inner)).unwrap();
            let ran = count(gpu, outer, inner).unwrap();
            assert!(
                ran < loop_count(outer, inner) && ran <= limit,
                "{outer} x {inner}: {ran} inner bodies ran against a limit of {limit}"
            );
        }
    }
}

#[test]
fn the_option_lowers_the_limit() {
    let adapter = gpu().loop_limit().unwrap();
    let lowered = gpu_with_loop_limit(5000);
    assert_eq!(
        lowered.loop_limit().unwrap(),
        Some(adapter.map_or(5000, |l| l.min(5000)))
    );
    // The option lowers what the host plans for, not what the adapter runs.
    assert_eq!(count(&lowered, 1, 6000).unwrap(), 6000);
}
