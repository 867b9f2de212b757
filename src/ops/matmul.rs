//! Batched matrix multiply `C = act(α·op(A)·op(B) + β·C + bias)` (`shaders/matmul.wgsl`).
//!
//! Operands may be larger than one storage binding: the host splits the problem into blocks
//! of batch, rows, columns and the shared dimension whose operand windows each fit one
//! binding. Blocks along k accumulate into C (β = 1 after the first), and the epilogue (bias,
//! activation) runs with the last one. Blocks along k are also kept short enough that no
//! invocation reaches the adapter's loop limit (`max_k_per_dispatch`; lavapipe ends an
//! invocation's loops after 65,535 iterations, which a k of 65,536 would pass).

use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::activation::Activation;
use crate::ops::loop_limit::most_within;
use crate::ops::{matmul_skinny, matmul_texture};
use crate::shaders;
use crate::tensor::{window_capacity, Operand, Tensor, Window};
use crate::tune::ShapeClass;

/// Which WGSL kernel computes a product. A configuration names the preferred one; when the
/// operands or the adapter do not allow it, the next in the order texture → vec4 → scalar
/// that does is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// `shaders/matmul.wgsl`: any shapes; 4 × 8 outputs per thread, scalar loads.
    Scalar,
    /// `shaders/matmul_vec4.wgsl`: rows of whole vec4s (see [`vec4_eligible`]); 8 × 8 outputs
    /// per thread, vec4 loads.
    Vec4,
    /// `shaders/matmul_texture.wgsl` after `shaders/matmul_pack.wgsl`: operands read through
    /// textures, for CPU adapters with 8-wide subgroups (see `ops::matmul_texture`).
    Texture,
    /// `shaders/matmul_tiled.wgsl`: the operands of [`vec4_eligible`] problems through
    /// double-buffered workgroup-memory tiles of 8T × 8T (T × T threads, 8 × 8 outputs each,
    /// T = `wg_x` = `wg_y`, 8 or 16).
    Tiled,
    /// `shaders/matmul_coop.wgsl`: f16 operands on the tensor cores (cooperative matrices),
    /// for [`crate::ops::matmul_f16`] where the adapter has them (see `ops::matmul_coop`); an
    /// f32 product asking for it runs the vec4 kernel. The workgroup shape counts subgroups:
    /// `1x1-coop` is one subgroup per 64 × 64 tile, `2x2-coop` four per 128 × 128 tile with
    /// the operands staged through workgroup memory (`ops::matmul_coop_staged`); any other
    /// shape runs `1x1`.
    Coop,
    /// `shaders/matmul_skinny.wgsl`: products of at most 8 rows (see `ops::matmul_skinny`),
    /// every row of 4 columns per group of `wg_y` threads (lanes along k, B transposed only
    /// where `wg_y` > 1) and k split into slices where the columns alone leave the adapter
    /// idle; `wg_x` groups per workgroup. The default for such products where the adapter
    /// reads B's layout well (B transposed, or on GPUs either), with one lane.
    Skinny,
}

impl MatmulKernel {
    /// The name used in configuration strings and reports.
    pub fn name(self) -> &'static str {
        match self {
            MatmulKernel::Scalar => "scalar",
            MatmulKernel::Vec4 => "vec4",
            MatmulKernel::Texture => "texture",
            MatmulKernel::Tiled => "tiled",
            MatmulKernel::Coop => "coop",
            MatmulKernel::Skinny => "skinny",
        }
    }

    /// Rows of C one thread computes (storage kernels; the coop kernel's whole subgroup
    /// computes 64).
    pub fn rows_per_thread(self) -> u32 {
        match self {
            MatmulKernel::Scalar => 4,
            MatmulKernel::Vec4 | MatmulKernel::Tiled | MatmulKernel::Skinny => 8,
            MatmulKernel::Texture => 16,
            MatmulKernel::Coop => 64,
        }
    }

    /// Columns of C one thread computes (storage kernels: two vec4s; the coop kernel's whole
    /// subgroup computes 64).
    pub fn cols_per_thread(self) -> u32 {
        match self {
            MatmulKernel::Texture | MatmulKernel::Skinny => 4,
            MatmulKernel::Coop => 64,
            _ => 8,
        }
    }

    fn shader(self) -> &'static shaders::Kernel {
        match self {
            MatmulKernel::Scalar => &shaders::MATMUL,
            MatmulKernel::Vec4 => &shaders::MATMUL_VEC4,
            MatmulKernel::Texture => &shaders::MATMUL_TEXTURE,
            MatmulKernel::Tiled => &shaders::MATMUL_TILED,
            MatmulKernel::Coop => &shaders::MATMUL_COOP,
            MatmulKernel::Skinny => &shaders::MATMUL_SKINNY,
        }
    }

    /// The override constants of the storage kernels for `cfg` and the transposes.
    pub(crate) fn constants(
        self,
        cfg: &MatmulConfig,
        trans_a: bool,
        trans_b: bool,
    ) -> Vec<(&'static str, f64)> {
        let mut c = match self {
            MatmulKernel::Tiled => vec![("T", f64::from(cfg.wg_x))],
            // The coop kernel's workgroup is one subgroup, set by its host module.
            MatmulKernel::Coop => Vec::new(),
            // One row of wg_x groups of wg_y lanes; A is never transposed (its host adds ROWS,
            // the rows of C, and the lanes' workgroup memory).
            MatmulKernel::Skinny => {
                return vec![
                    ("WG", f64::from(cfg.wg_x * cfg.wg_y)),
                    ("LANES", f64::from(cfg.wg_y)),
                    ("TRANS_B", f64::from(u8::from(trans_b))),
                ]
            }
            _ => vec![("WG_X", f64::from(cfg.wg_x)), ("WG_Y", f64::from(cfg.wg_y))],
        };
        c.push(("TRANS_A", f64::from(u8::from(trans_a))));
        c.push(("TRANS_B", f64::from(u8::from(trans_b))));
        c
    }

    /// Blocks of rows, columns and k must be multiples of this.
    fn alignment(self) -> usize {
        match self {
            MatmulKernel::Scalar => 1,
            _ => 4,
        }
    }
}

