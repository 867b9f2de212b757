//! The element-wise steps of the iterative solvers (`shaders/axpy.wgsl`): y ← y + c·x and its
//! relatives on the rows of a `[rows, cols]` tensor, with a per-row coefficient c_b that the
//! GPU computes from `[rows]` tensors (c_b = α·num_b^p·den_b^q or α·sign(num_b)). A solver's
//! step sizes are ratios of sums of squares that [`crate::ops::reduce`] leaves on the GPU, so
//! iterations run without reading anything back. The f64 reference is [`crate::cpu::axpy`].

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// Uniform parameters of `shaders/axpy.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AxpyParams {
    rows: u32,
    cols: u32,
    _pad: u32,
    flags: u32,
    x_first: u32,
    x_stride: u32,
    y_first: u32,
    y_stride: u32,
    w_first: u32,
    w_stride: u32,
    num_first: u32,
    den_first: u32,
    half: u32,
    alpha: f32,
    e_num: f32,
    e_den: f32,
}

// Keep in sync with the FLAG_ constants of shaders/axpy.wgsl.
const FLAG_NUM: u32 = 1;
const FLAG_DEN: u32 = 2;
const FLAG_SIGN: u32 = 4;

const WG: u32 = 256;

/// What the kernel computes, per row b with coefficient c = c_b (formulas in
/// `shaders/axpy.wgsl`). `x` and `w` have y's shape unless stated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxpyOp {
    /// y = y + c·x. `x` may also be one row (`[cols]`), added to every row (a bias).
    Axpy,
    /// y = x + c·y (the conjugate-gradient direction update).
    Xpay,
    /// y = c·x (`x` may be `y`: in place).
    Scale,
    /// y = c·x·y, element-wise (masking).
    Mul,
    /// y = 1 where x > 0 or w > 0, else 0 (the rows a ReLU inversion fits).
    Mask,
    /// y = w·(x − y) (a masked residual).
    MaskedDiff,
    /// y = c·sqrt(max(x, 0)).
    Sqrt,
    /// Rows of y hold two halves (real and imaginary parts): both are multiplied by x
    /// (`[rows, cols / 2]`), element by element.
    PairMul,
    /// Rows of x hold z = (real half, imaginary half); w (`[rows, cols / 2]`) holds target
    /// magnitudes a: y = a·z/|z| − z per pair ((a, 0) − z where z = 0), the residual of
    /// Gerchberg–Saxton's magnitude projection.
    Amplitude,
}

impl AxpyOp {
    fn code(self) -> u32 {
        match self {
            AxpyOp::Axpy => 0,
            AxpyOp::Xpay => 1,
            AxpyOp::Scale => 2,
            AxpyOp::Mul => 3,
            AxpyOp::Mask => 4,
            AxpyOp::MaskedDiff => 5,
            AxpyOp::Sqrt => 6,
            AxpyOp::PairMul => 7,
            AxpyOp::Amplitude => 8,
        }
    }

    /// True for the operations on (real, imaginary) pairs of half rows.
    pub fn is_pairwise(self) -> bool {
        matches!(self, AxpyOp::PairMul | AxpyOp::Amplitude)
    }

    /// True when the operation reads `w`.
    fn reads_w(self) -> bool {
        matches!(self, AxpyOp::Mask | AxpyOp::MaskedDiff | AxpyOp::Amplitude)
    }

    /// True when the operation uses the coefficient.
    fn uses_coefficient(self) -> bool {
        matches!(
            self,
            AxpyOp::Axpy | AxpyOp::Xpay | AxpyOp::Scale | AxpyOp::Mul | AxpyOp::Sqrt
        )
    }
}

