//! The benchmark harness shared by `speckle bench` and the criterion benches.
//!
//! GPU work is timed with timestamp queries written at the start and end of a compute pass
//! where the adapter has them (`TIMESTAMP_QUERY`), else by the wall clock around a submit and
//! a wait; the report says which. The timestamps are cross-checked against the host clock
//! around their submission, and an adapter whose timestamps miss the work (lavapipe, in some
//! states) is timed by the wall clock from then on ([`timestamps_cover`]). Pipelines are
//! compiled and inputs uploaded before timing; warm-up runs come first; the median of the
//! timed runs is reported.

use std::time::Instant;

pub mod all;
pub mod attention;

use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::gpu::{AdapterSummary, Bracket, Dispatch, Gpu};
use crate::ops::matmul::{self, MatmulConfig, MatmulDims, MatmulOptions};
use crate::tensor::Tensor;

/// How a time was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimingMethod {
    /// GPU timestamp queries around each compute pass.
    GpuTimestamp,
    /// Host wall clock around submit + wait (includes submission overhead).
    WallClock,
}

/// The statistics of one timed operation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    /// How the runs were timed.
    pub method: TimingMethod,
    /// Median of the runs, milliseconds.
    pub median_ms: f64,
    /// Fastest run, milliseconds.
    pub min_ms: f64,
    /// Number of timed runs.
    pub runs: usize,
    /// Untimed runs before them.
    pub warmup: usize,
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn summarize(method: TimingMethod, mut ms: Vec<f64>, warmup: usize) -> Timing {
    let min_ms = ms.iter().copied().fold(f64::INFINITY, f64::min);
    Timing {
        method,
        median_ms: median(&mut ms),
        min_ms,
        runs: ms.len(),
        warmup,
    }
}

/// Times `dispatches` (recorded in one compute pass per run): `warmup` untimed runs, then
/// `runs` timed ones, with GPU timestamps when the adapter has them and `wall_clock` is false.
pub fn time_dispatches(
    gpu: &Gpu,
    dispatches: &[Dispatch],
    warmup: usize,
    runs: usize,
    wall_clock: bool,
) -> Result<Timing> {
    let runs = runs.max(1);
    for _ in 0..warmup {
        gpu.execute(dispatches)?;
    }
    if wall_clock || !gpu.timestamps_usable() {
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            gpu.execute(dispatches)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        return Ok(summarize(TimingMethod::WallClock, ms, warmup));
    }
    let device = gpu.device();
    let count = 2 * runs as u32;
    let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("speckle.bench.timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let resolved = gpu.create_buffer(
        "speckle.bench.resolve",
        u64::from(count) * 8,
        wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
    )?;
    let mut encoder = device.create_command_encoder(&Default::default());
    for i in 0..runs as u32 {
        let bracket = Bracket {
            queries: &queries,
            begin: 2 * i,
            end: 2 * i + 1,
        };
        Gpu::encode(&mut encoder, dispatches, Some(&bracket));
    }
    encoder.resolve_query_set(&queries, 0..count, &resolved, 0);
    let submitted = Instant::now();
    gpu.queue().submit([encoder.finish()]);
    gpu.wait()?;
    let wall_ms = submitted.elapsed().as_secs_f64() * 1e3;
    let ticks: Vec<u64> =
        bytemuck::pod_collect_to_vec(&gpu.read_bytes(&resolved, 0, u64::from(count) * 8)?);
    let period_ns = f64::from(gpu.queue().get_timestamp_period());
    let ms: Vec<f64> = ticks
        .chunks(2)
        .map(|t| t[1].saturating_sub(t[0]) as f64 * period_ns * 1e-6)
        .collect();
    if ms.iter().all(|&t| t == 0.0) {
        return Err(Error::Gpu {
            context: "reading GPU timestamps".into(),
            message: "every timestamp pair was equal; the adapter's timestamps are unusable".into(),
        });
    }
    if !timestamps_cover(ms.iter().sum(), wall_ms) {
        if gpu.distrust_timestamps() {
            log::warn!(
                "GPU timestamps covered {:.3} ms of a {wall_ms:.3} ms submission: they do not \
                 bracket the work on this adapter; timing with the wall clock from now on",
                ms.iter().sum::<f64>()
            );
        }
        return time_dispatches(gpu, dispatches, 0, runs, true);
    }
    Ok(summarize(TimingMethod::GpuTimestamp, ms, warmup))
}

