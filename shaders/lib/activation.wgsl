// Activation functions shared by kernels (prepended by the host; no entry point).
// An activation is chosen by a code and one parameter. Keep in sync with
// `Activation::code` in src/ops/activation.rs and the CPU reference in src/cpu/activation.rs:
//   0 identity   1 relu        2 leaky_relu (param = slope)   3 gelu (tanh form)
//   4 selu       5 tanh        6 square                       7 abs
//   8 threshold (param = level: 1 where x > level, else 0)
// Every formula stays finite for finite input: tanh is evaluated from exp(-2|x|), never from
// exp(+2|x|), which overflows.
//
// `activate_derivative` gives act'(x) for forward-mode derivatives (Jacobian-vector products),
// with the one-sided choices at the kinks: relu'(0) = 0, leaky_relu'(0) = slope, abs'(0) = 0
// (sign(0)), and threshold' = 0 everywhere (its Dirac mass at the level is dropped).

const SELU_LAMBDA: f32 = 1.0507009873554805;
const SELU_ALPHA: f32 = 1.6732632423543772;
const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)

fn stable_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

fn activate(x: f32, code: u32, param: f32) -> f32 {
    switch code {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(param * x, x, x > 0.0); }
        case 3u: {
            // The clamp keeps t^3 finite; tanh(GELU_C * (t + ...)) is already +-1 in f32 at |t| = 10.
            let t = clamp(x, -10.0, 10.0);
            return 0.5 * x * (1.0 + stable_tanh(GELU_C * (t + 0.044715 * t * t * t)));
        }
        case 4u: { return select(SELU_LAMBDA * SELU_ALPHA * (exp(min(x, 0.0)) - 1.0), SELU_LAMBDA * x, x > 0.0); }
        case 5u: { return stable_tanh(x); }
        case 6u: { return x * x; }
        case 7u: { return abs(x); }
        case 8u: { return select(0.0, 1.0, x > param); }
        default: { return x; }
    }
}

// sech(x)^2 = 1 - tanh(x)^2 = 4e / (1 + e)^2 with e = exp(-2|x|): no cancellation near |x| large.
fn sech2(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

fn activate_derivative(x: f32, code: u32, param: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return select(param, 1.0, x > 0.0); }
        case 3u: {
            // d/dx 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x^3):
            //   0.5 (1 + tanh(u)) + 0.5 x sech(u)^2 c (1 + 3 * 0.044715 x^2).
            // The clamp keeps the cubic finite; past |x| = 10 the second term is 0 in f32.
            let t = clamp(x, -10.0, 10.0);
            let u = GELU_C * (t + 0.044715 * t * t * t);
            return 0.5 * (1.0 + stable_tanh(u)) + 0.5 * t * sech2(u) * GELU_C * (1.0 + 0.134145 * t * t);
        }
        case 4u: { return select(SELU_LAMBDA * SELU_ALPHA * exp(min(x, 0.0)), SELU_LAMBDA, x > 0.0); }
        case 5u: { return sech2(x); }
        case 6u: { return 2.0 * x; }
        case 7u: { return sign(x); }
        case 8u: { return 0.0; }
        default: { return 1.0; }
    }
}
