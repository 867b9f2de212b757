//! The matmul of a few rows (`shaders/matmul_skinny.wgsl`): C = act(α·A·op(B) + β·C + bias)
//! for m ≤ [`MAX_ROWS`], A untransposed, the shapes whole vec4s along k (and along n where B
//! is untransposed). Such products are bound by B's bytes: every invocation computes all m
//! rows of 4 columns, reading each value of B once, and k is split into slices summed by a
//! second pass where the columns alone would leave the adapter idle.
//!
//! With B transposed a configuration may give each group of 4 columns several lanes along k
//! (`WGXxLANES-skinny`, LANES > 1): a group then reads 16 · LANES consecutive bytes of each of
//! its rows of B per step instead of 16, and adds its lanes' sums through workgroup memory.
//!
//! [`crate::ops::matmul::plan`] runs it where the configuration is a `skinny` one: the
//! built-in configuration of the products it suits ([`preferred`]), or one given or tuned.

use crate::error::Result;
use crate::gpu::{Dispatch, Gpu};
use crate::ops::matmul::{
    max_k_per_dispatch, MatmulConfig, MatmulDims, MatmulKernel, MatmulOptions, MatmulParams,
};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};

/// The most rows of C the kernel computes (its rows are unrolled).
pub const MAX_ROWS: usize = 8;

/// The built-in configuration: 64 threads per workgroup, each computing 4 columns (one lane).
pub const CONFIG: MatmulConfig = MatmulConfig {
    wg_x: 64,
    wg_y: 1,
    kernel: MatmulKernel::Skinny,
};

/// Workgroups a product should give the adapter: the columns' workgroups times the slices of
/// k reach this where k allows. A CPU adapter runs a few workgroups per core at once; a GPU
/// needs thousands of threads in flight per multiprocessor.
fn target_workgroups(gpu: &Gpu) -> usize {
    if gpu.is_cpu() {
        16
    } else {
        1024
    }
}

/// Values of k a slice covers at least, so that its partial sums (m ≤ 8 rows of n values,
/// written and read back once) stay a small part of its share of B (`MIN_SLICE_K` rows of n
/// values, or n rows of as many).
const MIN_SLICE_K: usize = 256;

/// The split of k into `slices` slices of `slice_k` values (a multiple of 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    pub(crate) slice_k: usize,
    pub(crate) slices: usize,
}

/// The split of `d`'s k for `gpu` with workgroups of `wg` threads: enough slices for
/// [`target_workgroups`] where k has at least [`MIN_SLICE_K`] values per slice, and slices
/// short enough for the loop limit.
pub(crate) fn split(gpu: &Gpu, d: &MatmulDims, wg: usize) -> Result<Split> {
    let groups = d.n.div_ceil(4 * wg) * d.batch;
    let wanted = target_workgroups(gpu)
        .div_ceil(groups)
        .min(d.k / MIN_SLICE_K)
        .max(1);
    let longest = max_k_per_dispatch(gpu)?;
    let slices = wanted.max(d.k.div_ceil(longest));
    let slice_k = d.k.div_ceil(slices).next_multiple_of(4);
    Ok(Split {
        slice_k,
        slices: d.k.div_ceil(slice_k),
    })
}

/// True where the skinny kernel is the built-in choice for a product of these dimensions:
/// at most [`MAX_ROWS`] rows, A untransposed, k a multiple of 4, and B transposed, or
/// untransposed with n a multiple of 4 on GPUs.
///
/// Not untransposed B on CPU adapters: there an invocation walks down B's columns, one row
/// (4 KiB at n = 1024) apart per step, which defeats the CPU's prefetchers. Measured on
/// lavapipe, 3 × 16384 times 16384 × 1024: 44–59 ms against 33–36 for the texture kernel,
/// while B transposed (each invocation streaming its own rows) took 13–20 ms against 18–31
/// for the best storage kernel (BENCHMARKS.md).
pub fn preferred(gpu: &Gpu, d: &MatmulDims, trans_a: bool, trans_b: bool) -> bool {
    takes_shapes(d, trans_a, trans_b) && (trans_b || !gpu.is_cpu())
}

/// The shapes the kernel computes: at most [`MAX_ROWS`] rows, A untransposed, k a multiple of
/// 4, and n too where B is untransposed.
fn takes_shapes(d: &MatmulDims, trans_a: bool, trans_b: bool) -> bool {
    d.m <= MAX_ROWS && !trans_a && d.k.is_multiple_of(4) && (trans_b || d.n.is_multiple_of(4))
}

/// Bytes of workgroup memory `cfg` needs for `rows` rows of C: the lanes' sums, `rows` rows
/// of one padded vec4 per thread and one more, where the groups have several lanes.
pub fn workgroup_bytes(cfg: &MatmulConfig, rows: usize) -> usize {
    sums_len(cfg, rows) * 16
}

/// The length in vec4s of the lanes' sums (the shader's SUMS; 1 with one lane, which then
/// leaves the array unused).
fn sums_len(cfg: &MatmulConfig, rows: usize) -> usize {
    if cfg.wg_y > 1 {
        rows * (cfg.wg_x * cfg.wg_y + 1) as usize
    } else {
        1
    }
}