/// Whether timestamp intervals summing to `timestamps_ms` plausibly measure a submission that
/// took `wall_ms` on the host: they may not cover less than a quarter of it when the
/// difference is more than 5 ms (submission and waiting cost far less than that).
///
/// Why: lavapipe (Mesa 22.3) writes a pass's end timestamp before its last dispatch finishes
/// once a texture has been bound in the process (measured: a 1024³ vec4 matmul read 0.05 ms by
/// timestamps and 130–240 ms by the clock after a texture matmul, and 240 ms both ways before
/// it), so a timing that covers almost none of the wall time is thrown away.
pub fn timestamps_cover(timestamps_ms: f64, wall_ms: f64) -> bool {
    !(timestamps_ms < 0.25 * wall_ms && wall_ms - timestamps_ms > 5.0)
}

/// Seeded uniform values in [-1, 1).
pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// One row of the `speckle bench` report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    /// The operation (`matmul`).
    pub op: String,
    /// [m, n, k] for matmul.
    pub shape: Vec<usize>,
    /// Kernel configuration asked for (workgroup and preferred kernel).
    pub config: String,
    /// The kernel that ran (the preferred one, or the fallback the operands allowed).
    pub kernel: String,
    /// GPU throughput, GFLOP/s, from the median time.
    pub gpu_gflops: f64,
    /// CPU throughput of the same product with the CPU GEMM, GFLOP/s (null when skipped).
    pub cpu_gflops: f64,
    /// `gpu_gflops / cpu_gflops`.
    pub vs_cpu: f64,
    /// Largest componentwise relative error of the GPU result against the f64 reference over
    /// the checked entries: |c − c_ref| / Σ_k |a_ik·b_kj|, whose f32 bound is about k·2⁻²⁴.
    pub max_rel_err: f64,
    /// Entries compared with the f64 reference (all of C for small sizes, a sample otherwise).
    pub checked_entries: usize,
    /// GPU timing.
    pub timing: Timing,
    /// CPU median time, milliseconds.
    pub cpu_ms: f64,
    /// CPU GEMM used for the baseline.
    pub cpu_library: String,
}

/// The `speckle bench` report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// The adapter measured.
    pub adapter: AdapterSummary,
    /// One entry per operation and size.
    pub results: Vec<BenchResult>,
}

/// Options of [`bench_matmul`].
#[derive(Clone, Debug)]
pub struct MatmulBench {
    /// Square sizes n (C = A·B with n × n operands).
    pub sizes: Vec<usize>,
    /// Untimed GPU runs first.
    pub warmup: usize,
    /// Timed GPU runs.
    pub runs: usize,
    /// Workgroup shape and kernel; `None` is what a call would use (the tuned configuration,
    /// else the built-in one).
    pub config: Option<MatmulConfig>,
    /// Time with the host clock even where GPU timestamps exist.
    pub wall_clock: bool,
    /// Run the CPU GEMM baseline (off for quick tuning sweeps; its figures are then null).
    pub cpu_baseline: bool,
}

impl Default for MatmulBench {
    fn default() -> Self {
        MatmulBench {
            sizes: vec![256, 512, 1024],
            warmup: 3,
            runs: 20,
            config: None,
            wall_clock: false,
            cpu_baseline: true,
        }
    }
}