/// The per-row coefficient c_b = α · num_b^p · den_b^q (each factor optional; 0 where
/// den_b ≤ 0 or the value is not finite), or α · sign(num_b) with [`Coefficient::sign`].
/// The exponents 1, −1, 1/2 and −1/2 are computed exactly (division, sqrt, inverseSqrt).
#[derive(Clone, Copy, Debug)]
pub struct Coefficient<'a> {
    /// α.
    pub alpha: f32,
    /// `[rows]` values and their exponent p.
    pub num: Option<(&'a Tensor, f32)>,
    /// `[rows]` values and their exponent q.
    pub den: Option<(&'a Tensor, f32)>,
    /// c_b = α · sign(num_b) (sign(0) = 1) instead; `den` is then ignored.
    pub sign: bool,
}

impl<'a> Coefficient<'a> {
    /// c_b = α for every row.
    pub fn constant(alpha: f32) -> Coefficient<'a> {
        Coefficient {
            alpha,
            num: None,
            den: None,
            sign: false,
        }
    }

    /// c_b = α · num_b / den_b (0 where den_b ≤ 0): a step size γ/δ.
    pub fn ratio(alpha: f32, num: &'a Tensor, den: &'a Tensor) -> Coefficient<'a> {
        Coefficient {
            alpha,
            num: Some((num, 1.0)),
            den: Some((den, -1.0)),
            sign: false,
        }
    }

    /// c_b = α · sign(num_b).
    pub fn sign_of(alpha: f32, num: &'a Tensor) -> Coefficient<'a> {
        Coefficient {
            alpha,
            num: Some((num, 1.0)),
            den: None,
            sign: true,
        }
    }
}

/// (rows, columns) of a `[rows, cols]` or `[cols]` tensor.
fn rows_cols(t: &Tensor) -> (usize, usize) {
    let s = t.shape();
    let cols = s[s.len() - 1];
    (t.len() / cols, cols)
}

