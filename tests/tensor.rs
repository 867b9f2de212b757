//! Tensors and .npy files: round trips, every accepted dtype, and a clear error for every
//! kind of bad file.

mod common;

use std::path::PathBuf;

use common::{gpu, random};
use speckle::npy::{self, NpyData};
use speckle::{Error, Tensor};

/// A scratch directory unique to one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speckle-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A .npy file with the given header fields and raw data bytes.
fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn tensors_round_trip_through_the_gpu() {
    let gpu = gpu();
    let data = random(3 * 5 * 7, 1);
    let t = Tensor::from_slice(gpu, &data, &[3, 5, 7]).unwrap();
    assert_eq!(t.shape(), &[3, 5, 7]);
    assert_eq!(t.len(), 105);
    assert_eq!(t.to_vec(gpu).unwrap(), data);
    let t = t.reshape(&[15, 7]).unwrap();
    assert_eq!(t.to_vec(gpu).unwrap(), data);
    assert!(t.reshape(&[4, 4]).is_err());
}

#[test]
fn bad_shapes_are_errors() {
    let gpu = gpu();
    let e = Tensor::from_slice(gpu, &[1.0, 2.0], &[3]).unwrap_err();
    assert!(
        e.to_string().contains("[3]") && e.to_string().contains('2'),
        "{e}"
    );
    let e = Tensor::zeros(gpu, &[4, 0]).unwrap_err();
    assert!(e.to_string().contains("zero-size"), "{e}");
    assert!(Tensor::zeros(gpu, &[]).is_err());
}

#[test]
fn tensors_beyond_the_buffer_limit_are_errors_not_crashes() {
    let gpu = gpu();
    let too_many = (gpu.limits().max_buffer_size / 4 + 1) as usize;
    let e = Tensor::empty(gpu, &[too_many]).unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e}");
}

#[test]
fn non_finite_values_are_named() {
    let e = speckle::check_finite("x.npy", &[1.0, f32::NAN, 2.0, f32::INFINITY]).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("x.npy")
            && message.contains("2 non-finite")
            && message.contains("index 1"),
        "{message}"
    );
    assert!(speckle::check_finite("ok", &[0.0, -1.0, f32::MAX]).is_ok());
}

#[test]
fn f32_files_round_trip() {
    let dir = scratch("f32");
    let path = dir.join("x.npy");
    let data = random(6, 2);
    npy::write_f32(&path, &data, &[2, 3]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "the data starts 64-byte aligned");
    let (read, shape) = npy::read_f32(&path).unwrap();
    assert_eq!((read, shape), (data, vec![2, 3]));
    npy::write_f32(&path, &[5.0], &[1]).unwrap();
    assert_eq!(npy::read_f32(&path).unwrap(), (vec![5.0], vec![1]));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "x.npy")
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files remain: {leftovers:?}"
    );
}

#[test]
fn f64_and_integer_files_are_read() {
    let dir = scratch("dtypes");
    let f64_path = dir.join("d.npy");
    let values = [1.5f64, -2.25, 1e-3];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&f64_path, npy_bytes("<f8", false, "(3,)", &data)).unwrap();
    assert_eq!(
        npy::read_f32(&f64_path).unwrap(),
        (vec![1.5, -2.25, 1e-3], vec![3])
    );

    let i32_path = dir.join("i.npy");
    let edges = [0i32, 1, 1, 2, 2, 0];
    let data: Vec<u8> = edges.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&i32_path, npy_bytes("<i4", false, "(3, 2)", &data)).unwrap();
    assert_eq!(
        npy::read_indices(&i32_path).unwrap(),
        (vec![0, 1, 1, 2, 2, 0], vec![3, 2])
    );
    let e = npy::read_f32(&i32_path).unwrap_err();
    assert!(e.to_string().contains("integer"), "{e}");

    let i64_path = dir.join("l.npy");
    let data: Vec<u8> = [7i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&i64_path, npy_bytes("<i8", false, "(2,)", &data)).unwrap();
    let array = npy::read(&i64_path).unwrap();
    assert_eq!(array.data, NpyData::Int(vec![7, -1]));
    assert!(npy::read_indices(&f64_path).is_err());
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = scratch("bad");
    let f4 = |n: usize| vec![0u8; 4 * n];
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "fortran.npy",
            npy_bytes("<f4", true, "(2, 2)", &f4(4)),
            "Fortran",
        ),
        ("complex.npy", npy_bytes("<c8", false, "(2,)", &f4(4)), "c8"),
        (
            "truncated.npy",
            npy_bytes("<f4", false, "(10,)", &f4(3)),
            "[10]",
        ),
        (
            "zero.npy",
            npy_bytes("<f4", false, "(0, 3)", &[]),
            "zero-size",
        ),
        (
            "scalar.npy",
            npy_bytes("<f4", false, "()", &f4(1)),
            "dimension",
        ),
        (
            "garbage.npy",
            b"this is not an npy file at all".to_vec(),
            "not a valid .npy",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = npy::read_f32(&path).unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains(name),
            "{name}: the error names the file: {message}"
        );
        assert!(
            message.contains(expected),
            "{name}: expected {expected:?} in: {message}"
        );
    }
    let e = npy::read_f32(&dir.join("missing.npy")).unwrap_err();
    assert!(e.to_string().contains("missing.npy"), "{e}");
}
