//! Autotuning: candidate kernel configurations measured on the adapter at hand, per shape
//! class, and remembered in a cache file so that later runs use the fastest one
//! automatically.
//!
//! * A measurement belongs to one adapter *and driver* ([`AdapterKey`]): a driver update can
//!   change which configuration wins, so it starts from the built-in defaults again.
//! * A [`ShapeClass`] groups problems that should share a configuration: a tag (the operand
//!   layout, the head dimension, ...) and a few sizes rounded to powers of two. A lookup takes
//!   the exact class, else the nearest tuned class with the same tag within
//!   [`MAX_CLASS_DISTANCE`] octaves in all, else nothing (the op's default applies).
//! * The cache is one JSON file, `tune.json` in the user's cache directory (`SPECKLE_CACHE_DIR`
//!   overrides the directory; `SPECKLE_TUNE=off` ignores the file). `speckle tune` writes it;
//!   [`Gpu`] reads it once when it opens the device and every op consults it when its options
//!   leave the configuration open. An explicit configuration (options, `--config`,
//!   `SPECKLE_MATMUL_CONFIG`) always wins.
//! * Tests open their device with [`Tuning::Off`], so they run the fixed built-in
//!   configurations whatever a user's cache says.
//!
//! The measuring itself lives beside each op's candidates: [`matmul`], [`attention`],
//! [`project`], [`project_optical`], [`srht`]. Every candidate's result is checked against the
//! f64 reference before its time counts: a fast wrong configuration is reported and never
//! chosen. A candidate must beat the built-in default by more than [`WIN_MARGIN`] to replace
//! it: closer than that is the timing's noise, and the default stays.

pub mod attention;
pub mod matmul;
pub mod project;
pub mod project_optical;
pub mod srht;

use std::path::{Path, PathBuf};

use crate::bench::time_dispatches;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};

/// Version of the cache file's layout. A file of another version is ignored (and replaced by
/// the next `speckle tune`), never misread.
pub const FORMAT: u32 = 1;

/// How far (in octaves summed over a class's sizes) a lookup may reach for the nearest tuned
/// class: 2 lets a tuned n = 1024 serve n = 512 … 2048 squares, but not n = 128.
pub const MAX_CLASS_DISTANCE: u32 = 2;

/// Where [`Gpu`] takes its tuned configurations from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tuning {
    /// The user's cache file ([`cache_path`]) unless `SPECKLE_TUNE=off`.
    #[default]
    Cache,
    /// The built-in configurations only (what the tests use).
    Off,
    /// This cache file.
    File(PathBuf),
}

impl Tuning {
    /// The cache file this setting reads, if any (`SPECKLE_TUNE=off` disables [`Tuning::Cache`]).
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            Tuning::Off => None,
            Tuning::File(p) => Some(p.clone()),
            Tuning::Cache => {
                let off = std::env::var("SPECKLE_TUNE")
                    .is_ok_and(|v| matches!(v.trim(), "off" | "0" | "false" | "no"));
                if off {
                    None
                } else {
                    cache_path()
                }
            }
        }
    }
}

/// The default cache file: `$SPECKLE_CACHE_DIR/tune.json`, else `speckle/tune.json` in the
/// platform's cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on
/// macOS, `%LOCALAPPDATA%` on Windows). `None` when no such directory is known.
pub fn cache_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SPECKLE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("tune.json"));
    }
    dirs::cache_dir().map(|d| d.join("speckle").join("tune.json"))
}

/// The adapter and driver a measurement was made on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdapterKey {
    /// Adapter name.
    pub name: String,
    /// Graphics API.
    pub backend: String,
    /// Driver name.
    pub driver: String,
    /// Driver version string.
    pub driver_info: String,
    /// PCI vendor id.
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
}

impl AdapterKey {
    /// The key of `gpu`'s adapter.
    pub fn of(gpu: &Gpu) -> AdapterKey {
        AdapterKey::from_info(gpu.adapter_info())
    }

