//! Random projections and random features, in the style of scikit-learn's
//! `GaussianRandomProjection` and lightonml's `OPU`: a [`Projection`] is built from
//! (kind, n_out, seed), fitted to an input dimension d, then transforms batches on the GPU.
//!
//! Entry (i, j) of the matrix is a pure function of (seed, i, j) (Philox4x32-10, mapping in
//! [`crate::cpu::philox`]), so the matrix never has to be stored: [`Mode::MatrixFree`]
//! regenerates it inside the kernel, [`Mode::Materialized`] generates it once into a buffer
//! and multiplies; both give the same results to f32 rounding.
//!
//! Conventions (y = f(R x), x ∈ R^d, n_out outputs):
//!
//! | kind | entries of R | output | expectation |
//! | --- | --- | --- | --- |
//! | `gaussian` | N(0, 1/n_out) (scikit-learn) | R x | E‖y‖² = ‖x‖² |
//! | `orthogonal` | rows of a Gaussian matrix orthogonalized in blocks of d, chi(d) row norms (see [`orthogonal`]), times 1/sqrt(n_out) | R x | E‖y‖² = ‖x‖² |
//! | `rademacher` | ±1/sqrt(n_out) | R x | E‖y‖² = ‖x‖² |
//! | `sparse` | ±sqrt(s/n_out) with probability 1/(2s) each, else 0; s = sqrt(d) by default | R x | E‖y‖² = ‖x‖² |
//! | `optical` | complex, real and imaginary parts N(0, 1/2) each | \|R x\|² | E\[y_i\] = ‖x‖² |
//! | `rff` | N(0, 2γ), offsets b_i ~ U(0, 2π) (scikit-learn's RBFSampler) | sqrt(2/n_out) cos(R x + b) | E⟨y(x), y(x')⟩ = exp(−γ‖x − x'‖²) |
//! | `relu` | N(0, 1) | sqrt(2/n_out) ReLU(R x) | E‖y‖² = ‖x‖² |
//! | `positive` | N(0, 1) | exp(R x − ‖x‖²/2)/sqrt(n_out) | E⟨y(x), y(x')⟩ = exp(x·x') |
//! | `srht` | blocks H·D3·H·D2·H·D1 of size p = next power of two ≥ d, stacked, first n_out rows, times sqrt(p/n_out)/p^{3/2} | R x | E‖y‖² = ‖x‖² (exact when n_out = p) |
//! | `srht-optical` | two independent such blocks as real and imaginary parts, times sqrt(p/2)/p^{3/2} | \|R x\|² | E\[y_i\] = ‖x‖² |
//!
//! With [`Projection::orthogonal`], the Gaussian matrices of `rff`, `relu` and `positive` are
//! drawn with orthogonal blocks too (orthogonal random features): each row keeps its N(0, I)
//! law, so the expectations above hold, with lower variance.
//!
//! The structured kinds never form R: the input is zero-padded to p and transformed by the fast
//! Walsh–Hadamard transform in O(p log p) per block; the mode does not apply to them.
//!
//! With [`Scaling::Lightonml`], the optical kind follows lightonml's simulated OPU instead:
//! real and imaginary parts N(0, 1/d), so E\[y_i\] = 2‖x‖²/d.
//!
//! Like the physical OPU, the optical kinds can be recorded by a [`Camera`]
//! ([`Projection::camera`]): gain, seeded shot noise and quantization saturating at
//! 2^bits − 1. Binary inputs, which the OPU's modulator needs, come from the encoders of
//! [`crate::ops::encode`] (threshold, bit planes; bit-plane projections of a linear kind are
//! recombined into R x exactly by its decoder).

use crate::cpu::philox::Stream;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::matmul::{self, MatmulDims, MatmulOptions};
use crate::ops::project_dense::{self, DenseSpec};
use crate::ops::project_finish::{self, Camera, Finish};
use crate::ops::project_optical;
use crate::ops::random_fill::{self, Distribution, RandomSpec};
use crate::ops::reduce::{self, Reduction};
use crate::ops::srht;
use crate::ops::{matmul_f16, matmul_skinny, to_f16, transpose};
use crate::tensor::{HalfTensor, Tensor};
use std::sync::{Arc, Mutex, OnceLock};

pub mod orthogonal;

/// The seed used when none is given (never time-based, so runs repeat).
pub const DEFAULT_SEED: u64 = 0x5eed_5eed;

/// What a projection computes; conventions in the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Gaussian entries N(0, 1/n_out).
    Gaussian,
    /// Orthogonal random features: Gaussian rows orthogonalized in blocks of d, each with a
    /// chi(d)-distributed norm, times 1/sqrt(n_out).
    Orthogonal,
    /// Rademacher entries ±1/sqrt(n_out).
    Rademacher,
    /// Sparse entries (Achlioptas; Li, Hastie and Church) of density 1/s.
    Sparse {
        /// s; `None` is sqrt(d).
        s: Option<f64>,
    },
    /// |R x|² with R complex Gaussian: LightOn's optical processing unit.
    Optical,
    /// Random Fourier features of the RBF kernel exp(−γ‖x − x'‖²).
    Rff {
        /// γ.
        gamma: f64,
    },
    /// Random ReLU features (the arc-cosine kernel of degree 1).
    Relu,
    /// Positive random features of exp(x·x') (Performer, FAVOR+).
    Positive,
    /// Structured: blocks of H·D3·H·D2·H·D1 (Walsh–Hadamard H, random sign diagonals D),
    /// O(p log p) per block instead of O(n_out · d).
    Srht,
    /// |·|² of a structured complex transform whose real and imaginary parts are two
    /// independent structured blocks.
    SrhtOptical,
}

