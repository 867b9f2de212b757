//! Tuning fused attention: the texture variant where it is eligible, and the tiled variants
//! over threads per query row, workgroup sizes and keys per tile, each checked against the
//! f64 reference on sampled rows before its time counts.

use std::str::FromStr;

use crate::bench::attention::AttentionSample;
use crate::bench::random_vec;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::attention::{
    self, shape_class, AttentionChoice, AttentionConfig, AttentionDims, AttentionOptions,
    AttentionVariant, TUNE_OP,
};
use crate::ops::attention_blocked::{BlockedConfig, THREADS_Y};
use crate::tensor::Tensor;
use crate::tune::{
    positive_sizes, run_candidate, CandidateResult, ClassResult, Contest, TuneOptions, TunedEntry,
};

/// An f32 attention output within this relative error of the f64 reference is correct: the
/// kernels measure about 1e-6 (softmax and two dot products of length N and D in f32).
const TOLERANCE: f64 = 1e-4;

/// One attention problem to tune on: B, H, Nq, Nk, D and the causal mask. Decoding steps (a
/// few queries against many keys) are classes of their own, as Nq and Nk are sizes of the
/// class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Batches.
    pub batch: usize,
    /// Heads.
    pub heads: usize,
    /// Queries per sequence.
    pub nq: usize,
    /// Keys (and values) per sequence.
    pub nk: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Top-left causal mask.
    pub causal: bool,
}

impl FromStr for AttentionShape {
    type Err = Error;

    /// `B,H,N,D` (Nq = Nk = N) or `B,H,Nq,Nk,D`, either followed by `,causal`.
    fn from_str(s: &str) -> Result<AttentionShape> {
        let bad = || {
            Error::invalid(format!(
                "attention shape {s:?} is not B,H,N,D or B,H,Nq,Nk,D, optionally followed by \
                 ,causal, with sizes >= 1 (e.g. 8,16,2048,64 or 1,16,1,16384,64)"
            ))
        };
        let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let causal = parts.last() == Some(&"causal");
        if causal {
            parts.pop();
        }
        let v: Vec<usize> = positive_sizes(&parts, bad)?;
        let (nq, nk, head_dim) = match v[..] {
            [_, _, n, d] => (n, n, d),
            [_, _, nq, nk, d] => (nq, nk, d),
            _ => return Err(bad()),
        };
        Ok(AttentionShape {
            batch: v[0],
            heads: v[1],
            nq,
            nk,
            head_dim,
            causal,
        })
    }
}

impl std::fmt::Display for AttentionShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.batch, self.heads, self.nq)?;
        if self.nk != self.nq {
            write!(f, ",{}", self.nk)?;
        }
        write!(
            f,
            ",{}{}",
            self.head_dim,
            if self.causal { ",causal" } else { "" }
        )
    }
}

/// The problems `speckle tune` measures by default: D = 64 with and without the causal mask,
/// D = 128, and decoding steps (those of `speckle bench all`); PyTorch-benchmark sizes on
/// GPUs, small ones on CPU adapters.
pub fn default_shapes(gpu: &Gpu) -> Vec<AttentionShape> {
    let shape = |batch, heads, n, head_dim, causal| AttentionShape {
        batch,
        heads,
        nq: n,
        nk: n,
        head_dim,
        causal,
    };
    let decode = |batch, heads, nq, nk, head_dim| AttentionShape {
        nq,
        nk,
        ..shape(batch, heads, 1, head_dim, false)
    };
    if gpu.is_cpu() {
        vec![
            shape(1, 4, 256, 64, false),
            shape(1, 4, 256, 64, true),
            decode(1, 4, 8, 40_000, 64),
        ]
    } else {
        vec![
            shape(8, 16, 2048, 64, false),
            shape(8, 16, 2048, 64, true),
            shape(8, 16, 1024, 128, false),
            decode(1, 16, 1, 16_384, 64),
            decode(8, 16, 1, 4096, 64),
        ]
    }
}

