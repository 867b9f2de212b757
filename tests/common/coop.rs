//! The tensor-core kernels' GPU-free check: naga turns a kernel into SPIR-V in every operand
//! layout, with the cooperative-matrix capability (the naga 30 pitfall around coopStoreT, and
//! cooperative loads or products in control flow that is not workgroup-uniform, would fail it).

use speckle::ops::matmul_f16;
use speckle::{shaders, Gpu, HalfTensor, MatmulOptions};

use super::matmul::check_f16;
use super::{poisoned, random};

/// SPIR-V's OpCapability CooperativeMatrixKHR, as the instruction's two words.
const CAPABILITY_COOPERATIVE_MATRIX: [u32; 2] = [(2 << 16) | 17, 6022];

/// Validates `kernel` (every check, every capability) and writes SPIR-V 1.6 for the four
/// layouts of TRANS_A and TRANS_B with a subgroup size of 32, asserting the capability.
pub fn spirv_in_every_layout(kernel: &shaders::Kernel) {
    for (trans_a, trans_b) in LAYOUTS {
        spirv_with(
            kernel,
            &[
                ("SG", 32.0),
                ("TRANS_A", f64::from(u8::from(trans_a))),
                ("TRANS_B", f64::from(u8::from(trans_b))),
            ],
        );
    }
}

/// Validates `kernel` (every check, every capability) and writes SPIR-V 1.6 with the
/// override `constants`, asserting the cooperative-matrix capability.
pub fn spirv_with(kernel: &shaders::Kernel, constants: &[(&str, f64)]) {
    let module = shaders::validate(kernel).expect("valid WGSL");
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    let info = validator.validate(&module).unwrap();
    let mut overrides = naga::back::PipelineConstants::default();
    for &(name, value) in constants {
        overrides.insert(name.into(), value);
    }
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, "main")),
        &overrides,
    )
    .unwrap_or_else(|e| panic!("{} with {constants:?}: overrides: {e}", kernel.name));
    let options = naga::back::spv::Options {
        lang_version: (1, 6),
        ..Default::default()
    };
    let pipeline = naga::back::spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: "main".into(),
    };
    let words = naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
        .unwrap_or_else(|e| panic!("{}: SPIR-V with {constants:?}: {e}", kernel.name));
    assert!(
        words.windows(2).any(|w| w == CAPABILITY_COOPERATIVE_MATRIX),
        "{} with {constants:?}: no CooperativeMatrixKHR capability",
        kernel.name
    );
}

/// For each operand layout: the f16 path, with the options `options(trans_a, trans_b)`, splits
/// the m × n × k product over more than one dispatch on `gpu` (a device with small bindings)
/// and matches the reference within 4 times the matmul tolerance.
pub fn check_split_in_every_layout(
    gpu: &Gpu,
    (m, n, k): (usize, usize, usize),
    options: impl Fn(bool, bool) -> MatmulOptions<'static>,
    seed: u64,
) {
    for (trans_a, trans_b) in LAYOUTS {
        let o = options(trans_a, trans_b);
        let (a_shape, b_shape) = stored_shapes((m, n, k), trans_a, trans_b);
        let a = HalfTensor::from_f32(gpu, &random(m * k, seed), &a_shape).unwrap();
        let b = HalfTensor::from_f32(gpu, &random(n * k, seed + 1), &b_shape).unwrap();
        let c = poisoned(gpu, &[m, n]);
        let plan = matmul_f16::plan(gpu, &a, &b, &c, &o).unwrap();
        assert!(
            plan.len() > 1,
            "ta={trans_a} tb={trans_b}: the split path must be taken ({} dispatches)",
            plan.len()
        );
        check_f16(gpu, &a_shape, &b_shape, &o, seed + 2, 4.0);
    }
}

/// The stored shapes of A ([m, k], or [k, m] transposed) and B ([k, n], or [n, k]) of an
/// m × n × k product.
pub fn stored_shapes(
    (m, n, k): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
) -> ([usize; 2], [usize; 2]) {
    let a = if trans_a { [k, m] } else { [m, k] };
    let b = if trans_b { [n, k] } else { [k, n] };
    (a, b)
}

/// The four layouts of (trans_a, trans_b).
pub const LAYOUTS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];