/// Workgroup shape of the storage kernels (WGSL overrides `WG_X`, `WG_Y`) and the preferred
/// kernel. A storage kernel's workgroup computes a (rows per thread · wg_y) × (8 · wg_x) tile
/// of C; the texture kernel's workgroup is fixed (one subgroup of 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulConfig {
    /// Threads along the columns of C.
    pub wg_x: u32,
    /// Threads along the rows of C.
    pub wg_y: u32,
    /// The kernel to use where the operands and adapter allow it.
    pub kernel: MatmulKernel,
}

impl MatmulConfig {
    /// For CPU adapters (lavapipe): the texture kernel, else 8 threads in a row (one SIMD
    /// register on lavapipe).
    pub const CPU: MatmulConfig = MatmulConfig {
        wg_x: 8,
        wg_y: 1,
        kernel: MatmulKernel::Texture,
    };
    /// For GPUs: the vec4 kernel with 64 threads. Measured on an H200 at n = 4096, it ran
    /// within 4 % at every shape from 8×4 to 16×8 threads, and 30 % slower at 32×8 or 16×16.
    pub const GPU: MatmulConfig = MatmulConfig {
        wg_x: 8,
        wg_y: 8,
        kernel: MatmulKernel::Vec4,
    };

    /// The built-in configuration for `gpu`: [`MatmulConfig::CPU`] on CPU adapters and
    /// [`MatmulConfig::GPU`] elsewhere.
    pub fn builtin(gpu: &Gpu) -> MatmulConfig {
        if gpu.is_cpu() {
            MatmulConfig::CPU
        } else {
            MatmulConfig::GPU
        }
    }

    /// `SPECKLE_MATMUL_CONFIG` (see [`FromStr`]) when set and not empty.
    pub(crate) fn from_env() -> Option<Result<MatmulConfig>> {
        std::env::var("SPECKLE_MATMUL_CONFIG")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse())
    }

    /// The configuration for `gpu` whatever the problem: `SPECKLE_MATMUL_CONFIG` if set,
    /// else [`MatmulConfig::builtin`].
    pub fn for_gpu(gpu: &Gpu) -> Result<MatmulConfig> {
        MatmulConfig::from_env().unwrap_or_else(|| Ok(MatmulConfig::builtin(gpu)))
    }

    /// The configuration for one problem: `SPECKLE_MATMUL_CONFIG` if set, else the one tuned
    /// for its class on this adapter ([`crate::tune`], when it passes the adapter's limits),
    /// else [`MatmulConfig::builtin_for`].
    pub fn for_problem(
        gpu: &Gpu,
        d: &MatmulDims,
        trans_a: bool,
        trans_b: bool,
    ) -> Result<MatmulConfig> {
        if let Some(env) = MatmulConfig::from_env() {
            return env;
        }
        let tuned = gpu
            .tuned_config(TUNE_OP, &shape_class(d, trans_a, trans_b))
            .and_then(|s| s.parse::<MatmulConfig>().ok())
            .filter(|c| c.check(gpu).is_ok());
        Ok(tuned.unwrap_or_else(|| MatmulConfig::builtin_for(gpu, d, trans_a, trans_b)))
    }

    /// The built-in configuration for one problem: [`matmul_skinny::CONFIG`] where the skinny
    /// kernel is the better choice ([`matmul_skinny::preferred`]), else
    /// [`MatmulConfig::builtin`].
    pub fn builtin_for(gpu: &Gpu, d: &MatmulDims, trans_a: bool, trans_b: bool) -> MatmulConfig {
        if matmul_skinny::preferred(gpu, d, trans_a, trans_b) {
            matmul_skinny::CONFIG
        } else {
            MatmulConfig::builtin(gpu)
        }
    }

    /// Rows of C per workgroup with `kernel`.
    pub fn tile_m(&self, kernel: MatmulKernel) -> u32 {
        match kernel {
            MatmulKernel::Texture | MatmulKernel::Coop | MatmulKernel::Skinny => {
                kernel.rows_per_thread()
            }
            _ => kernel.rows_per_thread() * self.wg_y,
        }
    }

    /// Columns of C per workgroup with `kernel`.
    pub fn tile_n(&self, kernel: MatmulKernel) -> u32 {
        match kernel {
            MatmulKernel::Texture => 8 * kernel.cols_per_thread(),
            MatmulKernel::Coop => kernel.cols_per_thread(),
            _ => kernel.cols_per_thread() * self.wg_x,
        }
    }

    /// Checks the workgroup against the adapter's limits (and, for the tiled kernel, its
    /// shape rules and workgroup memory).
    pub fn check(&self, gpu: &Gpu) -> Result<()> {
        let l = gpu.limits();
        // The skinny kernel's workgroup is one row of wg_x groups of wg_y lanes.
        let (size_x, size_y) = match self.kernel {
            MatmulKernel::Skinny => (self.wg_x * self.wg_y, 1),
            _ => (self.wg_x, self.wg_y),
        };
        if self.kernel == MatmulKernel::Tiled {
            let t = self.wg_x;
            if self.wg_y != t || !TILED_SIZES.contains(&t) {
                return Err(Error::invalid(format!(
                    "the tiled matmul takes square workgroups of T x T threads with T in \
                     {TILED_SIZES:?}, got {}x{}",
                    self.wg_x, self.wg_y
                )));
            }
            let bytes = tiled_workgroup_bytes(t);
            if bytes > l.max_compute_workgroup_storage_size {
                return Err(Error::invalid(format!(
                    "the tiled matmul with T = {t} needs {bytes} bytes of workgroup memory, the \
                     adapter allows {} (max_compute_workgroup_storage_size)",
                    l.max_compute_workgroup_storage_size
                )));
            }
        }
        let threads = self.wg_x * self.wg_y;
        if self.wg_x == 0
            || self.wg_y == 0
            || size_x > l.max_compute_workgroup_size_x
            || size_y > l.max_compute_workgroup_size_y
            || threads > l.max_compute_invocations_per_workgroup
        {
            return Err(Error::invalid(format!(
                "matmul workgroup {}x{} ({threads} threads) exceeds the adapter's limits \
                 (x <= {}, y <= {}, x*y <= {})",
                self.wg_x,
                self.wg_y,
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y,
                l.max_compute_invocations_per_workgroup
            )));
        }
        Ok(())
    }
}

