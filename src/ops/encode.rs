//! Input encoders for binary optical hardware (`shaders/encode.wgsl`), after lightonml's
//! encoders: an optical processing unit modulates light with a binary micro-mirror array, so
//! real data is turned into 0/1 vectors first.
//!
//! - [`Encoder::Threshold`] (lightonml's `BinaryThresholdEncoder`): 1 where x > level.
//! - [`Encoder::Bitplane`] (bit-plane encoding of integer data): each value stands for the
//!   integer q = clamp(⌊v + 0.5⌋, 0, 2^bits − 1) (round half up, then saturate), and plane k
//!   (k = 0 least significant) holds bit k of q. The output is `[batch, bits, d]`: plane k of
//!   sample b is row b·bits + k of a `[batch·bits, d]` matrix, so one linear projection of all
//!   planes followed by [`decode`] (Σₖ 2ᵏ·plane k) gives R·q exactly in exact arithmetic.
//!
//! Use [`check_bitplane_input`] to refuse data that would be rounded or clamped.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// The largest number of bit planes: 2¹⁶ − 1 and every partial sum of the decoder are exact
/// in f32 with room to spare, and 16 covers 8- to 16-bit images and sensors.
pub const MAX_BITS: u32 = 16;

/// An input encoder. Formulas: the module documentation and `shaders/encode.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Encoder {
    /// 1.0 where x > level, else 0.0; the output has the input's shape.
    Threshold {
        /// The level.
        level: f32,
    },
    /// Bit planes of q = clamp(⌊x + 0.5⌋, 0, 2^bits − 1); the output is `[batch, bits, d]`.
    Bitplane {
        /// The number of planes, 1..=16.
        bits: u32,
    },
}

impl Encoder {
    /// Every encoder name accepted by [`Encoder::from_name`].
    pub const NAMES: &'static [&'static str] = &["threshold", "bitplane"];

    /// Parses a name; `level` parameterizes `threshold`, `bits` (1..=16) `bitplane`.
    pub fn from_name(name: &str, level: f32, bits: u32) -> Result<Encoder> {
        let encoder = match name {
            "threshold" => Encoder::Threshold { level },
            "bitplane" => Encoder::Bitplane { bits },
            _ => {
                return Err(Error::invalid(format!(
                    "unknown encoder {name:?}; known: {}",
                    Encoder::NAMES.join(", ")
                )))
            }
        };
        encoder.validate()?;
        Ok(encoder)
    }

    /// The name, as in [`Encoder::NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Encoder::Threshold { .. } => "threshold",
            Encoder::Bitplane { .. } => "bitplane",
        }
    }

    /// How many output rows each input row becomes: 1 for threshold, `bits` for bitplane.
    pub fn output_rows(&self) -> usize {
        match *self {
            Encoder::Threshold { .. } => 1,
            Encoder::Bitplane { bits } => bits as usize,
        }
    }

    /// Checks the parameters (the fields are public, so a hand-built encoder may be invalid).
    pub fn validate(&self) -> Result<()> {
        match *self {
            Encoder::Threshold { .. } => Ok(()),
            Encoder::Bitplane { bits } => check_bits(bits),
        }
    }

    /// The output shape for input shape `x` (`[batch, d]` or `[d]`).
    pub fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        if x.is_empty() || x.len() > 2 {
            return Err(Error::shape(
                "encode",
                format!("input must be [batch, d] or [d], got {x:?}"),
            ));
        }
        Ok(match *self {
            Encoder::Threshold { .. } => x.to_vec(),
            Encoder::Bitplane { bits } => {
                let mut shape = x.to_vec();
                shape.insert(x.len() - 1, bits as usize);
                shape
            }
        })
    }

    fn kind(&self) -> u32 {
        match self {
            Encoder::Threshold { .. } => KIND_THRESHOLD,
            Encoder::Bitplane { .. } => KIND_BITPLANE,
        }
    }
}

/// Keep the codes in sync with KIND in `shaders/encode.wgsl`.
const KIND_THRESHOLD: u32 = 1;
const KIND_BITPLANE: u32 = 2;
const KIND_DECODE: u32 = 3;

fn check_bits(bits: u32) -> Result<()> {
    if (1..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "bitplane encoding: bits must be in 1..={MAX_BITS}, got {bits}"
        )))
    }
}

/// Checks, for a caller holding bit-plane input on the CPU, that every value is an integer in
/// [0, 2^bits − 1], so that the encoding neither rounds nor clamps anything. The error names
/// the first offending flat index, its value and the allowed range.
pub fn check_bitplane_input(data: &[f32], bits: u32) -> Result<()> {
    check_bits(bits)?;
    let top = (1u32 << bits) - 1;
    for (index, &value) in data.iter().enumerate() {
        let problem = if !value.is_finite() {
            "is not finite"
        } else if value.fract() != 0.0 {
            "is not an integer"
        } else if value < 0.0 || value > top as f32 {
            "is out of range"
        } else {
            continue;
        };
        return Err(Error::invalid(format!(
            "bitplane input: value {value} at flat index {index} {problem}; \
             {bits}-bit encoding needs integers in [0, {top}]"
        )));
    }
    Ok(())
}

