//! f64 reference of `shaders/activation.wgsl` (and the matmul epilogue).

use crate::ops::activation::Activation;

const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;

/// `act(x)` in f64.
pub fn apply(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu { slope } => {
            if x > 0.0 {
                x
            } else {
                f64::from(slope) * x
            }
        }
        Activation::Gelu => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::Selu => {
            if x > 0.0 {
                SELU_LAMBDA * x
            } else {
                SELU_LAMBDA * SELU_ALPHA * x.exp_m1()
            }
        }
        Activation::Tanh => x.tanh(),
        Activation::Square => x * x,
        Activation::Abs => x.abs(),
        Activation::Threshold { level } => {
            if x > f64::from(level) {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// `act` applied to every element.
pub fn activation(act: Activation, x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| apply(act, f64::from(v))).collect()
}
