//! Axis ranges, "nice" ticks and compact tick labels.
//!
//! * Linear axes step by 1, 2 or 5 × 10^e, and the axis limits are rounded out to whole steps.
//! * Log axes span whole decades. Every decade gets a labelled major tick (every n-th decade
//!   when they are too close for labels), 2 × … 9 × get minor ticks when a decade is at least
//!   40 px long, and 2 × and 5 × are labelled too when a decade has ample room for it.
//! * Labels are exact decimal strings built from integers (no float printing): `0.5`, `120`,
//!   `1.5e-3`. An axis uses plain decimals when its largest |value| is in [0.01, 1e5) and
//!   scientific notation (`1e-3`, `2.5e6`; plain for exponent 0) otherwise, so that one
//!   axis never mixes the two.

use crate::error::{Error, Result};

/// Pixels between the tick labels of a horizontal axis, beyond the widest label.
const X_LABEL_GAP: f64 = 12.0;
/// Pixels from one tick label's row to the next on a vertical axis (8 px text + gap).
const Y_LABEL_PITCH: f64 = 18.0;

/// One tick: where (in axis space: the value, or log10 of it on a log axis) and how it looks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    /// Position in axis space.
    pub(crate) at: f64,
    /// Major ticks are longer and get a grid line.
    pub(crate) major: bool,
    /// The label, if this tick has one.
    pub(crate) label: Option<String>,
}

/// An axis: its limits in axis space and its ticks.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    /// The lower limit, in axis space.
    pub(crate) t0: f64,
    /// The upper limit, in axis space (> t0).
    pub(crate) t1: f64,
    /// The ticks, in increasing order.
    pub(crate) ticks: Vec<Tick>,
}

impl Axis {
    /// The widest label in pixels at text scale 1.
    pub(crate) fn widest_label(&self) -> u32 {
        self.ticks
            .iter()
            .filter_map(|t| t.label.as_deref())
            .map(|l| super::text::text_width(l, 1))
            .max()
            .unwrap_or(0)
    }
}

/// `v` in axis space: itself on a linear axis, log10 on a log axis; None where it cannot be
/// drawn.
pub(crate) fn axis_value(v: f64, log: bool) -> Option<f64> {
    if !v.is_finite() {
        None
    } else if log {
        (v > 0.0).then(|| v.log10())
    } else {
        Some(v)
    }
}

/// 10^e as f64 (e within ±300, which callers ensure).
fn pow10(e: i32) -> f64 {
    if e >= 0 {
        10f64.powi(e)
    } else {
        1.0 / 10f64.powi(-e)
    }
}

/// `m` × 10^`e` as an exact decimal string, plain (`0.025`, `1200`) or scientific (`2.5e-2`,
/// `1.2e3`; just the mantissa when the exponent is 0).
pub(crate) fn format_decimal(m: i64, e: i32, scientific: bool) -> String {
    if m == 0 {
        return "0".to_string();
    }
    let sign = if m < 0 { "-" } else { "" };
    let digits = m.unsigned_abs().to_string();
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if scientific {
        let exp = e + digits.len() as i32 - 1;
        let mantissa = trim(format!("{}.{}", &digits[..1], &digits[1..]));
        if exp == 0 {
            format!("{sign}{mantissa}")
        } else {
            format!("{sign}{mantissa}e{exp}")
        }
    } else if e >= 0 {
        format!("{sign}{digits}{}", "0".repeat(e as usize))
    } else {
        let f = e.unsigned_abs() as usize;
        let padded = format!("{digits:0>width$}", width = f + 1);
        let (int, frac) = padded.split_at(padded.len() - f);
        format!("{sign}{}", trim(format!("{int}.{frac}")))
    }
}

/// Whether labels whose largest |value| is `max_abs` are written in scientific notation.
fn use_scientific(max_abs: f64) -> bool {
    !(1e-2..1e5).contains(&max_abs)
}