    /// The key of the adapter `info` describes.
    pub fn from_info(info: &wgpu::AdapterInfo) -> AdapterKey {
        AdapterKey {
            name: info.name.clone(),
            backend: info.backend.to_str().to_owned(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            vendor: info.vendor,
            device: info.device,
        }
    }
}

/// A class of problems that share a tuned configuration: a tag that must match exactly and
/// sizes as rounded base-2 logarithms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ShapeClass {
    /// What must match exactly (e.g. `NT` for matmul, `d64-causal` for attention).
    pub tag: String,
    /// Sizes as round(log2(size)), clamped to 0..=24.
    pub log2: Vec<u32>,
}

impl ShapeClass {
    /// The class of `sizes` under `tag`.
    pub fn new(tag: impl Into<String>, sizes: &[usize]) -> ShapeClass {
        ShapeClass {
            tag: tag.into(),
            log2: sizes.iter().map(|&s| octave(s)).collect(),
        }
    }

    /// A readable form: `NT 2^10 x 2^10 x 2^12`.
    pub fn label(&self) -> String {
        let sizes: Vec<String> = self.log2.iter().map(|e| format!("2^{e}")).collect();
        format!("{} {}", self.tag, sizes.join(" x "))
    }

    /// Octaves between two classes of the same tag and arity; `None` for other tags.
    pub fn distance(&self, other: &ShapeClass) -> Option<u32> {
        (self.tag == other.tag && self.log2.len() == other.log2.len()).then(|| {
            self.log2
                .iter()
                .zip(&other.log2)
                .map(|(a, b)| a.abs_diff(*b))
                .sum()
        })
    }
}

/// The sizes of a shape argument (`"8,16,2048"` split at commas): each a whole number >= 1,
/// else `bad()`.
pub(crate) fn positive_sizes(parts: &[&str], bad: impl Fn() -> Error) -> Result<Vec<usize>> {
    parts
        .iter()
        .map(|p| p.parse::<usize>().ok().filter(|&v| v > 0).ok_or_else(&bad))
        .collect()
}

/// round(log2(size)) for size >= 1, clamped to 0..=24 (sizes past 2^24 share a class).
fn octave(size: usize) -> u32 {
    if size <= 1 {
        return 0;
    }
    ((size as f64).log2().round() as u32).min(24)
}

/// One tuned configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TunedEntry {
    /// Where it was measured.
    pub adapter: AdapterKey,
    /// The op: `matmul`, `attention`, `project_dense`.
    pub op: String,
    /// The class it serves.
    pub class: ShapeClass,
    /// The problem it was measured on.
    pub shape: Vec<usize>,
    /// The winning configuration, in the op's own notation (parsed back by the op).
    pub config: String,
    /// Its median time, milliseconds.
    pub median_ms: f64,
    /// The built-in default's median time on the same problem in the same run.
    pub default_ms: f64,
    /// The speckle version that measured it.
    pub speckle: String,
    /// The day it was measured (UTC, YYYY-MM-DD).
    pub date: String,
}

/// The cache file's contents.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TuneFile {
    /// [`FORMAT`].
    pub format: u32,
    /// Every tuned configuration, of every adapter that wrote to this file.
    pub entries: Vec<TunedEntry>,
}

impl TuneFile {
    /// Reads `path`; a missing file is an empty one. A file that is not a cache of this
    /// [`FORMAT`] is an error naming the file (the caller decides whether to ignore it).
    pub fn load(path: &Path) -> Result<TuneFile> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TuneFile {
                    format: FORMAT,
                    entries: Vec::new(),
                })
            }
            Err(e) => {
                return Err(Error::io(
                    format!("reading the tuning cache {}", path.display()),
                    e,
                ))
            }
        };
        let file: TuneFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!(
                "the tuning cache {} is not valid ({e}); delete it or run `speckle tune` again",
                path.display()
            ))
        })?;
        if file.format != FORMAT {
            return Err(Error::invalid(format!(
                "the tuning cache {} has format {} but this speckle reads format {FORMAT}; \
                 run `speckle tune` again to replace it",
                path.display(),
                file.format
            )));
        }
        Ok(file)
    }

    /// Writes the file atomically, creating its directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::io(format!("creating the cache folder {}", dir.display()), e)
            })?;
        }
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("encoding the tuning cache: {e}")))?;
        crate::atomic::write_atomic(path, &json)
    }

    /// Adds `entry`, replacing any entry of the same adapter, op and class.
    pub fn insert(&mut self, entry: TunedEntry) {
        self.entries.retain(|e| {
            !(e.adapter == entry.adapter && e.op == entry.op && e.class == entry.class)
        });
        self.entries.push(entry);
    }

    /// Removes every entry of `adapter` (of `op` only, when given); returns how many.
    pub fn remove(&mut self, adapter: &AdapterKey, op: Option<&str>) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|e| !(&e.adapter == adapter && op.is_none_or(|o| e.op == o)));
        before - self.entries.len()
    }
}

