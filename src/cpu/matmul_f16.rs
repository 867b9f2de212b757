//! f64 reference of the f16-operand matmul (`ops::matmul_f16`): the product of the operands
//! rounded to f16 ([`crate::cpu::to_f16`]), in f64.

use crate::cpu::matmul::{matmul, Problem};
use crate::cpu::to_f16::to_f16_slice;
use crate::error::Result;

/// `p` with A and B rounded to f16 first (as [`crate::HalfTensor::from_f32`] stores them).
pub fn matmul_f16(p: &Problem<'_>) -> Result<Vec<f64>> {
    let a = to_f16_slice(p.a);
    let b = to_f16_slice(p.b);
    matmul(&Problem { a: &a, b: &b, ..*p })
}
