//! Anti-aliased strokes, drawn as a coverage mask and then composited in one colour.
//!
//! A shape's coverage of a pixel is estimated from the distance between the pixel's centre and
//! the shape (a one-pixel ramp at the edge), and the mask keeps the maximum coverage of all the
//! shapes drawn into it. Compositing a whole series from one mask, rather than blending each
//! segment as it is drawn, keeps joints and markers from darkening where shapes overlap.
//!
//! Coordinates are continuous: pixel (i, j) covers [i, i + 1) × [j, j + 1) and its centre is
//! (i + 0.5, j + 0.5).

use image::{Rgb, RgbImage};

/// Coverage in [0, 1] per pixel, the size of the image it will be composited onto.
pub(crate) struct Mask {
    width: usize,
    height: usize,
    alpha: Vec<f32>,
}

/// The pixel range [a, b) that a span [lo, hi] in continuous coordinates touches, clipped to
/// [0, n).
fn pixel_span(lo: f64, hi: f64, n: usize) -> (usize, usize) {
    if !(lo.is_finite() && hi.is_finite()) || hi < 0.0 || lo >= n as f64 {
        return (0, 0);
    }
    let a = lo.floor().max(0.0) as usize;
    let b = (hi.ceil().max(0.0) as usize).min(n);
    (a.min(b), b)
}