/// The tuned configurations of one adapter, as a [`Gpu`] holds them.
#[derive(Clone, Debug, Default)]
pub struct TuneTable {
    entries: Vec<TunedEntry>,
    source: Option<PathBuf>,
}

impl TuneTable {
    /// The entries of `adapter` in `file`, read from `source`.
    pub fn for_adapter(file: TuneFile, adapter: &AdapterKey, source: Option<PathBuf>) -> Self {
        TuneTable {
            entries: file
                .entries
                .into_iter()
                .filter(|e| &e.adapter == adapter)
                .collect(),
            source,
        }
    }

    /// The configuration tuned for `op` on `class` or the nearest class within
    /// [`MAX_CLASS_DISTANCE`] (ties: the first tuned).
    pub fn lookup(&self, op: &str, class: &ShapeClass) -> Option<&TunedEntry> {
        self.entries
            .iter()
            .filter(|e| e.op == op)
            .filter_map(|e| e.class.distance(class).map(|d| (d, e)))
            .filter(|(d, _)| *d <= MAX_CLASS_DISTANCE)
            .min_by_key(|(d, _)| *d)
            .map(|(_, e)| e)
    }

    /// Every entry.
    pub fn entries(&self) -> &[TunedEntry] {
        &self.entries
    }

    /// The file the entries came from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Adds or replaces an entry (after `speckle tune` measured it in this process).
    pub fn insert(&mut self, entry: TunedEntry) {
        self.entries
            .retain(|e| !(e.op == entry.op && e.class == entry.class));
        self.entries.push(entry);
    }

    /// Drops every entry (of `op` only, when given).
    pub fn clear(&mut self, op: Option<&str>) {
        self.entries.retain(|e| op.is_some_and(|o| e.op != o));
    }
}

/// Reads the table `tuning` points to for `adapter`. An unreadable or invalid file is logged
/// and ignored: a broken cache must never stop a computation, it only costs the tuning.
pub(crate) fn load_table(tuning: &Tuning, adapter: &AdapterKey) -> TuneTable {
    let Some(path) = tuning.path() else {
        return TuneTable::default();
    };
    match TuneFile::load(&path) {
        Ok(file) => {
            let table = TuneTable::for_adapter(file, adapter, Some(path));
            if !table.entries.is_empty() {
                log::info!(
                    "{} tuned configurations for this adapter from {}",
                    table.entries.len(),
                    table
                        .source
                        .as_deref()
                        .map_or(String::new(), |p| p.display().to_string())
                );
            }
            table
        }
        Err(e) => {
            log::warn!("ignoring the tuning cache: {e}");
            TuneTable::default()
        }
    }
}

/// One candidate's measurement in a tuning run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CandidateResult {
    /// The configuration, in the op's notation.
    pub config: String,
    /// Median time, milliseconds (NaN when it failed).
    pub median_ms: f64,
    /// Error against the f64 reference (the op's measure; see its tuner).
    pub error: f64,
    /// Why it was not eligible to win: it failed to build or run, or its error exceeded the
    /// tolerance. `None` for a valid candidate.
    pub rejected: Option<String>,
    /// True for the built-in default configuration.
    pub is_default: bool,
}

/// The outcome of tuning one problem.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClassResult {
    /// The op.
    pub op: String,
    /// The class the winner serves.
    pub class: ShapeClass,
    /// The problem measured.
    pub shape: Vec<usize>,
    /// Every candidate, in the order measured.
    pub candidates: Vec<CandidateResult>,
    /// The winner (`None` when no candidate was valid): the default unless another beat it
    /// by more than [`WIN_MARGIN`], in the confirmation where there was one.
    pub best: Option<String>,
    /// default time / winner's time (≥ 1 unless the default itself failed), from the
    /// confirmation where there was one.
    pub speedup: f64,
    /// The default and the fastest other candidate timed again, alternately, where that one
    /// had beaten the default in the first measurement.
    pub confirmation: Option<Confirmation>,
}