impl Kind {
    /// Every name accepted by [`Kind::from_name`].
    pub const NAMES: &'static [&'static str] = &[
        "gaussian",
        "orthogonal",
        "rademacher",
        "sparse",
        "optical",
        "srht",
        "srht-optical",
        "rff",
        "relu",
        "positive",
    ];

    /// Parses a name; `gamma` parameterizes `rff`, `s` `sparse`.
    pub fn from_name(name: &str, gamma: f64, s: Option<f64>) -> Result<Kind> {
        Ok(match name {
            "gaussian" => Kind::Gaussian,
            "orthogonal" => Kind::Orthogonal,
            "rademacher" => Kind::Rademacher,
            "sparse" => Kind::Sparse { s },
            "optical" => Kind::Optical,
            "rff" => Kind::Rff { gamma },
            "relu" => Kind::Relu,
            "positive" => Kind::Positive,
            "srht" => Kind::Srht,
            "srht-optical" => Kind::SrhtOptical,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown projection kind {name:?}; known: {}",
                    Kind::NAMES.join(", ")
                )))
            }
        })
    }

    /// The name, as in [`Kind::NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Gaussian => "gaussian",
            Kind::Orthogonal => "orthogonal",
            Kind::Rademacher => "rademacher",
            Kind::Sparse { .. } => "sparse",
            Kind::Optical => "optical",
            Kind::Rff { .. } => "rff",
            Kind::Relu => "relu",
            Kind::Positive => "positive",
            Kind::Srht => "srht",
            Kind::SrhtOptical => "srht-optical",
        }
    }

    /// True for the structured kinds, which have no dense matrix.
    pub fn is_structured(&self) -> bool {
        matches!(self, Kind::Srht | Kind::SrhtOptical)
    }

    /// True for the kinds whose output is R x itself (the structured `srht` included).
    pub fn is_linear(&self) -> bool {
        matches!(
            self,
            Kind::Gaussian | Kind::Orthogonal | Kind::Rademacher | Kind::Sparse { .. } | Kind::Srht
        )
    }

    /// True for the kinds whose matrix may be drawn with orthogonal blocks
    /// ([`Projection::orthogonal`]): those built on a Gaussian N(0, 1) matrix.
    pub fn allows_orthogonal(&self) -> bool {
        matches!(
            self,
            Kind::Gaussian | Kind::Orthogonal | Kind::Rff { .. } | Kind::Relu | Kind::Positive
        )
    }
}

/// How the matrix is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Generated once into a buffer, then multiplied (fast for many inputs; n_out · d floats).
    Materialized,
    /// Regenerated tile by tile inside the kernel, never stored (any size).
    MatrixFree,
}

/// Scaling convention of the optical kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// Real and imaginary parts N(0, 1/2): E\[y_i\] = ‖x‖².
    Standard,
    /// lightonml's simulated OPU: parts N(0, 1/d), E\[y_i\] = 2‖x‖²/d.
    Lightonml,
}

/// The precision of a materialized projection's product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 matrix and inputs (the default).
    #[default]
    F32,
    /// The matrix and the inputs rounded to f16, products accumulated in f32
    /// ([`crate::ops::matmul_f16`]; on tensor cores where the adapter has cooperative
    /// matrices). Binary inputs, as an optical processing unit takes, are exact in f16; the
    /// matrix entries keep 11 significant bits. Materialized mode, dense kinds only; d and
    /// n_out must be multiples of 4.
    F16,
}

impl Precision {
    /// `f32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    /// Parses [`Precision::name`].
    pub fn from_name(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            other => Err(Error::invalid(format!(
                "unknown precision {other:?}; known: f32, f16"
            ))),
        }
    }
}

/// Whether the materialized optical kind computes |R x|² in one fused pass
/// ([`crate::ops::project_optical`], where d and n_out are multiples of 4) or as two products
/// and a finishing pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fusion {
    /// Fused on GPUs; unfused on CPU adapters (lavapipe), whose fastest matmul is the texture
    /// kernel the unfused products run: on one 2-core machine the fused pass (tiled, storage
    /// buffers) took 110 ms against 140 ms unfused, on another 800 ms against 167 ms, as
    /// lavapipe's storage-buffer loads vary far more between machines than its texel fetches.
    /// Unfused also where the fused pass, which loops over the whole of d in one invocation,
    /// would pass the adapter's loop limit ([`project_optical::max_loops`]).
    #[default]
    Auto,
    /// Fused wherever the shapes allow; an [`Error::LoopLimit`] (from
    /// [`Projection::prepare`] and what calls it) where the fused pass would pass the
    /// adapter's loop limit.
    Fused,
    /// Never fused.
    Unfused,
}

/// The buffers of a planned transform: the output `y` (`[batch, n_out]`), scratch, and the
/// generated matrix in [`Mode::Materialized`].
#[derive(Debug)]
pub struct Workspace {
    /// The output.
    pub y: Tensor,
    im: Option<Tensor>,
    norms: Option<Tensor>,
    matrix: Option<Arc<Stored>>,
    /// The inputs rounded to f16 ([`Precision::F16`]).
    x16: Option<HalfTensor>,
}

/// A materialized matrix.
#[derive(Debug)]
pub struct Matrix {
    /// R (its real part for the optical kind), `[n_out, d]`.
    pub re: Tensor,
    /// The imaginary part I of the optical kind.
    pub im: Option<Tensor>,
    /// For the `orthogonal` kind, the matrix P (`[n_out, d]`) with x = Pᵀ (R x): see
    /// [`Projection::inverse_transform`].
    pub inverse: Option<Tensor>,
    /// R and I rounded to f16 ([`Precision::F16`]).
    pub half: Option<(HalfTensor, Option<HalfTensor>)>,
}

/// What a materialized projection keeps on the device.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per projection, behind an Arc"
)]
enum Stored {
    /// The matrix of the unfused products, in the layouts the batches so far read best
    /// ([`Projection::reads_transposed`]), each made on first need (from the other where that
    /// exists): as [`Projection::matrix`] makes it, and in f32 transposed.
    Unfused {
        split: OnceLock<Matrix>,
        transposed: OnceLock<TransposedMatrix>,
    },
    /// The optical kind's paired matrix (`[2·n_out, d]`) for the fused kernel
    /// ([`project_optical`]), f32 or f16 as the precision says.
    Paired(PairedMatrix),
}

/// Rᵀ and Iᵀ, `[d, n_out]` each, and the orthogonal kind's P as [`Matrix::inverse`].
#[derive(Debug)]
struct TransposedMatrix {
    re: Tensor,
    im: Option<Tensor>,
    inverse: Option<Tensor>,
}

