//! PNG figures for the studies and demos: line plots (linear or log axes, legends, reference
//! lines) and image grids (inputs and reconstructions with captions), drawn on the CPU into an
//! [`RgbImage`] and saved with [`save_png`].
//!
//! Everything is drawn by this module from a handful of primitives (anti-aliased strokes
//! through a coverage mask, an 8×8 bitmap font), so the output is the same on every machine and
//! needs no system fonts or graphics libraries.
//!
//! ```no_run
//! use speckle::plot::{save_png, LinePlot, Series};
//! # fn main() -> speckle::Result<()> {
//! let mut p = LinePlot::new("Norm through depth", "layer", "|x_l| / |x_0|");
//! p.log_y = true;
//! let flat = (0..=20).map(|l| (l as f64, 1.0)).collect();
//! let vanishing = (0..=20).map(|l| (l as f64, 0.8f64.powi(l))).collect();
//! p.series.push(Series::new("He", flat));
//! p.series.push(Series::dashed("gain 0.8", vanishing));
//! p.hlines.push((1e-1, "-20 dB".into()));
//! save_png(std::path::Path::new("norms.png"), &p.render()?)?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use image::ImageEncoder;

use crate::error::{Error, Result};

mod grid;
mod line;
mod raster;
pub mod text;
mod ticks;

pub use grid::{Cell, GridLayout, ImageGrid, GRID_LABEL_GAP, GRID_PAD};
pub use image::{Rgb, RgbImage};
pub use line::{LinePlot, PlotArea, Series, MIN_PLOT_HEIGHT, MIN_PLOT_WIDTH};
pub use text::{draw_text, text_height, text_width};

/// The largest width or height of a figure, in pixels.
pub const MAX_SIDE: u32 = 16384;
/// The largest number of pixels in a figure (2^26: 192 MiB of RGB).
pub const MAX_PIXELS: u64 = 1 << 26;

/// Series colours, in order: the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal
/// Design"), distinguishable with the common colour-vision deficiencies, without its black
/// (kept for axes and text) and with its yellow last (weak on white).
pub const PALETTE: [Rgb<u8>; 7] = [
    Rgb([0x00, 0x72, 0xB2]), // blue
    Rgb([0xD5, 0x5E, 0x00]), // vermillion
    Rgb([0x00, 0x9E, 0x73]), // bluish green
    Rgb([0xCC, 0x79, 0xA7]), // reddish purple
    Rgb([0xE6, 0x9F, 0x00]), // orange
    Rgb([0x56, 0xB4, 0xE9]), // sky blue
    Rgb([0xF0, 0xE4, 0x42]), // yellow
];

/// The colour of series `i`: [`PALETTE`] cycling (series 7 has series 0's colour; make one of
/// them dashed to tell them apart).
pub fn series_color(i: usize) -> Rgb<u8> {
    PALETTE[i % PALETTE.len()]
}

/// Encodes `img` as PNG and writes it to `path` atomically (a temporary file in the same
/// directory, then a rename), so that a failed run never leaves a partial file. Errors name
/// the path.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    let bytes = encode_png(img).map_err(|e| {
        Error::io(
            format!("encoding {} as PNG", path.display()),
            std::io::Error::other(e.to_string()),
        )
    })?;
    crate::atomic::write_atomic(path, &bytes)
}

/// `img` as PNG bytes, for callers that render several files before writing any.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::invalid(format!("encoding a PNG: {e}")))?;
    Ok(bytes)
}
