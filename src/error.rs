//! The one error type of the library. Every message names the problem and the numbers behind
//! it, so that a user reading it on a terminal knows what to change.

use std::path::PathBuf;

/// Result with [`enum@Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in speckle.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter (not even a software one) was found.
    #[error(
        "no GPU adapter found{detail}. speckle needs a Vulkan, Metal or DirectX 12 driver. \
         On Debian/Ubuntu without a GPU, install the software Vulkan driver (lavapipe) with \
         `sudo apt-get install mesa-vulkan-drivers`; with a GPU, install its vendor's driver"
    )]
    NoAdapter {
        /// Extra context (which backends were tried).
        detail: String,
    },

    /// `SPECKLE_ADAPTER` (or the options) named an adapter that is not present.
    #[error(
        "no adapter name contains {wanted:?} (from {source_name}); adapters present: {available}"
    )]
    AdapterNotFound {
        /// The requested name substring.
        wanted: String,
        /// Where the request came from (`SPECKLE_ADAPTER`, options, ...).
        source_name: String,
        /// The names of the adapters that are present.
        available: String,
    },

    /// The adapter refused to open a device.
    #[error("could not open a device on adapter {adapter:?}: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// Driver message.
        message: String,
    },

    /// A WGSL kernel failed to parse, validate or compile into a pipeline.
    #[error("shader `{name}` failed: {message}")]
    Shader {
        /// Kernel name (`matmul`, `softmax`, ...).
        name: String,
        /// Diagnostic, with source location where known.
        message: String,
    },

    /// Operand shapes do not fit the operation.
    #[error("{op}: {message}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// Which shapes and why, with the numbers.
        message: String,
    },

    /// An argument is out of its domain.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A `.npy` file could not be read or written.
    #[error("{}: {message}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// Input data holds NaN or infinity where finite values are required.
    #[error(
        "{what} holds {count} non-finite value(s), the first at flat index {first} ({value}); \
         GPU drivers may assume finite values, so results would not be guaranteed \
         (the CLI accepts them with --allow-nonfinite)"
    )]
    NonFinite {
        /// The input (a file name or a tensor role).
        what: String,
        /// How many values are NaN or infinite.
        count: usize,
        /// The first such flat index.
        first: usize,
        /// Its value.
        value: f32,
    },

    /// A size exceeds what the adapter can hold in one buffer.
    #[error(
        "{what} needs {needed} bytes but the adapter allows at most {limit} bytes ({limit_name})"
    )]
    Limit {
        /// The object that is too large.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// The adapter's limit in bytes.
        limit: u64,
        /// The name of the wgpu limit.
        limit_name: &'static str,
    },

    /// A kernel would loop more often in one invocation than the adapter allows (llvmpipe ends
    /// all loops of an invocation after 65,535 iterations, silently; see
    /// [`crate::Gpu::loop_limit`]), and the host cannot split that work.
    #[error(
        "{kernel}: one invocation would run up to {iterations} loop iterations, but the \
         adapter {adapter:?} ends an invocation's loops after {limit} (its results would be \
         wrong); {remedy}"
    )]
    LoopLimit {
        /// The kernel.
        kernel: String,
        /// The iterations its busiest invocation would run (an upper bound).
        iterations: u64,
        /// The adapter's limit.
        limit: u64,
        /// The adapter's name.
        adapter: String,
        /// What the caller can change.
        remedy: String,
    },

    /// The GPU ran out of memory.
    #[error("GPU out of memory while {context}: {message}")]
    OutOfMemory {
        /// What was being done.
        context: String,
        /// Driver message.
        message: String,
    },

    /// wgpu reported a validation or internal error (a bug in speckle if it ever shows).
    #[error("GPU error while {context}: {message}")]
    Gpu {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },

    /// The device was lost (driver reset, GPU removed, timeout).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for an [`Error::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    /// Shorthand for an [`Error::Shape`].
    pub fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape {
            op,
            message: message.into(),
        }
    }

    /// An invalid-argument error prefixed with `context` (what was being checked), without
    /// repeating "invalid argument" when `self` already is one.
    pub fn in_context(self, context: impl std::fmt::Display) -> Self {
        match self {
            Error::InvalidArgument(message) => Error::invalid(format!("{context}: {message}")),
            other => Error::invalid(format!("{context}: {other}")),
        }
    }

    /// Shorthand for an [`Error::Io`] with the path in the context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