/// The thread counts T the tiled kernel takes (its tiles are 8T × 8T, k in slices of T).
pub const TILED_SIZES: [u32; 2] = [8, 16];

/// Workgroup memory of the tiled kernel: two copies of two tiles of 2T² vec4s.
pub fn tiled_workgroup_bytes(t: u32) -> u32 {
    2 * 2 * 2 * t * t * 16
}

impl FromStr for MatmulConfig {
    type Err = Error;

    /// Parses `WGXxWGY[-KERNEL]`: the storage kernels' workgroup (threads along columns x
    /// rows) and the preferred kernel (`texture`, `vec4` (the default), `tiled`, `coop`
    /// (subgroups along columns x rows), `skinny` (WGX groups of 4 columns, WGY lanes along k
    /// per group) or `scalar`), e.g. `8x8`, `16x4-scalar`, `8x1-texture`, `16x16-tiled`,
    /// `2x2-coop`, `64x1-skinny`, `8x8-skinny`.
    fn from_str(s: &str) -> Result<MatmulConfig> {
        let bad = || {
            Error::invalid(format!(
                "matmul config {s:?} is not WGXxWGY[-texture|-vec4|-tiled|-coop|-skinny|-scalar] (e.g. 8x8, 16x16-tiled)"
            ))
        };
        let (shape, kernel) = match s.split_once('-') {
            None => (s, MatmulKernel::Vec4),
            Some((shape, "vec4")) => (shape, MatmulKernel::Vec4),
            Some((shape, "scalar")) => (shape, MatmulKernel::Scalar),
            Some((shape, "texture")) => (shape, MatmulKernel::Texture),
            Some((shape, "tiled")) => (shape, MatmulKernel::Tiled),
            Some((shape, "coop")) => (shape, MatmulKernel::Coop),
            Some((shape, "skinny")) => (shape, MatmulKernel::Skinny),
            Some(_) => return Err(bad()),
        };
        let (x, y) = shape.split_once('x').ok_or_else(bad)?;
        Ok(MatmulConfig {
            wg_x: x.trim().parse().map_err(|_| bad())?,
            wg_y: y.trim().parse().map_err(|_| bad())?,
            kernel,
        })
    }
}

impl std::fmt::Display for MatmulConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}-{}", self.wg_x, self.wg_y, self.kernel.name())
    }
}

/// Options of [`run`] and [`plan`]. `Default`: α = 1, β = 0, no transposes, no bias, identity.
#[derive(Clone, Copy, Debug)]
pub struct MatmulOptions<'a> {
    /// Use Aᵀ: A is stored as [.., k, m].
    pub trans_a: bool,
    /// Use Bᵀ: B is stored as [.., n, k].
    pub trans_b: bool,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the existing C (0: C is not read, so it may hold anything).
    pub beta: f32,
    /// Added to each row of the result: n values.
    pub bias: Option<&'a Tensor>,
    /// Applied last.
    pub activation: Activation,
    /// Workgroup shape and kernel; `None` picks [`MatmulConfig::for_problem`] (a tuned
    /// configuration where `speckle tune` measured one).
    pub config: Option<MatmulConfig>,
}

