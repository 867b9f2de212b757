// The scalar store of the matmul kernels that write C as array<f32> (matmul, matmul_texture);
// prepended by the host, no entry point. It uses the kernel's bindings `p` (Params, from
// matmul_params.wgsl), `c` (array<f32>, read_write) and `bias` (array<f32>), which every
// kernel including it declares under these names.

// Finishes and stores the in-range entries of one row of four columns:
// alpha * acc (+ beta * C when FLAG_READ_C; + bias and the activation when FLAG_EPILOGUE).
fn store4(c_base: u32, row: u32, cols: vec4<u32>, acc: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let r = c_base + row * p.ldc;
    for (var i = 0u; i < 4u; i++) {
        let col = cols[i];
        if (col < p.n) {
            var v = p.alpha * acc[i];
            if ((p.flags & FLAG_READ_C) != 0u) {
                v = fma(p.beta, c[r + col], v);
            }
            if ((p.flags & FLAG_EPILOGUE) != 0u) {
                if ((p.flags & FLAG_BIAS) != 0u) {
                    v += bias[p.bias_first + col];
                }
                v = activate(v, p.activation, p.activation_param);
            }
            c[r + col] = v;
        }
    }
}
