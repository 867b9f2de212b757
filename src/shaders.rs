//! The registry of WGSL kernels: the only place that `include_str!`s `shaders/`.
//! A kernel's source is its library pieces (`shaders/lib/`) followed by its own file.

use crate::error::{Error, Result};

/// A WGSL compute kernel: one file in `shaders/`, entry point `main`.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// Snake-case name, the same as the file, the host module, the CPU reference and the test.
    pub name: &'static str,
    /// The kernel's own WGSL.
    pub body: &'static str,
    /// Library pieces prepended, in order.
    pub libs: &'static [&'static str],
    /// Compiled without runtime checks (index clamping, loop bounding, division guards):
    /// only for kernels whose every index is clamped in the shader or bounded by parameters
    /// the host derives from the operands it binds, whose loops end, and whose divisors are
    /// constants or parameters the host keeps non-zero. The shader's header says why it
    /// qualifies. Measured on lavapipe at n = 1024: the vec4 matmul 28 % faster, the
    /// texture matmul 9 %.
    pub trusted: bool,
    /// Workgroup memory is zeroed before the kernel runs (WebGPU's default). `false` only for
    /// kernels that write every workgroup value before reading it (the shader's header says
    /// how), which saves the clearing pass.
    pub zero_workgroup_memory: bool,
}

/// `shaders/lib/activation.wgsl`: the activation functions shared by kernels.
pub const LIB_ACTIVATION: &str = include_str!("../shaders/lib/activation.wgsl");
/// `shaders/lib/matmul_params.wgsl`: the uniform parameters of the matmul kernels.
pub const LIB_MATMUL_PARAMS: &str = include_str!("../shaders/lib/matmul_params.wgsl");
/// `shaders/lib/philox.wgsl`: the Philox4x32-10 generator and its distributions.
pub const LIB_PHILOX: &str = include_str!("../shaders/lib/philox.wgsl");
/// `shaders/lib/matmul_store.wgsl`: the scalar epilogue and store of the matmul kernels.
pub const LIB_MATMUL_STORE: &str = include_str!("../shaders/lib/matmul_store.wgsl");
/// `shaders/lib/grid.wgsl`: linear workgroup index over a 2-D dispatch grid.
pub const LIB_GRID: &str = include_str!("../shaders/lib/grid.wgsl");
/// `shaders/lib/row_blocks.wgsl`: the blocks of four values per thread the row kernels walk.
pub const LIB_ROW_BLOCKS: &str = include_str!("../shaders/lib/row_blocks.wgsl");
/// `shaders/lib/tile8.wgsl`: the 8 × 8 register block and its outer-product step.
pub const LIB_TILE8: &str = include_str!("../shaders/lib/tile8.wgsl");
/// `shaders/lib/matmul_tile.wgsl`: the epilogue of the vec4 matmul kernels' 8 × 8 block.
pub const LIB_MATMUL_TILE: &str = include_str!("../shaders/lib/matmul_tile.wgsl");
/// `shaders/lib/operands_f32.wgsl`: f32 operands of the vec4 matmul kernels.
pub const LIB_OPERANDS_F32: &str = include_str!("../shaders/lib/operands_f32.wgsl");
/// `shaders/lib/operands_f16.wgsl`: f16 operands (two per u32) of the vec4 matmul kernels.
pub const LIB_OPERANDS_F16: &str = include_str!("../shaders/lib/operands_f16.wgsl");
/// `shaders/lib/coop_operands.wgsl`: the tensor-core matmuls' operand tiles from the storage
/// buffers and their accumulators' start.
pub const LIB_COOP_OPERANDS: &str = include_str!("../shaders/lib/coop_operands.wgsl");
/// `shaders/lib/coop_staged_store.wgsl`: the staged tensor-core matmul's epilogue, tiles
/// stored into C.
pub const LIB_COOP_STAGED_STORE: &str = include_str!("../shaders/lib/coop_staged_store.wgsl");
/// `shaders/lib/coop_staged_store_paired.wgsl`: the staged tensor-core kernel's fused optical
/// epilogue, |re + i im|² of complex column pairs through workgroup memory.
pub const LIB_COOP_STAGED_STORE_PAIRED: &str =
    include_str!("../shaders/lib/coop_staged_store_paired.wgsl");
