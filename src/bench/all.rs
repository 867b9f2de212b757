//! `speckle bench all`: every kernel at standard sizes against the roofline measured on the
//! same adapter in the same run, with the CPU baseline of the same run where one exists and
//! the key of the PyTorch measurement (`scripts/torch_baselines.py`) each row compares with.
//!
//! Each row reports the median GPU time, the achieved GFLOP/s (compute kernels) and GB/s (the
//! minimum bytes the kernel must read and write), and the **fraction of the roofline**:
//! `max(flops / peak FMA rate, bytes / copy bandwidth) / time`, the share of the floor the
//! measured peak and bandwidth set. Every result is checked against the f64 reference on a
//! sample before it is reported. A case that cannot run on the adapter (memory, limits) is
//! listed under `skipped` with the reason; the others still run.

use crate::bench::attention::FusedRun;
use crate::bench::{bench_matmul, bench_project, random_vec, MatmulBench, Timing};
use crate::error::{Error, Result};
use crate::gpu::{AdapterSummary, Dispatch, Gpu};
use crate::ops::activation::{self, Activation};
use crate::ops::attention::AttentionVariant;
use crate::ops::layernorm::{self, LayerNormOptions};
use crate::ops::matmul::{MatmulConfig, MatmulKernel};
use crate::ops::matmul_coop_staged;
use crate::ops::random_fill::{self, Distribution, RandomSpec};
use crate::ops::reduce::{self, Reduction};
use crate::ops::roofline::{self, RooflineOptions};
use crate::ops::softmax::{self, SoftmaxOptions};
use crate::projection::{Fusion, Kind, Mode, Precision, Projection};
use crate::tensor::{HalfTensor, Tensor};

/// The size class of the standard problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// GPU sizes: the performance targets' problems (matmul n = 4096 and 8192, attention
    /// B8 H16 N2048 D64, the optical projection b1024 d4096 n16384, 2²⁶-element vectors).
    Gpu,
    /// CPU-adapter sizes (lavapipe): matmul n = 1024 and problems that take well under a
    /// second each there.
    Cpu,
    /// Tiny problems that exercise every row in seconds (tests, smoke runs).
    Quick,
}

impl Preset {
    /// [`Preset::Cpu`] on CPU adapters, [`Preset::Gpu`] elsewhere.
    pub fn for_gpu(gpu: &Gpu) -> Preset {
        if gpu.is_cpu() {
            Preset::Cpu
        } else {
            Preset::Gpu
        }
    }

    /// `gpu`, `cpu`, `quick`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Gpu => "gpu",
            Preset::Cpu => "cpu",
            Preset::Quick => "quick",
        }
    }

    /// Parses [`Preset::name`].
    pub fn from_name(s: &str) -> Result<Preset> {
        match s {
            "gpu" => Ok(Preset::Gpu),
            "cpu" => Ok(Preset::Cpu),
            "quick" => Ok(Preset::Quick),
            other => Err(Error::invalid(format!(
                "unknown preset {other:?}; known: gpu, cpu, quick"
            ))),
        }
    }

    /// The problem sizes of the preset. Keep in sync with `PRESETS` in
    /// `scripts/torch_baselines.py` (the PyTorch rows match on op and shape).
    fn sizes(self) -> Sizes {
        match self {
            Preset::Gpu => Sizes {
                matmul: &[4096, 8192],
                few_rows: [8, 16384, 4096],
                attention: &[[8, 16, 2048, 64], [4, 16, 4096, 64]],
                decode: &[[1, 16, 1, 16384, 64], [8, 16, 1, 4096, 64]],
                optical: [1024, 4096, 16384],
                optical_few_rows: Some([8, 4096, 16384]),
                matrix_free: [8, 20_000, 40_000],
                srht: [8, 1_000_000, 2_000_000],
                elements: 1 << 26,
                rows_cols: [16384, 4096],
                rows_read_twice: true,
                // sgemm of n = 8192 takes seconds per run on the CPU: baseline up to 4096.
                cpu_matmul_max: 4096,
                alternatives: true,
                attention_f16: true,
            },
            Preset::Cpu => Sizes {
                matmul: &[1024],
                few_rows: [8, 4096, 1024],
                attention: &[[1, 4, 1024, 64]],
                decode: &[[1, 4, 8, 40000, 64]],
                optical: [64, 1024, 4096],
                optical_few_rows: Some([8, 1024, 4096]),
                matrix_free: [1, 2048, 4096],
                srht: [1, 1 << 16, 1 << 17],
                elements: 1 << 22,
                rows_cols: [1024, 4096],
                rows_read_twice: false,
                cpu_matmul_max: 4096,
                alternatives: false,
                attention_f16: false,
            },
            Preset::Quick => Sizes {
                matmul: &[64],
                few_rows: [2, 64, 32],
                attention: &[[1, 2, 64, 16]],
                decode: &[[1, 2, 1, 300, 16]],
                optical: [4, 32, 64],
                optical_few_rows: None,
                matrix_free: [2, 40, 64],
                srht: [1, 100, 256],
                elements: 4096,
                rows_cols: [8, 256],
                rows_read_twice: true,
                cpu_matmul_max: 4096,
                alternatives: false,
                attention_f16: true,
            },
        }
    }
}

