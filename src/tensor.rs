//! [`Tensor`]: f32 data in one GPU buffer, with a row-major (C order) shape.

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Usage flags of every tensor buffer: bound as storage, copied to and from the host.
const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// f32 data on the GPU with a row-major shape. Every dimension is at least 1.
///
/// A tensor is one buffer of at most the adapter's `max_buffer_size` bytes. Kernels bind
/// windows of it no larger than [`Gpu::binding_limit`], so a tensor may be larger than one
/// storage binding.
#[derive(Debug)]
pub struct Tensor {
    buffer: wgpu::Buffer,
    shape: Vec<usize>,
}

/// A window of a tensor to bind: an aligned byte range and the element within it where the
/// requested range starts.
pub(crate) struct Window<'a> {
    pub(crate) binding: wgpu::BufferBinding<'a>,
    pub(crate) first: u32,
}

impl<'a> Window<'a> {
    pub(crate) fn resource(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(self.binding.clone())
    }

    /// The window's binding, or the context's placeholder buffer for an absent optional input.
    pub(crate) fn or_placeholder(
        window: Option<&Window<'a>>,
        gpu: &'a Gpu,
    ) -> wgpu::BindingResource<'a> {
        match window {
            Some(w) => w.resource(),
            None => gpu.placeholder().as_entire_binding(),
        }
    }

    /// The window's binding, or the context's unused-output buffer for an optional read-write
    /// output the dispatch does not write.
    pub(crate) fn or_unused_output(
        window: Option<&Window<'a>>,
        gpu: &'a Gpu,
    ) -> wgpu::BindingResource<'a> {
        match window {
            Some(w) => w.resource(),
            None => gpu.unused_output().as_entire_binding(),
        }
    }
}

/// The number of elements of `shape`, checking that no dimension is zero.
pub fn element_count(shape: &[usize]) -> Result<usize> {
    if shape.is_empty() {
        return Err(Error::invalid(
            "a tensor needs at least one dimension (got a scalar shape [])",
        ));
    }
    if let Some(axis) = shape.iter().position(|&d| d == 0) {
        return Err(Error::invalid(format!(
            "shape {shape:?} has a zero-size dimension (axis {axis}); every dimension must be at least 1"
        )));
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::invalid(format!(
                "shape {shape:?} has more elements than fit in memory"
            ))
        })
}

/// Checks that `shape` holds `given` values.
fn check_data_len(shape: &[usize], given: usize) -> Result<()> {
    let len = element_count(shape)?;
    if len != given {
        return Err(Error::invalid(format!(
            "shape {shape:?} holds {len} elements but {given} values were given"
        )));
    }
    Ok(())
}

/// Checks that every value is finite, naming `what` and the first offending index otherwise.
pub fn check_finite(what: &str, data: &[f32]) -> Result<()> {
    let mut bad = data.iter().enumerate().filter(|(_, v)| !v.is_finite());
    if let Some((first, &value)) = bad.next() {
        return Err(Error::NonFinite {
            what: what.to_owned(),
            count: 1 + bad.count(),
            first,
            value,
        });
    }
    Ok(())
}

impl Tensor {
    /// An uninitialized tensor (its contents are whatever the driver gives; most zero it).
    pub fn empty(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let len = element_count(shape)?;
        let bytes = (len as u64)
            .checked_mul(4)
            .ok_or_else(|| Error::invalid(format!("shape {shape:?} is too large")))?;
        let buffer = gpu.create_buffer("speckle.tensor", bytes, TENSOR_USAGE)?;
        Ok(Tensor {
            buffer,
            shape: shape.to_vec(),
        })
    }

    /// Uploads `data` (row-major) as a tensor of `shape`.
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_data_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape)?;
        t.write(gpu, data)?;
        Ok(t)
    }

    /// A tensor of `shape` with every element `value` (NaN makes a poisoned output for tests).
    pub fn filled(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Tensor> {
        let len = element_count(shape)?;
        Tensor::from_slice(gpu, &vec![value; len], shape)
    }

    /// A tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        Tensor::filled(gpu, shape, 0.0)
    }

    /// Overwrites the whole tensor with `data`.
    pub fn write(&self, gpu: &Gpu, data: &[f32]) -> Result<()> {
        if data.len() != self.len() {
            return Err(Error::invalid(format!(
                "writing {} values into a tensor of shape {:?} ({} elements)",
                data.len(),
                self.shape,
                self.len()
            )));
        }
        gpu.queue()
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Downloads the tensor (waits for all submitted work).
    pub fn to_vec(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let bytes = gpu.read_bytes(&self.buffer, 0, self.size_bytes())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// The shape, row-major.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: a tensor has at least one element. (Present for API symmetry.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Size of the data in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.len() as u64 * 4
    }

    /// The underlying buffer (usage STORAGE | COPY_SRC | COPY_DST).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(self, shape: &[usize]) -> Result<Tensor> {
        let len = element_count(shape)?;
        if len != self.len() {
            return Err(Error::invalid(format!(
                "cannot reshape {:?} ({} elements) to {shape:?} ({len} elements)",
                self.shape,
                self.len()
            )));
        }
        Ok(Tensor {
            buffer: self.buffer,
            shape: shape.to_vec(),
        })
    }

    /// Another handle to the same data under `shape` (the same number of elements); writes
    /// through either are seen by both.
    pub fn view(&self, shape: &[usize]) -> Result<Tensor> {
        let len = element_count(shape)?;
        if len != self.len() {
            return Err(Error::invalid(format!(
                "cannot view {:?} ({} elements) as {shape:?} ({len} elements)",
                self.shape,
                self.len()
            )));
        }
        Ok(Tensor {
            buffer: self.buffer.clone(),
            shape: shape.to_vec(),
        })
    }

    /// The window of elements `start .. start + len`, bound at the largest aligned offset at
    /// or before `start`. The caller keeps `len + alignment / 4` within the binding limit.
    pub(crate) fn window(&self, gpu: &Gpu, start: usize, len: usize) -> Window<'_> {
        let align = gpu.binding_alignment().max(4);
        let start_bytes = start as u64 * 4;
        let offset = start_bytes / align * align;
        let end_bytes = (start + len) as u64 * 4;
        Window {
            binding: wgpu::BufferBinding {
                buffer: &self.buffer,
                offset,
                size: std::num::NonZeroU64::new(end_bytes - offset),
            },
            first: ((start_bytes - offset) / 4) as u32,
        }
    }
}

