//! Reference of `shaders/loop_limit.wgsl`: the inner loop bodies the probe runs where nothing
//! ends its loops early.

/// `outer · inner`: what the probe counts on an adapter without a loop limit.
pub fn loop_count(outer: u32, inner: u32) -> u64 {
    u64::from(outer) * u64::from(inner)
}
