//! The GPU context: adapter choice and its errors, wrapping a caller's own device.

mod common;

use std::process::Command;

use speckle::ops::activation;
use speckle::{Activation, Error, Gpu, GpuOptions, Tensor};

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