/// The largest number of elements a window may span so that it still fits one binding after
/// alignment slack, and its indices fit in u32.
pub(crate) fn window_capacity(gpu: &Gpu) -> usize {
    let bytes = gpu.binding_limit().min(1 << 31) - gpu.binding_alignment().max(4);
    (bytes / 4) as usize
}

/// What the matmul kernels bind as an operand: a number of elements and windows of them
/// (offsets in elements of the operand's own type).
pub(crate) trait Operand {
    /// The number of elements.
    fn elements(&self) -> usize;
    /// The window of elements `start .. start + len` (see [`Tensor::window`]).
    fn window_of(&self, gpu: &Gpu, start: usize, len: usize) -> Window<'_>;
    /// True for f16 elements (two per 32-bit word, lower half first), false for f32.
    fn halves(&self) -> bool {
        false
    }
}

impl Operand for Tensor {
    fn elements(&self) -> usize {
        self.len()
    }

    fn window_of(&self, gpu: &Gpu, start: usize, len: usize) -> Window<'_> {
        self.window(gpu, start, len)
    }
}

/// f16 data on the GPU (IEEE binary16, two values per 32-bit word, lower half first) with a
/// row-major shape: the operands of the f16-input matmuls (`ops::matmul_f16`), which
/// accumulate in f32. Half the memory and bandwidth of a [`Tensor`], with 11 significant
/// bits: binary data (0 and 1) and integers up to 2048 are exact.
#[derive(Debug)]
pub struct HalfTensor {
    /// The words, as an f32 tensor of ceil(len / 4) · 2 elements (whole 8-byte groups, which
    /// the kernels read as `vec2<u32>`).
    words: Tensor,
    shape: Vec<usize>,
}

impl HalfTensor {
    /// An uninitialized f16 tensor of `shape`.
    pub fn empty(gpu: &Gpu, shape: &[usize]) -> Result<HalfTensor> {
        let len = element_count(shape)?;
        Ok(HalfTensor {
            words: Tensor::empty(gpu, &[len.div_ceil(4) * 2])?,
            shape: shape.to_vec(),
        })
    }

    /// Uploads `data` rounded to f16 on the host (to nearest, ties to even; saturating at
    /// ±65504): the values are [`crate::cpu::to_f16::to_f16`] of `data`.
    pub fn from_f32(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<HalfTensor> {
        check_data_len(shape, data.len())?;
        let t = HalfTensor::empty(gpu, shape)?;
        let mut bits: Vec<u16> = data
            .iter()
            .map(|&v| half::f16::from_f32(crate::cpu::to_f16::to_f16(v)).to_bits())
            .collect();
        bits.resize(t.words.len() * 2, 0);
        gpu.queue()
            .write_buffer(t.words.buffer(), 0, bytemuck::cast_slice(&bits));
        Ok(t)
    }

    /// `x` converted on the GPU ([`crate::ops::to_f16`]).
    pub fn from_tensor(gpu: &Gpu, x: &Tensor) -> Result<HalfTensor> {
        crate::ops::to_f16::run(gpu, x)
    }

    /// Downloads the values, widened to f32 (exactly).
    pub fn to_vec(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let bytes = gpu.read_bytes(self.words.buffer(), 0, self.words.size_bytes())?;
        let bits: Vec<u16> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(bits[..self.len()]
            .iter()
            .map(|&b| half::f16::from_bits(b).to_f32())
            .collect())
    }

    /// The shape, row-major.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: a tensor has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The words as an f32 tensor (for the conversion kernel's output windows).
    pub(crate) fn words(&self) -> &Tensor {
        &self.words
    }
}

impl Operand for HalfTensor {
    fn elements(&self) -> usize {
        self.len()
    }

    fn halves(&self) -> bool {
        true
    }

    /// Elements `start .. start + len` (2 bytes each), bound from the largest aligned offset
    /// at or before `start` to the next whole 8-byte group after the end; `first` counts
    /// halves.
    fn window_of(&self, gpu: &Gpu, start: usize, len: usize) -> Window<'_> {
        let align = gpu.binding_alignment().max(8);
        let start_bytes = start as u64 * 2;
        let offset = start_bytes / align * align;
        let end_bytes = ((start + len) as u64 * 2)
            .next_multiple_of(8)
            .min(self.words.size_bytes());
        Window {
            binding: wgpu::BufferBinding {
                buffer: self.words.buffer(),
                offset,
                size: std::num::NonZeroU64::new(end_bytes - offset),
            },
            first: ((start_bytes - offset) / 2) as u32,
        }
    }
}