/// The problems of a preset.
struct Sizes {
    matmul: &'static [usize],
    /// A product of a few rows with B transposed, [m, n, k]: a projection of a few vectors
    /// (`ops::matmul_skinny`), bound by B's bytes.
    few_rows: [usize; 3],
    attention: &'static [[usize; 4]],
    /// Attention with fewer queries than keys, [B, H, Nq, Nk, D] (decoding steps).
    decode: &'static [[usize; 5]],
    optical: [usize; 3],
    /// The optical projection of a few rows, fused and unfused: on GPUs the fused pass runs a
    /// tile of 64 rows for them, the unfused products the skinny matmul.
    optical_few_rows: Option<[usize; 3]>,
    matrix_free: [usize; 3],
    srht: [usize; 3],
    elements: usize,
    rows_cols: [usize; 2],
    /// Also time softmax and layernorm with every row read twice (their entry point before
    /// rows were held in registers; on CPU adapters the suite's rows are too long to hold).
    rows_read_twice: bool,
    cpu_matmul_max: usize,
    /// Also time the other GPU kernels with their configurations forced (the workgroup-memory
    /// f32 matmul, the staged tensor-core matmul, the row-per-thread-group attention),
    /// whatever the defaults or the tuning cache choose for the main rows.
    alternatives: bool,
    /// Also time the f16 attention (`ops::attention_f16`). Off in the CPU preset: without
    /// tensor cores its portable build runs, which on lavapipe is ~50 times slower than the
    /// f32 texture kernel (it reads workgroup memory one lane at a time).
    attention_f16: bool,
}

/// Options of [`bench_all`].
#[derive(Clone, Copy, Debug)]
pub struct AllOptions {
    /// The problem sizes.
    pub preset: Preset,
    /// Untimed runs of each case first.
    pub warmup: usize,
    /// Timed runs of each case (median reported).
    pub runs: usize,
    /// Run the CPU baselines.
    pub cpu_baseline: bool,
}

/// The PyTorch measurement a row compares with: the `op` and `shape` of a line of
/// `scripts/torch_baselines.py`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TorchKey {
    /// Its op name (`matmul_fp32`, `sdpa_fp32_efficient`, ...).
    pub op: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// One kernel at one size.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AllRow {
    /// The kernel family (`matmul`, `attention`, `project`, `activation`, ...).
    pub kernel: String,
    /// A readable label, unique in the report.
    pub label: String,
    /// The configuration or variant that ran.
    pub variant: String,
    /// The problem's sizes (the kernel's own convention, as in the label).
    pub shape: Vec<usize>,
    /// Median time, milliseconds.
    pub ms: f64,
    /// Flops counted (null for data movement).
    pub flops: Option<f64>,
    /// Minimum bytes read and written.
    pub bytes: f64,
    /// Achieved GFLOP/s (null for data movement).
    pub gflops: Option<f64>,
    /// Achieved GB/s over the minimum bytes.
    pub gbps: f64,
    /// `max(flops / peak, bytes / bandwidth) / time` with the roofline of this run.
    pub roofline_fraction: f64,
    /// `compute` or `memory`: which term of the roofline sets the floor.
    pub bound: &'static str,
    /// The CPU baseline's median time, milliseconds (null when none or skipped).
    pub cpu_ms: Option<f64>,
    /// What the CPU baseline is.
    pub cpu_baseline: Option<String>,
    /// cpu_ms / ms.
    pub vs_cpu: Option<f64>,
    /// Error against the f64 reference (the measure `error_kind` names); null where the run
    /// checks nothing (the copy, whose exactness tests/roofline.rs checks).
    pub error: Option<f64>,
    /// How `error` is measured.
    pub error_kind: &'static str,
    /// `gpu-timestamp` or `wall-clock`.
    pub timing: crate::bench::TimingMethod,
    /// The PyTorch row to compare with, if any.
    pub torch: Option<TorchKey>,
    /// The performance target: the least speckle-time / PyTorch-time speed ratio
    /// (torch_ms / ms) the project aims for, where one is set.
    pub target: Option<f64>,
}

/// A case that could not run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Skipped {
    /// The case.
    pub label: String,
    /// Why.
    pub reason: String,
}

/// The roofline of the run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RooflineSummary {
    /// Peak FMA throughput, GFLOP/s.
    pub fma_gflops: f64,
    /// Copy bandwidth, GB/s (read + written).
    pub copy_gbps: f64,
    /// fma_gflops / copy_gbps.
    pub ridge_flops_per_byte: f64,
}

/// The report of `speckle bench all`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AllReport {
    /// The speckle version (and commit).
    pub speckle: String,
    /// The day of the run (UTC).
    pub date: String,
    /// The sizes.
    pub preset: Preset,
    /// The adapter measured.
    pub adapter: AdapterSummary,
    /// Its roofline, measured first in the same run.
    pub roofline: RooflineSummary,
    /// One row per case that ran.
    pub results: Vec<AllRow>,
    /// The cases that could not run.
    pub skipped: Vec<Skipped>,
}

/// A measured case before the roofline is applied.
struct Measured {
    kernel: &'static str,
    variant: String,
    shape: Vec<usize>,
    timing: Timing,
    flops: Option<f64>,
    bytes: f64,
    cpu: Option<(f64, String)>,
    error: Option<f64>,
    error_kind: &'static str,
    torch: Option<TorchKey>,
    target: Option<f64>,
}