/// The unfused matrix in the layout one product reads.
enum Unfused<'a> {
    Split(&'a Matrix),
    Transposed(&'a TransposedMatrix),
}

/// The paired matrix in the projection's precision.
#[derive(Debug)]
enum PairedMatrix {
    F32(Tensor),
    F16(HalfTensor),
}

impl PairedMatrix {
    fn is_half(&self) -> bool {
        matches!(self, PairedMatrix::F16(_))
    }
}

/// The materialized matrix, kept once generated: the device it lives on and what it was
/// generated for (so that changing the projection's public fields regenerates it).
#[derive(Default)]
struct MatrixCache(Mutex<Option<CachedMatrix>>);

/// A generated matrix with the device it lives on and the (spec, n_out, precision, fused)
/// it was made for.
struct CachedMatrix {
    /// [`Gpu::id`] of the device it lives on.
    device: u64,
    key: (MatrixSpec, usize, Precision, bool),
    matrix: Arc<Stored>,
}

impl Clone for MatrixCache {
    /// A clone starts empty and generates its own matrix on first use.
    fn clone(&self) -> Self {
        MatrixCache::default()
    }
}

impl PartialEq for MatrixCache {
    /// The cache is not part of a projection's identity.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for MatrixCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MatrixCache")
    }
}

/// A random projection of d inputs to `n_out` outputs, defined by (kind, n_out, seed).
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// What it computes.
    pub kind: Kind,
    /// Output dimension.
    pub n_out: usize,
    /// The seed: the same seed gives the same matrix on every adapter.
    pub seed: u64,
    /// Materialized or matrix-free.
    pub mode: Mode,
    /// Scaling of the optical kind.
    pub scaling: Scaling,
    /// Draw the Gaussian matrix with orthogonal blocks (orthogonal random features; always on
    /// for [`Kind::Orthogonal`], allowed for `gaussian`, `rff`, `relu` and `positive`).
    /// Materialized mode only.
    pub orthogonal: bool,
    /// A camera recording the optical kinds' intensities (gain, shot noise, quantization;
    /// see [`Camera`]); `None` gives the exact intensities.
    pub camera: Option<Camera>,
    /// The precision of the materialized product.
    pub precision: Precision,
    /// Whether the materialized optical kind computes |R x|² in one fused pass (see
    /// [`Fusion`]; [`Projection::uses_fused`] says what runs).
    pub fused: Fusion,
    d: Option<usize>,
    cache: MatrixCache,
}

/// The matrix of a fitted projection and what follows the product.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatrixSpec {
    /// Entries of R (and of I, with the same distribution and scale, when complex).
    pub dense: DenseSpec,
    /// The non-linearity, if any, and its output scale.
    pub finish: Option<(Finish, f32)>,
    /// Rows orthogonal in blocks of d ([`orthogonal`]), generated on the CPU.
    pub orthogonal: bool,
}

impl Projection {
    /// A projection of `kind` to `n_out` outputs from `seed`, materialized, standard scaling.
    pub fn new(kind: Kind, n_out: usize, seed: u64) -> Projection {
        Projection {
            kind,
            n_out,
            seed,
            mode: Mode::Materialized,
            scaling: Scaling::Standard,
            orthogonal: false,
            camera: None,
            precision: Precision::F32,
            fused: Fusion::Auto,
            d: None,
            cache: MatrixCache::default(),
        }
    }

    /// Fixes the input dimension (as scikit-learn's `fit`, which needs only the shape).
    pub fn fit(&mut self, d: usize) -> Result<()> {
        if d == 0 || self.n_out == 0 {
            return Err(Error::invalid(format!(
                "a projection needs d >= 1 and n_out >= 1 (got d = {d}, n_out = {})",
                self.n_out
            )));
        }
        if let Kind::Sparse { s: Some(s) } = self.kind {
            if !(s >= 1.0 && s.is_finite()) {
                return Err(Error::invalid(format!(
                    "sparse density parameter s must be >= 1, got {s}"
                )));
            }
        }
        if let Kind::Rff { gamma } = self.kind {
            if !(gamma > 0.0 && gamma.is_finite()) {
                return Err(Error::invalid(format!(
                    "rff gamma must be positive, got {gamma}"
                )));
            }
        }
        if self.orthogonal && !self.kind.allows_orthogonal() {
            return Err(Error::invalid(format!(
                "orthogonal random features apply to the Gaussian kinds (gaussian, orthogonal, \
                 rff, relu, positive), not {}",
                self.kind.name()
            )));
        }
        if let Some(camera) = &self.camera {
            if !matches!(self.kind, Kind::Optical | Kind::SrhtOptical) {
                return Err(Error::invalid(format!(
                    "a camera records optical intensities (kinds optical, srht-optical), not {}",
                    self.kind.name()
                )));
            }
            camera.validate()?;
        }
        if self.precision == Precision::F16 {
            if self.mode != Mode::Materialized || self.kind.is_structured() {
                return Err(Error::invalid(format!(
                    "f16 precision applies to a materialized dense matrix, not the {} mode of {}",
                    if self.kind.is_structured() {
                        "structured"
                    } else {
                        "matrix-free"
                    },
                    self.kind.name()
                )));
            }
            if !d.is_multiple_of(4) || !self.n_out.is_multiple_of(4) {
                return Err(Error::invalid(format!(
                    "f16 precision needs d and n_out in multiples of 4 (got d = {d}, n_out = {})",
                    self.n_out
                )));
            }
        }
        self.d = Some(d);
        Ok(())
    }

    /// The fitted input dimension.
    pub fn input_dim(&self) -> Option<usize> {
        self.d
    }

    /// The matrix and the non-linearity of the fitted projection.
    pub fn spec(&self) -> Result<MatrixSpec> {
        let d = self
            .d
            .ok_or_else(|| Error::invalid("the projection is not fitted (call fit(d) first)"))?;
        let n = self.n_out as f64;
        let (distribution, scale, complex, finish) = match self.kind {
            Kind::Srht | Kind::SrhtOptical => {
                return Err(Error::invalid(format!(
                    "the structured kind {} has no dense matrix",
                    self.kind.name()
                )))
            }
            Kind::Gaussian | Kind::Orthogonal => {
                (Distribution::Gaussian, 1.0 / n.sqrt(), false, None)
            }
            Kind::Rademacher => (Distribution::Rademacher, 1.0 / n.sqrt(), false, None),
            Kind::Sparse { s } => {
                let s = s.unwrap_or((d as f64).sqrt()).max(1.0);
                (
                    Distribution::Sparse {
                        p: (0.5 / s) as f32,
                    },
                    (s / n).sqrt(),
                    false,
                    None,
                )
            }
            Kind::Optical => {
                let scale = match self.scaling {
                    Scaling::Standard => 0.5f64.sqrt(),
                    Scaling::Lightonml => 1.0 / (d as f64).sqrt(),
                };
                (
                    Distribution::Gaussian,
                    scale,
                    true,
                    Some((Finish::Optical, 1.0)),
                )
            }
            Kind::Rff { gamma } => (
                Distribution::Gaussian,
                (2.0 * gamma).sqrt(),
                false,
                Some((Finish::Fourier, (2.0 / n).sqrt())),
            ),
            Kind::Relu => (
                Distribution::Gaussian,
                1.0,
                false,
                Some((Finish::Relu, (2.0 / n).sqrt())),
            ),
            Kind::Positive => (
                Distribution::Gaussian,
                1.0,
                false,
                Some((Finish::Positive, 1.0 / n.sqrt())),
            ),
        };
        Ok(MatrixSpec {
            dense: DenseSpec {
                distribution,
                scale: scale as f32,
                seed: self.seed,
                complex,
            },
            finish: finish.map(|(f, s)| (f, s as f32)),
            orthogonal: self.orthogonal || self.kind == Kind::Orthogonal,
        })
    }

