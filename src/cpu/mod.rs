//! f64 references of the GPU kernels, one module per kernel with the same name. They take the
//! same f32 inputs as the GPU and compute in f64, so that tests measure the GPU's error alone.

pub mod activation;
pub mod adam;
pub mod attention;
pub mod attention_combine;
pub mod attention_f16;
pub mod axpy;
pub mod cross_entropy;
pub mod encode;
pub mod gat;
pub mod layernorm;
pub mod loop_limit;
pub mod matmul;
pub mod matmul_f16;
pub mod multi_head_attention;
pub mod performer;
pub mod philox;
pub mod project_dense;
pub mod project_finish;
pub mod project_optical;
pub mod random_fill;
pub mod reduce;
pub mod roofline;
pub mod softmax;
pub mod srht;
pub mod to_f16;
pub mod transpose;

/// Relative error ‖out − reference‖₂ / ‖reference‖₂ (‖out‖₂ when the reference is zero).
/// Any NaN or infinity in `out` gives infinity, so a non-finite result never passes.
pub fn relative_error(out: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "relative_error: lengths differ");
    if out.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&o, &r) in out.iter().zip(reference) {
        diff += (f64::from(o) - r).powi(2);
        norm += r * r;
    }
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}