impl Measured {
    /// The report's row for the case `label`.
    fn row(self, label: String, roof: &RooflineSummary) -> AllRow {
        let seconds = self.timing.median_ms * 1e-3;
        let compute_floor = self.flops.unwrap_or(0.0) / (roof.fma_gflops * 1e9);
        let memory_floor = self.bytes / (roof.copy_gbps * 1e9);
        let (cpu_ms, cpu_baseline) = match self.cpu {
            Some((ms, what)) => (Some(ms), Some(what)),
            None => (None, None),
        };
        AllRow {
            kernel: self.kernel.into(),
            label,
            variant: self.variant,
            shape: self.shape,
            ms: self.timing.median_ms,
            flops: self.flops,
            bytes: self.bytes,
            gflops: self.flops.map(|f| f / seconds * 1e-9),
            gbps: self.bytes / seconds * 1e-9,
            roofline_fraction: compute_floor.max(memory_floor) / seconds,
            bound: if compute_floor >= memory_floor {
                "compute"
            } else {
                "memory"
            },
            vs_cpu: cpu_ms.map(|c| c / self.timing.median_ms),
            cpu_ms,
            cpu_baseline,
            error: self.error,
            error_kind: self.error_kind,
            timing: self.timing.method,
            torch: self.torch,
            target: self.target,
        }
    }
}

fn torch(op: &str, shape: &[usize]) -> Option<TorchKey> {
    Some(TorchKey {
        op: op.into(),
        shape: shape.to_vec(),
    })
}

/// One case to run: its label (for progress and skips) and how to measure it.
type Case<'a> = (String, Box<dyn FnOnce() -> Result<Measured> + 'a>);

/// The labels of the cases [`bench_all`] runs for `preset`, in order (roofline first).
pub fn case_labels(preset: Preset) -> Vec<String> {
    let mut labels = vec!["roofline".to_owned()];
    labels.extend(
        cases(None, preset.sizes(), &quick_options(preset))
            .into_iter()
            .map(|(l, _)| l),
    );
    labels
}

fn quick_options(preset: Preset) -> AllOptions {
    AllOptions {
        preset,
        warmup: 0,
        runs: 1,
        cpu_baseline: false,
    }
}

/// Whether the case `label` is among those `only` asks for: every case when `only` is empty,
/// else those whose label contains one of its patterns (ignoring case).
fn wanted(label: &str, only: &[String]) -> bool {
    let label = label.to_lowercase();
    only.is_empty() || only.iter().any(|p| label.contains(&p.to_lowercase()))
}

/// The labels of the cases of `preset` that `only` selects (see [`bench_some`]), in order,
/// the roofline first; an error naming every case where `only` selects none.
pub fn selected_labels(preset: Preset, only: &[String]) -> Result<Vec<String>> {
    let all = case_labels(preset);
    let picked: Vec<String> = all
        .iter()
        .filter(|l| *l == "roofline" || wanted(l, only))
        .cloned()
        .collect();
    if picked.len() == 1 && !only.is_empty() {
        return Err(Error::invalid(format!(
            "bench all: no case of the {} preset matches {only:?}; the cases are: {}",
            preset.name(),
            all[1..].join("; ")
        )));
    }
    Ok(picked)
}

/// Runs every case of `options.preset` after measuring the roofline; `progress` is told each
/// case as it starts.
pub fn bench_all(gpu: &Gpu, options: &AllOptions, progress: impl FnMut(&str)) -> Result<AllReport> {
    bench_some(gpu, options, &[], progress)
}