impl Default for MatmulOptions<'_> {
    fn default() -> Self {
        MatmulOptions {
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            beta: 0.0,
            bias: None,
            activation: Activation::Identity,
            config: None,
        }
    }
}

/// The problem a pair of operand shapes describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    /// Number of products (1 for 2-D operands).
    pub batch: usize,
    /// Rows of op(A) and C.
    pub m: usize,
    /// Columns of op(B) and C.
    pub n: usize,
    /// The shared dimension.
    pub k: usize,
    /// Elements between consecutive A matrices (0: one A shared by the batch).
    pub a_batch_stride: usize,
    /// Elements between consecutive B matrices (0: one B shared by the batch).
    pub b_batch_stride: usize,
    /// True when C has a batch axis (either operand is 3-D).
    pub batched: bool,
}

impl MatmulDims {
    /// Checks the operand shapes (2-D `[rows, cols]` or 3-D `[batch, rows, cols]`; a batch of
    /// 1 or a 2-D operand is shared by the whole batch) and derives the problem.
    pub fn new(a: &[usize], b: &[usize], trans_a: bool, trans_b: bool) -> Result<MatmulDims> {
        for (name, s) in [("A", a), ("B", b)] {
            if s.len() != 2 && s.len() != 3 {
                return Err(Error::shape(
                    "matmul",
                    format!("{name} must be 2-D [rows, cols] or 3-D [batch, rows, cols], got shape {s:?}"),
                ));
            }
            if s.contains(&0) {
                return Err(Error::shape(
                    "matmul",
                    format!("{name} has a zero-size dimension: shape {s:?}"),
                ));
            }
        }
        let split = |s: &[usize]| -> (usize, usize, usize) {
            if s.len() == 3 {
                (s[0], s[1], s[2])
            } else {
                (1, s[0], s[1])
            }
        };
        let (ab, ar, ac) = split(a);
        let (bb, br, bc) = split(b);
        let (m, ka) = if trans_a { (ac, ar) } else { (ar, ac) };
        let (kb, n) = if trans_b { (bc, br) } else { (br, bc) };
        if ka != kb {
            return Err(Error::shape(
                "matmul",
                format!(
                    "inner dimensions differ: op(A) is {m}x{ka} (A {a:?}{}) but op(B) is {kb}x{n} (B {b:?}{})",
                    if trans_a { ", transposed" } else { "" },
                    if trans_b { ", transposed" } else { "" }
                ),
            ));
        }
        if ab != bb && ab != 1 && bb != 1 {
            return Err(Error::shape(
                "matmul",
                format!("batch sizes differ: A {a:?} has {ab}, B {b:?} has {bb} (they must match or one be 1)"),
            ));
        }
        Ok(MatmulDims {
            batch: ab.max(bb),
            m,
            n,
            k: ka,
            a_batch_stride: if ab == 1 { 0 } else { ar * ac },
            b_batch_stride: if bb == 1 { 0 } else { br * bc },
            batched: a.len() == 3 || b.len() == 3,
        })
    }

    /// The shape of C.
    pub fn output_shape(&self) -> Vec<usize> {
        if self.batched {
            vec![self.batch, self.m, self.n]
        } else {
            vec![self.m, self.n]
        }
    }

    /// Floating-point operations of the product (2·batch·m·n·k).
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// Uniform parameters of the matmul kernels. Keep in sync with `Params` in
/// `shaders/lib/matmul_params.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) flags: u32,
    pub(crate) a_first: u32,
    pub(crate) b_first: u32,
    pub(crate) c_first: u32,
    pub(crate) bias_first: u32,
    pub(crate) a_batch_stride: u32,
    pub(crate) b_batch_stride: u32,
    pub(crate) c_batch_stride: u32,
    pub(crate) lda: u32,
    pub(crate) ldb: u32,
    pub(crate) ldc: u32,
    pub(crate) activation: u32,
    pub(crate) activation_param: f32,
    pub(crate) alpha: f32,
    pub(crate) beta: f32,
    /// `matmul_skinny`'s split of k: values per slice, and slices (0 for the other kernels).
    pub(crate) slice_k: u32,
    pub(crate) slices: u32,
}

impl MatmulParams {
    /// The parameters of a product computed in one dispatch over whole operands, C bound from
    /// `c_first` and the bias (where `o` has one) from `bias_first`: the shape, C's layout and
    /// `o`'s epilogue (C read where β ≠ 0). The operands' fields are the kernel's to set.
    pub(crate) fn whole(
        d: &MatmulDims,
        o: &MatmulOptions<'_>,
        c_first: u32,
        bias_first: Option<u32>,
    ) -> MatmulParams {
        let mut flags = FLAG_EPILOGUE;
        if o.beta != 0.0 {
            flags |= FLAG_READ_C;
        }
        if bias_first.is_some() {
            flags |= FLAG_BIAS;
        }
        MatmulParams {
            m: d.m as u32,
            n: d.n as u32,
            k: d.k as u32,
            flags,
            c_first,
            bias_first: bias_first.unwrap_or(0),
            c_batch_stride: (d.m * d.n) as u32,
            ldc: d.n as u32,
            activation: o.activation.code(),
            activation_param: o.activation.param(),
            alpha: o.alpha,
            beta: o.beta,
            ..Default::default()
        }
    }
}