/// Uniform parameters of `shaders/encode.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EncodeParams {
    len: u32,
    row0: u32,
    col0: u32,
    cols: u32,
    d: u32,
    bits: u32,
    src_base: u32,
    src_first: u32,
    dst_base: u32,
    dst_first: u32,
    plane0: u32,
    planes: u32,
    accumulate: u32,
    level: f32,
    _pad: [u32; 2],
}

const WG: u32 = 256;

/// One dispatch's share of the output matrix (rows of `d` columns), and for the decoder the
/// planes it sums.
#[derive(Clone, Copy, Debug)]
struct Tile {
    row0: usize,
    rows: usize,
    col0: usize,
    cols: usize,
    plane0: usize,
    planes: usize,
}

impl Tile {
    /// The flat range `[start, end)` of an output-shaped matrix of `d` columns that the tile
    /// touches.
    fn span(&self, d: usize) -> (usize, usize) {
        let start = self.row0 * d + self.col0;
        let end = (self.row0 + self.rows - 1) * d + self.col0 + self.cols;
        (start, end)
    }
}

/// Tiles of an output of `rows` × `d` where each output row needs `per_row` consecutive
/// source rows of `d` (1 for the encoders; `bits` for the decoder), so that every source and
/// destination window fits `cap` elements and every dispatch `threads` threads. Whole rows
/// when `per_row · d` fits; otherwise one row at a time, in column chunks, and for the decoder
/// one plane per dispatch.
fn tiles(rows: usize, d: usize, per_row: usize, cap: usize, threads: usize) -> Vec<Tile> {
    let rows_per = (cap / (per_row * d)).min(threads / d);
    let mut out = Vec::new();
    if rows_per >= 1 {
        for row0 in (0..rows).step_by(rows_per) {
            out.push(Tile {
                row0,
                rows: rows_per.min(rows - row0),
                col0: 0,
                cols: d,
                plane0: 0,
                planes: per_row,
            });
        }
        return out;
    }
    let width = cap.min(threads);
    for row0 in 0..rows {
        for col0 in (0..d).step_by(width) {
            for plane0 in 0..per_row {
                out.push(Tile {
                    row0,
                    rows: 1,
                    col0,
                    cols: width.min(d - col0),
                    plane0,
                    planes: 1,
                });
            }
        }
    }
    out
}

/// Refuses sizes whose flat indices would not fit the kernel's u32 arithmetic.
fn check_u32(op: &'static str, t: &Tensor) -> Result<()> {
    if t.len() > u32::MAX as usize {
        return Err(Error::shape(
            op,
            format!(
                "{:?} has {} elements; flat indices must fit in u32 (at most {})",
                t.shape(),
                t.len(),
                u32::MAX
            ),
        ));
    }
    Ok(())
}

/// Records the dispatches of `kind` over `tiles`. `src_span` maps a tile to the flat range of
/// `src` it reads; the destination range is the tile's own span.
#[expect(
    clippy::too_many_arguments,
    reason = "private helper shared by the encoder and decoder plans"
)]
fn record(
    gpu: &Gpu,
    kind: u32,
    src: &Tensor,
    dst: &Tensor,
    d: usize,
    bits: u32,
    level: f32,
    tiles: &[Tile],
    src_span: impl Fn(&Tile) -> (usize, usize),
) -> Result<Vec<Dispatch>> {
    let pipeline = gpu.pipeline(
        &shaders::ENCODE,
        &[("KIND", f64::from(kind)), ("WG", f64::from(WG))],
    )?;
    let mut dispatches = Vec::with_capacity(tiles.len());
    for tile in tiles {
        let (s0, s1) = src_span(tile);
        let (d0, d1) = tile.span(d);
        let src_w = src.window(gpu, s0, s1 - s0);
        let dst_w = dst.window(gpu, d0, d1 - d0);
        let len = (tile.rows * tile.cols) as u32;
        let params = EncodeParams {
            len,
            row0: tile.row0 as u32,
            col0: tile.col0 as u32,
            cols: tile.cols as u32,
            d: d as u32,
            bits,
            src_base: s0 as u32,
            src_first: src_w.first,
            dst_base: d0 as u32,
            dst_first: dst_w.first,
            plane0: tile.plane0 as u32,
            planes: tile.planes as u32,
            accumulate: u32::from(tile.plane0 > 0),
            level,
            _pad: [0; 2],
        };
        let uniform = gpu.uniform("speckle.encode.params", &params);
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                src_w.resource(),
                dst_w.resource(),
            ],
        );
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid(len.div_ceil(WG)),
        ));
    }
    Ok(dispatches)
}

