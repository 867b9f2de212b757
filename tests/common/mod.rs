//! Helpers shared by the integration tests: the GPU, seeded data, and assertions that print
//! the index, both values and the tolerance.
#![allow(
    dead_code,
    reason = "each test binary uses its own subset of the helpers"
)]

pub mod coop;
pub mod matmul;

use std::sync::OnceLock;

use speckle::{Gpu, GpuOptions, Tensor, Tuning};

/// True where the texture kernels run: adapters with subgroups of exactly 8 (lavapipe).
#[allow(
    dead_code,
    reason = "shared by some of the test binaries that include this module"
)]
pub fn eight_wide(gpu: &Gpu) -> bool {
    let info = gpu.adapter_info();
    gpu.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
}

/// The adapter the tests run on (lavapipe on CI), with the built-in kernel configurations
/// (never a user's tuning cache). Tests fail, loudly, when there is none.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        Gpu::with_options(&GpuOptions {
            tuning: Tuning::Off,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("tests need a GPU adapter: {e}"))
    })
}

/// A separate device whose largest storage binding is `bytes`, so that problems of a few
/// kilobytes take the chunked path.
pub fn gpu_with_binding_limit(bytes: u64) -> Gpu {
    Gpu::with_options(&GpuOptions {
        max_binding_bytes: Some(bytes),
        tuning: Tuning::Off,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("tests need a GPU adapter: {e}"))
}

/// Seeded values uniform in [-1, 1).
pub fn random(len: usize, seed: u64) -> Vec<f32> {
    speckle::bench::random_vec(len, seed)
}

/// Seeded values uniform in [-scale, scale).
pub fn random_scaled(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    random(len, seed).into_iter().map(|v| v * scale).collect()
}

/// A tensor filled with NaN: an output that was never written fails every comparison.
pub fn poisoned(gpu: &Gpu, shape: &[usize]) -> Tensor {
    Tensor::filled(gpu, shape, f32::NAN).expect("allocating a poisoned tensor")
}

/// Asserts ‖out − reference‖ / ‖reference‖ <= tol, printing the worst entry when it is not.
pub fn assert_rel_close(what: &str, out: &[f32], reference: &[f64], tol: f64) {
    assert_eq!(
        out.len(),
        reference.len(),
        "{what}: output has {} values, reference {}",
        out.len(),
        reference.len()
    );
    let err = speckle::cpu::relative_error(out, reference);
    if err <= tol {
        return;
    }
    let (worst, _) = out
        .iter()
        .zip(reference)
        .enumerate()
        .map(|(i, (&o, &r))| {
            (
                i,
                if o.is_finite() {
                    (f64::from(o) - r).abs()
                } else {
                    f64::INFINITY
                },
            )
        })
        .fold(
            (0, -1.0),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        );
    panic!(
        "{what}: relative error {err:.3e} exceeds {tol:.3e}; worst at flat index {worst}: got {}, expected {}",
        out[worst], reference[worst]
    );
}

/// A separate device that lets one invocation loop at most `iterations` times (or fewer,
/// where the adapter's own limit is lower), so that the kernels' loop splits and refusals
/// show with problems of a few kilobytes.
pub fn gpu_with_loop_limit(iterations: u64) -> Gpu {
    Gpu::with_options(&GpuOptions {
        max_loop_iterations: Some(iterations),
        tuning: Tuning::Off,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("tests need a GPU adapter: {e}"))
}

/// An `Error::LoopLimit` taken apart, after [`loop_refusal`] checked it.
pub struct LoopRefusal {
    pub kernel: String,
    pub iterations: u64,
    pub limit: u64,
    pub remedy: String,
    pub message: String,
}

/// Checks that `e` is an `Error::LoopLimit` whose message names its iterations and limit, and
/// returns its parts.
pub fn loop_refusal(e: speckle::Error) -> LoopRefusal {
    let message = e.to_string();
    let speckle::Error::LoopLimit {
        kernel,
        iterations,
        limit,
        remedy,
        ..
    } = e
    else {
        panic!("expected a loop-limit refusal, got {message}");
    };
    for n in [iterations, limit] {
        assert!(message.contains(&n.to_string()), "{n} not in: {message}");
    }
    LoopRefusal {
        kernel,
        iterations,
        limit,
        remedy,
        message,
    }
}

/// [`loop_refusal`] that also checks the iterations and the limit against `iterations` and
/// `limit`, and that the message contains each of `needles`.
pub fn loop_refusal_of(
    e: speckle::Error,
    iterations: u64,
    limit: u64,
    needles: &[&str],
) -> LoopRefusal {
    let r = loop_refusal(e);
    assert_eq!(
        (r.iterations, r.limit),
        (iterations, limit),
        "{}",
        r.message
    );
    for needle in needles {
        assert!(
            r.message.contains(needle),
            "{needle:?} not in: {}",
            r.message
        );
    }
    r
}
