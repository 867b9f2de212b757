//! Reference of `shaders/to_f16.wgsl`: f32 to IEEE binary16, saturating at ±65504, rounded to
//! the nearest (ties to even).

/// The largest finite f16.
pub const F16_MAX: f32 = 65504.0;

/// `x` rounded to f16 (saturated to ±[`F16_MAX`] first), as an f32 (exactly representable).
pub fn to_f16(x: f32) -> f32 {
    half::f16::from_f32(x.clamp(-F16_MAX, F16_MAX)).to_f32()
}

/// [`to_f16`] of every value.
pub fn to_f16_slice(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| to_f16(v)).collect()
}

/// Distance between two f16 values in units in the last place (their bit patterns as ordered
/// integers); both must be finite.
pub fn f16_ulps(a: f32, b: f32) -> u32 {
    let key = |v: f32| {
        let bits = i32::from(half::f16::from_f32(v).to_bits());
        if bits & 0x8000 != 0 {
            0x8000 - bits
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}
