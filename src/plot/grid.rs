//! Image grids: small images (inputs, reconstructions) in rows and columns, upscaled, with
//! labels and captions.

use image::{Rgb, RgbImage};

use super::text::{draw_text, fill_clipped, text_height, text_width};
use super::{MAX_PIXELS, MAX_SIDE};
use crate::error::{Error, Result};

/// Padding around the grid and between cells, in pixels.
pub const GRID_PAD: u32 = 8;
/// Gap between a label or caption and its cell, in pixels.
pub const GRID_LABEL_GAP: u32 = 4;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const TEXT: Rgb<u8> = Rgb([20, 20, 20]);
/// Scale of the title's text (16 px tall).
const TITLE_SCALE: u32 = 2;

/// One image of an [`ImageGrid`]: row-major values in [0, 1] (clamped; NaN shows as 0), one
/// channel (grey) or three (RGB, interleaved).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u32,
    /// `height` × `width` × `channels` values, row-major, channels interleaved.
    pub data: Vec<f32>,
    /// Text under the image, e.g. `"31.2 dB"`; empty for none.
    pub caption: String,
}

impl Cell {
    /// A greyscale cell.
    pub fn gray(width: u32, height: u32, data: Vec<f32>, caption: impl Into<String>) -> Self {
        Cell {
            width,
            height,
            channels: 1,
            data,
            caption: caption.into(),
        }
    }

    /// An RGB cell (channels interleaved: r, g, b, r, g, b, ...).
    pub fn rgb(width: u32, height: u32, data: Vec<f32>, caption: impl Into<String>) -> Self {
        Cell {
            width,
            height,
            channels: 3,
            data,
            caption: caption.into(),
        }
    }

    /// The 8-bit pixel (x, y): each value clamped to [0, 1], times 255, rounded to nearest.
    fn pixel(&self, x: u32, y: u32) -> Rgb<u8> {
        let to_u8 = |v: f32| {
            if v.is_nan() {
                0
            } else {
                (v.clamp(0.0, 1.0) * 255.0).round() as u8
            }
        };
        let c = self.channels as usize;
        let i = (y as usize * self.width as usize + x as usize) * c;
        if c == 1 {
            let g = to_u8(self.data[i]);
            Rgb([g, g, g])
        } else {
            Rgb([
                to_u8(self.data[i]),
                to_u8(self.data[i + 1]),
                to_u8(self.data[i + 2]),
            ])
        }
    }

    /// Checks channels and data length.
    fn check(&self, row: usize, col: usize) -> Result<()> {
        let at = || format!("image grid cell (row {row}, column {col})");
        if self.channels != 1 && self.channels != 3 {
            return Err(Error::invalid(format!(
                "{}: {} channels; cells have 1 (grey) or 3 (RGB)",
                at(),
                self.channels
            )));
        }
        if self.width == 0 || self.height == 0 {
            return Err(Error::invalid(format!(
                "{}: size {}x{} is empty",
                at(),
                self.width,
                self.height
            )));
        }
        let want = u64::from(self.width) * u64::from(self.height) * u64::from(self.channels);
        if self.data.len() as u64 != want {
            return Err(Error::invalid(format!(
                "{}: {} values, but {}x{} with {} channel(s) needs {want}",
                at(),
                self.data.len(),
                self.width,
                self.height,
                self.channels
            )));
        }
        Ok(())
    }
}

/// A grid of images with row labels on the left, column labels on top, captions under each
/// image and a title, e.g. inputs and their reconstructions at several feature counts.
///
/// Every cell present must have the same width and height (grey and RGB cells may mix); every
/// row must have the same number of entries; `None` entries are left blank. Layout, in pixels,
/// with `w`, `h` the cells' size, `s` the scale, `P` = [`GRID_PAD`], `G` = [`GRID_LABEL_GAP`]
/// and text 8 px per character (16 px for the title):
///
/// ```text
/// slot width   = max(w·s, widest caption, widest column label)
/// slot height  = h·s + (G + 8 if any caption is non-empty, else 0)
/// label column = widest row label + P            (0 if every row label is empty)
/// title band   = 16 + P                          (0 if the title is empty)
/// header band  = 8 + G                           (0 if every column label is empty)
/// width  = P + label column + cols·slot width + (cols − 1)·P + P
///          (at least the title's width + 2P)
/// height = P + title band + header band + rows·slot height + (rows − 1)·P + P
/// ```
///
/// Each image is centred horizontally in its slot, at the slot's top; see [`GridLayout`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    /// One label per row (drawn left of the row, vertically centred), or none at all.
    pub row_labels: Vec<String>,
    /// One label per column (drawn above it, centred), or none at all.
    pub col_labels: Vec<String>,
    /// The cells, row by row.
    pub cells: Vec<Vec<Option<Cell>>>,
    /// Integer upscaling factor (nearest neighbour), at least 1.
    pub scale: u32,
    /// The title, drawn at twice the text size at the top left; empty for none.
    pub title: String,
}

