//! The GPU context: adapter choice and its errors, wrapping a caller's own device.

mod common;

use std::process::Command;

use speckle::ops::{activation, matmul};
use speckle::{Activation, Bracket, Error, Gpu, GpuOptions, MatmulConfig, MatmulOptions, Tensor};

#[test]
fn adapters_are_listed_best_first_and_the_first_is_chosen() {
    let adapters = Gpu::adapters();
    assert!(!adapters.is_empty(), "the tests need an adapter");
    let gpu = common::gpu();
    if std::env::var_os("SPECKLE_ADAPTER").is_none()
        && std::env::var_os("WGPU_ADAPTER_NAME").is_none()
    {
        assert_eq!(gpu.summary().name, adapters[0].name);
    }
}

#[test]
fn a_named_adapter_that_is_absent_is_an_error_listing_those_present() {
    let e = Gpu::with_options(&GpuOptions {
        adapter: Some("no-such-adapter-xyz".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(e, Error::AdapterNotFound { .. }), "{e}");
    let first = &Gpu::adapters()[0].name;
    assert!(e.to_string().contains(first.as_str()), "{e}");
}

#[test]
fn no_adapter_says_how_to_install_a_driver() {
    // Metal exists only on Apple systems: elsewhere this backend finds no adapter.
    if cfg!(target_vendor = "apple") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_speckle"))
        .arg("info")
        .env("WGPU_BACKEND", "metal")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no GPU adapter") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
}

#[test]
fn a_callers_own_device_can_be_wrapped() {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("an adapter");
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
            .expect("a device");
    let gpu = Gpu::from_wgpu(&adapter, device, queue);
    // The device was created with WebGPU's default limits, not the adapter's: the context
    // uses the device's (16 KiB of workgroup memory, where lavapipe offers 32 KiB).
    assert_eq!(
        gpu.limits().max_compute_workgroup_storage_size,
        wgpu::Limits::default().max_compute_workgroup_storage_size
    );
    let x = Tensor::from_slice(&gpu, &[-1.0, 2.0, -3.0], &[3]).unwrap();
    let y = activation::run(&gpu, Activation::Relu, &x).unwrap();
    assert_eq!(y.to_vec(&gpu).unwrap(), vec![0.0, 2.0, 0.0]);
}

/// `Gpu::encode` records copies between compute passes and keeps them inside the timestamp
/// bracket, also when the work starts or ends with one (an empty pass carries the timestamp).
/// A texture-path matmul plan on 8-wide subgroups starts with the operands' copies.
#[test]
fn copies_and_kernels_are_encoded_inside_one_timestamp_bracket() {
    let gpu = common::gpu();
    let (m, k, n) = (24, 64, 128);
    let (a_host, b_host) = (common::random(m * k, 5), common::random(k * n, 6));
    let a = Tensor::from_slice(gpu, &a_host, &[m, k]).unwrap();
    let b = Tensor::from_slice(gpu, &b_host, &[k, n]).unwrap();
    let c = common::poisoned(gpu, &[m, n]);
    let options = MatmulOptions {
        config: Some(MatmulConfig::CPU),
        ..Default::default()
    };
    let plan = matmul::plan(gpu, &a, &b, &c, &options).unwrap();
    let copies = plan.iter().take_while(|d| d.is_copy()).count();
    if copies == 0 {
        eprintln!("note: this adapter plans no texture copies; only kernels are encoded");
    }
    let timestamps = gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY);
    let device = gpu.device();
    let queries = timestamps.then(|| {
        device.create_query_set(&wgpu::QuerySetDescriptor {
            label: None,
            ty: wgpu::QueryType::Timestamp,
            count: 4,
        })
    });
    let bracket = |begin| {
        queries.as_ref().map(|q| Bracket {
            queries: q,
            begin,
            end: begin + 1,
        })
    };
    let mut encoder = device.create_command_encoder(&Default::default());
    Gpu::encode(&mut encoder, &plan, bracket(0).as_ref());
    // Copies only: both timestamps on empty passes.
    Gpu::encode(&mut encoder, &plan[..copies], bracket(2).as_ref());
    let resolved = queries.as_ref().map(|q| {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 32,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(q, 0..4, &buffer, 0);
        buffer
    });
    gpu.queue().submit([encoder.finish()]);
    gpu.wait().unwrap();

    let want = speckle::cpu::matmul::matmul(&speckle::cpu::matmul::Problem::new(
        &a_host,
        &[m, k],
        &b_host,
        &[k, n],
    ))
    .unwrap();
    let tolerance = common::matmul::tolerance(k);
    common::assert_rel_close("encoded plan", &c.to_vec(gpu).unwrap(), &want, tolerance);
    match resolved {
        Some(buffer) => {
            let ticks: Vec<u64> =
                bytemuck::pod_collect_to_vec(&gpu.read_bytes(&buffer, 0, 32).unwrap());
            // Every query written, in recording order (CPU adapters may stamp at submission,
            // so equal neighbours are allowed).
            assert!(ticks[0] > 0, "the first query was written: {ticks:?}");
            assert!(
                ticks.windows(2).all(|w| w[1] >= w[0]),
                "brackets in recording order: {ticks:?}"
            );
        }
        None => eprintln!("note: no TIMESTAMP_QUERY on this adapter; brackets not recorded"),
    }
}