/// `shaders/lib/coop_store.wgsl`: the tensor-core matmul's epilogue, tiles stored into C.
pub const LIB_COOP_STORE: &str = include_str!("../shaders/lib/coop_store.wgsl");
/// `shaders/lib/coop_store_paired.wgsl`: the fused optical projection's tensor-core
/// epilogue, |re + i im|² of complex column pairs through workgroup memory.
pub const LIB_COOP_STORE_PAIRED: &str = include_str!("../shaders/lib/coop_store_paired.wgsl");
/// `shaders/lib/attention_params.wgsl`: the uniform parameters of the fused attention kernels.
pub const LIB_ATTENTION_PARAMS: &str = include_str!("../shaders/lib/attention_params.wgsl");
/// `shaders/lib/attention_f16_coop.wgsl`: the f16 attention's scores and P·V on the tensor
/// cores.
pub const LIB_ATTENTION_F16_COOP: &str = include_str!("../shaders/lib/attention_f16_coop.wgsl");
/// `shaders/lib/attention_f16_portable.wgsl`: the same two steps one value per invocation.
pub const LIB_ATTENTION_F16_PORTABLE: &str =
    include_str!("../shaders/lib/attention_f16_portable.wgsl");
/// `shaders/lib/round.wgsl`: exact round-half-up.
pub const LIB_ROUND: &str = include_str!("../shaders/lib/round.wgsl");

/// C = α·op(A)·op(B) + β·C, fused bias and activation.
pub const MATMUL: Kernel = Kernel {
    name: "matmul",
    body: include_str!("../shaders/matmul.wgsl"),
    libs: &[LIB_MATMUL_PARAMS, LIB_ACTIVATION, LIB_MATMUL_STORE],
    trusted: true,
    zero_workgroup_memory: true,
};

/// The matmul of a few rows (m ≤ 8): every row of 4 columns per invocation, k split into
/// slices summed by its second entry point where the columns alone would leave the adapter
/// idle.
pub const MATMUL_SKINNY: Kernel = Kernel {
    name: "matmul_skinny",
    body: include_str!("../shaders/matmul_skinny.wgsl"),
    libs: &[LIB_MATMUL_PARAMS, LIB_ACTIVATION, LIB_MATMUL_STORE],
    trusted: false,
    // The lanes' sums are written by every invocation before the barrier that precedes any
    // read of them.
    zero_workgroup_memory: false,
};

/// The vec4 variant of matmul, for operands whose rows are whole vec4s.
pub const MATMUL_VEC4: Kernel = Kernel {
    name: "matmul_vec4",
    body: include_str!("../shaders/matmul_vec4.wgsl"),
    libs: &[
        LIB_MATMUL_PARAMS,
        LIB_ACTIVATION,
        LIB_TILE8,
        LIB_MATMUL_TILE,
        LIB_OPERANDS_F32,
    ],
    trusted: true,
    zero_workgroup_memory: true,
};

/// `matmul_vec4` reading f16 operands (accumulating in f32): the same file with
/// `shaders/lib/operands_f16.wgsl` as its operand piece.
pub const MATMUL_VEC4_F16: Kernel = Kernel {
    name: "matmul_vec4_f16",
    body: MATMUL_VEC4.body,
    libs: &[
        LIB_MATMUL_PARAMS,
        LIB_ACTIVATION,
        LIB_TILE8,
        LIB_MATMUL_TILE,
        LIB_OPERANDS_F16,
    ],
    trusted: true,
    zero_workgroup_memory: true,
};

/// The workgroup-memory variant of matmul_vec4: 8T × 8T tiles, double-buffered slices.
pub const MATMUL_TILED: Kernel = Kernel {
    name: "matmul_tiled",
    body: include_str!("../shaders/matmul_tiled.wgsl"),
    libs: &[
        LIB_MATMUL_PARAMS,
        LIB_ACTIVATION,
        LIB_TILE8,
        LIB_MATMUL_TILE,
        LIB_OPERANDS_F32,
    ],
    trusted: true,
    zero_workgroup_memory: false,
};

/// `matmul_tiled` reading f16 operands (accumulating in f32).
pub const MATMUL_TILED_F16: Kernel = Kernel {
    name: "matmul_tiled_f16",
    body: MATMUL_TILED.body,
    libs: &[
        LIB_MATMUL_PARAMS,
        LIB_ACTIVATION,
        LIB_TILE8,
        LIB_MATMUL_TILE,
        LIB_OPERANDS_F16,
    ],
    trusted: true,
    zero_workgroup_memory: false,
};

/// The texture variant of matmul for CPU adapters with 8-wide subgroups (lavapipe).
pub const MATMUL_TEXTURE: Kernel = Kernel {
    name: "matmul_texture",
    body: include_str!("../shaders/matmul_texture.wgsl"),
    libs: &[LIB_MATMUL_PARAMS, LIB_ACTIVATION, LIB_MATMUL_STORE],
    trusted: true,
    zero_workgroup_memory: true,
};

