//! f32 → f16 conversion: the GPU's conversion (`shaders/to_f16.wgsl`) against
//! round-to-nearest-even on values of every magnitude f16 holds (normal, subnormal, zero,
//! the largest, beyond it), odd lengths, the split path, and the host conversion of
//! `HalfTensor::from_f32` round-tripping exactly.
//!
//! WGSL lets an adapter round an inexact f32 → f16 conversion to either neighbour, so the GPU
//! may differ from round-to-nearest-even by one f16 ulp; never more, and saturation is exact.

mod common;

use common::{gpu, gpu_with_binding_limit, random_scaled};
use speckle::cpu::to_f16::{f16_ulps, to_f16, to_f16_slice, F16_MAX};
use speckle::{Gpu, HalfTensor, Tensor};

/// Values spanning f16's range: scaled uniforms from 1e-7 (subnormal) to 6e4, the extremes.
fn spread(len: usize, seed: u64) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    let scales = [1e-7, 1e-5, 1e-3, 0.1, 1.0, 37.0, 3000.0, 60000.0];
    for (i, s) in scales.iter().cycle().take(len).enumerate() {
        v.push(random_scaled(1, seed + i as u64, *s)[0]);
    }
    v.extend([
        0.0,
        -0.0,
        F16_MAX,
        -F16_MAX,
        1e9,
        -1e9,
        65519.0,
        2049.0,
        1.0 / 3.0,
    ]);
    v
}

fn assert_converts(gpu: &Gpu, data: &[f32]) {
    let x = Tensor::from_slice(gpu, data, &[data.len()]).unwrap();
    let got = HalfTensor::from_tensor(gpu, &x)
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    assert_eq!(got.len(), data.len());
    for (i, (&g, &v)) in got.iter().zip(data).enumerate() {
        let want = to_f16(v);
        assert!(g.is_finite(), "index {i}: {v} became {g}");
        let ulps = f16_ulps(g, want);
        assert!(
            ulps <= 1,
            "index {i}: f16({v}) is {want} (round to nearest even), the GPU gave {g} ({ulps} ulps)"
        );
        if v.abs() >= F16_MAX {
            assert_eq!(g, want, "index {i}: {v} must saturate to {want}");
        }
    }
}

#[test]
fn gpu_conversion_rounds_within_one_ulp_and_saturates() {
    let gpu = gpu();
    assert_converts(gpu, &spread(1000, 1));
    assert_converts(gpu, &spread(7, 2)); // odd length: the last word's upper half is 0
    assert_converts(gpu, &[0.5]);
}

#[test]
fn conversions_larger_than_one_binding_are_split() {
    let gpu = gpu_with_binding_limit(4096);
    assert_converts(&gpu, &spread(5001, 3));
}

#[test]
fn host_rounding_round_trips_exactly() {
    let gpu = gpu();
    let data = spread(333, 4);
    let t = HalfTensor::from_f32(gpu, &data, &[data.len()]).unwrap();
    assert_eq!(t.to_vec(gpu).unwrap(), to_f16_slice(&data));
    // Values that f16 holds exactly come back unchanged.
    let exact = [0.0, 1.0, -2.5, 2048.0, 0.000_061_035_156, F16_MAX];
    let t = HalfTensor::from_f32(gpu, &exact, &[2, 3]).unwrap();
    assert_eq!(t.to_vec(gpu).unwrap(), exact);
    assert_eq!(t.shape(), &[2, 3]);
    let e = HalfTensor::from_f32(gpu, &exact, &[4, 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("8 elements") && e.contains("6 values"), "{e}");
    let x = Tensor::zeros(gpu, &[5]).unwrap();
    let out = HalfTensor::empty(gpu, &[4]).unwrap();
    let e = speckle::ops::to_f16::plan(gpu, &x, &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[5]") && e.contains("[4]"), "{e}");
}
