//! A synthetic image-classification task: S × S crops of the built-in picture at random
//! positions, each with one of [`Shape::ALL`] (or nothing) drawn at a random position, size
//! and contrast; the label is the shape. Everything follows from a seed, so a training split
//! and a held-out split are two seeds. Chance accuracy is 1/K with K = [`Shape::ALL`]`.len()`.

use crate::error::{Error, Result};
use crate::picture::Picture;

/// The class of an example: what is drawn on the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Nothing: the background alone.
    None,
    /// A filled axis-aligned square.
    Square,
    /// A filled disc.
    Disc,
    /// A horizontal bar (full size wide, about a third as tall).
    HorizontalBar,
    /// A vertical bar.
    VerticalBar,
}

impl Shape {
    /// Every class, in label order.
    pub const ALL: [Shape; 5] = [
        Shape::None,
        Shape::Square,
        Shape::Disc,
        Shape::HorizontalBar,
        Shape::VerticalBar,
    ];

    /// The label (index in [`Shape::ALL`]).
    pub fn label(self) -> usize {
        Shape::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }

    /// True where the shape of side `s` covers the pixel at offset (dx, dy) from its corner.
    fn covers(self, s: usize, dx: usize, dy: usize) -> bool {
        let bar = s.div_ceil(3);
        let mid = (s - bar) / 2;
        match self {
            Shape::None => false,
            Shape::Square => true,
            Shape::Disc => {
                let c = (s as f64 - 1.0) / 2.0;
                let r = s as f64 / 2.0;
                (dx as f64 - c).powi(2) + (dy as f64 - c).powi(2) <= r * r
            }
            Shape::HorizontalBar => dy >= mid && dy < mid + bar,
            Shape::VerticalBar => dx >= mid && dx < mid + bar,
        }
    }
}

/// A small deterministic generator (SplitMix64, Steele et al.) for the host side.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) (53 bits).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (n ≥ 1).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// A Fisher–Yates shuffle of `v`.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Options of the task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskOptions {
    /// Side S of the images in pixels (at least 6).
    pub size: usize,
    /// Three planar channels instead of one grey channel.
    pub colour: bool,
    /// The side of the resized picture the crops are taken from (≥ size); larger means
    /// smoother, more zoomed-in backgrounds.
    pub background_side: usize,
    /// Smallest and largest shape contrast: the shape's pixels move this far from the
    /// background (towards white on dark backgrounds, towards black on light ones).
    pub contrast: (f32, f32),
}

impl Default for TaskOptions {
    /// S = 12, grey, crops of the picture resized to 96 × 96, contrast 0.5–0.9.
    fn default() -> Self {
        TaskOptions {
            size: 12,
            colour: false,
            background_side: 96,
            contrast: (0.5, 0.9),
        }
    }
}

/// Examples of the task: images as rows of `features` values in [0, 1] (planar channels, then
/// rows of pixels) and labels as f32 integers, the layout [`super::Mlp`] and
/// [`crate::ops::cross_entropy`] take.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Row-major `[len, features]`.
    pub images: Vec<f32>,
    /// `[len]`, integers in `[0, classes)`.
    pub labels: Vec<f32>,
    /// Values per image: channels · S · S.
    pub features: usize,
    /// Number of classes K.
    pub classes: usize,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The same examples with 0.5 subtracted from every value (images in [−0.5, 0.5]), the
    /// centred inputs an MLP without normalization trains on best. A fixed offset, so
    /// splits stay comparable.
    pub fn centred(mut self) -> Dataset {
        self.images.iter_mut().for_each(|v| *v -= 0.5);
        self
    }

    /// The image of example `i`.
    pub fn example(&self, i: usize) -> &[f32] {
        &self.images[i * self.features..(i + 1) * self.features]
    }
}

/// Generates `count` examples from `seed`: classes uniform, a random crop of the background,
/// the shape of side in [S/3, S/2 + 1] at a random position inside the image with a random
/// contrast. Splits from different seeds are independent draws of the same distribution.
pub fn generate(options: &TaskOptions, count: usize, seed: u64) -> Result<Dataset> {
    let s = options.size;
    let (c_lo, c_hi) = options.contrast;
    if s < 6
        || options.background_side < s
        || options.background_side > crate::picture::MAX_SIDE as usize
        || !(0.0..=1.0).contains(&c_lo)
        || !(c_lo..=1.0).contains(&c_hi)
    {
        return Err(Error::invalid(format!(
            "task: need size >= 6, size <= background_side <= {}, 0 <= contrast.0 <= \
             contrast.1 <= 1; got {options:?}",
            crate::picture::MAX_SIDE
        )));
    }
    let picture = Picture::default_image().square(options.background_side as u32)?;
    let side = options.background_side;
    let plane = side * side;
    let channels = if options.colour { 3 } else { 1 };
    // The background's planes: the picture's, or their mean for grey.
    let background: Vec<Vec<f32>> = (0..channels)
        .map(|c| {
            (0..plane)
                .map(|i| {
                    if options.colour {
                        picture.planes[(c % picture.channels) * plane + i]
                    } else {
                        (0..picture.channels)
                            .map(|k| picture.planes[k * plane + i])
                            .sum::<f32>()
                            / picture.channels as f32
                    }
                })
                .collect()
        })
        .collect();
    let features = channels * s * s;
    let mut rng = SplitMix64::new(seed ^ 0x7461_736B_0000_0000);
    let mut images = vec![0.0f32; count * features];
    let mut labels = Vec::with_capacity(count);
    let k = Shape::ALL.len();
    for img in images.chunks_mut(features) {
        let shape = Shape::ALL[rng.below(k)];
        let (ox, oy) = (rng.below(side - s + 1), rng.below(side - s + 1));
        for c in 0..channels {
            for y in 0..s {
                for x in 0..s {
                    img[c * s * s + y * s + x] = background[c][(oy + y) * side + ox + x];
                }
            }
        }
        let size = s / 3 + rng.below(s / 2 + 2 - s / 3);
        let (px, py) = (rng.below(s - size + 1), rng.below(s - size + 1));
        let contrast = c_lo + (c_hi - c_lo) * rng.uniform() as f32;
        let mut mean = 0.0f32;
        for c in 0..channels {
            for dy in 0..size {
                for dx in 0..size {
                    mean += img[c * s * s + (py + dy) * s + px + dx];
                }
            }
        }
        mean /= (channels * size * size) as f32;
        let delta = if mean < 0.5 { contrast } else { -contrast };
        for c in 0..channels {
            for dy in 0..size {
                for dx in 0..size {
                    if shape.covers(size, dx, dy) {
                        let v = &mut img[c * s * s + (py + dy) * s + px + dx];
                        *v = (*v + delta).clamp(0.0, 1.0);
                    }
                }
            }
        }
        labels.push(shape.label() as f32);
    }
    Ok(Dataset {
        images,
        labels,
        features,
        classes: k,
    })
}