/// Copies a matmul operand into the texture layout of `matmul_texture`.
pub const MATMUL_PACK: Kernel = Kernel {
    name: "matmul_pack",
    body: include_str!("../shaders/matmul_pack.wgsl"),
    libs: &[],
    trusted: true,
    zero_workgroup_memory: true,
};

/// Element-wise activations.
pub const ACTIVATION: Kernel = Kernel {
    name: "activation",
    body: include_str!("../shaders/activation.wgsl"),
    libs: &[LIB_ACTIVATION, LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Row softmax with optional scale and causal mask.
pub const SOFTMAX: Kernel = Kernel {
    name: "softmax",
    body: include_str!("../shaders/softmax.wgsl"),
    libs: &[LIB_GRID, LIB_ROW_BLOCKS],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Layer normalization of each row, and its Jacobian-vector product.
pub const LAYERNORM: Kernel = Kernel {
    name: "layernorm",
    body: include_str!("../shaders/layernorm.wgsl"),
    libs: &[LIB_GRID, LIB_ROW_BLOCKS],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Row reductions: sum, sum of squares, max.
pub const REDUCE: Kernel = Kernel {
    name: "reduce",
    body: include_str!("../shaders/reduce.wgsl"),
    libs: &[LIB_GRID, LIB_ROW_BLOCKS],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Seeded random tensors (Philox4x32-10).
pub const RANDOM_FILL: Kernel = Kernel {
    name: "random_fill",
    body: include_str!("../shaders/random_fill.wgsl"),
    libs: &[LIB_PHILOX, LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The matrix-free random projection: R x with R regenerated from Philox.
pub const PROJECT_DENSE: Kernel = Kernel {
    name: "project_dense",
    body: include_str!("../shaders/project_dense.wgsl"),
    libs: &[LIB_PHILOX, LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The non-linearity of a projection kind.
pub const PROJECT_FINISH: Kernel = Kernel {
    name: "project_finish",
    body: include_str!("../shaders/project_finish.wgsl"),
    libs: &[LIB_PHILOX, LIB_GRID, LIB_ROUND],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The structured (Walsh–Hadamard) random projection.
pub const SRHT: Kernel = Kernel {
    name: "srht",
    body: include_str!("../shaders/srht.wgsl"),
    libs: &[LIB_PHILOX, LIB_GRID],
    trusted: false,
    // The local stages write every value of their tile before any is read.
    zero_workgroup_memory: false,
};

/// Input encoders (threshold, bit planes) and the bit-plane decoder.
pub const ENCODE: Kernel = Kernel {
    name: "encode",
    body: include_str!("../shaders/encode.wgsl"),
    libs: &[LIB_GRID, LIB_ROUND],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Fused multi-head scaled-dot-product attention (online softmax, K/V tiles in workgroup
/// memory).
pub const ATTENTION: Kernel = Kernel {
    name: "attention",
    body: include_str!("../shaders/attention.wgsl"),
    libs: &[LIB_ATTENTION_PARAMS, LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Merges the partial outputs of attention over disjoint ranges of keys (split-KV) by their
/// log-sum-exps.
pub const ATTENTION_COMBINE: Kernel = Kernel {
    name: "attention_combine",
    body: include_str!("../shaders/attention_combine.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Fused attention with 8 × 8 register blocks per thread for both products (FlashAttention-2
/// style), for head dimensions 32 and 64 without a key mask.
pub const ATTENTION_BLOCKED: Kernel = Kernel {
    name: "attention_blocked",
    body: include_str!("../shaders/attention_blocked.wgsl"),
    libs: &[LIB_ATTENTION_PARAMS, LIB_TILE8, LIB_GRID],
    trusted: true,
    zero_workgroup_memory: false,
};

/// The fused attention variant for CPU adapters with 8-wide subgroups (lavapipe): K and V
/// through textures, one query row per invocation.
pub const ATTENTION_TEXTURE: Kernel = Kernel {
    name: "attention_texture",
    body: include_str!("../shaders/attention_texture.wgsl"),
    libs: &[],
    trusted: false,
    zero_workgroup_memory: true,
};

/// One graph-attention (GAT) layer over a CSR graph: scores, then per-target online softmax.
pub const GAT: Kernel = Kernel {
    name: "gat",
    body: include_str!("../shaders/gat.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The element-wise steps of the iterative solvers, with per-row coefficients from the GPU.
pub const AXPY: Kernel = Kernel {
    name: "axpy",
    body: include_str!("../shaders/axpy.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The stages of random-feature attention (Performer): head-major copies, feature statistics
/// and finish, causal mask and chunk scan, normalization.
pub const PERFORMER: Kernel = Kernel {
    name: "performer",
    body: include_str!("../shaders/performer.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Softmax cross-entropy per row with its gradient and a correct-prediction flag.
pub const CROSS_ENTROPY: Kernel = Kernel {
    name: "cross_entropy",
    body: include_str!("../shaders/cross_entropy.wgsl"),
    libs: &[LIB_GRID, LIB_ROW_BLOCKS],
    trusted: false,
    zero_workgroup_memory: true,
};

/// One Adam step, element-wise.
pub const ADAM: Kernel = Kernel {
    name: "adam",
    body: include_str!("../shaders/adam.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The measured roofline: peak FMA throughput and copy bandwidth.
pub const ROOFLINE: Kernel = Kernel {
    name: "roofline",
    body: include_str!("../shaders/roofline.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// Every kernel, for validation and for `speckle info`.
pub const ALL: &[Kernel] = &[
    AXPY,
    MATMUL,
    MATMUL_VEC4,
    MATMUL_TILED,
    MATMUL_COOP,
    MATMUL_COOP_STAGED,
    MATMUL_TEXTURE,
    MATMUL_PACK,
    MATMUL_SKINNY,
    ACTIVATION,
    SOFTMAX,
    LAYERNORM,
    REDUCE,
    RANDOM_FILL,
    PROJECT_DENSE,
    PROJECT_FINISH,
    SRHT,
    ENCODE,
    ATTENTION,
    ATTENTION_BLOCKED,
    ATTENTION_COMBINE,
    ATTENTION_TEXTURE,
    ATTENTION_F16,
    PERFORMER,
    GAT,
    CROSS_ENTROPY,
    ADAM,
    ROOFLINE,
    TO_F16,
    TRANSPOSE,
    LOOP_LIMIT,
];

/// f16-operand matmul on the tensor cores (cooperative matrices, 16 × 16 × 16 f16 → f32).
pub const MATMUL_COOP: Kernel = Kernel {
    name: "matmul_coop",
    body: include_str!("../shaders/matmul_coop.wgsl"),
    libs: &[LIB_MATMUL_PARAMS, LIB_COOP_OPERANDS, LIB_COOP_STORE],
    trusted: false,
    zero_workgroup_memory: true,
};

/// f16-operand matmul on the tensor cores with the operands staged through double-buffered
/// workgroup memory (four subgroups per 128 × 128 tile of C). Every workgroup value read is
/// stored before a barrier first (the shader's header), so memory is not zero-initialized.
pub const MATMUL_COOP_STAGED: Kernel = Kernel {
    name: "matmul_coop_staged",
    body: include_str!("../shaders/matmul_coop_staged.wgsl"),
    libs: &[LIB_MATMUL_PARAMS, LIB_COOP_OPERANDS, LIB_COOP_STAGED_STORE],
    trusted: false,
    zero_workgroup_memory: false,
};

/// `matmul_coop_staged` with the paired epilogue: |op(A)·op(B)|² over complex column pairs,
/// the staged tensor-core path of the fused optical projection (`ops::project_optical`).
pub const MATMUL_COOP_STAGED_PAIRED: Kernel = Kernel {
    name: "matmul_coop_staged_paired",
    body: MATMUL_COOP_STAGED.body,
    libs: &[
        LIB_MATMUL_PARAMS,
        LIB_COOP_OPERANDS,
        LIB_COOP_STAGED_STORE_PAIRED,
    ],
    trusted: false,
    zero_workgroup_memory: false,
};

/// `matmul_coop` with the paired epilogue: |op(A)·op(B)|² over complex column pairs, the
/// tensor-core path of the fused optical projection (`ops::project_optical`).
pub const MATMUL_COOP_PAIRED: Kernel = Kernel {
    name: "matmul_coop_paired",
    body: MATMUL_COOP.body,
    libs: &[LIB_MATMUL_PARAMS, LIB_COOP_OPERANDS, LIB_COOP_STORE_PAIRED],
    trusted: false,
    zero_workgroup_memory: false,
};

/// Fused attention with f16 Q, K, V on the tensor cores (cooperative matrices), f32
/// accumulation and output. Every workgroup value read is written first (the shader's header).
pub const ATTENTION_F16: Kernel = Kernel {
    name: "attention_f16",
    body: include_str!("../shaders/attention_f16.wgsl"),
    libs: &[LIB_ATTENTION_PARAMS, LIB_GRID, LIB_ATTENTION_F16_COOP],
    trusted: false,
    zero_workgroup_memory: false,
};

/// [`ATTENTION_F16`] with its products one value per invocation instead of on the tensor
/// cores: any adapter with `SHADER_F16`.
pub const ATTENTION_F16_PORTABLE: Kernel = Kernel {
    name: "attention_f16_portable",
    body: ATTENTION_F16.body,
    libs: &[LIB_ATTENTION_PARAMS, LIB_GRID, LIB_ATTENTION_F16_PORTABLE],
    trusted: false,
    zero_workgroup_memory: false,
};

/// The adapter's loop limit: the iterations one invocation completes (see `ops::loop_limit`).
pub const LOOP_LIMIT: Kernel = Kernel {
    name: "loop_limit",
    body: include_str!("../shaders/loop_limit.wgsl"),
    libs: &[],
    trusted: false,
    zero_workgroup_memory: true,
};

/// f32 → f16 (two per u32 word), saturating.
pub const TO_F16: Kernel = Kernel {
    name: "to_f16",
    body: include_str!("../shaders/to_f16.wgsl"),
    libs: &[LIB_GRID],
    trusted: false,
    zero_workgroup_memory: true,
};

/// The last two dimensions of a tensor swapped, through 16 × 16 tiles in workgroup memory.
/// Every tile value read is stored before the barrier by the invocation the same bounds admit
/// (the shader's header), so memory is not zero-initialized.
pub const TRANSPOSE: Kernel = Kernel {
    name: "transpose",
    body: include_str!("../shaders/transpose.wgsl"),
    libs: &[],
    trusted: false,
    zero_workgroup_memory: false,
};

/// Kernels compiled from another kernel's file with other library pieces: the f16-operand
/// matmuls (the body of `matmul_vec4` or `matmul_tiled` with `shaders/lib/operands_f16.wgsl`)
/// and the paired epilogues of the tensor-core matmuls; the portable build of `attention_f16`.
pub const VARIANTS: &[Kernel] = &[
    MATMUL_VEC4_F16,
    MATMUL_TILED_F16,
    MATMUL_COOP_PAIRED,
    MATMUL_COOP_STAGED_PAIRED,
    ATTENTION_F16_PORTABLE,
];

impl Kernel {
    /// The complete WGSL source: library pieces, then the kernel.
    ///
    /// For kernel development, `SPECKLE_SHADER_DIR=path/to/shaders` makes the kernel's own
    /// file be read from that directory at run time instead of the copy built into the binary.
    ///
    /// WGSL wants `enable` directives before every declaration, so the `enable` lines of the
    /// kernel and of its library pieces are moved in front of everything else (each once).
    pub fn source(&self) -> String {
        let body = match std::env::var_os("SPECKLE_SHADER_DIR") {
            Some(dir) => {
                let path = std::path::Path::new(&dir).join(format!("{}.wgsl", self.name));
                std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    log::warn!(
                        "SPECKLE_SHADER_DIR: cannot read {}: {e}; using the built-in kernel",
                        path.display()
                    );
                    self.body.to_owned()
                })
            }
            None => self.body.to_owned(),
        };
        let is_directive = |line: &str| line.trim_start().starts_with("enable ");
        let pieces: Vec<&str> = self.libs.iter().copied().chain([body.as_str()]).collect();
        let mut directives: Vec<&str> = Vec::new();
        for line in pieces.iter().flat_map(|piece| piece.lines()) {
            if is_directive(line) && !directives.contains(&line.trim()) {
                directives.push(line.trim());
            }
        }
        let mut s = String::new();
        for line in &directives {
            s.push_str(line);
            s.push('\n');
        }
        for piece in &pieces {
            for line in piece.lines() {
                // A moved directive leaves an empty line, so each piece keeps its line count.
                if !is_directive(line) {
                    s.push_str(line);
                }
                s.push('\n');
            }
        }
        s
    }
}

/// Parses and validates `kernel` with naga (no GPU needed). Errors carry naga's diagnostic
/// with the source location.
pub fn validate(kernel: &Kernel) -> Result<naga::Module> {
    let source = kernel.source();
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| Error::Shader {
        name: kernel.name.into(),
        message: e.emit_to_string(&source),
    })?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    validator.validate(&module).map_err(|e| Error::Shader {
        name: kernel.name.into(),
        message: e.emit_to_string(&source),
    })?;
    Ok(module)
}
