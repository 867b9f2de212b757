//! Criterion benches, one group per kernel. GPU work is timed by the shared harness
//! (`speckle::bench::time_dispatches`: GPU timestamps where the adapter has them), so the
//! numbers exclude pipeline compilation and uploads. `speckle bench matmul` reports GFLOP/s
//! against the CPU GEMM; these benches track each kernel's time across changes.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use speckle::bench::{random_vec, time_dispatches};
use speckle::ops::{activation, matmul, matmul_f16, softmax};
use speckle::{Activation, Dispatch, Gpu, HalfTensor, MatmulOptions, SoftmaxOptions, Tensor};

/// Criterion asks for the time of `iters` runs; the harness gives the median of GPU runs.
fn gpu_time(gpu: &Gpu, dispatches: &[Dispatch], iters: u64) -> Duration {
    let timing = time_dispatches(gpu, dispatches, 1, iters.clamp(1, 64) as usize, false)
        .expect("timing GPU work");
    Duration::from_secs_f64(timing.median_ms * 1e-3 * iters as f64)
}

fn tensor(gpu: &Gpu, shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_slice(gpu, &random_vec(shape.iter().product(), seed), shape).expect("upload")
}

fn bench_matmul(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for n in [128usize, 256, 512] {
        let a = tensor(gpu, &[n, n], 1);
        let b = tensor(gpu, &[n, n], 2);
        let out = Tensor::empty(gpu, &[n, n]).expect("alloc");
        let plan = matmul::plan(gpu, &a, &b, &out, &MatmulOptions::default()).expect("plan");
        group.throughput(Throughput::Elements((2 * n * n * n) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter_custom(|iters| gpu_time(gpu, &plan, iters));
        });
    }
    group.finish();
}

fn bench_matmul_tiled(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("matmul_tiled");
    group.sample_size(10);
    for t in matmul::TILED_SIZES {
        let n = 512usize;
        let a = tensor(gpu, &[n, n], 1);
        let b = tensor(gpu, &[n, n], 2);
        let out = Tensor::empty(gpu, &[n, n]).expect("alloc");
        let options = MatmulOptions {
            config: Some(speckle::MatmulConfig {
                wg_x: t,
                wg_y: t,
                kernel: matmul::MatmulKernel::Tiled,
            }),
            ..Default::default()
        };
        let plan = matmul::plan(gpu, &a, &b, &out, &options).expect("plan");
        group.throughput(Throughput::Elements((2 * n * n * n) as u64));
        group.bench_function(format!("{n} T={t}"), |bench| {
            bench.iter_custom(|iters| gpu_time(gpu, &plan, iters));
        });
    }
    group.finish();
}

fn bench_matmul_f16(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("matmul_f16");
    group.sample_size(10);
    for n in [256usize, 512] {
        let half =
            |seed| HalfTensor::from_f32(gpu, &random_vec(n * n, seed), &[n, n]).expect("upload");
        let (a, b) = (half(1), half(2));
        let out = Tensor::empty(gpu, &[n, n]).expect("alloc");
        let plan = matmul_f16::plan(gpu, &a, &b, &out, &MatmulOptions::default()).expect("plan");
        group.throughput(Throughput::Elements((2 * n * n * n) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter_custom(|iters| gpu_time(gpu, &plan, iters));
        });
    }
    group.finish();
}

fn bench_activation(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("activation");
    group.sample_size(10);
    let len = 1 << 20;
    let x = tensor(gpu, &[len], 3);
    let y = Tensor::empty(gpu, &[len]).expect("alloc");
    group.throughput(Throughput::Bytes((8 * len) as u64));
    for act in [Activation::Relu, Activation::Gelu] {
        let plan = activation::plan(gpu, act, &x, &y).expect("plan");
        group.bench_function(act.name(), |bench| {
            bench.iter_custom(|iters| gpu_time(gpu, &plan, iters));
        });
    }
    group.finish();
}

fn bench_softmax(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("softmax");
    group.sample_size(10);
    for (rows, cols) in [(1024usize, 1024usize), (8, 100_000)] {
        let x = tensor(gpu, &[rows, cols], 4);
        let y = Tensor::empty(gpu, &[rows, cols]).expect("alloc");
        let plan = softmax::plan(gpu, &x, &y, &SoftmaxOptions::default()).expect("plan");
        group.throughput(Throughput::Bytes((8 * rows * cols) as u64));
        group.bench_function(format!("{rows}x{cols}"), |bench| {
            bench.iter_custom(|iters| gpu_time(gpu, &plan, iters));
        });
    }
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: Quick start)");
    bench_matmul(c, &gpu);
    bench_matmul_tiled(c, &gpu);
    bench_matmul_f16(c, &gpu);
    bench_activation(c, &gpu);
    bench_softmax(c, &gpu);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
