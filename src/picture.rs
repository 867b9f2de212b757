//! Pictures for the reconstruction demo: loading PNG and JPEG files, the embedded default image,
//! centre-cropping and resizing, and planar f32 data in [0, 1] (channel c's pixels, row-major,
//! at `c · width · height`), the layout the solvers take as a batch of one row per channel.

use std::path::Path;

use image::{DynamicImage, ImageReader};

use crate::error::{Error, Result};
use crate::plot::Cell;

/// The embedded default image: NASA's portrait of astronaut Eileen Collins (public domain),
/// 128 × 128 RGB; provenance in `assets/README.md`.
pub const DEFAULT_IMAGE: &[u8] = include_bytes!("../assets/astronaut.png");

/// How reports name the default image.
pub const DEFAULT_NAME: &str = "astronaut (NASA, public domain; built in)";

/// The largest side accepted from a file; larger images are refused before decoding.
pub const MAX_SIDE: u32 = 4096;

/// An image as planar f32 data in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Channel-major values: channel c, pixel (x, y) at `c · width · height + y · width + x`.
    pub planes: Vec<f32>,
}

impl Picture {
    /// The embedded default image.
    pub fn default_image() -> Picture {
        Picture::from_bytes(DEFAULT_IMAGE, "the built-in image")
            .expect("the embedded default image decodes")
    }

    /// Decodes a PNG or JPEG file. Grey images stay one channel; alpha is dropped. Images with
    /// a side above [`MAX_SIDE`] are refused with their size, before they are decoded.
    pub fn load(path: &Path) -> Result<Picture> {
        let reader = ImageReader::open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?
            .with_guessed_format()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let not_image = |e: image::ImageError| {
            Error::invalid(format!(
                "{}: not a readable PNG or JPEG image ({e})",
                path.display()
            ))
        };
        let (w, h) = reader.into_dimensions().map_err(not_image)?;
        if w > MAX_SIDE || h > MAX_SIDE {
            return Err(Error::invalid(format!(
                "{}: the image is {w} x {h}, larger than {MAX_SIDE} x {MAX_SIDE}; resize it first",
                path.display()
            )));
        }
        let image = ImageReader::open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?
            .with_guessed_format()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .decode()
            .map_err(not_image)?;
        Ok(Picture::from_dynamic(&image))
    }

    /// Decodes PNG or JPEG bytes; `what` names them in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Picture> {
        let image = image::load_from_memory(bytes)
            .map_err(|e| Error::invalid(format!("{what}: not a readable image ({e})")))?;
        Ok(Picture::from_dynamic(&image))
    }

    fn from_dynamic(image: &DynamicImage) -> Picture {
        let grey = matches!(
            image,
            DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageLuma16(_)
                | DynamicImage::ImageLumaA16(_)
        );
        let rgb = image.to_rgb32f();
        let (width, height) = rgb.dimensions();
        let pixels = (width * height) as usize;
        let channels = if grey { 1 } else { 3 };
        let mut planes = vec![0.0f32; channels * pixels];
        for (p, px) in rgb.pixels().enumerate() {
            for c in 0..channels {
                planes[c * pixels + p] = px.0[c].clamp(0.0, 1.0);
            }
        }
        Picture {
            width,
            height,
            channels,
            planes,
        }
    }

    /// Pixels per channel.
    pub fn pixels(&self) -> usize {
        (self.width * self.height) as usize
    }

    /// The central square of the image resized to `size` × `size` by area averaging: each
    /// output pixel is the mean of the source area it covers (fractional pixels weighted), so
    /// shrinking never aliases.
    pub fn square(&self, size: u32) -> Result<Picture> {
        if size == 0 || size > MAX_SIDE {
            return Err(Error::invalid(format!(
                "the image size must be 1..={MAX_SIDE}, got {size}"
            )));
        }
        let side = self.width.min(self.height);
        let (x0, y0) = ((self.width - side) / 2, (self.height - side) / 2);
        let weights = area_weights(side as usize, size as usize);
        let n = size as usize;
        let mut planes = vec![0.0f32; self.channels * n * n];
        for c in 0..self.channels {
            let plane = &self.planes[c * self.pixels()..(c + 1) * self.pixels()];
            for (oy, wy) in weights.iter().enumerate() {
                for (ox, wx) in weights.iter().enumerate() {
                    let mut sum = 0.0f64;
                    for &(sy, fy) in wy {
                        let row = (y0 as usize + sy) * self.width as usize + x0 as usize;
                        for &(sx, fx) in wx {
                            sum += fy * fx * f64::from(plane[row + sx]);
                        }
                    }
                    planes[c * n * n + oy * n + ox] = (sum as f32).clamp(0.0, 1.0);
                }
            }
        }
        Ok(Picture {
            width: size,
            height: size,
            channels: self.channels,
            planes,
        })
    }

    /// The picture as a cell of a [`crate::plot::ImageGrid`].
    pub fn to_cell(&self, caption: impl Into<String>) -> Cell {
        let pixels = self.pixels();
        let data: Vec<f32> = (0..pixels * self.channels)
            .map(|i| self.planes[(i % self.channels) * pixels + i / self.channels])
            .collect();
        if self.channels == 1 {
            Cell::gray(self.width, self.height, data, caption)
        } else {
            Cell::rgb(self.width, self.height, data, caption)
        }
    }
}

/// For each of `to` output pixels along an axis of `from` source pixels, the source pixels it
/// covers with their weights (fractions of the output pixel's area, summing to 1).
fn area_weights(from: usize, to: usize) -> Vec<Vec<(usize, f64)>> {
    let step = from as f64 / to as f64;
    (0..to)
        .map(|o| {
            let (start, end) = (o as f64 * step, (o + 1) as f64 * step);
            let mut w = Vec::new();
            let mut s = start.floor() as usize;
            while (s as f64) < end && s < from {
                let covered = (end.min(s as f64 + 1.0) - start.max(s as f64)).max(0.0);
                if covered > 0.0 {
                    w.push((s, covered / step));
                }
                s += 1;
            }
            w
        })
        .collect()
}
