//! `.npy` files (NumPy's array format): f32 or f64 data, integer indices, C order.
//! Reading checks everything a user can get wrong (dtype, order, shape, truncation) and names
//! it; writing is atomic (see [`crate::atomic`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::element_count;

/// The data of an array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// float32 data.
    F32(Vec<f32>),
    /// float64 data.
    F64(Vec<f64>),
    /// Any integer dtype, widened to i64.
    Int(Vec<i64>),
}

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape, C order, every dimension at least 1.
    pub shape: Vec<usize>,
    /// The dtype string as written in the file (`<f4`, `<i8`, ...).
    pub dtype: String,
    /// The values.
    pub data: NpyData,
}

fn npy_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a `.npy` file of a float or integer dtype in C order.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let file = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| npy_error(path, format!("not a valid .npy file: {e}")))?;
    let dtype = match file.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => {
            return Err(npy_error(
                path,
                format!("unsupported structured dtype {}; speckle reads float32, float64 and integer arrays", other.descr()),
            ))
        }
    };
    if file.order() == npyz::Order::Fortran {
        return Err(npy_error(
            path,
            "array is in Fortran order; save it in C order (numpy.ascontiguousarray) first",
        ));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    element_count(&shape).map_err(|e| npy_error(path, e.to_string()))?;
    let code = &dtype[1..];
    let short = |e: std::io::Error| {
        npy_error(
            path,
            format!("data does not match the header (shape {shape:?}, dtype {dtype}): {e}"),
        )
    };
    let data = match code {
        "f4" => NpyData::F32(file.into_vec::<f32>().map_err(short)?),
        "f8" => NpyData::F64(file.into_vec::<f64>().map_err(short)?),
        "i1" => NpyData::Int(widen(file.into_vec::<i8>().map_err(short)?)),
        "i2" => NpyData::Int(widen(file.into_vec::<i16>().map_err(short)?)),
        "i4" => NpyData::Int(widen(file.into_vec::<i32>().map_err(short)?)),
        "i8" => NpyData::Int(file.into_vec::<i64>().map_err(short)?),
        "u1" => NpyData::Int(widen(file.into_vec::<u8>().map_err(short)?)),
        "u2" => NpyData::Int(widen(file.into_vec::<u16>().map_err(short)?)),
        "u4" => NpyData::Int(widen(file.into_vec::<u32>().map_err(short)?)),
        "u8" => {
            let v = file.into_vec::<u64>().map_err(short)?;
            let mut out = Vec::with_capacity(v.len());
            for (i, x) in v.into_iter().enumerate() {
                out.push(i64::try_from(x).map_err(|_| {
                    npy_error(path, format!("uint64 value {x} at flat index {i} does not fit in int64"))
                })?);
            }
            NpyData::Int(out)
        }
        _ => {
            return Err(npy_error(
                path,
                format!("unsupported dtype {dtype}; speckle reads float32 (<f4), float64 (<f8) and integer arrays"),
            ))
        }
    };
    Ok(NpyArray { shape, dtype, data })
}

fn widen<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
    v.into_iter().map(Into::into).collect()
}

/// Reads float data (float32, or float64 rounded to f32) and its shape.
pub fn read_f32(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let array = read(path)?;
    match array.data {
        NpyData::F32(v) => Ok((v, array.shape)),
        NpyData::F64(v) => Ok((v.into_iter().map(|x| x as f32).collect(), array.shape)),
        NpyData::Int(_) => Err(npy_error(
            path,
            format!(
                "dtype {} is an integer type; this input takes float32 or float64 data",
                array.dtype
            ),
        )),
    }
}

/// Reads integer data (indices, graph edges) and its shape.
pub fn read_indices(path: &Path) -> Result<(Vec<i64>, Vec<usize>)> {
    let array = read(path)?;
    match array.data {
        NpyData::Int(v) => Ok((v, array.shape)),
        _ => Err(npy_error(
            path,
            format!(
                "dtype {} is a float type; this input takes integer indices",
                array.dtype
            ),
        )),
    }
}

/// Encodes f32 data of `shape` as `.npy` (format 1.0, little-endian, C order).
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Result<Vec<u8>> {
    encode(
        "<f4",
        data.len(),
        shape,
        data.iter().flat_map(|v| v.to_le_bytes()),
    )
}

/// Encodes i64 data of `shape` as `.npy` (`<i8`, format 1.0, C order): indices such as a
/// graph's edges.
pub fn encode_i64(data: &[i64], shape: &[usize]) -> Result<Vec<u8>> {
    encode(
        "<i8",
        data.len(),
        shape,
        data.iter().flat_map(|v| v.to_le_bytes()),
    )
}

fn encode(
    descr: &str,
    values: usize,
    shape: &[usize],
    bytes: impl Iterator<Item = u8>,
) -> Result<Vec<u8>> {
    let len = element_count(shape)?;
    if len != values {
        return Err(Error::invalid(format!(
            "shape {shape:?} holds {len} elements but {values} values were given"
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple
    // of 64 and ended by a newline, as the format asks.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let header_len = u16::try_from(header.len())
        .map_err(|_| Error::invalid(format!("shape {shape:?} makes a .npy header too long")))?;
    let mut out = Vec::with_capacity(10 + header.len() + values * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(bytes);
    Ok(out)
}

/// Writes f32 data of `shape` to `path` atomically.
pub fn write_f32(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    crate::atomic::write_atomic(path, &encode_f32(data, shape)?)
}

/// Writes i64 data of `shape` to `path` atomically.
pub fn write_i64(path: &Path, data: &[i64], shape: &[usize]) -> Result<()> {
    crate::atomic::write_atomic(path, &encode_i64(data, shape)?)
}