// Keep in sync with the FLAG_ constants of shaders/lib/matmul_params.wgsl.
const FLAG_READ_C: u32 = 1;
const FLAG_BIAS: u32 = 2;
const FLAG_EPILOGUE: u32 = 4;

/// Block sizes (batch, rows, columns, shared dimension) of one dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocks {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
}

/// Elements each operand's window spans for a block (the same for every block position).
fn spans(d: &MatmulDims, o: &MatmulOptions<'_>, blk: &Blocks) -> [usize; 3] {
    let (lda, ldb) = leading_dims(d, o);
    let a = (blk.batch - 1) * d.a_batch_stride
        + if o.trans_a {
            (blk.k - 1) * lda + blk.m
        } else {
            (blk.m - 1) * lda + blk.k
        };
    let b = (blk.batch - 1) * d.b_batch_stride
        + if o.trans_b {
            (blk.n - 1) * ldb + blk.k
        } else {
            (blk.k - 1) * ldb + blk.n
        };
    let c = (blk.batch - 1) * d.m * d.n + (blk.m - 1) * d.n + blk.n;
    [a, b, c]
}

fn leading_dims(d: &MatmulDims, o: &MatmulOptions<'_>) -> (usize, usize) {
    let lda = if o.trans_a { d.m } else { d.k };
    let ldb = if o.trans_b { d.k } else { d.n };
    (lda, ldb)
}

/// True when the vec4 kernel can compute this problem: every row it reads as vec4s holds
/// whole vec4s (C and B in N layout along n, A in N and B in T layout along k, A in T layout
/// along m).
pub fn vec4_eligible(d: &MatmulDims, trans_a: bool, trans_b: bool) -> bool {
    let whole = |v: usize| v.is_multiple_of(4);
    whole(d.n) && whole(if trans_a { d.m } else { d.k }) && (!trans_b || whole(d.k))
}

/// Loop passes a matmul kernel's invocation makes besides its k loop (the stores and
/// epilogues), an upper bound for the whole family. A loop of n iterations counts n + 1
/// passes against the limit and every pass of an outer loop adds one per loop inside it
/// (see [`crate::ops::loop_limit::looped`]), so per k the scalar kernel makes 1 pass, the vec4 and
/// texture kernels 1/4, the tiled kernel (T + 2)/T (T + 1 for a slice of T values of k and one
/// for the slice loop: 5/4 at T = 8, measured there: an all-ones product with k = 64,000 in
/// one dispatch summed 52,429 terms), the tensor-core kernels at most 1/8. No invocation
/// makes more than [`LOOP_PASSES_PER_K`] · k + this.
pub(crate) const LOOP_OVERHEAD: u64 = 1024;

/// The most loop passes per unit of k of any matmul kernel (the tiled kernel at T = 8), as a
/// fraction: 5/4.
const LOOP_PASSES_PER_K: (u64, u64) = (5, 4);

/// Blocks along k shortened for the loop limit are multiples of this, which every kernel's
/// k alignment divides (1, 4, 16, and the staged tensor-core kernel's slab of 32).
const K_BLOCK_ALIGN: usize = 64;

/// The most loop passes an invocation of any matmul kernel makes for a dispatch covering `k`.
pub(crate) fn loop_passes(k: usize) -> u64 {
    let (num, den) = LOOP_PASSES_PER_K;
    (k as u64 * num).div_ceil(den) + LOOP_OVERHEAD
}

/// The longest k one dispatch may cover on `gpu`: `usize::MAX` without a loop limit, else
/// the largest multiple of 64 that keeps every kernel's invocations within it
/// ([`loop_passes`]). An [`Error::LoopLimit`] where the limit leaves no room for 64.
pub(crate) fn max_k_per_dispatch(gpu: &Gpu) -> Result<usize> {
    let k = most_within(
        gpu,
        "matmul",
        K_BLOCK_ALIGN as u64,
        u64::from(u32::MAX),
        |k| loop_passes(k as usize),
        "no product can be planned within that limit",
    )?;
    Ok(k.map_or(usize::MAX, |k| k as usize / K_BLOCK_ALIGN * K_BLOCK_ALIGN))
}

