//! # speckle
//!
//! GPU compute kernels in WGSL for random projections and attention, orchestrated from Rust on
//! [wgpu](https://wgpu.rs): the same code runs on Vulkan, Metal and DirectX 12, on discrete
//! GPUs and on CPU implementations such as Mesa's lavapipe.
//!
//! * [`Gpu`] owns the device, its limits and features, and the pipeline cache.
//! * [`Tensor`] is f32 data on the GPU with a row-major shape; [`HalfTensor`] holds f16
//!   operands for the reduced-precision matmul (`ops::matmul_f16`, tensor cores where the
//!   adapter has cooperative matrices).
//! * [`tune`] measures kernel configurations per adapter and shape class and caches the
//!   fastest; every op then uses them where its options leave the choice open.
//! * [`ops`] holds one module per kernel (matmul, activations, softmax, row reductions); each
//!   plans its work as a list of [`Dispatch`]es (compute dispatches, and buffer-to-texture
//!   copies on the texture paths) that a caller can record ([`Gpu::encode`]), submit or time.
//! * [`cpu`] holds the f64 reference of every kernel, used by the tests and `--check`.
//!
//! ```no_run
//! use speckle::{ops::matmul, Gpu, Tensor};
//! # fn main() -> speckle::Result<()> {
//! let gpu = Gpu::new()?;
//! let a = Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = Tensor::from_slice(&gpu, &[5.0, 6.0, 7.0, 8.0], &[2, 2])?;
//! let c = matmul::run(&gpu, &a, &b, &Default::default())?;
//! assert_eq!(c.to_vec(&gpu)?, vec![19.0, 22.0, 43.0, 50.0]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod atomic;
pub mod bench;
pub mod cpu;
mod error;
mod gpu;
pub mod init;
pub mod layers;
pub mod npy;
pub mod ops;
pub mod picture;
pub mod plot;
pub mod projection;
pub mod reconstruct;
pub mod shaders;
pub mod study;
mod tensor;
pub mod train;
pub mod tune;

pub use error::{Error, Result};
pub use gpu::{AdapterSummary, Bracket, Dispatch, Gpu, GpuOptions};
pub use ops::activation::Activation;
pub use ops::matmul::{MatmulConfig, MatmulOptions};
pub use ops::reduce::Reduction;
pub use ops::softmax::SoftmaxOptions;
pub use tensor::{check_finite, element_count, HalfTensor, Tensor};
pub use tune::Tuning;

/// The host's CPU cores available to this process (1 where unknown), read once: on Linux the
/// standard library reads cgroup files for it, which planning calls should not repeat.
pub(crate) fn cpu_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The README's code blocks, compiled as doc tests so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The crate version and the commit it was built from, e.g. `0.1.0 (commit 1a2b3c4)`.
pub fn version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("SPECKLE_COMMIT"),
        ")"
    )
}