/// The default and a challenger timed again in alternation, so that both see the same state
/// of a shared, noisy machine: in [`CONFIRM_ROUNDS`] rounds, `options.runs` runs of the
/// default, then of the challenger; each time is the median of the rounds' medians.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Confirmation {
    /// The challenger.
    pub config: String,
    /// The default's time, milliseconds (NaN when a run failed).
    pub default_ms: f64,
    /// The challenger's time, milliseconds (NaN when a run failed: it then loses).
    pub challenger_ms: f64,
}

/// Rounds of the confirmation.
pub const CONFIRM_ROUNDS: usize = 3;

/// A tuner's state over one class's candidates: the best valid time so far (the probe's
/// cutoff), and the plans of the default and of the fastest other valid candidate, which
/// [`ClassResult::finish`] times again. At most these two plans are held at a time.
pub(crate) struct Contest {
    best_ms: f64,
    default: Option<Vec<Dispatch>>,
    /// The fastest valid candidate other than the default: its name, time and plan.
    fastest: Option<(String, f64, Vec<Dispatch>)>,
}

impl Contest {
    pub(crate) fn new() -> Contest {
        Contest {
            best_ms: f64::INFINITY,
            default: None,
            fastest: None,
        }
    }

    /// Takes in a valid candidate's plan and time.
    fn enter(&mut self, result: &CandidateResult, ms: f64, plan: Vec<Dispatch>) {
        self.best_ms = self.best_ms.min(ms);
        if result.is_default {
            self.default = Some(plan);
        } else if self.fastest.as_ref().is_none_or(|(_, best, _)| ms < *best) {
            self.fastest = Some((result.config.clone(), ms, plan));
        }
    }

    /// Times the default and the fastest other candidate again, alternately, where the first
    /// measurement has the challenger beating the default (`default_ms`) by more than
    /// [`WIN_MARGIN`]; `None` otherwise.
    fn confirm(self, gpu: &Gpu, options: &TuneOptions, default_ms: f64) -> Option<Confirmation> {
        let (default, (config, ms, challenger)) = (self.default?, self.fastest?);
        if ms * (1.0 + WIN_MARGIN) >= default_ms {
            return None;
        }
        let mut rounds = [Vec::new(), Vec::new()];
        for _ in 0..CONFIRM_ROUNDS {
            for (times, plan) in rounds.iter_mut().zip([&default, &challenger]) {
                match time_dispatches(gpu, plan, 1, options.runs.max(1), false) {
                    Ok(t) => times.push(t.median_ms),
                    Err(e) => {
                        log::warn!("confirming {config}: {e}");
                        times.push(f64::NAN);
                    }
                }
            }
        }
        let [d, c] = rounds.map(|t| median(&t));
        Some(Confirmation {
            config,
            default_ms: d,
            challenger_ms: c,
        })
    }
}

/// The median of `values` ([`crate::bench::median`]), NaN if any is NaN (a failed run).
fn median(values: &[f64]) -> f64 {
    if values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    crate::bench::median(&mut values.to_vec())
}

/// How much faster than the built-in default (as a fraction of its time) a candidate must be
/// to replace it. Identical runs on lavapipe spread by ±8 %, where the median of seven runs
/// still moves by a few percent; GPU timestamps by about 1 %.
pub const WIN_MARGIN: f64 = 0.03;