/// Largest blocks whose windows fit `capacity` elements and whose grid fits the dispatch
/// limits, with rows, columns and k in multiples of `align` (except a dimension's whole
/// extent) and k at most `max_k` (a multiple of `align`, from [`max_k_per_dispatch`]).
/// Halves the batch first, then the dimension that makes the offending window long. `None`
/// when no such blocks exist (only possible for `align` > 1).
pub(crate) fn choose_blocks(
    d: &MatmulDims,
    o: &MatmulOptions<'_>,
    tile: (usize, usize),
    align: usize,
    capacity: usize,
    max_groups: usize,
    max_k: usize,
) -> Option<Blocks> {
    let mut blk = Blocks {
        batch: d.batch.min(max_groups),
        m: d.m.min(max_groups * tile.0),
        n: d.n.min(max_groups * tile.1),
        k: d.k.min(max_k),
    };
    let half = |v: usize| v.div_ceil(2).next_multiple_of(align);
    loop {
        let [a, b, c] = spans(d, o, &blk);
        if a.max(b).max(c) <= capacity {
            return Some(blk);
        }
        let before = blk;
        if blk.batch > 1 {
            blk.batch = blk.batch.div_ceil(2);
        } else if a > capacity {
            // A's window grows with rows (N) or the shared dimension (T) first.
            let rows_first = !o.trans_a;
            if (rows_first && blk.m > align) || (!rows_first && blk.k <= align) {
                blk.m = half(blk.m);
            } else {
                blk.k = half(blk.k);
            }
        } else if b > capacity {
            // B's window grows with the shared dimension (N) or columns (T) first.
            let k_first = !o.trans_b;
            if (k_first && blk.k > align) || (!k_first && blk.n <= align) {
                blk.k = half(blk.k);
            } else {
                blk.n = half(blk.n);
            }
        } else if blk.m > align {
            blk.m = half(blk.m);
        } else {
            blk.n = half(blk.n);
        }
        if blk == before {
            return None;
        }
    }
}

/// Whether a fixed operand B of products `x · B` is best stored untransposed (`[k, n]`) on
/// `gpu`: true where its matmuls run the texture kernel (the built-in configuration of CPU
/// adapters), which copies such a B into its texture directly but lays out a transposed one
/// (`[n, k]`) by a pass over all of it on every call. Measured on lavapipe, 64 × 1024 times
/// 1024 × 4096: 11–22 ms of packing Bᵀ beside a 12 ms product, against 1.3–1.6 ms of copies.
/// Elsewhere the storage kernels read either layout in place.
pub fn prefers_untransposed_b(gpu: &Gpu) -> Result<bool> {
    Ok(MatmulConfig::for_gpu(gpu)?.kernel == MatmulKernel::Texture)
}

/// The op name of matmul's tuned configurations ([`crate::tune`]).
pub const TUNE_OP: &str = "matmul";

/// The tuning class of a product: the layout (`NN`, `NT`, `TN`, `TT`, with ` batched` for a
/// batch of several products) and the octaves of m, n and k.
pub fn shape_class(d: &MatmulDims, trans_a: bool, trans_b: bool) -> ShapeClass {
    let layout = |t: bool| if t { 'T' } else { 'N' };
    let mut tag = format!("{}{}", layout(trans_a), layout(trans_b));
    if d.batch > 1 {
        tag.push_str(" batched");
    }
    ShapeClass::new(tag, &[d.m, d.n, d.k])
}

/// The configuration `o` asks for (or the one for this problem), checked against the limits.
fn config_of(gpu: &Gpu, d: &MatmulDims, o: &MatmulOptions<'_>) -> Result<MatmulConfig> {
    let cfg = match o.config {
        Some(c) => c,
        None => MatmulConfig::for_problem(gpu, d, o.trans_a, o.trans_b)?,
    };
    cfg.check(gpu)?;
    Ok(cfg)
}

/// The configuration a product runs with: [`config_of`]'s, except that a skinny one whose
/// kernel cannot take the operands ([`matmul_skinny::eligible`]) gives way to the adapter's
/// built-in configuration, whose kernels then choose as they do for any product.
fn effective_config(
    gpu: &Gpu,
    d: &MatmulDims,
    (a, b, c): (&Tensor, &Tensor, &Tensor),
    o: &MatmulOptions<'_>,
) -> Result<MatmulConfig> {
    let cfg = config_of(gpu, d, o)?;
    if cfg.kernel == MatmulKernel::Skinny && !matmul_skinny::eligible(gpu, d, o, (a, b, c), &cfg)? {
        return Ok(MatmulConfig::builtin(gpu));
    }
    Ok(cfg)
}

/// The kernel chosen for a product, with the block split of the storage kernels.
enum Choice {
    Texture,
    Skinny,
    Storage(MatmulKernel, Blocks),
}