/// [`bench_all`] for the cases whose labels contain one of the patterns `only` (ignoring
/// case; all of them when `only` is empty). The roofline is always measured: every row's
/// fraction needs it. An error where `only` selects no case.
pub fn bench_some(
    gpu: &Gpu,
    options: &AllOptions,
    only: &[String],
    mut progress: impl FnMut(&str),
) -> Result<AllReport> {
    if options.runs == 0 {
        return Err(Error::invalid("bench all needs at least one timed run"));
    }
    selected_labels(options.preset, only)?;
    progress("roofline");
    let r = roofline::measure(
        gpu,
        &RooflineOptions {
            warmup: options.warmup.max(1),
            runs: options.runs.max(5),
            ..Default::default()
        },
    )?;
    let roof = RooflineSummary {
        fma_gflops: r.fma_gflops,
        copy_gbps: r.copy_gbps,
        ridge_flops_per_byte: r.ridge_flops_per_byte,
    };
    let mut results = vec![Measured {
        kernel: "roofline",
        variant: "vec4 per invocation".into(),
        shape: vec![r.copy_bytes as usize],
        flops: None,
        bytes: 2.0 * r.copy_bytes as f64,
        timing: r.copy.clone(),
        cpu: None,
        error: None,
        error_kind: "not checked in the run (bit-exact in tests/roofline.rs)",
        torch: torch("copy", &[r.copy_bytes as usize]),
        target: None,
    }
    .row("copy (roofline)".into(), &roof)];
    let mut skipped = Vec::new();
    for (label, case) in cases(Some(gpu), options.preset.sizes(), options) {
        if !wanted(&label, only) {
            continue;
        }
        progress(&label);
        match case() {
            Ok(m) => results.push(m.row(label, &roof)),
            Err(e) => {
                log::warn!("bench all: {label} skipped: {e}");
                skipped.push(Skipped {
                    label,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(AllReport {
        speckle: crate::version().into(),
        date: crate::tune::today(),
        preset: options.preset,
        adapter: gpu.summary(),
        roofline: roof,
        results,
        skipped,
    })
}

/// The cases of `sizes`, in order. With `gpu` `None` only the labels are meaningful (the
/// closures are never called).
fn cases<'a>(gpu: Option<&'a Gpu>, sizes: Sizes, o: &AllOptions) -> Vec<Case<'a>> {
    let o = *o;
    let mut out: Vec<Case<'a>> = Vec::new();
    let need = move || gpu.ok_or_else(|| Error::invalid("bench all: no device"));
    for &n in sizes.matmul {
        let cpu = o.cpu_baseline && n <= sizes.cpu_matmul_max;
        out.push((
            format!("matmul f32 n={n}"),
            Box::new(move || matmul_case(need()?, n, cpu, None, &o)),
        ));
        if sizes.alternatives {
            out.push((
                format!("matmul f32 16x16-tiled n={n}"),
                Box::new(move || matmul_case(need()?, n, false, Some(TILED_16), &o)),
            ));
        }
    }
    let [m, n, k] = sizes.few_rows;
    out.push((
        format!("matmul f32 {m}x{n}x{k} B transposed"),
        Box::new(move || few_rows_case(need()?, [m, n, k], None, &o)),
    ));
    // Every preset: lanes along k are a GPU candidate, and on CPU adapters the row shows what
    // they cost there.
    out.push((
        format!("matmul f32 {m}x{n}x{k} B transposed {SKINNY_LANES}"),
        Box::new(move || few_rows_case(need()?, [m, n, k], Some(SKINNY_LANES), &o)),
    ));
    for &n in sizes.matmul {
        out.push((
            format!("matmul f16 in, f32 acc n={n}"),
            Box::new(move || matmul_f16_case(need()?, n, None, &o)),
        ));
        if sizes.alternatives {
            let staged = matmul_coop_staged::LAYOUT;
            out.push((
                format!("matmul f16 in, f32 acc {staged} n={n}"),
                Box::new(move || matmul_f16_case(need()?, n, Some(staged), &o)),
            ));
        }
    }
    // The f32 rows, then the f16 ones where the preset has them.
    let precisions = [(Precision::F32, "f32"), (Precision::F16, "f16 in, f32 acc")];
    for (precision, tag) in precisions
        .into_iter()
        .filter(|&(p, _)| p == Precision::F32 || sizes.attention_f16)
    {
        for &shape in sizes.attention {
            for causal in [false, true] {
                let [b, h, n, d] = shape;
                let label = format!(
                    "attention {tag} {b},{h},{n},{d}{}",
                    if causal { " causal" } else { "" }
                );
                out.push((
                    label,
                    Box::new(move || {
                        let auto = AttentionVariant::Auto;
                        attention_case(need()?, shape, n, causal, auto, precision, &o)
                    }),
                ));
            }
        }
    }
    // Decoding steps: f32 by Auto and, on GPUs, by the register-blocked kernel that Auto passes
    // over for them; f16 inputs where the preset has the f16 rows.
    for &[b, h, nq, nk, d] in sizes.decode {
        let mut runs = vec![(Precision::F32, "f32", AttentionVariant::Auto)];
        if sizes.alternatives {
            runs.push((Precision::F32, "f32", AttentionVariant::Blocked));
        }
        if sizes.attention_f16 {
            runs.push((Precision::F16, "f16 in, f32 acc", AttentionVariant::Auto));
        }
        for (precision, tag, variant) in runs {
            let name = match variant {
                AttentionVariant::Auto => String::new(),
                other => format!(" {}", other.name()),
            };
            out.push((
                format!("attention {tag} decode {b},{h},{nq},{nk},{d}{name}"),
                Box::new(move || {
                    let shape = [b, h, nk, d];
                    attention_case(need()?, shape, nq, false, variant, precision, &o)
                }),
            ));
        }
    }
    if let (true, Some(&shape)) = (sizes.alternatives, sizes.attention.first()) {
        // The row-per-thread-group kernel that the blocked one replaced as the GPU default.
        let [b, h, n, d] = shape;
        let variant = AttentionVariant::Subgroup;
        out.push((
            format!("attention f32 {b},{h},{n},{d} {}", variant.name()),
            Box::new(move || attention_case(need()?, shape, n, false, variant, Precision::F32, &o)),
        ));
    }
    let [b, d, n] = sizes.optical;
    // The fused pass in both precisions, and the two products and finishing pass it replaces.
    for (precision, fused) in [
        (Precision::F32, true),
        (Precision::F32, false),
        (Precision::F16, true),
    ] {
        let label = match (precision, fused) {
            (Precision::F32, true) => format!("project optical b{b} d{d} n{n}"),
            (Precision::F32, false) => format!("project optical unfused b{b} d{d} n{n}"),
            (Precision::F16, _) => format!("project optical f16 b{b} d{d} n{n}"),
        };
        out.push((
            label,
            Box::new(move || {
                let mut p = Projection::new(Kind::Optical, sizes.optical[2], 7);
                p.precision = precision;
                p.fused = if fused {
                    Fusion::Fused
                } else {
                    Fusion::Unfused
                };
                project_case(need()?, p, sizes.optical, true, &o)
            }),
        ));
    }
    if let Some(shape @ [b, d, n]) = sizes.optical_few_rows {
        for fused in [true, false] {
            let mode = if fused { "" } else { " unfused" };
            out.push((
                format!("project optical{mode} b{b} d{d} n{n}"),
                Box::new(move || {
                    let mut p = Projection::new(Kind::Optical, n, 7);
                    p.fused = if fused {
                        Fusion::Fused
                    } else {
                        Fusion::Unfused
                    };
                    project_case(need()?, p, shape, false, &o)
                }),
            ));
        }
    }
    let [b, d, n] = sizes.matrix_free;
    out.push((
        format!("project optical matrix-free b{b} d{d} n{n}"),
        Box::new(move || {
            let mut p = Projection::new(Kind::Optical, sizes.matrix_free[2], 7);
            p.mode = Mode::MatrixFree;
            project_case(need()?, p, sizes.matrix_free, false, &o)
        }),
    ));
    let [b, d, n] = sizes.srht;
    out.push((
        format!("project srht b{b} d{d} n{n}"),
        Box::new(move || {
            project_case(
                need()?,
                Projection::new(Kind::Srht, sizes.srht[2], 7),
                sizes.srht,
                false,
                &o,
            )
        }),
    ));
    let elements = sizes.elements;
    for act in [Activation::Relu, Activation::Gelu] {
        out.push((
            format!("{} {elements}", act.name()),
            Box::new(move || activation_case(need()?, act, elements, &o)),
        ));
    }
    let [rows, cols] = sizes.rows_cols;
    for op in [RowOp::Softmax, RowOp::LayerNorm, RowOp::Sum] {
        out.push((
            format!("{} {rows}x{cols}", op.name()),
            Box::new(move || row_case(need()?, op, rows, cols, false, &o)),
        ));
        if sizes.rows_read_twice && op != RowOp::Sum {
            out.push((
                format!("{} {rows}x{cols} read twice", op.name()),
                Box::new(move || row_case(need()?, op, rows, cols, true, &o)),
            ));
        }
    }
    out.push((
        format!("random_fill gaussian {elements}"),
        Box::new(move || random_fill_case(need()?, elements, &o)),
    ));
    out
}

/// The workgroup-memory f32 matmul with 128 × 128 tiles, forced in the alternative rows.
const TILED_16: MatmulConfig = MatmulConfig {
    wg_x: 16,
    wg_y: 16,
    kernel: MatmulKernel::Tiled,
};

fn matmul_case(
    gpu: &Gpu,
    n: usize,
    cpu: bool,
    config: Option<MatmulConfig>,
    o: &AllOptions,
) -> Result<Measured> {
    let r = bench_matmul(
        gpu,
        &MatmulBench {
            sizes: vec![n],
            warmup: o.warmup,
            runs: o.runs,
            config,
            wall_clock: false,
            cpu_baseline: cpu,
        },
        |_| {},
    )?
    .remove(0);
    Ok(Measured {
        kernel: "matmul",
        variant: format!("{} ({})", r.kernel, r.config),
        shape: vec![n, n, n],
        flops: Some(2.0 * (n as f64).powi(3)),
        bytes: 12.0 * (n as f64).powi(2),
        cpu: cpu.then(|| (r.cpu_ms, r.cpu_library.clone())),
        timing: r.timing,
        error: Some(r.max_rel_err),
        error_kind: "max componentwise |c - ref| / sum |a b|",
        torch: torch("matmul_fp32", &[n, n, n]),
        target: Some(0.8),
    })
}

/// The skinny matmul with 8 lanes along k per group of 4 columns, forced in the alternative
/// row of the few-rows product: a subgroup reads 128 consecutive bytes of each row of B it
/// streams, where the default's lanes read 16 bytes from as many rows.
const SKINNY_LANES: MatmulConfig = MatmulConfig {
    wg_x: 8,
    wg_y: 8,
    kernel: MatmulKernel::Skinny,
};

/// x Bᵀ for x of m rows (B `[n, k]`), by the default kernel (the skinny one for a few rows),
/// or with `config` forced (it must run as configured).
fn few_rows_case(
    gpu: &Gpu,
    [m, n, k]: [usize; 3],
    config: Option<MatmulConfig>,
    o: &AllOptions,
) -> Result<Measured> {
    let a_host = random_vec(m * k, 1);
    let b_host = random_vec(n * k, 2);
    let a = Tensor::from_slice(gpu, &a_host, &[m, k])?;
    let b = Tensor::from_slice(gpu, &b_host, &[n, k])?;
    let c = Tensor::filled(gpu, &[m, n], f32::NAN)?;
    let options = crate::ops::matmul::MatmulOptions {
        trans_b: true,
        config,
        ..Default::default()
    };
    let kernel = crate::ops::matmul::kernel_for(gpu, &a, &b, &c, &options)?;
    if let Some(cfg) = config.filter(|cfg| cfg.kernel != kernel) {
        return Err(Error::invalid(format!(
            "bench all: {cfg} cannot run {m}x{n}x{k} with B transposed here (it would run the \
             {} kernel)",
            kernel.name()
        )));
    }
    let plan = crate::ops::matmul::plan(gpu, &a, &b, &c, &options)?;
    let (timing, got) = time_and_read(gpu, &plan, &c, o)?;
    let dims = crate::ops::matmul::MatmulDims::new(&[m, k], &[n, k], false, true)?;
    let (err, _) = crate::bench::check_sampled(&a_host, &b_host, &got, &dims, false, true);
    let (mf, nf, kf) = (m as f64, n as f64, k as f64);
    Ok(Measured {
        kernel: "matmul",
        variant: match config {
            Some(cfg) => format!("{} ({cfg})", kernel.name()),
            None => kernel.name().into(),
        },
        shape: vec![m, n, k],
        flops: Some(2.0 * mf * nf * kf),
        bytes: 4.0 * (mf * kf + nf * kf + mf * nf),
        cpu: None,
        error: Some(err),
        error_kind: "max componentwise |c - ref| / sum |a b|",
        timing,
        torch: torch("linear_fp32", &[m, n, k]),
        target: None,
    })
}

/// The f16-operand matmul of n × n × n; with `config`, that configuration is forced and must
/// run the kernel it names (else the case is skipped with the reason).
fn matmul_f16_case(
    gpu: &Gpu,
    n: usize,
    config: Option<MatmulConfig>,
    o: &AllOptions,
) -> Result<Measured> {
    let a = HalfTensor::from_f32(gpu, &random_vec(n * n, 1), &[n, n])?;
    let b = HalfTensor::from_f32(gpu, &random_vec(n * n, 2), &[n, n])?;
    let c = Tensor::filled(gpu, &[n, n], f32::NAN)?;
    let options = crate::ops::matmul::MatmulOptions {
        config,
        ..Default::default()
    };
    let dims = crate::ops::matmul::MatmulDims::new(&[n, n], &[n, n], false, false)?;
    if let Some(cfg) = config.filter(matmul_coop_staged::is_layout) {
        if let Some(why) = matmul_coop_staged::ineligibility(gpu, &dims, &options) {
            return Err(Error::invalid(format!("{cfg} does not run here: {why}")));
        }
    }
    let plan = crate::ops::matmul_f16::plan(gpu, &a, &b, &c, &options)?;
    let (timing, got) = time_and_read(gpu, &plan, &c, o)?;
    let (err, _) =
        crate::bench::check_sampled(&a.to_vec(gpu)?, &b.to_vec(gpu)?, &got, &dims, false, false);
    Ok(Measured {
        kernel: "matmul_f16",
        variant: crate::ops::matmul_f16::variant_name(gpu, &a, &b, &options)?,
        shape: vec![n, n, n],
        flops: Some(2.0 * (n as f64).powi(3)),
        bytes: 8.0 * (n as f64).powi(2),
        cpu: None,
        error: Some(err),
        error_kind: "max componentwise |c - ref| / sum |a b| (ref from the f16 values)",
        timing,
        // The target compares with cuBLAS SGEMM (fp32), the yardstick.
        torch: torch("matmul_fp32", &[n, n, n]),
        target: Some(3.0),
    })
}

/// The fused attention in `precision` with `queries` query rows over the N keys of `shape`:
/// f32 against PyTorch's fp32 memory-efficient SDPA (the target's yardstick), f16 inputs
/// against its f16 FlashAttention (like for like; no target). Rows with fewer queries than
/// keys carry the shape [B, H, Nq, Nk, D] (PyTorch's decoding rows) and no target.
fn attention_case(
    gpu: &Gpu,
    shape: [usize; 4],
    queries: usize,
    causal: bool,
    variant: AttentionVariant,
    precision: Precision,
    o: &AllOptions,
) -> Result<Measured> {
    let [b, h, n, d] = shape;
    let run = FusedRun::measure(
        gpu, shape, queries, causal, variant, precision, o.warmup, o.runs,
    )?;
    let baseline = match precision {
        Precision::F32 => "sdpa_fp32_efficient",
        Precision::F16 => "sdpa_f16_flash",
    };
    let op = format!("{baseline}{}", if causal { "_causal" } else { "" });
    // Q, K and V read and O (f32) written once.
    let value_bytes = match precision {
        Precision::F32 => 4.0,
        Precision::F16 => 2.0,
    };
    let head_values = (b * h * d) as f64;
    let bytes = head_values * ((value_bytes + 4.0) * queries as f64 + 2.0 * value_bytes * n as f64);
    let shape = if queries == n {
        shape.to_vec()
    } else {
        vec![b, h, queries, n, d]
    };
    Ok(Measured {
        kernel: "attention",
        variant: run.choice.clone(),
        flops: Some(run.flops()),
        bytes,
        cpu: None,
        error: Some(run.sample().error(&run.out)),
        error_kind: "max relative error of sampled rows",
        timing: run.timing,
        torch: torch(&op, &shape),
        target: (precision == Precision::F32 && !causal && queries == n).then_some(0.7),
        shape,
    })
}

/// Measures projection `p` (unfitted: fitted here to d) on `batch` inputs.
/// The projection `p` of `batch` rows of d values to n_out, with the target where
/// `targeted` (the optical projection's standard shape) and its path has one.
fn project_case(
    gpu: &Gpu,
    mut p: Projection,
    [batch, d, n_out]: [usize; 3],
    targeted: bool,
    o: &AllOptions,
) -> Result<Measured> {
    p.fit(d)?;
    let (kind, mode, precision) = (p.kind, p.mode, p.precision);
    let r = bench_project(gpu, &p, batch, o.warmup, o.runs)?;
    let structured = kind.is_structured();
    let complex = kind == Kind::Optical;
    let parts = if complex { 2.0 } else { 1.0 };
    let macs = batch as f64 * d as f64 * n_out as f64 * parts;
    let stored = mode == Mode::Materialized && !structured;
    // Inputs and outputs, and the stored matrix where there is one.
    let entry_bytes = match precision {
        Precision::F32 => 4.0,
        Precision::F16 => 2.0,
    };
    let bytes = 4.0 * (batch * (d + n_out)) as f64
        + if stored {
            entry_bytes * parts * (d * n_out) as f64
        } else {
            0.0
        };
    let seconds = r.timing.median_ms * 1e-3;
    // The stored optical projection compares with PyTorch's stored-R projection (the targets
    // are the fused pass's).
    let fused = p.uses_fused(gpu) && targeted;
    let (torch_key, target) = match (kind, mode, precision) {
        (Kind::Optical, Mode::Materialized, Precision::F16) => {
            (torch("opu_fp32", &[batch, d, n_out]), fused.then_some(2.0))
        }
        (Kind::Optical, Mode::Materialized, Precision::F32) => {
            (torch("opu_fp32", &[batch, d, n_out]), fused.then_some(0.8))
        }
        _ => (None, None),
    };
    // The CPU baseline of the stored optical projection: the two real products by the
    // threaded CPU GEMM (the squares and the sum are negligible beside them).
    let cpu = (o.cpu_baseline && stored && complex && precision == Precision::F32 && macs <= 1e11)
        .then(|| {
            let x = random_vec(batch * d, 1);
            let r_part = random_vec(d * n_out, 2);
            (
                2.0 * crate::bench::time_cpu_sgemm(&x, &r_part, batch, n_out, d),
                "matrixmultiply sgemm (threaded), two real products".to_owned(),
            )
        });
    Ok(Measured {
        kernel: "project",
        variant: if precision == Precision::F16 {
            format!("{}, f16", r.mode)
        } else {
            r.mode.clone()
        },
        shape: vec![batch, d, n_out],
        flops: Some(r.gpu_gflops * 1e9 * seconds),
        bytes,
        cpu,
        error: Some(r.rel_err),
        error_kind: "relative error of sampled output rows",
        timing: r.timing,
        torch: torch_key,
        target,
    })
}

/// Times `plan` and returns the timing and the output.
fn time_and_read(
    gpu: &Gpu,
    plan: &[Dispatch],
    out: &Tensor,
    o: &AllOptions,
) -> Result<(Timing, Vec<f32>)> {
    let timing = crate::bench::time_dispatches(gpu, plan, o.warmup, o.runs, false)?;
    Ok((timing, out.to_vec(gpu)?))
}

/// Relative error of the first `len` values of `got` against `reference` (computed on them).
fn prefix_error(got: &[f32], reference: &[f64]) -> f64 {
    crate::cpu::relative_error(&got[..reference.len()], reference)
}

/// Values checked against the reference for the element-wise and row cases.
const CHECKED: usize = 1 << 16;

fn activation_case(gpu: &Gpu, act: Activation, n: usize, o: &AllOptions) -> Result<Measured> {
    let x_host = random_vec(n, 41);
    let x = Tensor::from_slice(gpu, &x_host, &[n])?;
    let y = Tensor::filled(gpu, &[n], f32::NAN)?;
    let plan = activation::plan(gpu, act, &x, &y)?;
    let (timing, got) = time_and_read(gpu, &plan, &y, o)?;
    let reference = crate::cpu::activation::activation(act, &x_host[..n.min(CHECKED)]);
    Ok(Measured {
        kernel: "activation",
        variant: "element-wise".into(),
        shape: vec![n],
        flops: None,
        bytes: 8.0 * n as f64,
        cpu: None,
        error: Some(prefix_error(&got, &reference)),
        error_kind: "relative error of the first 65,536 values",
        timing,
        torch: torch(
            match act {
                Activation::Gelu => "gelu_tanh",
                _ => "relu",
            },
            &[n],
        ),
        target: None,
    })
}

/// The row operations of `bench all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowOp {
    Softmax,
    LayerNorm,
    Sum,
}

impl RowOp {
    fn name(self) -> &'static str {
        match self {
            RowOp::Softmax => "softmax",
            RowOp::LayerNorm => "layernorm",
            RowOp::Sum => "sum_rows",
        }
    }
}

/// The row kernel `op` on `rows` rows of `cols` values; softmax and layernorm with every row
/// read twice where `twice`, rather than held in registers where it fits (their default).
fn row_case(
    gpu: &Gpu,
    op: RowOp,
    rows: usize,
    cols: usize,
    twice: bool,
    o: &AllOptions,
) -> Result<Measured> {
    let x_host = random_vec(rows * cols, 42);
    let x = Tensor::from_slice(gpu, &x_host, &[rows, cols])?;
    let checked_rows = rows.min(CHECKED / cols).max(1);
    let head = &x_host[..checked_rows * cols];
    let (plan, y, reference, bytes) = match op {
        RowOp::Softmax => {
            let y = Tensor::filled(gpu, &[rows, cols], f32::NAN)?;
            let options = SoftmaxOptions::default();
            let plan = if twice {
                softmax::plan_reading_twice(gpu, &x, &y, &options)?
            } else {
                softmax::plan(gpu, &x, &y, &options)?
            };
            let reference = crate::cpu::softmax::softmax(head, cols, 1.0, None);
            (plan, y, reference, 8.0 * (rows * cols) as f64)
        }
        RowOp::LayerNorm => {
            let y = Tensor::filled(gpu, &[rows, cols], f32::NAN)?;
            let options = LayerNormOptions::default();
            let plan = if twice {
                layernorm::plan_reading_twice(gpu, &x, &y, &options)?
            } else {
                layernorm::plan(gpu, &x, &y, &options)?
            };
            let eps = f64::from(options.eps);
            let reference = crate::cpu::layernorm::layernorm(head, cols, None, None, eps);
            (plan, y, reference, 8.0 * (rows * cols) as f64)
        }
        RowOp::Sum => {
            let y = Tensor::filled(gpu, &[rows], f32::NAN)?;
            let plan = reduce::plan(gpu, Reduction::Sum, &x, &y)?;
            let reference = crate::cpu::reduce::reduce(Reduction::Sum, head, cols);
            (plan, y, reference, 4.0 * (rows * cols + rows) as f64)
        }
    };
    let (timing, got) = time_and_read(gpu, &plan, &y, o)?;
    Ok(Measured {
        kernel: op.name(),
        variant: if twice {
            "row-wise, read twice"
        } else {
            "row-wise"
        }
        .into(),
        shape: vec![rows, cols],
        flops: None,
        bytes,
        cpu: None,
        error: Some(prefix_error(&got, &reference)),
        error_kind: "relative error of the first rows",
        timing,
        torch: torch(op.name(), &[rows, cols]),
        target: None,
    })
}

fn random_fill_case(gpu: &Gpu, n: usize, o: &AllOptions) -> Result<Measured> {
    let spec = RandomSpec {
        distribution: Distribution::Gaussian,
        scale: 1.0,
        seed: 3,
        stream: 0,
        row0: 0,
    };
    let y = Tensor::filled(gpu, &[n], f32::NAN)?;
    let plan = random_fill::plan(gpu, &y, &spec)?;
    let (timing, got) = time_and_read(gpu, &plan, &y, o)?;
    let reference = crate::cpu::random_fill::random_fill(&spec, 1, n.min(CHECKED));
    Ok(Measured {
        kernel: "random_fill",
        variant: "Philox4x32-10, Box-Muller".into(),
        shape: vec![n],
        flops: None,
        bytes: 4.0 * n as f64,
        cpu: None,
        error: Some(prefix_error(&got, &reference)),
        error_kind: "relative error of the first 65,536 values",
        timing,
        torch: None,
        target: None,
    })
}

/// The report as a Markdown section for BENCHMARKS.md: the run's header, then one table row
/// per case (speckle's figures and the fraction of the roofline; the PyTorch ratio comes from
/// `scripts/bench_compare.py`).
pub fn markdown(report: &AllReport, command: &str) -> String {
    let a = &report.adapter;
    let mut s = format!(
        "### {} ({}, {}) — {}, speckle {}\n\n`{command}`\n\nRoofline measured in the same run: \
         {:.1} GFLOP/s FMA, {:.1} GB/s copy (ridge {:.1} flops/byte).\n\n",
        a.name,
        a.backend,
        a.driver_info,
        report.date,
        report.speckle,
        report.roofline.fma_gflops,
        report.roofline.copy_gbps,
        report.roofline.ridge_flops_per_byte,
    );
    s.push_str(
        "| case | variant | ms | GFLOP/s | GB/s | of roofline | bound | CPU ms | vs CPU | error |\n\
         | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n",
    );
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("—".to_owned(), |x| format!("{x:.digits$}"));
    for r in &report.results {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {} | {} | {} | {} |\n",
            r.label,
            r.variant.replace('|', "/"),
            format_ms(r.ms),
            opt(r.gflops, 1),
            r.gbps,
            r.roofline_fraction,
            r.bound,
            r.cpu_ms.map_or("—".to_owned(), format_ms),
            opt(r.vs_cpu, 2),
            r.error.map_or("—".to_owned(), |e| format!("{e:.1e}"))
        ));
    }
    for k in &report.skipped {
        s.push_str(&format!("\nSkipped: {} — {}\n", k.label, k.reason));
    }
    s
}

/// Milliseconds with three significant digits or more.
pub fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_names_unique_cases() {
        for preset in [Preset::Gpu, Preset::Cpu, Preset::Quick] {
            let labels = case_labels(preset);
            let mut unique = labels.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), labels.len(), "{labels:?}");
            assert_eq!(Preset::from_name(preset.name()).unwrap(), preset);
        }
        assert!(Preset::from_name("huge").is_err());
    }
}