    /// Entry (i, j) of the matrix (its real part), computed on the CPU.
    pub fn entry(&self, i: usize, j: usize) -> Result<f64> {
        let spec = self.spec()?;
        let d = self.d.unwrap_or(1);
        if i >= self.n_out || j >= d {
            return Err(Error::invalid(format!(
                "entry ({i}, {j}) is outside the {} x {d} matrix",
                self.n_out
            )));
        }
        if spec.orthogonal {
            let (row, _) = orthogonal::rows(self.seed, d, i, 1);
            return Ok(row[j] * f64::from(spec.dense.scale));
        }
        Ok(crate::cpu::project_dense::matrix_entry(
            &spec.dense,
            Stream::Matrix,
            i as u32,
            j as u64,
        ))
    }

    /// True when [`Projection::plan`] runs the fused optical kernel ([`project_optical`]):
    /// the materialized optical kind with shapes it takes, and [`Projection::fused`]
    /// [`Fusion::Fused`], or [`Fusion::Auto`] on a GPU where the fused pass stays within the
    /// adapter's loop limit. False also where [`Fusion::Fused`] is refused for that limit
    /// ([`Projection::prepare`] returns the error).
    pub fn uses_fused(&self, gpu: &Gpu) -> bool {
        self.fusion(gpu).unwrap_or(false)
    }

    /// [`Projection::uses_fused`], with [`Fusion::Fused`]'s refusal: an [`Error::LoopLimit`]
    /// where its one pass over d would loop more often per invocation than the adapter allows
    /// ([`project_optical::max_loops`], the most of any kernel it may take), where
    /// [`Fusion::Auto`] falls back to the unfused path.
    fn fusion(&self, gpu: &Gpu) -> Result<bool> {
        let wanted = match self.fused {
            Fusion::Auto => !gpu.is_cpu(),
            Fusion::Fused => true,
            Fusion::Unfused => false,
        };
        let Some(d) = self.d.filter(|&d| {
            wanted
                && self.kind == Kind::Optical
                && self.mode == Mode::Materialized
                && project_optical::eligible(gpu, d, self.n_out)
        }) else {
            return Ok(false);
        };
        let loops = project_optical::max_loops(d);
        if self.fused == Fusion::Fused {
            gpu.check_loops(
                "project_optical (fused projection)",
                loops,
                project_optical::LOOP_REMEDY,
            )?;
            return Ok(true);
        }
        Ok(gpu.loop_limit()?.is_none_or(|limit| loops <= limit))
    }