impl ClassResult {
    /// Picks the winner ([`winner`]) after the confirmation `contest` runs where one is due,
    /// and the entry to cache (`None` when nothing valid ran), with the confirmation's times
    /// where there was one.
    pub(crate) fn finish(
        gpu: &Gpu,
        op: &str,
        class: ShapeClass,
        shape: Vec<usize>,
        candidates: Vec<CandidateResult>,
        contest: Contest,
        options: &TuneOptions,
    ) -> (ClassResult, Option<TunedEntry>) {
        let default_ms = candidates
            .iter()
            .find(|c| c.is_default)
            .map_or(f64::NAN, |c| c.median_ms);
        let confirmation = contest.confirm(gpu, options, default_ms);
        let best = winner(&candidates, confirmation.as_ref());
        // The challenger's times from the confirmation where it won there; a winning default's
        // own first measurement (speedup 1).
        let (best_ms, default_ms) = match (&confirmation, best) {
            (Some(c), Some(b)) if b.config == c.config => (c.challenger_ms, c.default_ms),
            (_, Some(b)) if b.is_default => (default_ms, default_ms),
            (_, b) => (b.map_or(f64::NAN, |b| b.median_ms), default_ms),
        };
        let entry = best.map(|b| TunedEntry {
            adapter: AdapterKey::of(gpu),
            op: op.to_owned(),
            class: class.clone(),
            shape: shape.clone(),
            config: b.config.clone(),
            median_ms: best_ms,
            default_ms,
            speckle: crate::version().to_owned(),
            date: today(),
        });
        let result = ClassResult {
            op: op.to_owned(),
            class,
            shape,
            best: best.map(|b| b.config.clone()),
            speedup: default_ms / best_ms,
            candidates,
            confirmation,
        };
        (result, entry)
    }
}

/// The fastest valid candidate, or the default where it is valid and the fastest is not faster
/// by more than [`WIN_MARGIN`]; `None` when none is valid. With a `confirmation`, its
/// challenger wins only if faster than the default there by more than the margin.
fn winner<'a>(
    candidates: &'a [CandidateResult],
    confirmation: Option<&Confirmation>,
) -> Option<&'a CandidateResult> {
    let valid = |c: &&CandidateResult| c.rejected.is_none() && c.median_ms.is_finite();
    let fastest = candidates
        .iter()
        .filter(valid)
        .min_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
    let default = candidates.iter().find(|c| c.is_default).filter(valid);
    let beats =
        |challenger_ms: f64, default_ms: f64| challenger_ms * (1.0 + WIN_MARGIN) < default_ms;
    match (fastest, default, confirmation) {
        (_, Some(d), Some(c)) => {
            let challenger = candidates.iter().find(|x| x.config == c.config);
            match challenger {
                Some(x) if beats(c.challenger_ms, c.default_ms) => Some(x),
                _ => Some(d),
            }
        }
        (Some(f), Some(d), None) if !beats(f.median_ms, d.median_ms) => Some(d),
        (f, _, _) => f,
    }
}

/// A candidate whose first timed run is slower than this many times the best so far is not
/// timed further: on lavapipe the storage kernels are 3–20× slower than the texture ones, and
/// timing each of them fully would take minutes for nothing.
pub const PROBE_CUTOFF: f64 = 3.0;

/// Measures one candidate: `prepare` poisons the outputs and plans the dispatches; they run
/// once untimed (pipeline compilation: lavapipe compiles at the first dispatch), once timed
/// (the probe), and, unless the probe is over [`PROBE_CUTOFF`] times the contest's best time
/// (the default is never cut), `options.warmup` + `options.runs` times more; then `error`
/// measures the output against the f64 reference, and a valid candidate under `tolerance`
/// enters the `contest`.
pub(crate) fn run_candidate(
    gpu: &Gpu,
    mut result: CandidateResult,
    options: &TuneOptions,
    contest: &mut Contest,
    tolerance: f64,
    prepare: impl FnOnce() -> Result<Vec<Dispatch>>,
    error: impl FnOnce() -> Result<f64>,
) -> CandidateResult {
    let best_ms = contest.best_ms;
    let timed = (|| -> Result<Option<(f64, Vec<Dispatch>)>> {
        let dispatches = prepare()?;
        gpu.execute(&dispatches)?;
        let probe = time_dispatches(gpu, &dispatches, 0, 1, false)?.median_ms;
        log::debug!("{}: probe {probe:.3} ms", result.config);
        if !result.is_default && probe > PROBE_CUTOFF * best_ms {
            result.median_ms = probe;
            return Ok(None);
        }
        let timing = time_dispatches(gpu, &dispatches, options.warmup, options.runs, false)?;
        log::debug!("{}: {timing:?}", result.config);
        Ok(Some((timing.median_ms, dispatches)))
    })();
    match timed.and_then(|t| t.map(|t| error().map(|e| (t, e))).transpose()) {
        Ok(None) => {
            result.rejected = Some(format!(
                "first run {:.3} ms, over {PROBE_CUTOFF}x the best so far",
                result.median_ms
            ));
        }
        Ok(Some(((ms, plan), err))) => {
            result.median_ms = ms;
            result.error = err;
            if err <= tolerance {
                contest.enter(&result, ms, plan);
            } else {
                result.rejected = Some(format!(
                    "wrong result: error {err:.2e} > tolerance {tolerance:.2e}"
                ));
            }
        }
        Err(e) => result.rejected = Some(format!("failed: {e}")),
    }
    result
}

