//! Text in an 8×8 bitmap font (font8x8, public domain), scaled by whole pixels.
//!
//! Covered: printable ASCII, Latin-1 (U+00A0–U+00FF: `²`, `µ`, `±`, `×`, `°`, accented
//! letters) and Greek (U+0390–U+03C9: `γ`, `σ`, ...). Any other character, and any control
//! character, is drawn as `?`. Every character advances by 8 × `scale` pixels; there is one
//! line only (a `\n` is drawn as `?`).
//!
//! Drawing clips at the image borders: any coordinates, including negative ones and ones far
//! outside the image, are accepted and draw only what falls inside.

use font8x8::legacy::{BASIC_LEGACY, GREEK_LEGACY, LATIN_LEGACY};
use image::{Rgb, RgbImage};

/// The width and height of one glyph cell, in font pixels (before scaling).
pub const GLYPH_SIZE: u32 = 8;

/// The 8 rows of the glyph for `c`; bit `i` of a row is column `i` (bit 0 is the leftmost).
fn glyph(c: char) -> [u8; 8] {
    let code = c as u32;
    let found = match code {
        0x20..=0x7E => Some(BASIC_LEGACY[code as usize]),
        0xA0..=0xFF => Some(LATIN_LEGACY[(code - 0xA0) as usize]),
        0x390..=0x3C9 => Some(GREEK_LEGACY[(code - 0x390) as usize]),
        _ => None,
    };
    match found {
        // An empty glyph is right for spaces, wrong for a code point the font left blank.
        Some(g) if g != [0; 8] || c.is_whitespace() => g,
        _ => BASIC_LEGACY[b'?' as usize],
    }
}

/// The scale actually used: 0 is treated as 1.
fn effective_scale(scale: u32) -> u32 {
    scale.max(1)
}

/// The width in pixels of `text` drawn at `scale` (8 × `scale` per character; a `scale` of 0
/// counts as 1). Saturates at `u32::MAX` rather than overflowing.
pub fn text_width(text: &str, scale: u32) -> u32 {
    let chars = text.chars().count() as u64;
    let w = chars * u64::from(GLYPH_SIZE) * u64::from(effective_scale(scale));
    u32::try_from(w).unwrap_or(u32::MAX)
}

/// The height in pixels of one line of text at `scale` (8 × `scale`; a `scale` of 0 counts as
/// 1). Saturates at `u32::MAX`.
pub fn text_height(scale: u32) -> u32 {
    GLYPH_SIZE.saturating_mul(effective_scale(scale))
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a `scale` × `scale`
/// square of `color` (a `scale` of 0 counts as 1). Only the set pixels of each glyph are
/// drawn: the background shows through. Clips at the image borders and never panics, whatever
/// the coordinates.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, color: Rgb<u8>, scale: u32) {
    let s = i64::from(effective_scale(scale));
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x, y) = (i64::from(x), i64::from(y));
    let cell = i64::from(GLYPH_SIZE) * s;
    if y >= h || y + cell <= 0 {
        return;
    }
    for (i, c) in text.chars().enumerate() {
        // Saturating: with a huge scale, i * cell could leave i64 for very long strings.
        let gx = x.saturating_add((i as i64).saturating_mul(cell));
        if gx >= w {
            break;
        }
        if gx + cell <= 0 {
            continue;
        }
        let rows = glyph(c);
        for (row, bits) in rows.iter().enumerate() {
            let py0 = y + row as i64 * s;
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                let px0 = gx + col * s;
                fill_clipped(img, px0, py0, s, s, color);
            }
        }
    }
}

/// Fills the rectangle [x0, x0 + w) × [y0, y0 + h), clipped to the image.
pub(crate) fn fill_clipped(img: &mut RgbImage, x0: i64, y0: i64, w: i64, h: i64, color: Rgb<u8>) {
    let xa = x0.max(0);
    let ya = y0.max(0);
    let xb = x0.saturating_add(w).min(i64::from(img.width()));
    let yb = y0.saturating_add(h).min(i64::from(img.height()));
    for py in ya..yb {
        for px in xa..xb {
            // In range by the clipping above, so the casts are lossless.
            img.put_pixel(px as u32, py as u32, color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_blank_code_points_fall_back_to_question_mark() {
        let q = glyph('?');
        assert_eq!(glyph('\n'), q);
        assert_eq!(glyph('\u{2603}'), q);
        assert_eq!(glyph('\u{7F}'), q, "DEL is blank in the font");
        assert_eq!(glyph(' '), [0; 8]);
        assert_ne!(glyph('γ'), q);
        assert_ne!(glyph('²'), q);
    }
}
