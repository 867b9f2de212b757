//! The input encoders (threshold, bit planes) and the bit-plane decoder against their f64
//! reference, exactly: every output is 0/1 or an integer below 2^16, so there is no rounding
//! to tolerate, except for the decoder of real-valued planes (a projection of the planes).

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, poisoned, random, random_scaled};
use speckle::cpu::encode as reference;
use speckle::ops::encode::{self, check_bitplane_input, Encoder};
use speckle::{Gpu, Tensor};

/// Asserts `out` equals `want` exactly, naming the first differing index.
fn assert_exact(what: &str, out: &[f32], want: &[f64]) {
    assert_eq!(out.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = (0..out.len()).find(|&i| f64::from(out[i]) != want[i]) {
        panic!(
            "{what}: flat index {i}: got {}, expected {}",
            out[i], want[i]
        );
    }
}

/// Encodes `x` (shape `shape`) into a poisoned output and checks it against the reference;
/// returns the output tensor.
fn check_encode(gpu: &Gpu, encoder: Encoder, x_host: &[f32], shape: &[usize]) -> Tensor {
    let x = Tensor::from_slice(gpu, x_host, shape).unwrap();
    let out = poisoned(gpu, &encoder.output_shape(shape).unwrap());
    let plan = encode::plan_encode(gpu, encoder, &x, &out).unwrap();
    gpu.execute(&plan).unwrap();
    let d = shape[shape.len() - 1];
    assert_exact(
        &format!("{encoder:?} of {shape:?}"),
        &out.to_vec(gpu).unwrap(),
        &reference::encode(encoder, x_host, d),
    );
    out
}

/// Seeded integers in [0, 2^bits − 1].
fn integers(len: usize, seed: u64, bits: u32) -> Vec<f32> {
    let top = ((1u32 << bits) - 1) as f32;
    random(len, seed)
        .into_iter()
        .map(|u| ((u + 1.0) * 0.5 * (top + 1.0)).floor().min(top))
        .collect()
}

const SHAPES: [&[usize]; 6] = [&[1, 1], &[1, 7], &[3, 7], &[3, 1000], &[1, 1000], &[7]];

#[test]
fn threshold_matches_the_reference() {
    let gpu = gpu();
    for (s, shape) in SHAPES.iter().enumerate() {
        let len: usize = shape.iter().product();
        let x = random(len, 10 + s as u64);
        for level in [-0.5, 0.0, 0.3] {
            check_encode(gpu, Encoder::Threshold { level }, &x, shape);
        }
    }
    // Equal to the level is not above it.
    let x = [0.25, 0.2500001, 0.2499999, -1.0];
    let out = encode::encode(
        gpu,
        Encoder::Threshold { level: 0.25 },
        &Tensor::from_slice(gpu, &x, &[4]).unwrap(),
    )
    .unwrap();
    assert_eq!(out.to_vec(gpu).unwrap(), [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn bitplane_matches_the_reference() {
    let gpu = gpu();
    for bits in [1, 8, 12, 16] {
        let scale = (1u32 << bits) as f32;
        for (s, shape) in SHAPES.iter().enumerate() {
            let len: usize = shape.iter().product();
            // Values over [-0.1, 1.1) · 2^bits: most in range, some clamped at either end,
            // none integers (so rounding is exercised everywhere).
            let x: Vec<f32> = random(len, 20 + s as u64)
                .into_iter()
                .map(|u| (0.5 + 0.6 * u) * scale)
                .collect();
            let out = check_encode(gpu, Encoder::Bitplane { bits }, &x, shape);
            let mut want_shape = shape.to_vec();
            want_shape.insert(shape.len() - 1, bits as usize);
            assert_eq!(out.shape(), want_shape.as_slice());
        }
    }
}

#[test]
fn decoding_the_planes_gives_the_integers_back_exactly() {
    let gpu = gpu();
    for bits in [1, 8, 12, 16] {
        for (s, shape) in SHAPES.iter().enumerate() {
            let len: usize = shape.iter().product();
            let x_host = integers(len, 30 + s as u64, bits);
            check_bitplane_input(&x_host, bits).unwrap();
            let x = Tensor::from_slice(gpu, &x_host, shape).unwrap();
            let planes = encode::encode(gpu, Encoder::Bitplane { bits }, &x).unwrap();
            let back = encode::decode(gpu, bits, &planes).unwrap();
            assert_eq!(back.shape(), x.shape());
            let back = back.to_vec(gpu).unwrap();
            if let Some(i) = (0..len).find(|&i| back[i] != x_host[i]) {
                panic!(
                    "{bits} bits, {shape:?}: index {i}: decoded {}, encoded {}",
                    back[i], x_host[i]
                );
            }
        }
    }
}

#[test]
fn decoding_real_planes_matches_the_reference() {
    // The decoder after a projection sees real values. Summed from the least significant
    // plane up, every partial sum is at most 2^(k+1)·max|p|, so the error of an entry is at
    // most about 2·u·2^bits·max|p| (u = 2^-24); the rms of an entry is about 2^bits·max|p|/3
    // for uniform planes, so the relative error is below 6u ≈ 4e-7. Tolerance 1e-6.
    let gpu = gpu();
    for bits in [1, 8, 16] {
        for (batch, n) in [(1, 1), (3, 7), (3, 1000)] {
            let host = random_scaled(batch * bits as usize * n, 40 + u64::from(bits), 3.0);
            let planes = Tensor::from_slice(gpu, &host, &[batch, bits as usize, n]).unwrap();
            let out = poisoned(gpu, &[batch, n]);
            gpu.execute(&encode::plan_decode(gpu, bits, &planes, &out).unwrap())
                .unwrap();
            assert_rel_close(
                &format!("decode {bits} bits [{batch}, {n}]"),
                &out.to_vec(gpu).unwrap(),
                &reference::decode(bits, &host, n),
                1e-6,
            );
        }
    }
}

#[test]
fn bitplane_rounds_half_up_and_saturates() {
    let gpu = gpu();
    // 4 bits: integers 0..=15. 0.49999997 is the f32 just below 0.5: a naive f32
    // floor(v + 0.5) would give 1 (the sum rounds to 1.0).
    let cases: [(f32, f32); 14] = [
        (0.499_999_97, 0.0),
        (0.5, 1.0),
        (1.5, 2.0),
        (2.5, 3.0),
        (2.499_999_8, 2.0),
        (-0.4, 0.0),
        (-0.5, 0.0),
        (-0.6, 0.0),
        (14.499_999, 14.0),
        (14.5, 15.0),
        (15.5, 15.0),
        (100.0, 15.0),
        (-100.0, 0.0),
        (1e30, 15.0),
    ];
    let x_host: Vec<f32> = cases.iter().map(|c| c.0).collect();
    let want: Vec<f32> = cases.iter().map(|c| c.1).collect();
    for (&(v, q), &r) in cases.iter().zip(&want) {
        assert_eq!(reference::quantize(v, 4) as f32, q, "reference at {v}");
        assert_eq!(q, r);
    }
    let out = check_encode(
        gpu,
        Encoder::Bitplane { bits: 4 },
        &x_host,
        &[1, cases.len()],
    );
    let back = encode::decode(gpu, 4, &out).unwrap().to_vec(gpu).unwrap();
    for (i, (&got, &q)) in back.iter().zip(&want).enumerate() {
        assert_eq!(
            got, q,
            "input {} (index {i}) decoded to {got}, expected {q}",
            x_host[i]
        );
    }
}

#[test]
fn problems_larger_than_one_binding_are_chunked() {
    // 2 KiB bindings hold 508 values (after 16 bytes of alignment slack). Rows of 1000 or
    // 999 are split into column chunks, and their decoders go one plane per dispatch; samples
    // of 8 planes of 7 (56 values) or 16 planes of 13 (208) are decoded in groups of whole
    // samples.
    let gpu = gpu_with_binding_limit(2048);
    let mut dispatch_counts = Vec::new();
    for (batch, d, bits) in [(3, 1000, 12), (50, 7, 8), (2, 999, 1), (40, 13, 16)] {
        let shape = [batch, d];
        let x_host = integers(batch * d, 50 + d as u64, bits);
        let planes = check_encode(&gpu, Encoder::Bitplane { bits }, &x_host, &shape);
        let out = poisoned(&gpu, &shape);
        let plan = encode::plan_decode(&gpu, bits, &planes, &out).unwrap();
        dispatch_counts.push(plan.len());
        gpu.execute(&plan).unwrap();
        let widen: Vec<f64> = x_host.iter().map(|&v| f64::from(v)).collect();
        assert_exact(
            &format!("chunked decode [{batch}, {bits}, {d}]"),
            &out.to_vec(&gpu).unwrap(),
            &widen,
        );
        // Real-valued planes take the same plane-at-a-time path bit for bit.
        let host = random_scaled(batch * bits as usize * d, 60, 2.0);
        let planes = Tensor::from_slice(&gpu, &host, &[batch, bits as usize, d]).unwrap();
        let chunked = poisoned(&gpu, &shape);
        gpu.execute(&encode::plan_decode(&gpu, bits, &planes, &chunked).unwrap())
            .unwrap();
        assert_rel_close(
            "chunked real decode",
            &chunked.to_vec(&gpu).unwrap(),
            &reference::decode(bits, &host, d),
            1e-6,
        );
        let x = random(batch * d, 70);
        check_encode(&gpu, Encoder::Threshold { level: 0.1 }, &x, &shape);
    }
    assert!(
        dispatch_counts.iter().all(|&n| n > 1),
        "every case must take the chunked path: {dispatch_counts:?}"
    );
    // [3, 12, 1000]: 3 samples × 2 column chunks × 12 planes.
    assert_eq!(dispatch_counts[0], 72);
}

#[test]
fn shapes_and_parameters_are_checked() {
    let gpu = gpu();
    let x = Tensor::from_slice(gpu, &random(21, 1), &[3, 7]).unwrap();
    let bitplane = Encoder::Bitplane { bits: 8 };
    // Wrong output shapes.
    for (encoder, shape) in [
        (bitplane, vec![3, 7]),
        (bitplane, vec![3, 7, 8]),
        (Encoder::Threshold { level: 0.0 }, vec![7, 3]),
    ] {
        let out = Tensor::zeros(gpu, &shape).unwrap();
        let e = encode::plan_encode(gpu, encoder, &x, &out)
            .expect_err("wrong output shape")
            .to_string();
        assert!(e.contains(&format!("{shape:?}")), "{e}");
    }
    // Three-dimensional input.
    let x3 = Tensor::zeros(gpu, &[2, 3, 7]).unwrap();
    assert!(encode::encode(gpu, bitplane, &x3).is_err());
    // Aliasing.
    let e = encode::plan_encode(gpu, Encoder::Threshold { level: 0.0 }, &x, &x)
        .expect_err("in place is refused")
        .to_string();
    assert!(e.contains("alias"), "{e}");
    // Bad bits, in the constructor and in a hand-built encoder.
    for bits in [0, 17, 32] {
        let e = Encoder::from_name("bitplane", 0.0, bits)
            .expect_err("bits out of range")
            .to_string();
        assert!(
            e.contains(&format!("got {bits}")) && e.contains("1..=16"),
            "{e}"
        );
        assert!(encode::encode(gpu, Encoder::Bitplane { bits }, &x).is_err());
    }
    // Decoder shapes: planes [3, 8, 7] need bits 8 and output [3, 7].
    let planes = Tensor::zeros(gpu, &[3, 8, 7]).unwrap();
    assert!(encode::decode(gpu, 8, &planes).is_ok());
    assert!(encode::decode(gpu, 4, &planes).is_err());
    assert!(encode::decode(gpu, 0, &planes).is_err());
    let wrong = Tensor::zeros(gpu, &[3, 8]).unwrap();
    let e = encode::plan_decode(gpu, 8, &planes, &wrong)
        .expect_err("wrong output shape")
        .to_string();
    assert!(e.contains("[3, 8, 7]") && e.contains("[3, 8]"), "{e}");
    assert!(encode::decode(gpu, 8, &Tensor::zeros(gpu, &[56]).unwrap()).is_err());
}

#[test]
fn names_and_output_rows() {
    assert_eq!(
        Encoder::from_name("threshold", 0.5, 0).unwrap(),
        Encoder::Threshold { level: 0.5 }
    );
    assert_eq!(
        Encoder::from_name("bitplane", 0.0, 12).unwrap(),
        Encoder::Bitplane { bits: 12 }
    );
    let e = Encoder::from_name("gray", 0.0, 8).unwrap_err().to_string();
    assert!(
        e.contains("\"gray\"") && e.contains("threshold") && e.contains("bitplane"),
        "{e}"
    );
    for name in Encoder::NAMES {
        assert_eq!(Encoder::from_name(name, 0.0, 4).unwrap().name(), *name);
    }
    assert_eq!(Encoder::Threshold { level: 0.0 }.output_rows(), 1);
    assert_eq!(Encoder::Bitplane { bits: 12 }.output_rows(), 12);
    assert_eq!(
        Encoder::Bitplane { bits: 3 }.output_shape(&[5]).unwrap(),
        [3, 5]
    );
}

#[test]
fn check_bitplane_input_names_index_and_value() {
    assert!(check_bitplane_input(&[0.0, 1.0, 255.0], 8).is_ok());
    for (data, index, value) in [
        (vec![0.0, 3.0, 1.5], 2, "1.5"),
        (vec![-1.0], 0, "-1"),
        (vec![1.0, 256.0, 300.0], 1, "256"),
        (vec![2.0, f32::NAN], 1, "NaN"),
        (vec![f32::INFINITY], 0, "inf"),
    ] {
        let e = check_bitplane_input(&data, 8)
            .expect_err("bad input")
            .to_string();
        assert!(
            e.contains(&format!("value {value} at flat index {index}")) && e.contains("[0, 255]"),
            "{e}"
        );
    }
    let e = check_bitplane_input(&[1.0], 17).unwrap_err().to_string();
    assert!(e.contains("17"), "{e}");
}