/// The preferred kernel of `cfg` (from [`effective_config`]: a skinny one takes the operands)
/// if the operands and adapter allow it, else the next one (texture → vec4 → scalar) that
/// does.
fn choose(
    gpu: &Gpu,
    d: &MatmulDims,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    cfg: &MatmulConfig,
) -> Result<Choice> {
    if cfg.kernel == MatmulKernel::Texture && matmul_texture::takes(gpu, d, a, b, c.len())? {
        return Ok(Choice::Texture);
    }
    if cfg.kernel == MatmulKernel::Skinny {
        return Ok(Choice::Skinny);
    }
    let max_k = max_k_per_dispatch(gpu)?;
    let capacity = window_capacity(gpu);
    let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
    let blocks_for = |kernel: MatmulKernel| {
        let tile = (cfg.tile_m(kernel) as usize, cfg.tile_n(kernel) as usize);
        choose_blocks(d, o, tile, kernel.alignment(), capacity, max_groups, max_k)
    };
    if cfg.kernel != MatmulKernel::Scalar && vec4_eligible(d, o.trans_a, o.trans_b) {
        if cfg.kernel == MatmulKernel::Tiled {
            if let Some(blk) = blocks_for(MatmulKernel::Tiled) {
                return Ok(Choice::Storage(MatmulKernel::Tiled, blk));
            }
        }
        // The vec4 kernel keeps the tiled configuration's thread count as its workgroup.
        if let Some(blk) = blocks_for(MatmulKernel::Vec4) {
            return Ok(Choice::Storage(MatmulKernel::Vec4, blk));
        }
    }
    let blk = blocks_for(MatmulKernel::Scalar)
        .ok_or_else(|| Error::invalid("matmul: no block split fits one binding"))?;
    Ok(Choice::Storage(MatmulKernel::Scalar, blk))
}

/// The kernel [`plan`] would use for these operands and options.
pub fn kernel_for(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
) -> Result<MatmulKernel> {
    let d = MatmulDims::new(a.shape(), b.shape(), o.trans_a, o.trans_b)?;
    Ok(
        match choose(
            gpu,
            &d,
            a,
            b,
            c,
            o,
            &effective_config(gpu, &d, (a, b, c), o)?,
        )? {
            Choice::Texture => MatmulKernel::Texture,
            Choice::Skinny => MatmulKernel::Skinny,
            Choice::Storage(kernel, _) => kernel,
        },
    )
}

/// Plans `c = act(α·op(a)·op(b) + β·c + bias)`. `c` must have the output shape
/// ([`MatmulDims::output_shape`]); it is only read when β ≠ 0.
pub fn plan(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
) -> Result<Vec<Dispatch>> {
    let d = MatmulDims::new(a.shape(), b.shape(), o.trans_a, o.trans_b)?;
    check_problem(&d, a.shape(), b.shape(), c, o)?;
    let cfg = effective_config(gpu, &d, (a, b, c), o)?;
    let (kernel, blk) = match choose(gpu, &d, a, b, c, o, &cfg)? {
        Choice::Texture => return matmul_texture::plan(gpu, a, b, c, o, &d),
        Choice::Skinny => return matmul_skinny::plan(gpu, &d, o, a, b, c, &cfg),
        Choice::Storage(kernel, blk) => (kernel, blk),
    };
    plan_storage(gpu, d, a, b, c, o, kernel.shader(), kernel, &cfg, blk)
}

/// The dispatches of a storage kernel with the epilogue's bindings: `shader` (the f32 build
/// of `kernel`, or its f16-operand build) compiled with `cfg`'s overrides, over blocks `blk`.
#[expect(
    clippy::too_many_arguments,
    reason = "the product's operands, options, kernel and block split"
)]
pub(crate) fn plan_storage(
    gpu: &Gpu,
    d: MatmulDims,
    a: &dyn Operand,
    b: &dyn Operand,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    shader: &shaders::Kernel,
    kernel: MatmulKernel,
    cfg: &MatmulConfig,
    blk: Blocks,
) -> Result<Vec<Dispatch>> {
    let pipeline = gpu.pipeline(shader, &kernel.constants(cfg, o.trans_a, o.trans_b))?;
    let tile = (cfg.tile_m(kernel), cfg.tile_n(kernel));
    Ok(plan_blocks(
        gpu,
        d,
        a,
        b,
        c,
        o,
        &pipeline,
        tile,
        blk,
        Bindings::WithBias,
    ))
}

/// The checks every product passes before planning: C's shape, the bias length, finite
/// scalars. `a_shape` and `b_shape` name the operands in messages.
pub(crate) fn check_problem(
    d: &MatmulDims,
    a_shape: &[usize],
    b_shape: &[usize],
    c: &Tensor,
    o: &MatmulOptions<'_>,
) -> Result<()> {
    if c.shape() != d.output_shape().as_slice() {
        return Err(Error::shape(
            "matmul",
            format!(
                "C has shape {:?} but A {:?} times B {:?} gives {:?}",
                c.shape(),
                a_shape,
                b_shape,
                d.output_shape()
            ),
        ));
    }
    if let Some(bias) = o.bias {
        if bias.len() != d.n {
            return Err(Error::shape(
                "matmul",
                format!(
                    "bias has shape {:?} but C has {} columns",
                    bias.shape(),
                    d.n
                ),
            ));
        }
    }
    for (name, v) in [
        ("alpha", o.alpha),
        ("beta", o.beta),
        ("activation parameter", o.activation.param()),
    ] {
        if !v.is_finite() {
            return Err(Error::invalid(format!(
                "matmul {name} must be finite, got {v}"
            )));
        }
    }
    Ok(())
}

/// The binding layout of a storage kernel: params, A, B, bias, C (0..4), or, for kernels
/// without an epilogue (the cooperative-matrix one), params, A, B, C (0..3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bindings {
    WithBias,
    NoBias,
}