/// The 1-2-5 step nearest to `raw` (on a log scale), as (mantissa, exponent).
fn nice_step(raw: f64) -> Option<(i64, i32)> {
    if !(raw.is_finite() && raw > 0.0) {
        return None;
    }
    let mut e = raw.log10().floor() as i32;
    if !(-300..=300).contains(&e) {
        return None;
    }
    let norm = raw / pow10(e);
    // The nearest of 1, 2, 5, 10 on a log scale (the boundaries are geometric means).
    let m = if norm < 2f64.sqrt() {
        1
    } else if norm < 10f64.sqrt() {
        2
    } else if norm < 50f64.sqrt() {
        5
    } else {
        e += 1;
        1
    };
    Some((m, e))
}

/// Whether labels of at most `widest` pixels fit `spacing` pixels apart.
fn labels_fit(spacing: f64, widest: u32, horizontal: bool) -> bool {
    if horizontal {
        spacing >= f64::from(widest) + X_LABEL_GAP
    } else {
        spacing >= Y_LABEL_PITCH
    }
}

/// A linear axis covering [lo, hi] (finite, lo <= hi) drawn `px` pixels long, with 1-2-5
/// ticks aiming at one per 100 px horizontally and one per 60 px vertically (2 to 10 aimed
/// at; the nearest 1-2-5 step may give up to about 1.6 times as many), fewer when the labels
/// would not fit.
pub(crate) fn linear_axis(lo: f64, hi: f64, px: f64, horizontal: bool) -> Result<Axis> {
    let (lo, hi) = if lo == hi {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    } else {
        (lo, hi)
    };
    let span = hi - lo;
    let too_wide = || {
        Error::invalid(format!(
            "cannot choose ticks for the data range [{lo:e}, {hi:e}]: its width is out of range \
             or too small relative to its values"
        ))
    };
    if !(span.is_finite() && span > 0.0) {
        return Err(too_wide());
    }
    let per_tick = if horizontal { 100.0 } else { 60.0 };
    let most = ((px / per_tick).floor() as i64).clamp(2, 10);
    let mut fallback = None;
    for target in (2..=most).rev() {
        let (m, e) = nice_step(span / target as f64).ok_or_else(too_wide)?;
        let step = m as f64 * pow10(e);
        let kmin = (lo / step + 1e-9).floor();
        let mut kmax = (hi / step - 1e-9).ceil();
        if !(kmin.abs() < 1e15 && kmax.abs() < 1e15) {
            return Err(too_wide());
        }
        if kmax <= kmin {
            kmax = kmin + 1.0;
        }
        let (kmin, kmax) = (kmin as i64, kmax as i64);
        let sci = use_scientific(kmin.abs().max(kmax.abs()) as f64 * step);
        let ticks: Vec<Tick> = (kmin..=kmax)
            .map(|k| Tick {
                at: k as f64 * step,
                major: true,
                label: Some(format_decimal(k * m, e, sci)),
            })
            .collect();
        let axis = Axis {
            t0: kmin as f64 * step,
            t1: kmax as f64 * step,
            ticks,
        };
        let spacing = px / (kmax - kmin) as f64;
        if labels_fit(spacing, axis.widest_label(), horizontal) {
            return Ok(axis);
        }
        fallback = Some(axis);
    }
    fallback.ok_or_else(too_wide)
}