/// The configurations worth trying for head dimension `head_dim` on `gpu`: what `Auto` runs
/// first (the texture variant on CPU adapters, the register-blocked kernel on GPUs where D is
/// 32 or 64), then every register-blocked TY and every tiled configuration the adapter allows
/// (threads per query from the fewest that hold a head to 32, workgroups of 64 to 512, 8 to 64
/// keys per tile). CPU adapters, where the tiled variants are an order of magnitude slower
/// than the texture one, try only the built-in configuration of each kernel.
pub fn candidates(gpu: &Gpu, head_dim: usize) -> Vec<AttentionChoice> {
    let mut all = Vec::new();
    if gpu.is_cpu() {
        all.push(AttentionChoice::Texture);
    }
    if let Ok(c) = BlockedConfig::for_gpu(gpu, head_dim) {
        all.push(AttentionChoice::Blocked(c));
    }
    if !gpu.is_cpu() {
        for threads_y in THREADS_Y {
            let c = BlockedConfig {
                head_dim: u32::try_from(head_dim).unwrap_or(u32::MAX),
                threads_y,
            };
            if c.check(gpu).is_ok() {
                all.push(AttentionChoice::Blocked(c));
            }
        }
    }
    for variant in [AttentionVariant::Subgroup, AttentionVariant::Workgroup] {
        if let Ok(c) = AttentionConfig::for_gpu(gpu, head_dim, variant) {
            all.push(AttentionChoice::Tiled(c));
        }
    }
    if !gpu.is_cpu() {
        for variant in [AttentionVariant::Subgroup, AttentionVariant::Workgroup] {
            for threads in [1, 2, 4, 8, 16, 32] {
                for workgroup in [64, 128, 256, 512] {
                    for keys in [8, 16, 32, 64] {
                        if let Ok(c) = AttentionConfig::custom(
                            gpu, head_dim, variant, threads, workgroup, keys,
                        ) {
                            all.push(AttentionChoice::Tiled(c));
                        }
                    }
                }
            }
        }
    }
    let mut unique: Vec<AttentionChoice> = Vec::new();
    for c in all {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

/// Tunes each of `shapes` (see [`crate::tune::matmul::tune`] for the contract).
pub fn tune(
    gpu: &Gpu,
    shapes: &[AttentionShape],
    options: &TuneOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(ClassResult, Option<TunedEntry>)>> {
    let mut out = Vec::new();
    for shape in shapes {
        let row = shape.heads * shape.head_dim;
        let len = shape.batch * shape.nq * row;
        let kv_len = shape.batch * shape.nk * row;
        let (q_host, k_host, v_host) = (
            random_vec(len, 21),
            random_vec(kv_len, 22),
            random_vec(kv_len, 23),
        );
        let q_dims = [shape.batch, shape.nq, row];
        let kv_dims = [shape.batch, shape.nk, row];
        let q = Tensor::from_slice(gpu, &q_host, &q_dims)?;
        let k = Tensor::from_slice(gpu, &k_host, &kv_dims)?;
        let v = Tensor::from_slice(gpu, &v_host, &kv_dims)?;
        let o = Tensor::empty(gpu, &q_dims)?;
        let dims = AttentionDims::new(&q_dims, &kv_dims, &kv_dims, shape.heads)?;
        let sample = AttentionSample {
            q: &q_host,
            k: &k_host,
            v: &v_host,
            nq: shape.nq,
            nk: shape.nk,
            heads: shape.heads,
            d: shape.head_dim,
            scale: f64::from(dims.default_scale()),
            causal: shape.causal,
        };
        let options_auto = AttentionOptions {
            causal: shape.causal,
            ..Default::default()
        };
        // The default is what runs without a tuning cache: Auto's built-in choice.
        let default =
            attention::builtin_choice(gpu, &dims, &[&q, &k, &v, &o], AttentionVariant::Auto)?;
        let mut contest = Contest::new();
        let mut results = Vec::new();
        for choice in candidates(gpu, shape.head_dim) {
            progress(&format!("attention {shape} {}", choice.name()));
            results.push(run_candidate(
                gpu,
                CandidateResult::new(choice.name(), choice == default),
                options,
                &mut contest,
                TOLERANCE,
                || {
                    o.write(gpu, &vec![f32::NAN; len])?;
                    attention::plan_with(
                        gpu,
                        &q,
                        &k,
                        &v,
                        None,
                        &o,
                        shape.heads,
                        &options_auto,
                        choice,
                    )
                },
                || Ok(sample.error(&o.to_vec(gpu)?)),
            ));
        }
        out.push(ClassResult::finish(
            gpu,
            TUNE_OP,
            shape_class(&dims, shape.causal),
            vec![shape.batch, shape.heads, shape.nq, shape.nk, shape.head_dim],
            results,
            contest,
            options,
        ));
    }
    Ok(out)
}