/// Plans `op` on `y` (`[rows, cols]` or `[cols]`) with inputs `x` and `w` (see [`AxpyOp`] for
/// their shapes; pass `None` for an input the operation does not read) and the per-row
/// coefficient `coef` (its tensors hold `rows` values). Any of the tensors may be the same
/// tensor as `y`. Rows are split into blocks whose windows fit one binding, and rows longer
/// than one binding into column blocks (the pairwise operations need each row in one binding).
pub fn plan(
    gpu: &Gpu,
    op: AxpyOp,
    coef: &Coefficient<'_>,
    x: Option<&Tensor>,
    y: &Tensor,
    w: Option<&Tensor>,
) -> Result<Vec<Dispatch>> {
    let (rows, cols) = rows_cols(y);
    let bad = |message: String| Err(Error::shape("axpy", message));
    let pairs = op.is_pairwise();
    if pairs && cols % 2 != 0 {
        return bad(format!(
            "{op:?} works on pairs of half rows, but y {:?} has an odd row length",
            y.shape()
        ));
    }
    let half = if pairs { cols / 2 } else { 0 };
    // Row length and stride of x and w, as the operation reads them.
    let x_cols = match op {
        AxpyOp::PairMul => half,
        _ => cols,
    };
    let w_cols = if op == AxpyOp::Amplitude { half } else { cols };
    let Some(x) = x else {
        return bad(format!("{op:?} needs an input x"));
    };
    let x_stride = if x.len() == rows * x_cols {
        x_cols
    } else if x.len() == x_cols && op == AxpyOp::Axpy {
        0
    } else {
        return bad(format!(
            "{op:?}: x {:?} must hold {rows} rows of {x_cols} values{}",
            x.shape(),
            if op == AxpyOp::Axpy {
                " (or one row, added to every row)"
            } else {
                ""
            }
        ));
    };
    let w = if op.reads_w() {
        match w {
            Some(w) if w.len() == rows * w_cols => Some(w),
            _ => {
                return bad(format!(
                    "{op:?}: w must hold {rows} rows of {w_cols} values (got {:?})",
                    w.map(Tensor::shape)
                ))
            }
        }
    } else {
        None
    };
    let mut flags = 0;
    let (mut e_num, mut e_den) = (0.0, 0.0);
    if op.uses_coefficient() {
        if !coef.alpha.is_finite() {
            return Err(Error::invalid(format!(
                "axpy: alpha must be finite, got {}",
                coef.alpha
            )));
        }
        for (name, factor) in [("num", coef.num), ("den", coef.den)] {
            if let Some((t, e)) = factor {
                if t.len() != rows {
                    return bad(format!(
                        "the coefficient's {name} {:?} must hold one value per row ({rows})",
                        t.shape()
                    ));
                }
                if !e.is_finite() {
                    return Err(Error::invalid(format!(
                        "axpy: the exponent of {name} must be finite, got {e}"
                    )));
                }
            }
        }
        if let Some((_, e)) = coef.num {
            flags |= FLAG_NUM;
            e_num = e;
        }
        if coef.sign {
            if coef.num.is_none() {
                return Err(Error::invalid("axpy: a sign coefficient needs num"));
            }
            flags = FLAG_SIGN;
        } else if let Some((_, e)) = coef.den {
            flags |= FLAG_DEN;
            e_den = e;
        }
    }
    let num = coef.num.filter(|_| op.uses_coefficient()).map(|(t, _)| t);
    let den = coef
        .den
        .filter(|_| op.uses_coefficient() && !coef.sign)
        .map(|(t, _)| t);

    let capacity = window_capacity(gpu);
    // Elements each row's windows span: y (and x, w for the pairwise operations) hold the
    // whole row of `cols`; a block of columns otherwise.
    let domain = if pairs { half } else { cols };
    let (block_rows, block_cols) = if cols <= capacity {
        // x and w rows are never longer than y's.
        ((capacity - cols) / cols + 1, domain)
    } else if pairs {
        return Err(Error::invalid(format!(
            "axpy: {op:?} needs a whole row of {cols} values in one binding (at most {capacity})"
        )));
    } else {
        (1, capacity)
    };
    let block_rows = block_rows
        .min(rows)
        .min((gpu.max_grid() * WG as usize / block_cols.max(1)).max(1));
    let pipeline = gpu.pipeline(
        &shaders::AXPY,
        &[("WG", f64::from(WG)), ("OP", f64::from(op.code()))],
    )?;
    let mut dispatches = Vec::new();
    for r0 in (0..rows).step_by(block_rows) {
        let nr = block_rows.min(rows - r0);
        for c0 in (0..domain).step_by(block_cols) {
            let nc = block_cols.min(domain - c0);
            let y_span = (nr - 1) * cols + if pairs { cols } else { nc };
            let yw = y.window(gpu, r0 * cols + c0, y_span);
            let x_span = (nr - 1) * x_stride
                + match op {
                    AxpyOp::Amplitude => cols,
                    _ => nc,
                };
            let xw = x.window(gpu, r0 * x_stride + c0, x_span);
            let ww = w.map(|w| w.window(gpu, r0 * w_cols + c0, (nr - 1) * w_cols + nc));
            let nw = num.map(|t| t.window(gpu, r0, nr));
            let dw = den.map(|t| t.window(gpu, r0, nr));
            let params = AxpyParams {
                rows: nr as u32,
                cols: nc as u32,
                _pad: 0,
                flags,
                x_first: xw.first,
                x_stride: x_stride as u32,
                y_first: yw.first,
                y_stride: cols as u32,
                w_first: ww.as_ref().map_or(0, |w| w.first),
                w_stride: w_cols as u32,
                num_first: nw.as_ref().map_or(0, |w| w.first),
                den_first: dw.as_ref().map_or(0, |w| w.first),
                half: half as u32,
                alpha: coef.alpha,
                e_num,
                e_den,
            };
            let uniform = gpu.uniform("speckle.axpy.params", &params);
            let bind_group = gpu.bind_group(
                &pipeline,
                &[
                    uniform.as_entire_binding(),
                    xw.resource(),
                    yw.resource(),
                    Window::or_placeholder(ww.as_ref(), gpu),
                    Window::or_placeholder(nw.as_ref(), gpu),
                    Window::or_placeholder(dw.as_ref(), gpu),
                ],
            );
            dispatches.push(Dispatch::kernel(
                pipeline.clone(),
                bind_group,
                gpu.grid(((nr * nc) as u32).div_ceil(WG)),
            ));
        }
    }
    Ok(dispatches)
}

/// Runs `op` in place on `y` (see [`plan`]).
pub fn run(
    gpu: &Gpu,
    op: AxpyOp,
    coef: &Coefficient<'_>,
    x: Option<&Tensor>,
    y: &Tensor,
    w: Option<&Tensor>,
) -> Result<()> {
    gpu.execute(&plan(gpu, op, coef, x, y, w)?)
}
