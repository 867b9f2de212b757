// Linear workgroup index for grids split over x and y because one dimension may hold at most
// max_compute_workgroups_per_dimension workgroups (the host's `Gpu::grid`). Kernels using it
// skip indices at or past their workgroup count. No entry point.

fn linear_workgroup(id: vec3<u32>, count: vec3<u32>) -> u32 {
    return id.x + id.y * count.x;
}