/// The dispatches of a storage kernel (`pipeline`, whose workgroup computes `tile` rows and
/// columns of C) over the blocks `blk` of the problem: operand windows per block, k blocks
/// accumulating into C (β = 1 after the first) with the epilogue on the last.
#[expect(
    clippy::too_many_arguments,
    reason = "the product's operands, options, kernel and block split"
)]
pub(crate) fn plan_blocks(
    gpu: &Gpu,
    d: MatmulDims,
    a: &dyn Operand,
    b: &dyn Operand,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    pipeline: &Arc<wgpu::ComputePipeline>,
    tile: (u32, u32),
    blk: Blocks,
    layout: Bindings,
) -> Vec<Dispatch> {
    let spans = spans(&d, o, &blk);
    let (lda, ldb) = leading_dims(&d, o);
    let k_blocks = d.k.div_ceil(blk.k);
    let mut dispatches = Vec::new();
    for b0 in (0..d.batch).step_by(blk.batch) {
        let bb = blk.batch.min(d.batch - b0);
        for m0 in (0..d.m).step_by(blk.m) {
            let mb = blk.m.min(d.m - m0);
            for n0 in (0..d.n).step_by(blk.n) {
                let nb = blk.n.min(d.n - n0);
                for (ki, k0) in (0..d.k).step_by(blk.k).enumerate() {
                    let kb = blk.k.min(d.k - k0);
                    let a_start = b0 * d.a_batch_stride
                        + if o.trans_a {
                            k0 * lda + m0
                        } else {
                            m0 * lda + k0
                        };
                    let b_start = b0 * d.b_batch_stride
                        + if o.trans_b {
                            n0 * ldb + k0
                        } else {
                            k0 * ldb + n0
                        };
                    let c_start = b0 * d.m * d.n + m0 * d.n + n0;
                    let aw = a.window_of(gpu, a_start, spans[0].min(a.elements() - a_start));
                    let bw = b.window_of(gpu, b_start, spans[1].min(b.elements() - b_start));
                    let cw = c.window(gpu, c_start, spans[2].min(c.len() - c_start));
                    let first = ki == 0;
                    let last = ki + 1 == k_blocks;
                    let beta = if first { o.beta } else { 1.0 };
                    let mut flags = 0;
                    if beta != 0.0 {
                        flags |= FLAG_READ_C;
                    }
                    if last {
                        flags |= FLAG_EPILOGUE;
                    }
                    let bias_window = o.bias.map(|t| t.window(gpu, n0, nb));
                    if bias_window.is_some() {
                        flags |= FLAG_BIAS;
                    }
                    let params = MatmulParams {
                        m: mb as u32,
                        n: nb as u32,
                        k: kb as u32,
                        flags,
                        a_first: aw.first,
                        b_first: bw.first,
                        c_first: cw.first,
                        bias_first: bias_window.as_ref().map_or(0, |w| w.first),
                        a_batch_stride: d.a_batch_stride as u32,
                        b_batch_stride: d.b_batch_stride as u32,
                        c_batch_stride: (d.m * d.n) as u32,
                        lda: lda as u32,
                        ldb: ldb as u32,
                        ldc: d.n as u32,
                        activation: o.activation.code(),
                        activation_param: o.activation.param(),
                        alpha: o.alpha,
                        beta,
                        slice_k: 0,
                        slices: 0,
                    };
                    let uniform = gpu.uniform("speckle.matmul.params", &params);
                    let bias_resource = Window::or_placeholder(bias_window.as_ref(), gpu);
                    let resources = match layout {
                        Bindings::WithBias => vec![
                            uniform.as_entire_binding(),
                            aw.resource(),
                            bw.resource(),
                            bias_resource,
                            cw.resource(),
                        ],
                        Bindings::NoBias => vec![
                            uniform.as_entire_binding(),
                            aw.resource(),
                            bw.resource(),
                            cw.resource(),
                        ],
                    };
                    let bind_group = gpu.bind_group(pipeline, &resources);
                    dispatches.push(Dispatch::kernel(
                        pipeline.clone(),
                        bind_group,
                        [
                            (nb as u32).div_ceil(tile.1),
                            (mb as u32).div_ceil(tile.0),
                            bb as u32,
                        ],
                    ));
                }
            }
        }
    }
    dispatches
}

/// Returns `act(α·op(a)·op(b) + bias)` as a new tensor (β is ignored: there is no C yet).
pub fn run(gpu: &Gpu, a: &Tensor, b: &Tensor, options: &MatmulOptions<'_>) -> Result<Tensor> {
    let d = MatmulDims::new(a.shape(), b.shape(), options.trans_a, options.trans_b)?;
    let c = Tensor::empty(gpu, &d.output_shape())?;
    let options = MatmulOptions {
        beta: 0.0,
        ..*options
    };
    gpu.execute(&plan(gpu, a, b, &c, &options)?)?;
    Ok(c)
}

/// Computes `c = act(α·op(a)·op(b) + β·c + bias)` in place.
pub fn run_into(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    options: &MatmulOptions<'_>,
) -> Result<()> {
    gpu.execute(&plan(gpu, a, b, c, options)?)
}
