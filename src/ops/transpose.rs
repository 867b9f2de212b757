//! Transposition (`shaders/transpose.wgsl`): `out[..., c, r] = x[..., r, c]` for tensors of
//! two or more dimensions, the leading ones being layers transposed alike, in windows of at
//! most one binding each.
//!
//! Where it serves: on CPU adapters a materialized projection keeps Rᵀ for its batches of
//! many rows, whose texture matmul copies an untransposed operand straight into its texture
//! but lays out a transposed one by a pass over it on every call ([`crate::projection`]), and
//! the reconstruction's operators keep Aᵀ for the skinny matmul of their adjoints.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor};

/// Uniform parameters of `shaders/transpose.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TransposeParams {
    rows: u32,
    cols: u32,
    x_stride: u32,
    out_stride: u32,
    x_first: u32,
    out_first: u32,
    layer_stride: u32,
    _pad: u32,
}

/// Values per side of the shader's tile (its workgroup is `TILE` × `TILE`).
const TILE: usize = 16;

/// Threads per workgroup of the entry point `main_blocks`, each moving a 4 × 4 block.
const BLOCKS_WG: usize = 64;

/// The part of the problem one dispatch moves: layers `layer .. layer + layers` (each whole),
/// or of one layer (`layers` = 1) the block of rows `r0 .. r0 + rows` and columns
/// `c0 .. c0 + cols` of x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    layer: usize,
    layers: usize,
    r0: usize,
    rows: usize,
    c0: usize,
    cols: usize,
}

/// The blocks that cover `layers` layers of `rows` × `cols` values when a window may span
/// `capacity` values and a grid dimension `max_groups` workgroups: whole layers, as many per
/// dispatch as fit, where a layer fits; else each layer in blocks whose windows fit (x's
/// window spans `(h - 1) · cols + w` values of a block of h rows and w columns, out's
/// `(w - 1) · rows + h`).
fn blocks(
    layers: usize,
    rows: usize,
    cols: usize,
    capacity: usize,
    max_groups: usize,
) -> Vec<Block> {
    let most = TILE * max_groups;
    let per_layer = rows * cols;
    if per_layer <= capacity && rows <= most && cols <= most {
        let step = (capacity / per_layer).min(max_groups).max(1);
        return (0..layers)
            .step_by(step)
            .map(|layer| Block {
                layer,
                layers: step.min(layers - layer),
                r0: 0,
                rows,
                c0: 0,
                cols,
            })
            .collect();
    }
    let (mut h, mut w) = (rows.min(most), cols.min(most));
    // Half of v, rounded up to whole tiles where that still shrinks it.
    let half = |v: usize| {
        let h = v.div_ceil(2);
        Some(h.next_multiple_of(TILE))
            .filter(|&t| t < v)
            .unwrap_or(h)
    };
    loop {
        let x_span = (h - 1) * cols + w;
        let out_span = (w - 1) * rows + h;
        if x_span <= capacity && out_span <= capacity {
            break;
        }
        // Halve what the larger window grows with: x's with rows, out's with columns (a single
        // row or column left, the other side).
        if (x_span >= out_span && h > 1) || w == 1 {
            h = half(h);
        } else {
            w = half(w);
        }
    }
    let mut out = Vec::new();
    for layer in 0..layers {
        for r0 in (0..rows).step_by(h) {
            for c0 in (0..cols).step_by(w) {
                out.push(Block {
                    layer,
                    layers: 1,
                    r0,
                    rows: h.min(rows - r0),
                    c0,
                    cols: w.min(cols - c0),
                });
            }
        }
    }
    out
}

/// The transposed shape of `shape` (its last two dimensions swapped), or an error naming
/// `shape` when it has fewer than two.
pub fn transposed_shape(shape: &[usize]) -> Result<Vec<usize>> {
    let n = shape.len();
    if n < 2 {
        return Err(Error::shape(
            "transpose",
            format!("transposition needs two or more dimensions, got shape {shape:?}"),
        ));
    }
    let mut t = shape.to_vec();
    t.swap(n - 2, n - 1);
    Ok(t)
}