    /// The materialized matrix, generated on the first call for `gpu`'s device and kept for
    /// the later ones (a materialized projection is generated once and reused): the paired
    /// matrix where [`Projection::uses_fused`], else the unfused one, whose layouts are made
    /// as the products need them ([`Projection::unfused`]).
    fn cached_matrix(&self, gpu: &Gpu) -> Result<Arc<Stored>> {
        let fused = self.fusion(gpu)?;
        let key = (self.spec()?, self.n_out, self.precision, fused);
        let mut cache = self
            .cache
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cached) = cache.as_ref() {
            if cached.device == gpu.id() && cached.key == key {
                return Ok(Arc::clone(&cached.matrix));
            }
        }
        let matrix = Arc::new(if fused {
            Stored::Paired(self.paired_matrix(gpu)?)
        } else {
            Stored::Unfused {
                split: OnceLock::new(),
                transposed: OnceLock::new(),
            }
        });
        *cache = Some(CachedMatrix {
            device: gpu.id(),
            key,
            matrix: Arc::clone(&matrix),
        });
        Ok(matrix)
    }

    /// Whether the unfused products of `batch` rows read the f32 matrix transposed: where
    /// [`matmul::prefers_untransposed_b`] (the texture matmul of CPU adapters, which copies
    /// an untransposed operand into its texture but packs a transposed one on every call: on
    /// lavapipe the unfused optical projection, 64 × 1024 → 4096, took half the time with Rᵀ
    /// stored), unless the skinny matmul takes the product, which reads R as it is (on
    /// lavapipe 8 × 4096 × 1024 in 5.7–5.9 ms against 20–36 ms; see BENCHMARKS.md).
    fn reads_transposed(&self, gpu: &Gpu, batch: usize) -> Result<bool> {
        if self.precision != Precision::F32 || !matmul::prefers_untransposed_b(gpu)? {
            return Ok(false);
        }
        let d = self.d.unwrap_or(1);
        let dims = MatmulDims::new(&[batch.max(1), d], &[self.n_out, d], false, true)?;
        Ok(!matmul_skinny::preferred(gpu, &dims, false, true))
    }

    /// The unfused matrix in the layout a product of `batch` rows reads
    /// ([`Projection::reads_transposed`]), made on first need.
    fn unfused<'a>(
        &self,
        gpu: &Gpu,
        (split, transposed): (&'a OnceLock<Matrix>, &'a OnceLock<TransposedMatrix>),
        batch: usize,
    ) -> Result<Unfused<'a>> {
        Ok(if self.reads_transposed(gpu, batch)? {
            Unfused::Transposed(self.transposed_layout(gpu, split, transposed)?)
        } else {
            Unfused::Split(self.split_layout(gpu, split, transposed)?)
        })
    }

    /// The matrix as [`Projection::matrix`] makes it, kept in `split`: transposed back from
    /// `transposed` where that exists (in f32), else generated.
    fn split_layout<'a>(
        &self,
        gpu: &Gpu,
        split: &'a OnceLock<Matrix>,
        transposed: &OnceLock<TransposedMatrix>,
    ) -> Result<&'a Matrix> {
        if let Some(m) = split.get() {
            return Ok(m);
        }
        let m = match transposed.get() {
            Some(t) if self.precision == Precision::F32 => Matrix {
                re: transpose::run(gpu, &t.re)?,
                im: t.im.as_ref().map(|i| transpose::run(gpu, i)).transpose()?,
                inverse: t.inverse.as_ref().map(|p| p.view(p.shape())).transpose()?,
                half: None,
            },
            _ => self.matrix(gpu)?,
        };
        Ok(split.get_or_init(|| m))
    }

    /// Rᵀ and Iᵀ, kept in `transposed`: transposed from `split` where that exists, else
    /// generated and transposed on the device, each part's original dropped once its
    /// transpose is made.
    fn transposed_layout<'a>(
        &self,
        gpu: &Gpu,
        split: &OnceLock<Matrix>,
        transposed: &'a OnceLock<TransposedMatrix>,
    ) -> Result<&'a TransposedMatrix> {
        if let Some(t) = transposed.get() {
            return Ok(t);
        }
        let t = match split.get() {
            Some(m) => TransposedMatrix {
                re: transpose::run(gpu, &m.re)?,
                im: m.im.as_ref().map(|i| transpose::run(gpu, i)).transpose()?,
                inverse: m.inverse.as_ref().map(|p| p.view(p.shape())).transpose()?,
            },
            None => {
                let Matrix {
                    re, im, inverse, ..
                } = self.matrix(gpu)?;
                let re = transpose::run(gpu, &re)?;
                let im = im.map(|i| transpose::run(gpu, &i)).transpose()?;
                TransposedMatrix { re, im, inverse }
            }
        };
        Ok(transposed.get_or_init(|| t))
    }

    /// Checks that a materialized matrix of `rows` × d f32 values fits one buffer.
    fn check_matrix_size(&self, gpu: &Gpu, rows: usize) -> Result<()> {
        let d = self.d.unwrap_or(1);
        let bytes = (rows as u64).saturating_mul(d as u64).saturating_mul(4);
        if bytes > gpu.limits().max_buffer_size {
            return Err(Error::invalid(format!(
                "the materialized {rows} x {d} matrix needs {bytes} bytes, more than the \
                 adapter's largest buffer ({} bytes); use the matrix-free mode (--matrix-free)",
                gpu.limits().max_buffer_size
            )));
        }
        Ok(())
    }

    /// The optical kind's paired matrix ([`project_optical::paired_matrix`]) in the
    /// projection's precision, generated anew.
    fn paired_matrix(&self, gpu: &Gpu) -> Result<PairedMatrix> {
        let spec = self.spec()?;
        let d = self.d.unwrap_or(1);
        self.check_matrix_size(gpu, 2 * self.n_out)?;
        let paired = project_optical::paired_matrix(gpu, &spec.dense, self.n_out, d)?;
        Ok(match self.precision {
            Precision::F32 => PairedMatrix::F32(paired),
            Precision::F16 => PairedMatrix::F16(HalfTensor::from_tensor(gpu, &paired)?),
        })
    }

    /// The materialized matrix R (and I for the optical kind), each `[n_out, d]`, generated
    /// anew: on the GPU from Philox, or, with orthogonal rows, on the CPU ([`orthogonal`]).
    pub fn matrix(&self, gpu: &Gpu) -> Result<Matrix> {
        let spec = self.spec()?;
        let d = self.d.unwrap_or(1);
        self.check_matrix_size(gpu, self.n_out)?;
        if spec.orthogonal {
            return self.orthogonal_matrix(gpu, &spec, d);
        }
        let generate = |stream: Stream| {
            random_fill::run(
                gpu,
                &[self.n_out, d],
                &RandomSpec {
                    distribution: spec.dense.distribution,
                    scale: spec.dense.scale,
                    seed: self.seed,
                    stream: stream as u32,
                    row0: 0,
                },
            )
        };
        let re = generate(Stream::Matrix)?;
        let im = if spec.dense.complex {
            Some(generate(Stream::MatrixImaginary)?)
        } else {
            None
        };
        let half = match self.precision {
            Precision::F32 => None,
            Precision::F16 => Some((
                HalfTensor::from_tensor(gpu, &re)?,
                im.as_ref()
                    .map(|i| HalfTensor::from_tensor(gpu, i))
                    .transpose()?,
            )),
        };
        Ok(Matrix {
            re,
            im,
            inverse: None,
            half,
        })
    }

    /// The orthogonal matrix, and for the linear kind its inverse P (see
    /// [`Projection::inverse_transform`]): row i of P is √n · w_i / (‖w_i‖² · B) for the rows
    /// of the B full blocks (rows of a last, partial block are 0), or √n · w_i / ‖w_i‖² when
    /// n_out < d, w_i being the unscaled rows.
    fn orthogonal_matrix(&self, gpu: &Gpu, spec: &MatrixSpec, d: usize) -> Result<Matrix> {
        let n = self.n_out;
        let work = (n as f64) * (d as f64) * (d.min(n) as f64);
        if work > 1e9 {
            log::info!(
                "orthogonalizing {} block(s) of up to {} rows of length {d} on the CPU (~{:.0e} flops)",
                n.div_ceil(d),
                d.min(n),
                4.0 * work
            );
        }
        let (w, norms) = orthogonal::rows(self.seed, d, 0, n);
        let scale = f64::from(spec.dense.scale);
        let re: Vec<f32> = w.iter().map(|&v| (v * scale) as f32).collect();
        let re = Tensor::from_slice(gpu, &re, &[n, d])?;
        let inverse = if self.kind == Kind::Orthogonal {
            let full_blocks = n / d;
            let mut p = vec![0.0f32; n * d];
            for (i, (row, &norm)) in w.chunks_exact(d).zip(&norms).enumerate() {
                let factor = if full_blocks == 0 {
                    (n as f64).sqrt() / (norm * norm)
                } else if i < full_blocks * d {
                    (n as f64).sqrt() / (norm * norm * full_blocks as f64)
                } else {
                    0.0
                };
                for (o, &v) in p[i * d..(i + 1) * d].iter_mut().zip(row) {
                    *o = (v * factor) as f32;
                }
            }
            Some(Tensor::from_slice(gpu, &p, &[n, d])?)
        } else {
            None
        };
        let half = match self.precision {
            Precision::F32 => None,
            Precision::F16 => Some((HalfTensor::from_tensor(gpu, &re)?, None)),
        };
        Ok(Matrix {
            re,
            im: None,
            inverse,
            half,
        })
    }

    /// Allocates what transforming `batch` inputs needs (the output, scratch, and for
    /// [`Mode::Materialized`] the matrix, generated on the GPU on first use and then reused).
    pub fn prepare(&self, gpu: &Gpu, batch: usize) -> Result<Workspace> {
        if self.kind.is_structured() {
            return Ok(Workspace {
                y: Tensor::empty(gpu, &[batch, self.n_out])?,
                im: None,
                norms: None,
                matrix: None,
                x16: None,
            });
        }
        let spec = self.spec()?;
        if spec.orthogonal && self.mode == Mode::MatrixFree {
            return Err(Error::invalid(
                "orthogonal random features need the materialized mode: each block of d rows is \
                 orthogonalized as a whole, so no entry can be regenerated alone (srht is the \
                 matrix-free structured alternative)",
            ));
        }
        let shape = [batch, self.n_out];
        let finish = spec.finish.map(|(f, _)| f);
        let fused = self.fusion(gpu)?;
        Ok(Workspace {
            y: Tensor::empty(gpu, &shape)?,
            im: if spec.dense.complex && !fused {
                Some(Tensor::empty(gpu, &shape)?)
            } else {
                None
            },
            norms: if finish == Some(Finish::Positive) {
                Some(Tensor::empty(gpu, &[batch])?)
            } else {
                None
            },
            matrix: match self.mode {
                Mode::Materialized => {
                    let stored = self.cached_matrix(gpu)?;
                    // The layout this batch reads, made now rather than while planning.
                    if let Stored::Unfused { split, transposed } = &*stored {
                        self.unfused(gpu, (split, transposed), batch)?;
                    }
                    Some(stored)
                }
                Mode::MatrixFree => None,
            },
            x16: match (self.precision, self.mode) {
                (Precision::F16, Mode::Materialized) => {
                    Some(HalfTensor::empty(gpu, &[batch, self.d.unwrap_or(1)])?)
                }
                _ => None,
            },
        })
    }

    /// Plans y = f(R x) into `ws.y` for `x` of shape `[batch, d]` (the batch of `ws`).
    pub fn plan(&self, gpu: &Gpu, x: &Tensor, ws: &Workspace) -> Result<Vec<Dispatch>> {
        let d = self
            .d
            .ok_or_else(|| Error::invalid("the projection is not fitted (call fit(d) first)"))?;
        let batch = ws.y.shape()[0];
        if x.shape() != [batch, d] {
            return Err(Error::shape(
                "project",
                format!(
                    "the projection was fitted to d = {d} but the input has shape {:?}",
                    x.shape()
                ),
            ));
        }
        if self.kind.is_structured() {
            let mut dispatches = srht::plan(
                gpu,
                x,
                &ws.y,
                self.n_out,
                self.seed,
                self.kind == Kind::SrhtOptical,
            )?;
            if let Some(camera) = &self.camera {
                dispatches.extend(project_finish::plan_camera(gpu, &ws.y, camera)?);
            }
            return Ok(dispatches);
        }
        let spec = self.spec()?;
        let mut dispatches = match ws.matrix.as_deref() {
            Some(Stored::Paired(paired)) => return self.plan_fused(gpu, x, ws, paired),
            None => project_dense::plan(gpu, x, &ws.y, ws.im.as_ref(), &spec.dense)?,
            Some(Stored::Unfused { split, transposed }) => {
                match self.unfused(gpu, (split, transposed), batch)? {
                    Unfused::Transposed(t) => {
                        let plain = MatmulOptions::default();
                        let mut plan = matmul::plan(gpu, x, &t.re, &ws.y, &plain)?;
                        if let (Some(i), Some(im)) = (&t.im, &ws.im) {
                            plan.extend(matmul::plan(gpu, x, i, im, &plain)?);
                        }
                        plan
                    }
                    Unfused::Split(matrix) => self.plan_split(gpu, x, ws, matrix)?,
                }
            }
        };
        if let Some((finish, out_scale)) = spec.finish {
            if let Some(norms) = &ws.norms {
                dispatches.extend(reduce::plan(gpu, Reduction::SumSquares, x, norms)?);
            }
            dispatches.extend(project_finish::plan(
                gpu,
                finish,
                &ws.y,
                ws.im.as_ref(),
                ws.norms.as_ref(),
                self.seed,
                out_scale,
            )?);
        }
        if let Some(camera) = &self.camera {
            dispatches.extend(project_finish::plan_camera(gpu, &ws.y, camera)?);
        }
        Ok(dispatches)
    }

    /// The products x Rᵀ (and x Iᵀ into `ws.im`) with the matrix as [`Projection::matrix`]
    /// makes it, in f16 through `ws.x16` where the precision asks.
    fn plan_split(
        &self,
        gpu: &Gpu,
        x: &Tensor,
        ws: &Workspace,
        matrix: &Matrix,
    ) -> Result<Vec<Dispatch>> {
        let transposed = MatmulOptions {
            trans_b: true,
            ..Default::default()
        };
        Ok(match (&matrix.half, &ws.x16) {
            (Some((re16, im16)), Some(x16)) => {
                let mut plan = to_f16::plan(gpu, x, x16)?;
                plan.extend(matmul_f16::plan(gpu, x16, re16, &ws.y, &transposed)?);
                if let (Some(i16), Some(im)) = (im16, &ws.im) {
                    plan.extend(matmul_f16::plan(gpu, x16, i16, im, &transposed)?);
                }
                plan
            }
            _ => {
                let mut plan = matmul::plan(gpu, x, &matrix.re, &ws.y, &transposed)?;
                if let (Some(i), Some(im)) = (&matrix.im, &ws.im) {
                    plan.extend(matmul::plan(gpu, x, i, im, &transposed)?);
                }
                plan
            }
        })
    }

    /// The fused optical pass ([`project_optical`]) into `ws.y`, then the camera if any.
    fn plan_fused(
        &self,
        gpu: &Gpu,
        x: &Tensor,
        ws: &Workspace,
        paired: &PairedMatrix,
    ) -> Result<Vec<Dispatch>> {
        let [batch, d] = *x.shape() else {
            return Err(Error::shape(
                "project",
                format!("x has shape {:?}", x.shape()),
            ));
        };
        let kernel = project_optical::tuned_kernel(gpu, batch, d, self.n_out, paired.is_half());
        let mut dispatches = match (paired, &ws.x16) {
            (PairedMatrix::F16(p16), Some(x16)) => {
                let mut plan = to_f16::plan(gpu, x, x16)?;
                plan.extend(project_optical::plan_f16(gpu, x16, p16, &ws.y, kernel)?);
                plan
            }
            (PairedMatrix::F32(p32), _) => project_optical::plan(gpu, x, p32, &ws.y, kernel)?,
            (PairedMatrix::F16(_), None) => {
                return Err(Error::invalid(
                    "the workspace has no f16 inputs: prepare it with this projection",
                ))
            }
        };
        if let Some(camera) = &self.camera {
            dispatches.extend(project_finish::plan_camera(gpu, &ws.y, camera)?);
        }
        Ok(dispatches)
    }

    /// y = f(R x) for `x` of shape `[batch, d]` (or `[d]`), giving `[batch, n_out]` (or `[n_out]`).
    pub fn transform(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let d = self
            .d
            .ok_or_else(|| Error::invalid("the projection is not fitted (call fit(d) first)"))?;
        let (batch, one_d) = match x.shape() {
            [_] => (1, true),
            [b, _] => (*b, false),
            s => {
                return Err(Error::shape(
                    "project",
                    format!("inputs must be [batch, d] or [d], got shape {s:?}"),
                ))
            }
        };
        if x.shape()[x.shape().len() - 1] != d {
            return Err(Error::shape(
                "project",
                format!(
                    "the projection was fitted to d = {d} but the input has shape {:?}",
                    x.shape()
                ),
            ));
        }
        let x2 = x.view(&[batch, d])?;
        let ws = self.prepare(gpu, batch)?;
        gpu.execute(&self.plan(gpu, &x2, &ws)?)?;
        if one_d {
            ws.y.reshape(&[self.n_out])
        } else {
            Ok(ws.y)
        }
    }

    /// Maps outputs back to inputs for the linear kinds; `y` is `[batch, n_out]` or `[n_out]`.
    ///
    /// * `gaussian`, `rademacher`, `sparse`: x̂ = Rᵀ y, unbiased since E\[RᵀR\] = I under their
    ///   conventions (least squares comes with the reconstruction module).
    /// * `orthogonal`: exact on the row space. Each full block of d rows, R_b = S_b Q_b / √n
    ///   with Q_b orthogonal, is inverted exactly (x = √n Q_bᵀ S_b⁻¹ y_b) and the full blocks'
    ///   inversions averaged; with n_out < d, the one block's pseudo-inverse (the minimum-norm
    ///   x̂ with R x̂ = y). So x̂ = x for y = R x whenever n_out >= d.
    /// * `srht`: the transpose Rᵀ y by the fast transform, the exact inverse when n_out is a
    ///   multiple of p (the stacked blocks are then orthogonal: RᵀR = I).
    pub fn inverse_transform(&self, gpu: &Gpu, y: &Tensor) -> Result<Tensor> {
        if !self.kind.is_linear() {
            return Err(Error::invalid(format!(
                "inverse_transform is defined for the linear kinds (gaussian, orthogonal, \
                 rademacher, sparse, srht), not {}",
                self.kind.name()
            )));
        }
        let d = self
            .d
            .ok_or_else(|| Error::invalid("the projection is not fitted (call fit(d) first)"))?;
        if y.shape().is_empty()
            || y.shape()[y.shape().len() - 1] != self.n_out
            || y.shape().len() > 2
        {
            return Err(Error::shape(
                "project",
                format!(
                    "inverse_transform takes [batch, n_out] or [n_out] with n_out = {}, got shape {:?}",
                    self.n_out,
                    y.shape()
                ),
            ));
        }
        let one_d = y.shape().len() == 1;
        let batch = y.len() / self.n_out;
        let y2 = y.view(&[batch, self.n_out])?;
        let x = if self.kind == Kind::Srht {
            let x = Tensor::empty(gpu, &[batch, d])?;
            gpu.execute(&srht::plan_transpose(gpu, &y2, &x, self.n_out, self.seed)?)?;
            x
        } else {
            // x̂ = y P, or y R: from the transposed layout where that is the one made (R is
            // the transpose of what it stores), else from R as it is.
            let stored = self.cached_matrix(gpu)?;
            let (m, trans_b) = match &*stored {
                Stored::Unfused { split, transposed } => match (split.get(), transposed.get()) {
                    (None, Some(t)) => match &t.inverse {
                        Some(p) => (p, false),
                        None => (&t.re, true),
                    },
                    _ => {
                        let m = self.split_layout(gpu, split, transposed)?;
                        (m.inverse.as_ref().unwrap_or(&m.re), false)
                    }
                },
                Stored::Paired(_) => {
                    return Err(Error::invalid(
                        "the optical kind's intensities have no linear inverse",
                    ))
                }
            };
            let options = MatmulOptions {
                trans_b,
                ..Default::default()
            };
            matmul::run(gpu, &y2, m, &options)?
        };
        if one_d {
            x.reshape(&[d])
        } else {
            Ok(x)
        }
    }
}