/// Where [`ImageGrid::render`] puts things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridLayout {
    /// The image width.
    pub width: u32,
    /// The image height.
    pub height: u32,
    /// The left edge of each column's images.
    pub cell_x: Vec<u32>,
    /// The top edge of each row's images.
    pub cell_y: Vec<u32>,
    /// The width of an upscaled image (cell width × scale).
    pub cell_width: u32,
    /// The height of an upscaled image (cell height × scale).
    pub cell_height: u32,
}

impl ImageGrid {
    /// A grid of `cells` at `scale`, with no labels and no title.
    pub fn new(cells: Vec<Vec<Option<Cell>>>, scale: u32) -> Self {
        ImageGrid {
            row_labels: Vec::new(),
            col_labels: Vec::new(),
            cells,
            scale,
            title: String::new(),
        }
    }

    /// The geometry [`render`](Self::render) uses, with the same errors: no rows or columns,
    /// rows of different lengths, a label count that matches neither 0 nor the rows (columns),
    /// no cell at all, a cell with a bad channel count or data length, cells of different
    /// sizes, a scale of 0, or an image larger than 16384 pixels a side or 2^26 pixels.
    pub fn layout(&self) -> Result<GridLayout> {
        let rows = self.cells.len();
        let cols = self.cells.first().map_or(0, Vec::len);
        if rows == 0 || cols == 0 {
            return Err(Error::invalid(format!(
                "image grid {:?} has no cells ({rows} rows, {cols} columns)",
                self.title
            )));
        }
        if let Some((r, row)) = self.cells.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(Error::invalid(format!(
                "image grid {:?}: row {r} has {} cells but row 0 has {cols}",
                self.title,
                row.len()
            )));
        }
        for (what, n, want) in [
            ("row", self.row_labels.len(), rows),
            ("column", self.col_labels.len(), cols),
        ] {
            if n != 0 && n != want {
                return Err(Error::invalid(format!(
                    "image grid {:?}: {n} {what} labels for {want} {what}s (give one per \
                     {what}, or none)",
                    self.title
                )));
            }
        }
        if self.scale == 0 {
            return Err(Error::invalid(format!(
                "image grid {:?}: scale 0; the scale is a whole factor >= 1",
                self.title
            )));
        }
        let mut size = None;
        for (r, row) in self.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let Some(cell) = cell else { continue };
                cell.check(r, c)?;
                match size {
                    None => size = Some((cell.width, cell.height, r, c)),
                    Some((w, h, r0, c0)) if (w, h) != (cell.width, cell.height) => {
                        return Err(Error::invalid(format!(
                            "image grid {:?}: cell (row {r}, column {c}) is {}x{} but cell \
                             (row {r0}, column {c0}) is {w}x{h}; all cells must be the same size",
                            self.title, cell.width, cell.height
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        let Some((w, h, _, _)) = size else {
            return Err(Error::invalid(format!(
                "image grid {:?}: every cell is empty (None)",
                self.title
            )));
        };

        // In u64: nothing here can overflow, and the result is checked against the limits.
        let (pad, gap, text_h) = (
            u64::from(GRID_PAD),
            u64::from(GRID_LABEL_GAP),
            u64::from(text_height(1)),
        );
        let widest = |labels: &mut dyn Iterator<Item = &String>| -> u64 {
            labels
                .map(|l| u64::from(text_width(l, 1)))
                .max()
                .unwrap_or(0)
        };
        let cells = || self.cells.iter().flatten().flatten();
        let any_caption = cells().any(|c| !c.caption.is_empty());
        let cw = u64::from(w) * u64::from(self.scale);
        let ch = u64::from(h) * u64::from(self.scale);
        let slot_w = cw
            .max(widest(&mut cells().map(|c| &c.caption)))
            .max(widest(&mut self.col_labels.iter()));
        let slot_h = ch + if any_caption { gap + text_h } else { 0 };
        let label_w = if self.row_labels.iter().any(|l| !l.is_empty()) {
            widest(&mut self.row_labels.iter()) + pad
        } else {
            0
        };
        let title_h = if self.title.is_empty() {
            0
        } else {
            u64::from(text_height(TITLE_SCALE)) + pad
        };
        let header_h = if self.col_labels.iter().any(|l| !l.is_empty()) {
            text_h + gap
        } else {
            0
        };
        let (rows, cols) = (rows as u64, cols as u64);
        let width = (pad + label_w + cols * slot_w + (cols - 1) * pad + pad)
            .max(u64::from(text_width(&self.title, TITLE_SCALE)) + 2 * pad);
        let height = pad + title_h + header_h + rows * slot_h + (rows - 1) * pad + pad;
        let side = u64::from(MAX_SIDE);
        if width > side || height > side || width * height > MAX_PIXELS {
            return Err(Error::invalid(format!(
                "image grid {:?}: the image would be {width}x{height} pixels, more than \
                 {MAX_SIDE} a side or {MAX_PIXELS} in all; use a smaller scale or fewer cells",
                self.title
            )));
        }
        // All below fit in u32: they are at most width or height.
        let cell_x = (0..cols)
            .map(|c| (pad + label_w + c * (slot_w + pad) + (slot_w - cw) / 2) as u32)
            .collect();
        let cell_y = (0..rows)
            .map(|r| (pad + title_h + header_h + r * (slot_h + pad)) as u32)
            .collect();
        Ok(GridLayout {
            width: width as u32,
            height: height as u32,
            cell_x,
            cell_y,
            cell_width: cw as u32,
            cell_height: ch as u32,
        })
    }

    /// Draws the grid on white: each image upscaled by `scale` (nearest neighbour), its
    /// caption centred under it, the labels and the title. Errors as [`layout`](Self::layout).
    pub fn render(&self) -> Result<RgbImage> {
        let l = self.layout()?;
        let mut img = RgbImage::from_pixel(l.width, l.height, WHITE);
        let s = i64::from(self.scale);
        let text_h = i64::from(text_height(1));
        if !self.title.is_empty() {
            let p = GRID_PAD as i32;
            draw_text(&mut img, p, p, &self.title, TEXT, TITLE_SCALE);
        }
        for (r, row) in self.cells.iter().enumerate() {
            let y0 = i64::from(l.cell_y[r]);
            if let Some(label) = self.row_labels.get(r) {
                let ty = y0 + (i64::from(l.cell_height) - text_h) / 2;
                draw_text(&mut img, GRID_PAD as i32, ty as i32, label, TEXT, 1);
            }
            for (c, cell) in row.iter().enumerate() {
                let x0 = i64::from(l.cell_x[c]);
                if r == 0 {
                    if let Some(label) = self.col_labels.get(c) {
                        let tx = centred(x0, l.cell_width, label);
                        let ty = y0 - i64::from(GRID_LABEL_GAP) - text_h;
                        draw_text(&mut img, tx, ty as i32, label, TEXT, 1);
                    }
                }
                let Some(cell) = cell else { continue };
                for y in 0..cell.height {
                    for x in 0..cell.width {
                        let (px, py) = (x0 + i64::from(x) * s, y0 + i64::from(y) * s);
                        fill_clipped(&mut img, px, py, s, s, cell.pixel(x, y));
                    }
                }
                let ty = y0 + i64::from(l.cell_height + GRID_LABEL_GAP);
                let tx = centred(x0, l.cell_width, &cell.caption);
                draw_text(&mut img, tx, ty as i32, &cell.caption, TEXT, 1);
            }
        }
        Ok(img)
    }
}

/// The x at which `text` starts when centred on a span of `width` pixels from `x0` (it may
/// start left of `x0` when wider; the slot leaves room for it).
fn centred(x0: i64, width: u32, text: &str) -> i32 {
    let x = x0 + (i64::from(width) - i64::from(text_width(text, 1))) / 2;
    x.clamp(0, i64::from(i32::MAX)) as i32
}