/// Plans `out[..., c, r] = x[..., r, c]`; `out` has `x`'s shape with the last two dimensions
/// swapped.
pub fn plan(gpu: &Gpu, x: &Tensor, out: &Tensor) -> Result<Vec<Dispatch>> {
    let want = transposed_shape(x.shape())?;
    if out.shape() != want {
        return Err(Error::shape(
            "transpose",
            format!(
                "the transpose of {:?} has shape {want:?}, but the output has shape {:?}",
                x.shape(),
                out.shape()
            ),
        ));
    }
    let n = want.len();
    let (rows, cols) = (x.shape()[n - 2], x.shape()[n - 1]);
    let layers = x.len() / (rows * cols);
    let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
    // CPU adapters move blocks of whole vec4s by 4 × 4 blocks in registers (see the shader);
    // GPUs, and every other shape, through the workgroup tile.
    let fours = |v: &[usize]| v.iter().all(|v| v.is_multiple_of(4));
    let by_blocks = |b: &Block| {
        gpu.is_cpu()
            && fours(&[rows, cols, b.rows, b.cols, b.r0, b.c0])
            && b.rows / 4 <= max_groups
            && b.cols.div_ceil(4 * BLOCKS_WG) <= max_groups
    };
    let tiled = gpu.pipeline(&shaders::TRANSPOSE, &[])?;
    let layer_stride = rows * cols;
    let mut dispatches = Vec::new();
    for b in blocks(layers, rows, cols, window_capacity(gpu), max_groups) {
        let base = b.layer * layer_stride;
        let x_start = base + b.r0 * cols + b.c0;
        let out_start = base + b.c0 * rows + b.r0;
        let (x_len, out_len) = if b.layers > 1 || (b.rows == rows && b.cols == cols) {
            (b.layers * layer_stride, b.layers * layer_stride)
        } else {
            ((b.rows - 1) * cols + b.cols, (b.cols - 1) * rows + b.rows)
        };
        let xw = x.window(gpu, x_start, x_len);
        let ow = out.window(gpu, out_start, out_len);
        let params = TransposeParams {
            rows: b.rows as u32,
            cols: b.cols as u32,
            x_stride: cols as u32,
            out_stride: rows as u32,
            x_first: xw.first,
            out_first: ow.first,
            layer_stride: layer_stride as u32,
            _pad: 0,
        };
        let uniform = gpu.uniform("speckle.transpose.params", &params);
        let (pipeline, grid) = if by_blocks(&b) {
            (
                gpu.pipeline_entry(&shaders::TRANSPOSE, "main_blocks", &[])?,
                [b.cols.div_ceil(4 * BLOCKS_WG), b.rows / 4],
            )
        } else {
            (
                tiled.clone(),
                [b.cols.div_ceil(TILE), b.rows.div_ceil(TILE)],
            )
        };
        let bind_group = gpu.bind_group(
            &pipeline,
            &[uniform.as_entire_binding(), xw.resource(), ow.resource()],
        );
        dispatches.push(Dispatch::kernel(
            pipeline,
            bind_group,
            [grid[0] as u32, grid[1] as u32, b.layers as u32],
        ));
    }
    Ok(dispatches)
}

/// `x` with its last two dimensions swapped, on the GPU.
pub fn run(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(gpu, &transposed_shape(x.shape())?)?;
    gpu.execute(&plan(gpu, x, &out)?)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of every layer is in exactly one block, and each block's windows fit.
    fn check_cover(layers: usize, rows: usize, cols: usize, capacity: usize, max_groups: usize) {
        let bs = blocks(layers, rows, cols, capacity, max_groups);
        let mut seen = vec![0u8; layers * rows * cols];
        for b in &bs {
            assert!(b.rows.div_ceil(TILE) <= max_groups && b.cols.div_ceil(TILE) <= max_groups);
            assert!(b.layers <= max_groups);
            if b.layers > 1 || (b.rows == rows && b.cols == cols) {
                assert!(b.layers * rows * cols <= capacity, "{b:?}");
            } else {
                assert!((b.rows - 1) * cols + b.cols <= capacity, "{b:?}: x window");
                assert!(
                    (b.cols - 1) * rows + b.rows <= capacity,
                    "{b:?}: out window"
                );
            }
            for l in b.layer..b.layer + b.layers {
                for r in b.r0..b.r0 + b.rows {
                    for c in b.c0..b.c0 + b.cols {
                        seen[(l * rows + r) * cols + c] += 1;
                    }
                }
            }
        }
        assert!(
            seen.iter().all(|&s| s == 1),
            "{layers} x {rows} x {cols} in windows of {capacity}: not covered exactly once"
        );
    }

    #[test]
    fn blocks_cover_every_value_once_within_the_windows() {
        check_cover(5, 7, 9, 1000, 65535); // whole layers, several per dispatch
        check_cover(3, 40, 50, 2000, 65535); // one layer per dispatch
        check_cover(2, 300, 70, 2000, 65535); // blocks of rows
        check_cover(1, 70, 300, 2000, 65535); // blocks of columns
        check_cover(1, 1, 5000, 2000, 65535); // one long row
        check_cover(1, 5000, 1, 2000, 65535); // one long column
        check_cover(2, 100, 100, 100_000, 2); // the grid's limit, not the binding's
        check_cover(40, 3, 3, 1000, 4); // layers beyond the grid's limit
    }
}