/// The smallest number of random projections that keeps the pairwise distances of
/// `n_samples` points within a factor (1 ± eps) with good probability (Johnson–Lindenstrauss
/// lemma, the bound of Dasgupta and Gupta): 4 ln(n) / (eps²/2 − eps³/3), as scikit-learn's
/// `johnson_lindenstrauss_min_dim`.
pub fn johnson_lindenstrauss_min_dim(n_samples: usize, eps: f64) -> Result<usize> {
    if !(eps > 0.0 && eps < 1.0) {
        return Err(Error::invalid(format!("eps must be in (0, 1), got {eps}")));
    }
    if n_samples == 0 {
        return Err(Error::invalid("n_samples must be at least 1"));
    }
    let denominator = eps * eps / 2.0 - eps * eps * eps / 3.0;
    Ok((4.0 * (n_samples as f64).ln() / denominator) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuOptions;
    use crate::tune::Tuning;

    fn gpu() -> Gpu {
        Gpu::with_options(&GpuOptions {
            tuning: Tuning::Off,
            ..Default::default()
        })
        .unwrap()
    }

    /// Relative 2-norm distance of `a` from `b`.
    fn distance(a: &[f32], b: &[f64]) -> f64 {
        assert!(a.iter().all(|v| v.is_finite()), "non-finite outputs");
        let num: f64 = a
            .iter()
            .zip(b)
            .map(|(&u, v)| (f64::from(u) - v).powi(2))
            .sum();
        (num / b.iter().map(|v| v * v).sum::<f64>()).sqrt()
    }

    /// op(x) · op(r) in f64 by the matmul reference, x `[rows, k]` and r of `r_shape`.
    fn times(x: &[f32], k: usize, r: &[f32], r_shape: [usize; 2], trans_r: bool) -> Vec<f64> {
        let x_shape = [x.len() / k, k];
        crate::cpu::matmul::matmul(&crate::cpu::matmul::Problem {
            trans_b: trans_r,
            ..crate::cpu::matmul::Problem::new(x, &x_shape, r, &r_shape)
        })
        .unwrap()
    }

    /// Whether `p`'s cached unfused matrix holds (R as it is, Rᵀ).
    fn kept(p: &Projection) -> (bool, bool) {
        let cache = p.cache.0.lock().unwrap();
        match cache.as_ref().map(|c| &*c.matrix) {
            Some(Stored::Unfused { split, transposed }) => {
                (split.get().is_some(), transposed.get().is_some())
            }
            _ => (false, false),
        }
    }

    /// R (`[n, d]`) transposed on the host by the transpose reference.
    fn transposed(r: &[f32], n: usize, d: usize) -> Vec<f32> {
        crate::cpu::transpose::transpose(r, 1, n, d)
    }

    /// The unfused products in whichever layout each batch reads (on CPU adapters R as it is
    /// for a few rows and d % 4 == 0, the skinny matmul's case, Rᵀ otherwise; on GPUs R),
    /// each layout made on first need from the other where that exists, for batches in both
    /// orders: against R x in f64 (gaussian) or the matrix-free mode (optical and relu, whose
    /// finishing passes follow the products); then the inverse y R from whichever layout is
    /// kept. f32 rounding of sums of at most 77 terms: 1e-5.
    #[test]
    fn every_layout_of_the_unfused_matrix_gives_the_projection() {
        let gpu = gpu();
        let n_out = 45;
        for kind in [Kind::Gaussian, Kind::Optical, Kind::Relu] {
            for (d, batches) in [(76, [3, 12]), (76, [12, 3]), (77, [3, 12])] {
                let mut p = Projection::new(kind, n_out, 5);
                p.fused = Fusion::Unfused;
                p.fit(d).unwrap();
                let r = p.matrix(&gpu).unwrap().re.to_vec(&gpu).unwrap();
                for batch in batches {
                    let x_host = crate::bench::random_vec(batch * d, batch as u64);
                    let x = Tensor::from_slice(&gpu, &x_host, &[batch, d]).unwrap();
                    let reference = if kind == Kind::Gaussian {
                        times(&x_host, d, &r, [n_out, d], true)
                    } else {
                        let mut free = p.clone();
                        free.mode = Mode::MatrixFree;
                        let y = free.transform(&gpu, &x).unwrap().to_vec(&gpu).unwrap();
                        y.into_iter().map(f64::from).collect()
                    };
                    let y = p.transform(&gpu, &x).unwrap().to_vec(&gpu).unwrap();
                    let e = distance(&y, &reference);
                    let what = format!(
                        "{} d = {d}, batches {batches:?}, batch {batch}",
                        kind.name()
                    );
                    assert!(e < 1e-5, "{what}: relative error {e:.2e}");
                    // Rᵀ where the texture matmul runs and the skinny one does not take it.
                    let wants_t = matmul::prefers_untransposed_b(&gpu).unwrap()
                        && (batch > matmul_skinny::MAX_ROWS || d % 4 != 0);
                    let (has_r, has_t) = kept(&p);
                    assert!(
                        if wants_t { has_t } else { has_r },
                        "{what}: kept {:?}",
                        kept(&p)
                    );
                }
                if kind == Kind::Gaussian {
                    let y_host = crate::bench::random_vec(2 * n_out, 9);
                    let y = Tensor::from_slice(&gpu, &y_host, &[2, n_out]).unwrap();
                    let back = p.inverse_transform(&gpu, &y).unwrap().to_vec(&gpu).unwrap();
                    let e = distance(&back, &times(&y_host, n_out, &r, [n_out, d], false));
                    assert!(e < 1e-5, "y R after batches {batches:?}: {e:.2e}");
                }
            }
        }
    }

    /// Each layout made from the other is exactly the matrix, on any adapter.
    #[test]
    fn the_layouts_are_made_from_each_other_exactly() {
        let gpu = gpu();
        let (d, n_out) = (36, 20);
        let mut p = Projection::new(Kind::Optical, n_out, 7);
        p.fit(d).unwrap();
        let m = p.matrix(&gpu).unwrap();
        let (re, im) = (
            m.re.to_vec(&gpu).unwrap(),
            m.im.unwrap().to_vec(&gpu).unwrap(),
        );
        // Split first, then transposed from it.
        let (split, kept) = (OnceLock::new(), OnceLock::new());
        p.split_layout(&gpu, &split, &kept).unwrap();
        let t = p.transposed_layout(&gpu, &split, &kept).unwrap();
        assert_eq!(t.re.to_vec(&gpu).unwrap(), transposed(&re, n_out, d));
        let t_im = t.im.as_ref().unwrap().to_vec(&gpu).unwrap();
        assert_eq!(t_im, transposed(&im, n_out, d));
        // Transposed first (generated), then split back from it.
        let (split, kept) = (OnceLock::new(), OnceLock::new());
        p.transposed_layout(&gpu, &split, &kept).unwrap();
        let s = p.split_layout(&gpu, &split, &kept).unwrap();
        assert_eq!(s.re.to_vec(&gpu).unwrap(), re);
        assert_eq!(s.im.as_ref().unwrap().to_vec(&gpu).unwrap(), im);
    }
}