/// Benchmarks square f32 matmul on the GPU against the CPU GEMM (`matrixmultiply`, threaded)
/// on the same inputs, checking the GPU result against the f64 reference. `progress` is told
/// each size as it starts.
pub fn bench_matmul(
    gpu: &Gpu,
    options: &MatmulBench,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BenchResult>> {
    let mut results = Vec::new();
    for &n in &options.sizes {
        if n == 0 {
            return Err(Error::invalid("benchmark sizes must be at least 1"));
        }
        progress(&format!("matmul {n}x{n}x{n}"));
        let a_host = random_vec(n * n, 1);
        let b_host = random_vec(n * n, 2);
        let a = Tensor::from_slice(gpu, &a_host, &[n, n])?;
        let b = Tensor::from_slice(gpu, &b_host, &[n, n])?;
        let c = Tensor::filled(gpu, &[n, n], f32::NAN)?;
        let dims = MatmulDims::new(&[n, n], &[n, n], false, false)?;
        let config = match options.config {
            Some(c) => c,
            None => MatmulConfig::for_problem(gpu, &dims, false, false)?,
        };
        let mm = MatmulOptions {
            config: Some(config),
            ..Default::default()
        };
        let kernel = matmul::kernel_for(gpu, &a, &b, &c, &mm)?;
        let dispatches = matmul::plan(gpu, &a, &b, &c, &mm)?;
        let timing = time_dispatches(
            gpu,
            &dispatches,
            options.warmup,
            options.runs,
            options.wall_clock,
        )?;
        let c_host = c.to_vec(gpu)?;
        let (max_rel_err, checked_entries) =
            check_sampled(&a_host, &b_host, &c_host, &dims, false, false);
        let cpu_ms = if options.cpu_baseline {
            time_cpu_sgemm(&a_host, &b_host, n, n, n)
        } else {
            f64::NAN
        };
        let flops = dims.flops();
        let gpu_gflops = flops / (timing.median_ms * 1e6);
        let cpu_gflops = flops / (cpu_ms * 1e6);
        results.push(BenchResult {
            op: "matmul".into(),
            shape: vec![n, n, n],
            config: config.to_string(),
            kernel: kernel.name().into(),
            gpu_gflops,
            cpu_gflops,
            vs_cpu: gpu_gflops / cpu_gflops,
            max_rel_err,
            checked_entries,
            timing,
            cpu_ms,
            cpu_library: "matrixmultiply sgemm (threaded)".into(),
        });
    }
    Ok(results)
}

/// Componentwise relative error of `c` against the f64 reference on all entries (up to
/// 4096 of them) or on 4096 seeded random ones; A and B are stored as `trans_a`, `trans_b`
/// say (op(A) = Aᵀ when A is stored [k, m]; op(B) = Bᵀ when B is stored [n, k]).
pub(crate) fn check_sampled(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    d: &MatmulDims,
    trans_a: bool,
    trans_b: bool,
) -> (f64, usize) {
    const SAMPLES: usize = 4096;
    let total = d.m * d.n;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let picks: Vec<usize> = if total <= SAMPLES {
        (0..total).collect()
    } else {
        (0..SAMPLES).map(|_| rng.random_range(0..total)).collect()
    };
    let a_at = |i: usize, kk: usize| {
        if trans_a {
            a[kk * d.m + i]
        } else {
            a[i * d.k + kk]
        }
    };
    let b_at = |kk: usize, j: usize| {
        if trans_b {
            b[j * d.k + kk]
        } else {
            b[kk * d.n + j]
        }
    };
    let mut worst = 0.0f64;
    for &idx in &picks {
        let (i, j) = (idx / d.n, idx % d.n);
        let (mut exact, mut magnitude) = (0.0f64, 0.0f64);
        for kk in 0..d.k {
            let p = f64::from(a_at(i, kk)) * f64::from(b_at(kk, j));
            exact += p;
            magnitude += p.abs();
        }
        let got = f64::from(c[idx]);
        let err = if got.is_finite() {
            (got - exact).abs() / magnitude.max(f64::MIN_POSITIVE)
        } else {
            f64::INFINITY
        };
        worst = worst.max(err);
    }
    (worst, picks.len())
}

/// Median time (ms) of the CPU GEMM for C [m, n] = A [m, k] · B [k, n] (row-major): at least
/// 3 runs and about 1 s.
pub(crate) fn time_cpu_sgemm(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> f64 {
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "CPU GEMM operands too short"
    );
    let mut c = vec![0.0f32; m * n];
    let run = |c: &mut [f32]| {
        let t = Instant::now();
        // SAFETY: a holds m*k, b k*n and c m*n elements, row-major with the strides given.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        t.elapsed().as_secs_f64() * 1e3
    };
    run(&mut c); // warm-up: thread pool start, page faults
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed().as_secs_f64() < 1.0 && times.len() < 50) {
        times.push(run(&mut c));
    }
    median(&mut times)
}

/// One row of `speckle bench project`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProjectBenchResult {
    /// `project`.
    pub op: String,
    /// The projection kind.
    pub kind: String,
    /// `materialized` or `matrix-free`.
    pub mode: String,
    /// [batch, d, n_out].
    pub shape: Vec<usize>,
    /// Input vectors projected per second on the GPU (batch / median time).
    pub vectors_per_s: f64,
    /// Multiply-adds of R x counted as 2 flops each (twice for complex kinds), per second; for
    /// the structured kinds, the additions of the Walsh–Hadamard transforms.
    pub gpu_gflops: f64,
    /// Matrix entries used per second (generated, for the matrix-free mode): d · n_out · (1 or
    /// 2) per batch group of 8 inputs; null for the structured kinds, which have none.
    pub entries_per_s: f64,
    /// The f64 CPU reference's rate, one thread, in vectors per second, extrapolated from the
    /// sampled rows it computed in this run.
    pub cpu_reference_vectors_per_s: f64,
    /// Output rows of the first input checked against the CPU reference.
    pub checked_rows: usize,
    /// ‖y − y_ref‖ / ‖y_ref‖ over the checked rows.
    pub rel_err: f64,
    /// GPU timing.
    pub timing: Timing,
}