impl CandidateResult {
    /// A candidate not yet measured.
    pub(crate) fn new(config: String, is_default: bool) -> CandidateResult {
        CandidateResult {
            config,
            median_ms: f64::NAN,
            error: f64::NAN,
            rejected: None,
            is_default,
        }
    }
}

/// Options shared by the tuners.
#[derive(Clone, Copy, Debug)]
pub struct TuneOptions {
    /// Untimed runs of each candidate first.
    pub warmup: usize,
    /// Timed runs (median kept).
    pub runs: usize,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions { warmup: 2, runs: 7 }
    }
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs / 86_400)
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_789), "2026-12-02");
    }

    fn candidate(config: &str, ms: f64, is_default: bool, rejected: bool) -> CandidateResult {
        CandidateResult {
            median_ms: ms,
            error: 0.0,
            rejected: rejected.then(|| "wrong".to_owned()),
            ..CandidateResult::new(config.to_owned(), is_default)
        }
    }

    #[test]
    fn a_candidate_replaces_the_default_only_by_more_than_the_margin() {
        let name = |c: &[CandidateResult]| winner(c, None).map(|w| w.config.clone());
        let default = candidate("default", 10.0, true, false);
        // 2 % faster: noise, the default stays; 5 % faster: the candidate wins.
        let close = [default.clone(), candidate("close", 9.8, false, false)];
        assert_eq!(name(&close).as_deref(), Some("default"));
        let faster = [default.clone(), candidate("faster", 9.5, false, false)];
        assert_eq!(name(&faster).as_deref(), Some("faster"));
        // A wrong or unmeasured candidate never wins, however fast.
        let wrong = [default.clone(), candidate("wrong", 1.0, false, true)];
        assert_eq!(name(&wrong).as_deref(), Some("default"));
        let cut = [default, candidate("cut", f64::NAN, false, false)];
        assert_eq!(name(&cut).as_deref(), Some("default"));
        // Without a valid default the fastest valid candidate wins; with none, nothing.
        let failed = [
            candidate("default", 5.0, true, true),
            candidate("a", 9.9, false, false),
            candidate("b", 9.8, false, false),
        ];
        assert_eq!(name(&failed).as_deref(), Some("b"));
        assert_eq!(name(&[candidate("x", 1.0, false, true)]), None);
    }

    #[test]
    fn a_confirmation_decides_between_its_challenger_and_the_default() {
        let candidates = [
            candidate("default", 10.0, true, false),
            candidate("fast", 8.0, false, false),
        ];
        let confirmed = |challenger_ms: f64, default_ms: f64| Confirmation {
            config: "fast".to_owned(),
            default_ms,
            challenger_ms,
        };
        let name = |c: Confirmation| winner(&candidates, Some(&c)).map(|w| w.config.clone());
        // Faster again by more than the margin: it wins. Within the margin, slower, or failed
        // when timed again: the default stays.
        assert_eq!(name(confirmed(9.0, 10.0)).as_deref(), Some("fast"));
        assert_eq!(name(confirmed(9.8, 10.0)).as_deref(), Some("default"));
        assert_eq!(name(confirmed(11.0, 10.0)).as_deref(), Some("default"));
        assert_eq!(name(confirmed(f64::NAN, 10.0)).as_deref(), Some("default"));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(median(&[1.0, f64::NAN, 2.0]).is_nan());
    }

    #[test]
    fn octaves_round_to_the_nearest_power_of_two() {
        assert_eq!(octave(1), 0);
        assert_eq!(octave(1024), 10);
        assert_eq!(octave(1400), 10); // log2 = 10.45
        assert_eq!(octave(1500), 11); // log2 = 10.55
        assert_eq!(octave(usize::MAX), 24);
    }
}