impl Mask {
    /// An empty mask of `width` × `height` pixels.
    pub(crate) fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width as usize, height as usize);
        Mask {
            width,
            height,
            alpha: vec![0.0; width * height],
        }
    }

    /// Resets every pixel's coverage to 0.
    pub(crate) fn clear(&mut self) {
        self.alpha.fill(0.0);
    }

    /// Raises the coverage of pixel (x, y) to at least `a`.
    fn raise(&mut self, x: usize, y: usize, a: f32) {
        let slot = &mut self.alpha[y * self.width + x];
        if a > *slot {
            *slot = a;
        }
    }

    /// A segment from `p` to `q` with round caps, `half` pixels either side of its centre line.
    pub(crate) fn segment(&mut self, p: (f64, f64), q: (f64, f64), half: f64) {
        let reach = half + 1.0;
        let (x0, x1) = pixel_span(p.0.min(q.0) - reach, p.0.max(q.0) + reach, self.width);
        let (y0, y1) = pixel_span(p.1.min(q.1) - reach, p.1.max(q.1) + reach, self.height);
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len2 = dx * dx + dy * dy;
        for y in y0..y1 {
            let cy = y as f64 + 0.5;
            for x in x0..x1 {
                let cx = x as f64 + 0.5;
                // Distance from the pixel centre to the closest point of the segment.
                let t = if len2 > 0.0 {
                    (((cx - p.0) * dx + (cy - p.1) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (ex, ey) = (cx - (p.0 + t * dx), cy - (p.1 + t * dy));
                let d = (ex * ex + ey * ey).sqrt();
                let a = (half + 0.5 - d).clamp(0.0, 1.0);
                if a > 0.0 {
                    self.raise(x, y, a as f32);
                }
            }
        }
    }

    /// A filled disc of radius `r` centred on `c`.
    pub(crate) fn disc(&mut self, c: (f64, f64), r: f64) {
        self.segment(c, c, r);
    }

    /// A polyline through `points`, solid or dashed (`dash` = (on, off) lengths in pixels). The
    /// dash pattern runs on along the whole polyline, across its vertices.
    pub(crate) fn polyline(&mut self, points: &[(f64, f64)], half: f64, dash: Option<(f64, f64)>) {
        let Some((on, off)) = dash else {
            for w in points.windows(2) {
                self.segment(w[0], w[1], half);
            }
            return;
        };
        let period = on + off;
        let mut phase = 0.0f64;
        for w in points.windows(2) {
            let (p, q) = (w[0], w[1]);
            let len = ((q.0 - p.0).powi(2) + (q.1 - p.1).powi(2)).sqrt();
            if !(len > 0.0 && len.is_finite()) {
                continue;
            }
            let at = |s: f64| (p.0 + (q.0 - p.0) * s / len, p.1 + (q.1 - p.1) * s / len);
            // Only the part of the segment near the mask is walked, dash by dash; the pattern's
            // phase still advances over the rest.
            let Some((first, last)) = self.clip(p, q, half + 1.0) else {
                phase += len;
                continue;
            };
            let (first, last) = (first * len, last * len);
            phase += first;
            let mut s = first;
            while s < last {
                let within = phase % period;
                let end = if within < on {
                    let end = (s + on - within).min(last);
                    self.segment(at(s), at(end), half);
                    end
                } else {
                    (s + period - within).min(last)
                };
                // Guards against a step too small to move s (rounding at huge phases).
                let end = end.max(s + 1e-3);
                phase += end - s;
                s = end;
            }
            phase += len - last;
        }
    }

    /// The parameter range [t0, t1] ⊆ [0, 1] of the segment p + t (q - p) that lies within the
    /// mask grown by `margin` on every side (Liang–Barsky), or None if it misses it.
    fn clip(&self, p: (f64, f64), q: (f64, f64), margin: f64) -> Option<(f64, f64)> {
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let edges = [
            (-dx, p.0 + margin),
            (dx, self.width as f64 + margin - p.0),
            (-dy, p.1 + margin),
            (dy, self.height as f64 + margin - p.1),
        ];
        for (den, num) in edges {
            if den == 0.0 {
                if num < 0.0 {
                    return None;
                }
            } else {
                let t = num / den;
                if den < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
        (t0 <= t1 && t0.is_finite() && t1.is_finite()).then_some((t0, t1))
    }

    /// Blends `color` over `img` with this mask's coverage, inside the pixel rectangle
    /// [x0, x1) × [y0, y1) only. The mask must be the image's size.
    pub(crate) fn composite(
        &self,
        img: &mut RgbImage,
        color: Rgb<u8>,
        (x0, y0, x1, y1): (u32, u32, u32, u32),
    ) {
        debug_assert_eq!(
            (self.width, self.height),
            (img.width() as usize, img.height() as usize)
        );
        let x1 = x1.min(img.width());
        let y1 = y1.min(img.height());
        for y in y0..y1 {
            for x in x0..x1 {
                let a = self.alpha[y as usize * self.width + x as usize];
                if a > 0.0 {
                    blend(img, x, y, color, a);
                }
            }
        }
    }
}

/// Blends `color` with coverage `a` in [0, 1] over pixel (x, y), which must be in the image.
fn blend(img: &mut RgbImage, x: u32, y: u32, color: Rgb<u8>, a: f32) {
    let px = img.get_pixel_mut(x, y);
    for (dst, src) in px.0.iter_mut().zip(color.0) {
        let v = f32::from(*dst) * (1.0 - a) + f32::from(src) * a;
        *dst = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// A horizontal run of pixels [x0, x1) on row `y`, clipped to the image.
pub(crate) fn hline(img: &mut RgbImage, x0: i64, x1: i64, y: i64, color: Rgb<u8>) {
    super::text::fill_clipped(img, x0, y, x1 - x0, 1, color);
}

/// A vertical run of pixels [y0, y1) on column `x`, clipped to the image.
pub(crate) fn vline(img: &mut RgbImage, x: i64, y0: i64, y1: i64, color: Rgb<u8>) {
    super::text::fill_clipped(img, x, y0, 1, y1 - y0, color);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thick_segment_fully_covers_its_centre_line() {
        let mut m = Mask::new(20, 10);
        m.segment((2.0, 5.0), (18.0, 5.0), 1.25);
        // Rows 4 and 5 have centres 0.5 px from the line: fully covered.
        for x in 3..17 {
            assert_eq!(m.alpha[4 * 20 + x], 1.0);
            assert_eq!(m.alpha[5 * 20 + x], 1.0);
            assert_eq!(m.alpha[x], 0.0);
        }
    }

    #[test]
    fn shapes_far_outside_the_mask_are_ignored() {
        let mut m = Mask::new(4, 4);
        m.segment((-1e12, -1e12), (-1e12, 1e12), 2.0);
        m.disc((f64::NAN, 1.0), 3.0);
        m.polyline(&[(0.0, 0.0), (1e9, 0.0)], 1.0, Some((7.0, 5.0)));
        assert!(m.alpha.iter().all(|a| a.is_finite()));
    }
}
