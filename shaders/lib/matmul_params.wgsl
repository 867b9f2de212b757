// The uniform parameters and flags shared by the matmul kernels (matmul, matmul_vec4,
// matmul_texture); prepended by the host, no entry point.
// Keep in sync with MatmulParams and the FLAG_ constants in src/ops/matmul.rs.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    a_first: u32,
    b_first: u32,
    c_first: u32,
    bias_first: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    c_batch_stride: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    activation: u32,
    activation_param: f32,
    alpha: f32,
    beta: f32,
    slice_k: u32,  // matmul_skinny: values of k per slice of its split (0 elsewhere)
    slices: u32,   // matmul_skinny: the slices (0 elsewhere)
}

const FLAG_READ_C: u32 = 1u;   // add beta * C (never read C otherwise: it may be uninitialized)
const FLAG_BIAS: u32 = 2u;     // add bias[col] (only with FLAG_EPILOGUE)
const FLAG_EPILOGUE: u32 = 4u; // add the bias and apply the activation (the last k block)
