//! f64 reference of `shaders/activation.wgsl` (and the matmul epilogue): the activations and
//! their derivatives (the Jacobian-vector product mode).

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

/// `act'(x)` in f64, with the kernel's choices at the kinks: relu'(0) = 0,
/// leaky_relu'(0) = slope, abs'(0) = 0, threshold' = 0.
pub fn derivative(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu { slope } => {
            if x > 0.0 {
                1.0
            } else {
                f64::from(slope)
            }
        }
        Activation::Gelu => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let th = (c * (x + 0.044715 * x * x * x)).tanh();
            0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * x * x)
        }
        Activation::Selu => {
            if x > 0.0 {
                SELU_LAMBDA
            } else {
                SELU_LAMBDA * SELU_ALPHA * x.exp()
            }
        }
        Activation::Tanh => {
            let c = x.cosh();
            if c.is_finite() {
                1.0 / (c * c)
            } else {
                0.0
            }
        }
        Activation::Square => 2.0 * x,
        Activation::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Activation::Threshold { .. } => 0.0,
    }
}

/// The Jacobian-vector product `act'(z) ⊙ t`, element by element.
pub fn activation_jvp(act: Activation, z: &[f32], t: &[f32]) -> Vec<f64> {
    assert_eq!(z.len(), t.len(), "activation_jvp: z and t differ in length");
    z.iter()
        .zip(t)
        .map(|(&z, &t)| derivative(act, f64::from(z)) * f64::from(t))
        .collect()
}
