//! The tensor-core matmul with its operands staged through workgroup memory
//! (`shaders/matmul_coop_staged.wgsl`): 128 × 128 tiles of C per workgroup of four subgroups,
//! slabs of 128 × 32 of op(A) and 32 × 128 of op(B) fetched once per workgroup into
//! double-buffered workgroup memory, each subgroup's 64 × 64 quarter from 16 × 16 × 16
//! cooperative-matrix products with f32 accumulators.
//!
//! It is the f16-operand matmul's configuration [`LAYOUT`] (`2x2-coop`: subgroups along the
//! columns × rows of C), chosen by `speckle tune --ops matmul_f16` or named in the options;
//! `1x1-coop`, [`crate::ops::matmul_coop`] with one subgroup per workgroup, stays the default
//! until a tuning run on the adapter measures this one faster. Shapes it does not take
//! ([`eligible`]) run `matmul_coop`.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::ops::matmul::{MatmulConfig, MatmulDims, MatmulKernel, MatmulOptions};
use crate::ops::matmul_coop;
use crate::shaders;
use crate::tensor::{HalfTensor, Tensor};

/// Rows and columns of C per workgroup; m and n must be multiples of it.
pub const TILE: u32 = 128;
/// k per staged slab; k must be a multiple of it.
pub const SLAB: u32 = 32;
/// The configuration that selects this kernel: 2 × 2 subgroups (`2x2-coop`).
pub const LAYOUT: MatmulConfig = MatmulConfig {
    wg_x: 2,
    wg_y: 2,
    kernel: MatmulKernel::Coop,
};

/// Workgroup memory the kernel declares: two buffers of each slab, rows padded by 8 halves.
pub const WORKGROUP_BYTES: u32 = 2 * 2 * (TILE * (SLAB + 8) + SLAB * (TILE + 8));
/// Workgroup memory of the paired variant (`matmul_coop_staged_paired`): also a 16 × 16 f32
/// tile for each of the four subgroups.
pub const WORKGROUP_BYTES_PAIRED: u32 = WORKGROUP_BYTES + 4 * 16 * 16 * 4;

/// The kernel's name in reports and configuration strings (the f16 matmul's variant, the
/// optical projection's kernel).
pub const NAME: &str = "coop-staged";

/// True when `cfg` asks for this kernel.
pub fn is_layout(cfg: &MatmulConfig) -> bool {
    cfg.kernel == MatmulKernel::Coop && (cfg.wg_x, cfg.wg_y) == (LAYOUT.wg_x, LAYOUT.wg_y)
}

/// Why the kernel cannot run this product on `gpu`, or `None` when it can: it needs what
/// [`matmul_coop::eligible`] needs, what [`device_ineligibility`] checks, and m and n in
/// whole 128-tiles, k in whole 32-slabs.
pub fn ineligibility(gpu: &Gpu, d: &MatmulDims, o: &MatmulOptions<'_>) -> Option<String> {
    if let Some(why) = device_ineligibility(gpu, WORKGROUP_BYTES) {
        return Some(why);
    }
    if !matmul_coop::eligible(gpu, d, o) {
        return Some("not a plain product in multiples of 16".into());
    }
    let (tile, slab) = (TILE as usize, SLAB as usize);
    if !d.m.is_multiple_of(tile) || !d.n.is_multiple_of(tile) || !d.k.is_multiple_of(slab) {
        return Some(format!(
            "m = {} and n = {} must be multiples of {tile} and k = {} of {slab}",
            d.m, d.n, d.k
        ));
    }
    None
}

/// Why `gpu` cannot run the kernel (or its variant declaring `workgroup_bytes`) at all, or
/// `None`: it needs 16 × 16 × 16 f16 → f32 cooperative matrices with a fixed subgroup size
/// ([`matmul_coop::subgroup_size`]), subgroups (for `subgroup_id`), a workgroup of four
/// subgroups and its workgroup memory.
pub fn device_ineligibility(gpu: &Gpu, workgroup_bytes: u32) -> Option<String> {
    let Some(sg) = matmul_coop::subgroup_size(gpu) else {
        return Some("the adapter has no 16x16x16 f16 -> f32 cooperative matrices".into());
    };
    if !gpu.features().contains(wgpu::Features::SUBGROUP) {
        return Some("the device has no subgroups".into());
    }
    let l = gpu.limits();
    let threads = 4 * sg;
    if threads > l.max_compute_workgroup_size_x || threads > l.max_compute_invocations_per_workgroup
    {
        return Some(format!(
            "a workgroup of four subgroups ({threads} invocations) exceeds the adapter's limits"
        ));
    }
    if workgroup_bytes > l.max_compute_workgroup_storage_size {
        return Some(format!(
            "it needs {workgroup_bytes} bytes of workgroup memory, the adapter allows {}",
            l.max_compute_workgroup_storage_size
        ));
    }
    None
}

/// True when [`ineligibility`] finds nothing.
pub fn eligible(gpu: &Gpu, d: &MatmulDims, o: &MatmulOptions<'_>) -> bool {
    ineligibility(gpu, d, o).is_none()
}

/// Plans the product; the caller has checked the shapes, and this checks [`eligible`].
pub(crate) fn plan(
    gpu: &Gpu,
    a: &HalfTensor,
    b: &HalfTensor,
    c: &Tensor,
    o: &MatmulOptions<'_>,
    d: &MatmulDims,
) -> Result<Vec<Dispatch>> {
    if let Some(why) = ineligibility(gpu, d, o) {
        return Err(Error::invalid(format!(
            "matmul_coop_staged ({LAYOUT}) cannot run {} x {} x {}: {why}",
            d.m, d.n, d.k
        )));
    }
    let sg = matmul_coop::subgroup_size(gpu).expect("checked by ineligibility");
    // Blocks in multiples of the tile keep every block of m and n whole 128-tiles, and every
    // block of k (the last one included, as k is a multiple of 32) whole slabs.
    let kernel = &shaders::MATMUL_COOP_STAGED;
    matmul_coop::plan_tiles(gpu, a, b, c, o, d, kernel, sg, TILE, TILE as usize)
}