/// True when the skinny kernel with `cfg`'s workgroup can compute this product: at most
/// [`MAX_ROWS`] rows, A untransposed, k a multiple of 4 (n too where B is untransposed), B
/// transposed where the groups have several lanes and their sums within the adapter's
/// workgroup memory, A, B and C each within one binding, the slices' sums too, and the grid
/// within the dispatch limits.
pub(crate) fn eligible(
    gpu: &Gpu,
    d: &MatmulDims,
    o: &MatmulOptions<'_>,
    (a, b, c): (&Tensor, &Tensor, &Tensor),
    cfg: &MatmulConfig,
) -> Result<bool> {
    if !takes_shapes(d, o.trans_a, o.trans_b) {
        return Ok(false);
    }
    let l = gpu.limits();
    if cfg.wg_y > 1
        && (!o.trans_b || workgroup_bytes(cfg, d.m) > l.max_compute_workgroup_storage_size as usize)
    {
        return Ok(false);
    }
    let wg = cfg.wg_x as usize;
    let capacity = window_capacity(gpu);
    let s = split(gpu, d, wg)?;
    let groups = l.max_compute_workgroups_per_dimension as usize;
    Ok(a.len() <= capacity
        && b.len() <= capacity
        && c.len() <= capacity
        && s.slices * c.len() <= capacity
        && d.n.div_ceil(4 * wg) <= groups
        && s.slices <= groups
        && d.batch <= groups)
}

/// Plans the product with `cfg`'s workgroup (the caller checked the problem and
/// [`eligible`]): one dispatch, or with several slices of k one into a scratch buffer of
/// their sums and one adding them.
pub(crate) fn plan(
    gpu: &Gpu,
    d: &MatmulDims,
    o: &MatmulOptions<'_>,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    cfg: &MatmulConfig,
) -> Result<Vec<Dispatch>> {
    let wg = cfg.wg_x as usize;
    let s = split(gpu, d, wg)?;
    let mut constants = MatmulKernel::Skinny.constants(cfg, o.trans_a, o.trans_b);
    constants.push(("ROWS", d.m as f64));
    constants.push(("SUMS", sums_len(cfg, d.m) as f64));
    let main = gpu.pipeline(&shaders::MATMUL_SKINNY, &constants)?;
    let aw = a.window(gpu, 0, a.len());
    let bw = b.window(gpu, 0, b.len());
    let cw = c.window(gpu, 0, c.len());
    let bias_window = o.bias.map(|t| t.window(gpu, 0, d.n));
    let params = MatmulParams {
        a_first: aw.first,
        b_first: bw.first,
        a_batch_stride: d.a_batch_stride as u32,
        b_batch_stride: d.b_batch_stride as u32,
        lda: d.k as u32,
        ldb: if o.trans_b { d.k } else { d.n } as u32,
        slice_k: s.slice_k as u32,
        slices: s.slices as u32,
        ..MatmulParams::whole(d, o, cw.first, bias_window.as_ref().map(|w| w.first))
    };
    let groups_x = d.n.div_ceil(4 * wg) as u32;
    let bias = Window::or_placeholder(bias_window.as_ref(), gpu);
    if s.slices == 1 {
        let uniform = gpu.uniform("speckle.matmul_skinny.params", &params);
        let bind_group = gpu.bind_group(
            &main,
            &[
                uniform.as_entire_binding(),
                aw.resource(),
                bw.resource(),
                bias,
                cw.resource(),
            ],
        );
        return Ok(vec![Dispatch::kernel(
            main,
            bind_group,
            [groups_x, 1, d.batch as u32],
        )]);
    }
    // The slices' sums, [slices, batch, m, n], bound from their start.
    let parts = Tensor::empty(gpu, &[s.slices * c.len()])?;
    let into_parts = gpu.uniform(
        "speckle.matmul_skinny.params",
        &MatmulParams {
            c_first: 0,
            ..params
        },
    );
    let placeholder = gpu.placeholder().as_entire_binding();
    let slices = gpu.bind_group(
        &main,
        &[
            into_parts.as_entire_binding(),
            aw.resource(),
            bw.resource(),
            placeholder,
            parts.window(gpu, 0, parts.len()).resource(),
        ],
    );
    // The combining pass has one lane per group of 4 columns.
    let threads = cfg.wg_x * cfg.wg_y;
    let combine_groups = d.n.div_ceil(4 * threads as usize) as u32;
    let combine = gpu.pipeline_entry(&shaders::MATMUL_SKINNY, "combine", &constants)?;
    let uniform = gpu.uniform("speckle.matmul_skinny.params", &params);
    // The combining pass binds 0, 1, 3 and 4 (not B).
    let sums = gpu.bind_group_at(
        &combine,
        &[
            (0, uniform.as_entire_binding()),
            (1, parts.window(gpu, 0, parts.len()).resource()),
            (3, bias),
            (4, cw.resource()),
        ],
    );
    Ok(vec![
        Dispatch::kernel(main, slices, [groups_x, s.slices as u32, d.batch as u32]),
        Dispatch::kernel(combine, sums, [combine_groups, d.m as u32, d.batch as u32]),
    ])
}