/// A log axis covering [lo, hi] (positive and finite, lo <= hi) drawn `px` pixels long, from
/// the decade at or below lo to the decade at or above hi (at least one decade).
pub(crate) fn log_axis(lo: f64, hi: f64, px: f64, horizontal: bool) -> Axis {
    let mut kmin = (lo.log10() + 1e-9).floor() as i32;
    let mut kmax = (hi.log10() - 1e-9).ceil() as i32;
    if kmax <= kmin {
        // Values at (or within rounding of) one power of ten: centre it in two decades.
        kmin = kmax - 1;
        kmax = kmin + 2;
    }
    let decades = f64::from(kmax - kmin);
    let decade_px = px / decades;
    // Label every n-th decade, n from 1, 2, 5, 10, 20, 50, ...
    let sci = kmin < -2 || kmax > 4;
    let widest = (kmin..=kmax)
        .map(|k| super::text::text_width(&format_decimal(1, k, sci), 1))
        .max()
        .unwrap_or(0);
    let mut stride = 1i32;
    let mut i = 1;
    while !labels_fit(decade_px * f64::from(stride), widest, horizontal) && stride < 1 << 20 {
        stride = [1, 2, 5][i % 3] * 10i32.pow(i as u32 / 3);
        i += 1;
    }
    let minor = decade_px >= 40.0;
    let label_25 = stride == 1 && {
        // The closest labels are 1 → 2 and 5 → 10, log10(2) ≈ 0.301 of a decade apart; they
        // get twice the usual room, so that the decades stay easy to pick out.
        let w = super::text::text_width(&format_decimal(5, kmax.max(kmin + 1) - 1, sci), 1);
        labels_fit(decade_px * 2f64.log10() / 2.0, widest.max(w), horizontal)
    };
    let mut ticks = Vec::new();
    for k in kmin..=kmax {
        let labelled = k.rem_euclid(stride) == 0;
        if labelled || decade_px >= 5.0 {
            ticks.push(Tick {
                at: f64::from(k),
                major: true,
                label: labelled.then(|| format_decimal(1, k, sci)),
            });
        }
        if k < kmax && minor {
            for m in 2..=9i64 {
                ticks.push(Tick {
                    at: f64::from(k) + (m as f64).log10(),
                    major: false,
                    label: (label_25 && (m == 2 || m == 5)).then(|| format_decimal(m, k, sci)),
                });
            }
        }
    }
    Axis {
        t0: f64::from(kmin),
        t1: f64::from(kmax),
        ticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_compact() {
        assert_eq!(format_decimal(5, -1, false), "0.5");
        assert_eq!(format_decimal(12, 1, false), "120");
        assert_eq!(format_decimal(1, -3, true), "1e-3");
        assert_eq!(format_decimal(-25, 5, true), "-2.5e6");
        assert_eq!(format_decimal(10, -1, false), "1");
        assert_eq!(format_decimal(15, -4, false), "0.0015");
        assert_eq!(format_decimal(3, 0, true), "3");
        assert_eq!(format_decimal(0, 7, true), "0");
    }

    #[test]
    fn linear_ticks_step_by_one_two_or_five() {
        let a = linear_axis(0.3, 9.7, 500.0, true).unwrap();
        let labels: Vec<_> = a.ticks.iter().filter_map(|t| t.label.clone()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8", "10"]);
        assert_eq!((a.t0, a.t1), (0.0, 10.0));
        let a = linear_axis(-0.013, 0.021, 300.0, false).unwrap();
        assert!(a.ticks.iter().all(|t| t.label.as_deref() != Some("-0")));
        assert!(a.t0 <= -0.013 && a.t1 >= 0.021);
    }

    #[test]
    fn log_ticks_cover_whole_decades() {
        let a = log_axis(1e-3, 1e3, 400.0, false);
        assert_eq!((a.t0, a.t1), (-3.0, 3.0));
        let labels: Vec<_> = a.ticks.iter().filter_map(|t| t.label.clone()).collect();
        assert_eq!(labels, ["1e-3", "1e-2", "1e-1", "1", "1e1", "1e2", "1e3"]);
        let a = log_axis(3.0, 70.0, 400.0, false);
        let labels: Vec<_> = a.ticks.iter().filter_map(|t| t.label.clone()).collect();
        assert_eq!(labels, ["1", "2", "5", "10", "20", "50", "100"]);
        let a = log_axis(1e-300, 1e300, 300.0, false);
        assert!(a.ticks.iter().filter(|t| t.label.is_some()).count() <= 300 / 18 + 1);
    }
}
