//! Line plots: several series over linear or log axes, with a legend and reference lines.

use image::{Rgb, RgbImage};

use super::raster::{hline, vline, Mask};
use super::text::{draw_text, text_height, text_width};
use super::ticks::{axis_value, linear_axis, log_axis, Axis};
use super::{series_color, MAX_SIDE};
use crate::error::{Error, Result};

/// The smallest image width [`LinePlot::render`] accepts, in pixels.
pub const MIN_PLOT_WIDTH: u32 = 200;
/// The smallest image height [`LinePlot::render`] accepts, in pixels.
pub const MIN_PLOT_HEIGHT: u32 = 150;

/// Outer margin, in pixels.
const PAD: u32 = 10;
/// Length of a major tick, outside the frame.
const MAJOR_TICK: u32 = 5;
/// Length of a minor tick.
const MINOR_TICK: u32 = 3;
/// Gap between a tick and its label.
const TICK_LABEL_GAP: u32 = 4;
/// Scale of the title's text (16 px tall).
const TITLE_SCALE: u32 = 2;
/// Gap between the plot area and the legend.
const LEGEND_GAP: u32 = 16;
/// Length of the line sample in the legend.
const LEGEND_SAMPLE: u32 = 28;
/// Row pitch of the legend.
const LEGEND_PITCH: u32 = 14;
/// Half the width of a series' line: 2.5 px lines.
const LINE_HALF: f64 = 1.25;
/// Radius of a point marker.
const MARKER_RADIUS: f64 = 2.6;
/// Dash pattern of dashed series: (on, off) in pixels.
const DASH: (f64, f64) = (7.0, 5.0);
/// Markers are drawn when 90% of a series' consecutive points are at least this many pixels
/// apart (closer markers merge into a blob).
const MARKER_MIN_PITCH: f64 = 9.0;
/// The smallest plot area (inside the frame) that is still worth drawing.
const MIN_AREA: (u32, u32) = (60, 40);

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const FRAME: Rgb<u8> = Rgb([34, 34, 34]);
const TEXT: Rgb<u8> = Rgb([20, 20, 20]);
const GRID: Rgb<u8> = Rgb([229, 229, 229]);
const REFERENCE: Rgb<u8> = Rgb([110, 110, 110]);

/// One named line of a [`LinePlot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The points (x, y), joined in the order given. A point with a non-finite coordinate, or
    /// a non-positive one on a log axis, is a gap: the line stops before it and starts again
    /// after it.
    pub points: Vec<(f64, f64)>,
    /// Draw the line dashed (in the legend too).
    pub dashed: bool,
}

impl Series {
    /// A solid series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            dashed: false,
        }
    }

    /// A dashed series.
    pub fn dashed(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            dashed: true,
            ..Series::new(name, points)
        }
    }
}

/// Where the data area of a rendered [`LinePlot`] lies: the pixels inside the frame. The frame
/// is drawn one pixel outside it (columns `x - 1` and `x + width`, rows `y - 1` and
/// `y + height`); the axis limits fall on the frame lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotArea {
    /// The first column inside the frame.
    pub x: u32,
    /// The first row inside the frame.
    pub y: u32,
    /// Columns inside the frame.
    pub width: u32,
    /// Rows inside the frame.
    pub height: u32,
}

/// A line plot: series of (x, y) points on linear or log axes, rendered to an RGB image.
///
/// Layout: the title (2× text) centred at the top, the y label above the top-left corner of
/// the frame, the x label centred below the x tick labels, the legend to the right of the
/// frame. Series take their colours from [`PALETTE`](super::PALETTE) in order, cycling.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    /// The title, drawn at twice the text size; empty for none.
    pub title: String,
    /// The label under the x axis; empty for none.
    pub x_label: String,
    /// The label above the y axis; empty for none.
    pub y_label: String,
    /// A log10 x axis (decades); non-positive x values are gaps.
    pub log_x: bool,
    /// A log10 y axis (decades); non-positive y values are gaps.
    pub log_y: bool,
    /// The lines, drawn in order (later ones on top).
    pub series: Vec<Series>,
    /// The image width in pixels, at least [`MIN_PLOT_WIDTH`].
    pub width: u32,
    /// The image height in pixels, at least [`MIN_PLOT_HEIGHT`].
    pub height: u32,
    /// Horizontal reference lines (y value, label), drawn dashed in grey across the plot with
    /// the label at the right end, e.g. `(60.0, "60 dB".into())`. The y range includes them.
    pub hlines: Vec<(f64, String)>,
}

/// Everything about the picture that depends on the data but not on drawing it.
struct Layout {
    area: PlotArea,
    x: Axis,
    y: Axis,
    /// Top of the title text, and of the y label, if present.
    title_y: u32,
    y_label_y: u32,
    legend_x: u32,
}

