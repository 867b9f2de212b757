//! Every WGSL kernel parses and validates with naga (no GPU needed), opens with its contract,
//! is registered, and its `Params` struct has the size of the host struct that fills it.

use speckle::ops::{
    activation, adam, attention_combine, attention_texture, axpy, cross_entropy, encode, gat,
    layernorm, matmul, matmul_texture, project_dense, project_finish, random_fill, reduce,
    roofline, softmax, srht,
};
use speckle::shaders::{self, Kernel};

#[test]
fn every_kernel_validates_with_naga() {
    for kernel in shaders::ALL.iter().chain(shaders::VARIANTS) {
        if let Err(e) = shaders::validate(kernel) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_shader_file_is_registered_and_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    files.sort();
    let mut registered: Vec<String> = shaders::ALL
        .iter()
        .map(|k| format!("{}.wgsl", k.name))
        .collect();
    registered.sort();
    assert_eq!(
        files, registered,
        "shaders/*.wgsl and shaders::ALL must list the same kernels"
    );
    for variant in shaders::VARIANTS {
        assert!(
            shaders::ALL.iter().any(|k| k.body == variant.body),
            "variant {} must compile a registered kernel's file",
            variant.name
        );
    }
    for kernel in shaders::ALL {
        assert!(
            kernel.body.starts_with(&format!("// {}:", kernel.name)),
            "shaders/{}.wgsl must open with `// {}: <what it computes>`",
            kernel.name,
            kernel.name
        );
        for word in ["Bindings", "Dispatch", "Overrides", "Loops"] {
            assert!(
                kernel.body.contains(word),
                "shaders/{}.wgsl header must state its {word}",
                kernel.name
            );
        }
    }
}

/// Size in bytes of the WGSL struct `Params` of `kernel`, as naga lays it out.
fn wgsl_params_size(kernel: &Kernel) -> u32 {
    let module = shaders::validate(kernel).expect("kernel validates");
    let size = module
        .types
        .iter()
        .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
            (Some(name), naga::TypeInner::Struct { span, .. }) if name == "Params" => Some(*span),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} has no struct Params", kernel.name));
    size
}

#[test]
fn params_structs_match_wgsl_layouts() {
    let cases: [(&Kernel, usize); 28] = [
        (&shaders::AXPY, size_of::<axpy::AxpyParams>()),
        (
            &shaders::ATTENTION_COMBINE,
            size_of::<attention_combine::AttentionCombineParams>(),
        ),
        (
            &shaders::PERFORMER,
            size_of::<speckle::ops::performer::PerformerParams>(),
        ),
        (
            &shaders::ATTENTION_TEXTURE,
            size_of::<attention_texture::AttentionTextureParams>(),
        ),
        (&shaders::SRHT, size_of::<srht::SrhtParams>()),
        (&shaders::ENCODE, size_of::<encode::EncodeParams>()),
        (
            &shaders::PROJECT_DENSE,
            size_of::<project_dense::ProjectDenseParams>(),
        ),
        (
            &shaders::PROJECT_FINISH,
            size_of::<project_finish::ProjectFinishParams>(),
        ),
        (
            &shaders::RANDOM_FILL,
            size_of::<random_fill::RandomFillParams>(),
        ),
        (&shaders::MATMUL, size_of::<matmul::MatmulParams>()),
        (&shaders::MATMUL_VEC4, size_of::<matmul::MatmulParams>()),
        (&shaders::MATMUL_VEC4_F16, size_of::<matmul::MatmulParams>()),
        (&shaders::MATMUL_TILED, size_of::<matmul::MatmulParams>()),
        (
            &shaders::MATMUL_TILED_F16,
            size_of::<matmul::MatmulParams>(),
        ),
        (
            &shaders::TO_F16,
            size_of::<speckle::ops::to_f16::ToF16Params>(),
        ),
        (
            &shaders::TRANSPOSE,
            size_of::<speckle::ops::transpose::TransposeParams>(),
        ),
        (&shaders::MATMUL_TEXTURE, size_of::<matmul::MatmulParams>()),
        (&shaders::MATMUL_SKINNY, size_of::<matmul::MatmulParams>()),
        (
            &shaders::MATMUL_PACK,
            size_of::<matmul_texture::PackParams>(),
        ),
        (
            &shaders::ACTIVATION,
            size_of::<activation::ActivationParams>(),
        ),
        (&shaders::SOFTMAX, size_of::<softmax::SoftmaxParams>()),
        (&shaders::REDUCE, size_of::<reduce::ReduceParams>()),
        (&shaders::ROOFLINE, size_of::<roofline::RooflineParams>()),
        (
            &shaders::LOOP_LIMIT,
            size_of::<speckle::ops::loop_limit::LoopLimitParams>(),
        ),
        (&shaders::LAYERNORM, size_of::<layernorm::LayerNormParams>()),
        (&shaders::GAT, size_of::<gat::GatParams>()),
        (&shaders::ADAM, size_of::<adam::AdamParams>()),
        (
            &shaders::CROSS_ENTROPY,
            size_of::<cross_entropy::CrossEntropyParams>(),
        ),
    ];
    for (kernel, host) in cases {
        assert_eq!(
            wgsl_params_size(kernel) as usize,
            host,
            "{}: WGSL Params and the host struct differ in size",
            kernel.name
        );
        assert_eq!(
            host % 16,
            0,
            "{}: uniform structs are padded to 16 bytes",
            kernel.name
        );
    }
}

#[test]
fn a_broken_kernel_reports_its_name_and_location() {
    let broken = Kernel {
        name: "broken",
        body: "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
        libs: &[],
        trusted: false,
        zero_workgroup_memory: true,
    };
    let message = shaders::validate(&broken)
        .expect_err("type error must fail")
        .to_string();
    assert!(message.contains("broken"), "{message}");
    assert!(
        message.contains("wgsl:1"),
        "message should point at the line: {message}"
    );
}