/// Plans `out = encoder(x)`. `x` is `[batch, d]` or `[d]`; `out` has the input's shape for
/// threshold and `[batch, bits, d]` (or `[bits, d]`) for bitplane, and must be another tensor
/// than `x`. Split into windows that each fit one binding.
pub fn plan_encode(gpu: &Gpu, encoder: Encoder, x: &Tensor, out: &Tensor) -> Result<Vec<Dispatch>> {
    encoder.validate()?;
    let want = encoder.output_shape(x.shape())?;
    if out.shape() != want.as_slice() {
        return Err(Error::shape(
            "encode",
            format!(
                "{} encoding of {:?} needs an output of shape {want:?}, got {:?}",
                encoder.name(),
                x.shape(),
                out.shape()
            ),
        ));
    }
    if x.buffer() == out.buffer() {
        return Err(Error::invalid(
            "encode: the output must not alias the input",
        ));
    }
    check_u32("encode", x)?;
    check_u32("encode", out)?;
    let d = x.shape()[x.shape().len() - 1];
    let (bits, level) = match encoder {
        Encoder::Threshold { level } => (1, level),
        Encoder::Bitplane { bits } => (bits, 0.0),
    };
    let rows = out.len() / d;
    let threads = gpu.max_grid() * WG as usize;
    // The source rows a tile reads are rows row0 / bits ..= (last row) / bits of x: never
    // more than the tile's own rows, so the destination's cap bounds both windows.
    let plan = tiles(rows, d, 1, window_capacity(gpu), threads);
    let b = bits as usize;
    record(
        gpu,
        encoder.kind(),
        x,
        out,
        d,
        bits,
        level,
        &plan,
        |t: &Tile| {
            let last = t.row0 + t.rows - 1;
            ((t.row0 / b) * d + t.col0, (last / b) * d + t.col0 + t.cols)
        },
    )
}

/// Plans the bit-plane decoder: `planes` `[batch, bits, n]` (or `[bits, n]`) to `out`
/// `[batch, n]` (or `[n]`), out[b, i] = Σₖ 2ᵏ · planes[b, k, i], summed in f32 from the least
/// significant plane up. `planes` may be any real values (a linear projection of the planes).
pub fn plan_decode(gpu: &Gpu, bits: u32, planes: &Tensor, out: &Tensor) -> Result<Vec<Dispatch>> {
    check_bits(bits)?;
    let shape = planes.shape();
    let ok = matches!(shape.len(), 2 | 3) && shape[shape.len() - 2] == bits as usize;
    let mut want = shape.to_vec();
    if ok {
        want.remove(shape.len() - 2);
    }
    if !ok || out.shape() != want.as_slice() {
        return Err(Error::shape(
            "decode",
            format!(
                "{bits}-bit planes must be [batch, {bits}, n] or [{bits}, n] with output \
                 [batch, n] or [n]; got planes {shape:?} and output {:?}",
                out.shape()
            ),
        ));
    }
    if planes.buffer() == out.buffer() {
        return Err(Error::invalid(
            "decode: the output must not alias the planes",
        ));
    }
    check_u32("decode", planes)?;
    let n = shape[shape.len() - 1];
    let b = bits as usize;
    let threads = gpu.max_grid() * WG as usize;
    let plan = tiles(out.len() / n, n, b, window_capacity(gpu), threads);
    record(
        gpu,
        KIND_DECODE,
        planes,
        out,
        n,
        bits,
        0.0,
        &plan,
        |t: &Tile| {
            let last = t.row0 + t.rows - 1;
            (
                (t.row0 * b + t.plane0) * n + t.col0,
                (last * b + t.plane0 + t.planes - 1) * n + t.col0 + t.cols,
            )
        },
    )
}

/// Returns `encoder(x)` as a new tensor (shape: [`Encoder::output_shape`]).
pub fn encode(gpu: &Gpu, encoder: Encoder, x: &Tensor) -> Result<Tensor> {
    encoder.validate()?;
    let out = Tensor::empty(gpu, &encoder.output_shape(x.shape())?)?;
    gpu.execute(&plan_encode(gpu, encoder, x, &out)?)?;
    Ok(out)
}

/// Returns the decoded `[batch, n]` (or `[n]`) tensor of `bits` planes `[batch, bits, n]`.
pub fn decode(gpu: &Gpu, bits: u32, planes: &Tensor) -> Result<Tensor> {
    let shape = planes.shape();
    if !matches!(shape.len(), 2 | 3) {
        return Err(Error::shape(
            "decode",
            format!("planes must be [batch, bits, n] or [bits, n], got {shape:?}"),
        ));
    }
    let mut want = shape.to_vec();
    want.remove(shape.len() - 2);
    let out = Tensor::empty(gpu, &want)?;
    gpu.execute(&plan_decode(gpu, bits, planes, &out)?)?;
    Ok(out)
}