impl LinePlot {
    /// An empty plot with linear axes, 800 × 500 pixels, no series and no reference lines.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LinePlot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            series: Vec::new(),
            width: 800,
            height: 500,
            hlines: Vec::new(),
        }
    }

    /// The data area of the image [`render`](Self::render) would draw, with the same errors.
    pub fn plot_area(&self) -> Result<PlotArea> {
        Ok(self.layout()?.area)
    }

    /// Draws the plot: white background, frame, ticks and labels, light grid lines at the
    /// major ticks, reference lines, the series (2.5 px anti-aliased lines, with small markers
    /// when the points are mostly at least 9 px apart, and always on isolated points) and the
    /// legend.
    ///
    /// Errors: no series; no drawable point in any series; width or height below the minimum
    /// (or above 16384), or margins (long tick labels, a wide legend) that leave less than
    /// 60 × 40 pixels for the data; a data range too wide for f64 arithmetic.
    pub fn render(&self) -> Result<RgbImage> {
        let l = self.layout()?;
        let mut img = RgbImage::from_pixel(self.width, self.height, WHITE);
        let a = l.area;
        let (ax0, ay0) = (i64::from(a.x), i64::from(a.y));
        let (ax1, ay1) = (ax0 + i64::from(a.width), ay0 + i64::from(a.height));

        // Grid lines at major ticks strictly inside the frame.
        for t in l.x.ticks.iter().filter(|t| t.major) {
            let col = self.x_px(&l, t.at).floor() as i64;
            if col >= ax0 && col < ax1 {
                vline(&mut img, col, ay0, ay1, GRID);
            }
        }
        for t in l.y.ticks.iter().filter(|t| t.major) {
            let row = self.y_px(&l, t.at).floor() as i64;
            if row >= ay0 && row < ay1 {
                hline(&mut img, ax0, ax1, row, GRID);
            }
        }

        let mut mask = Mask::new(self.width, self.height);
        let inside = (a.x, a.y, a.x + a.width, a.y + a.height);
        for (v, label) in &self.hlines {
            let Some(t) = axis_value(*v, self.log_y) else {
                continue;
            };
            let y = self.y_px(&l, t);
            mask.clear();
            mask.polyline(
                &[(f64::from(a.x), y), (f64::from(a.x + a.width), y)],
                0.5,
                Some((6.0, 4.0)),
            );
            mask.composite(&mut img, REFERENCE, inside);
            let tx = i64::from(a.x + a.width) - 4 - i64::from(text_width(label, 1));
            draw_text(
                &mut img,
                clamp_i32(tx),
                clamp_i32(y as i64 - 11),
                label,
                REFERENCE,
                1,
            );
        }

        // Series, each composited from its own coverage mask. Markers may reach a little past
        // the frame, lines never do (the axis limits enclose every point).
        let m = MARKER_RADIUS.ceil() as u32 + 1;
        let marker_box = (
            a.x.saturating_sub(m),
            a.y.saturating_sub(m),
            a.x + a.width + m,
            a.y + a.height + m,
        );
        let mut with_markers = Vec::with_capacity(self.series.len());
        for (i, s) in self.series.iter().enumerate() {
            mask.clear();
            let runs = self.runs(&l, s);
            let markers = sparse_enough(&runs);
            with_markers.push(markers);
            for run in &runs {
                mask.polyline(run, LINE_HALF, s.dashed.then_some(DASH));
                if markers || run.len() == 1 {
                    for &p in run {
                        mask.disc(p, MARKER_RADIUS);
                    }
                }
            }
            mask.composite(&mut img, series_color(i), marker_box);
        }

        // Frame, ticks, tick labels.
        hline(&mut img, ax0 - 1, ax1 + 1, ay0 - 1, FRAME);
        hline(&mut img, ax0 - 1, ax1 + 1, ay1, FRAME);
        vline(&mut img, ax0 - 1, ay0 - 1, ay1 + 1, FRAME);
        vline(&mut img, ax1, ay0 - 1, ay1 + 1, FRAME);
        let label_h = i64::from(text_height(1));
        for t in &l.x.ticks {
            let col = self.x_px(&l, t.at).floor() as i64;
            let len = i64::from(if t.major { MAJOR_TICK } else { MINOR_TICK });
            vline(&mut img, col, ay1 + 1, ay1 + 1 + len, FRAME);
            if let Some(label) = &t.label {
                let tx = col - i64::from(text_width(label, 1)) / 2;
                let ty = ay1 + 1 + i64::from(MAJOR_TICK + TICK_LABEL_GAP);
                draw_text(&mut img, clamp_i32(tx), clamp_i32(ty), label, TEXT, 1);
            }
        }
        for t in &l.y.ticks {
            let row = self.y_px(&l, t.at).floor() as i64;
            let len = i64::from(if t.major { MAJOR_TICK } else { MINOR_TICK });
            hline(&mut img, ax0 - 1 - len, ax0 - 1, row, FRAME);
            if let Some(label) = &t.label {
                let tx = ax0 - 1 - i64::from(MAJOR_TICK + TICK_LABEL_GAP + text_width(label, 1));
                let ty = row - label_h / 2 + 1;
                draw_text(&mut img, clamp_i32(tx), clamp_i32(ty), label, TEXT, 1);
            }
        }

        // Title, axis labels.
        if !self.title.is_empty() {
            let w = i64::from(text_width(&self.title, TITLE_SCALE));
            let tx = (i64::from(self.width) - w) / 2;
            let ty = clamp_i32(i64::from(l.title_y));
            draw_text(
                &mut img,
                clamp_i32(tx.max(0)),
                ty,
                &self.title,
                TEXT,
                TITLE_SCALE,
            );
        }
        if !self.y_label.is_empty() {
            let ty = clamp_i32(i64::from(l.y_label_y));
            draw_text(&mut img, PAD as i32, ty, &self.y_label, TEXT, 1);
        }
        if !self.x_label.is_empty() {
            let w = i64::from(text_width(&self.x_label, 1));
            let tx = ax0 + (i64::from(a.width) - w) / 2;
            let ty = ay1 + 1 + i64::from(MAJOR_TICK + TICK_LABEL_GAP + 2 * 8);
            draw_text(
                &mut img,
                clamp_i32(tx),
                clamp_i32(ty),
                &self.x_label,
                TEXT,
                1,
            );
        }

        // Legend: a line sample (with a marker if the series has them) and the name, one row
        // per series.
        for (i, s) in self.series.iter().enumerate() {
            let row = i64::from(a.y) + 4 + i as i64 * i64::from(LEGEND_PITCH);
            if row >= i64::from(self.height) {
                break;
            }
            let cy = row as f64 + 4.0;
            let x0 = f64::from(l.legend_x);
            mask.clear();
            mask.polyline(
                &[(x0, cy), (x0 + f64::from(LEGEND_SAMPLE), cy)],
                LINE_HALF,
                s.dashed.then_some(DASH),
            );
            if with_markers[i] {
                mask.disc((x0 + f64::from(LEGEND_SAMPLE) / 2.0, cy), MARKER_RADIUS);
            }
            mask.composite(&mut img, series_color(i), (0, 0, self.width, self.height));
            let tx = i64::from(l.legend_x + LEGEND_SAMPLE + 6);
            draw_text(&mut img, clamp_i32(tx), clamp_i32(row), &s.name, TEXT, 1);
        }
        Ok(img)
    }

    /// The continuous x pixel coordinate of axis-space value `t`: the lower limit is the centre
    /// of the left frame column, the upper limit that of the right one.
    fn x_px(&self, l: &Layout, t: f64) -> f64 {
        let f = (t - l.x.t0) / (l.x.t1 - l.x.t0);
        f64::from(l.area.x) - 0.5 + f * (f64::from(l.area.width) + 1.0)
    }

    /// The continuous y pixel coordinate of axis-space value `t` (upwards).
    fn y_px(&self, l: &Layout, t: f64) -> f64 {
        let f = (t - l.y.t0) / (l.y.t1 - l.y.t0);
        f64::from(l.area.y + l.area.height) + 0.5 - f * (f64::from(l.area.height) + 1.0)
    }

    /// The drawable stretches of `s` in pixel coordinates, split at gaps.
    fn runs(&self, l: &Layout, s: &Series) -> Vec<Vec<(f64, f64)>> {
        let mut runs = Vec::new();
        let mut run = Vec::new();
        for &(x, y) in &s.points {
            match (axis_value(x, self.log_x), axis_value(y, self.log_y)) {
                (Some(tx), Some(ty)) => run.push((self.x_px(l, tx), self.y_px(l, ty))),
                _ => {
                    if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        runs
    }

    /// The range of the drawable points (and of the reference lines, for y), in data units:
    /// (x lo, x hi, y lo, y hi). Errors when there is nothing to draw.
    fn data_range(&self) -> Result<(f64, f64, f64, f64)> {
        let what = || format!("line plot {:?}", self.title);
        if self.series.is_empty() {
            return Err(Error::invalid(format!("{} has no series", what())));
        }
        let (mut xlo, mut xhi) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut ylo, mut yhi) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in &self.series {
            for &(x, y) in &s.points {
                if axis_value(x, self.log_x).is_some() && axis_value(y, self.log_y).is_some() {
                    (xlo, xhi) = (xlo.min(x), xhi.max(x));
                    (ylo, yhi) = (ylo.min(y), yhi.max(y));
                }
            }
        }
        if xlo > xhi {
            let points: usize = self.series.iter().map(|s| s.points.len()).sum();
            let log = match (self.log_x, self.log_y) {
                (false, false) => "",
                (true, false) => " and x > 0 on the log x axis",
                (false, true) => " and y > 0 on the log y axis",
                (true, true) => " and x, y > 0 on the log axes",
            };
            return Err(Error::invalid(format!(
                "{}: none of its {points} point(s) in {} series can be drawn (a point needs \
                 finite x and y{log})",
                what(),
                self.series.len()
            )));
        }
        for (v, _) in &self.hlines {
            if axis_value(*v, self.log_y).is_some() {
                (ylo, yhi) = (ylo.min(*v), yhi.max(*v));
            }
        }
        Ok((xlo, xhi, ylo, yhi))
    }

    fn layout(&self) -> Result<Layout> {
        let what = || format!("line plot {:?}", self.title);
        if !(MIN_PLOT_WIDTH..=MAX_SIDE).contains(&self.width)
            || !(MIN_PLOT_HEIGHT..=MAX_SIDE).contains(&self.height)
        {
            return Err(Error::invalid(format!(
                "{}: image size {}x{} is outside {MIN_PLOT_WIDTH}..={MAX_SIDE} x \
                 {MIN_PLOT_HEIGHT}..={MAX_SIDE} pixels",
                what(),
                self.width,
                self.height
            )));
        }
        let (xlo, xhi, ylo, yhi) = self.data_range()?;
        let text_h = text_height(1);

        // Vertical: title, y label, frame, ticks, tick labels, x label.
        let mut top = PAD;
        let title_y = top;
        if !self.title.is_empty() {
            top += text_height(TITLE_SCALE) + 8;
        }
        let y_label_y = top;
        if !self.y_label.is_empty() {
            top += text_h + 8;
        } else {
            top += text_h / 2;
        }
        let plot_y = top + 1;
        let mut bottom = 1 + MAJOR_TICK + TICK_LABEL_GAP + text_h + PAD;
        if !self.x_label.is_empty() {
            bottom += 8 + text_h;
        }
        let too_small = |detail: String| {
            Error::invalid(format!(
                "{}: a {}x{} image leaves {detail} for the data, which needs at least {}x{}; \
                 make the image larger (or labels and series names shorter)",
                what(),
                self.width,
                self.height,
                MIN_AREA.0,
                MIN_AREA.1
            ))
        };
        let plot_h = self.height.saturating_sub(plot_y + bottom);
        if plot_h < MIN_AREA.1 {
            return Err(too_small(format!("{plot_h} px of height")));
        }
        let y = if self.log_y {
            log_axis(ylo, yhi, f64::from(plot_h), false)
        } else {
            linear_axis(ylo, yhi, f64::from(plot_h), false)
                .map_err(|e| e.in_context(format!("{} y axis", what())))?
        };

        // Horizontal: tick labels, frame, data, frame, legend.
        let plot_x = PAD + y.widest_label() + TICK_LABEL_GAP + MAJOR_TICK + 1;
        let legend_w = LEGEND_SAMPLE
            + 6
            + self
                .series
                .iter()
                .map(|s| text_width(&s.name, 1))
                .max()
                .unwrap_or(0);
        let right = 1 + LEGEND_GAP + legend_w + PAD;
        let plot_w = self.width.saturating_sub(plot_x.saturating_add(right));
        if plot_w < MIN_AREA.0 {
            return Err(too_small(format!(
                "{plot_w} px of width (the y tick labels take {plot_x} px, the legend {right} px)"
            )));
        }
        let x = if self.log_x {
            log_axis(xlo, xhi, f64::from(plot_w), true)
        } else {
            linear_axis(xlo, xhi, f64::from(plot_w), true)
                .map_err(|e| e.in_context(format!("{} x axis", what())))?
        };
        Ok(Layout {
            area: PlotArea {
                x: plot_x,
                y: plot_y,
                width: plot_w,
                height: plot_h,
            },
            x,
            y,
            title_y,
            y_label_y,
            legend_x: plot_x + plot_w + 1 + LEGEND_GAP,
        })
    }
}

/// Whether the points of `runs` are spread out enough for markers: at least 90% of the
/// distances between consecutive points are [`MARKER_MIN_PITCH`] or more.
fn sparse_enough(runs: &[Vec<(f64, f64)>]) -> bool {
    let mut d: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.windows(2))
        .map(|w| (w[1].0 - w[0].0).hypot(w[1].1 - w[0].1))
        .collect();
    if d.is_empty() {
        return true;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 10] >= MARKER_MIN_PITCH
}

/// `v` clamped into i32 (text far outside the image is clipped anyway).
fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