/// Benchmarks `projection` (fitted to `d`) on `batch` seeded inputs. The matrix of the
/// materialized mode is generated before timing; the timed work is the product and the
/// non-linearity (and, matrix-free, the generation inside the kernel).
pub fn bench_project(
    gpu: &Gpu,
    projection: &crate::projection::Projection,
    batch: usize,
    warmup: usize,
    runs: usize,
) -> Result<ProjectBenchResult> {
    let d = projection
        .input_dim()
        .ok_or_else(|| Error::invalid("the projection is not fitted"))?;
    let n_out = projection.n_out;
    let x_host = random_vec(batch * d, 1);
    let x = Tensor::from_slice(gpu, &x_host, &[batch, d])?;
    let ws = projection.prepare(gpu, batch)?;
    let plan = projection.plan(gpu, &x, &ws)?;
    let timing = time_dispatches(gpu, &plan, warmup, runs, false)?;
    let y = ws.y.to_vec(gpu)?;

    // The f64 reference on sampled rows of the first input (whole for structured kinds).
    let (reference, picks, cpu_seconds_per_row) = if projection.kind.is_structured() {
        let start = Instant::now();
        let optical = projection.kind == crate::projection::Kind::SrhtOptical;
        let reference = crate::cpu::srht::srht(&x_host[..d], 1, d, n_out, projection.seed, optical);
        (
            reference,
            (0..n_out).collect::<Vec<usize>>(),
            start.elapsed().as_secs_f64() / n_out as f64,
        )
    } else {
        sampled_reference(projection, &x_host[..d], d, n_out)?
    };
    let rows = picks.len();
    let got: Vec<f32> = picks.iter().map(|&i| y[i]).collect();
    let rel_err = crate::cpu::relative_error(&got, &reference);
    let seconds = timing.median_ms * 1e-3;
    let parts = match projection.spec() {
        Ok(spec) if spec.dense.complex => 2.0,
        Ok(_) => 1.0,
        Err(_) => f64::NAN, // structured: no dense matrix, no matrix entries
    };
    let macs = batch as f64 * d as f64 * n_out as f64 * parts;
    let groups = batch.div_ceil(crate::ops::project_dense::BATCH_GROUP) as f64;
    Ok(ProjectBenchResult {
        op: "project".into(),
        kind: projection.kind.name().into(),
        mode: match projection.mode {
            _ if projection.kind.is_structured() => {
                let optical = projection.kind == crate::projection::Kind::SrhtOptical;
                match crate::ops::srht::chosen_local(gpu, batch, d, n_out, optical)? {
                    Some(local) => format!("structured, {}", local.name()),
                    None => "structured".into(),
                }
            }
            _ if projection.uses_fused(gpu) => "materialized, fused".into(),
            crate::projection::Mode::Materialized => "materialized".into(),
            crate::projection::Mode::MatrixFree => "matrix-free".into(),
        },
        shape: vec![batch, d, n_out],
        vectors_per_s: batch as f64 / seconds,
        gpu_gflops: if projection.kind.is_structured() {
            // Three Walsh–Hadamard transforms of p log2 p additions per block, part and input.
            let p = crate::ops::srht::padded_len(d) as f64;
            let parts = if projection.kind == crate::projection::Kind::SrhtOptical {
                2.0
            } else {
                1.0
            };
            let blocks = (n_out as f64 / p).ceil();
            batch as f64 * blocks * parts * 3.0 * p * p.log2() / seconds * 1e-9
        } else {
            2.0 * macs / seconds * 1e-9
        },
        entries_per_s: d as f64 * n_out as f64 * parts * groups / seconds,
        cpu_reference_vectors_per_s: 1.0 / (cpu_seconds_per_row * n_out as f64),
        checked_rows: rows,
        rel_err,
        timing,
    })
}

/// The f64 reference of a dense projection of `x` (one input) on up to 64 evenly spaced
/// output rows: (values, rows, seconds per row).
fn sampled_reference(
    projection: &crate::projection::Projection,
    x: &[f32],
    d: usize,
    n_out: usize,
) -> Result<(Vec<f64>, Vec<usize>, f64)> {
    let spec = projection.spec()?;
    let rows = ((1usize << 22) / d).clamp(4, 64).min(n_out);
    let picks: Vec<usize> = (0..rows).map(|r| r * n_out / rows).collect();
    let norm: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let start = Instant::now();
    let mut reference = Vec::with_capacity(rows);
    for &i in &picks {
        let dot = |stream| {
            (0..d)
                .map(|j| {
                    crate::cpu::project_dense::matrix_entry(&spec.dense, stream, i as u32, j as u64)
                        * f64::from(x[j])
                })
                .sum::<f64>()
        };
        let re = dot(crate::cpu::philox::Stream::Matrix);
        let im = if spec.dense.complex {
            dot(crate::cpu::philox::Stream::MatrixImaginary)
        } else {
            0.0
        };
        reference.push(match spec.finish {
            Some((finish, scale)) => crate::cpu::project_finish::finish_one(
                finish,
                re,
                im,
                norm,
                i as u32,
                projection.seed,
                f64::from(scale),
            ),
            None => re,
        });
    }
    Ok((
        reference,
        picks,
        start.elapsed().as_secs_f64() / rows as f64,
    ))
}
