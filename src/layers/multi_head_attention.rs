//! The multi-head attention layer (Vaswani et al., 2017): input projections, the fused
//! attention kernel, and an output projection.
//!
//! ```text
//! Q = query·Wq + bq      [B, Nq, E]
//! K = key·Wk + bk        [B, Nk, E]
//! V = value·Wv + bv      [B, Nk, E]
//! O = attention(Q, K, V) per head h (columns h·D .. (h+1)·D), E = H·D
//! out = O·Wo + bo        [B, Nq, E]
//! ```
//!
//! * **Convention**: `x·W` with every `W` `[E_in, E_out]` = `[E, E]` and biases `[E]`.
//!   PyTorch's `nn.MultiheadAttention` stores the transpose (`in_proj_weight` is
//!   `[3E, E]` holding `Wqᵀ; Wkᵀ; Wvᵀ`, `out_proj.weight` is `Woᵀ`): to load its weights,
//!   save `in_proj_weight[0:E].T`, `[E:2E].T`, `[2E:3E].T` and `out_proj.weight.T` (and the
//!   biases as they are) as `wq.npy`, `wk.npy`, `wv.npy`, `wo.npy`.
//! * **Shapes**: `query` `[B, Nq, E]`, `key` and `value` `[B, Nk, E]`; 2-D inputs `[N, E]`
//!   are one batch (B = 1) and give a 2-D output. The key mask is `[B, Nk]` (or `[Nk]` when
//!   B = 1), non-zero where a key is visible; the causal mask, the scale and the rule that a
//!   query seeing no key gets `O = 0` (so `out = bo`) are those of
//!   [`attention`].
//! * **One submission**: the four matmuls and the attention kernel are recorded into one
//!   encoder; Q, K, V and O stay on the GPU.
//! * **Files**: [`MultiHeadAttention::save_npy`] and [`MultiHeadAttention::from_npy`] use one
//!   directory holding `wq.npy`, `wk.npy`, `wv.npy`, `wo.npy` and, where the layer has them,
//!   `bq.npy`, `bk.npy`, `bv.npy`, `bo.npy` (float32, C order).
//!
//! The f64 reference is [`crate::cpu::multi_head_attention`].

use std::path::Path;

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::init::{self, Init};
use crate::npy;
use crate::ops::attention::{self, AttentionOptions, MAX_HEAD_DIM};
use crate::ops::matmul::{self, MatmulOptions};
use crate::tensor::{check_finite, Tensor};

const OP: &str = "multi_head_attention";

/// The weight files, in the order Wq, Wk, Wv, Wo.
pub const WEIGHT_FILES: [&str; 4] = ["wq.npy", "wk.npy", "wv.npy", "wo.npy"];

/// The optional bias files, in the order bq, bk, bv, bo.
pub const BIAS_FILES: [&str; 4] = ["bq.npy", "bk.npy", "bv.npy", "bo.npy"];

/// The Philox streams of the weights drawn by [`MultiHeadAttention::init`] under the layer's
/// seed, in the order Wq, Wk, Wv, Wo: four independent matrices.
pub const STREAMS: [u32; 4] = [0, 1, 2, 3];

/// A multi-head attention layer with its weights on the GPU (see the module docs for the
/// computation and the `x·W` convention). The fields are public; [`MultiHeadAttention::check`]
/// (run by every forward pass) validates them.
#[derive(Debug)]
pub struct MultiHeadAttention {
    /// Query projection `[E, E]`.
    pub wq: Tensor,
    /// Key projection `[E, E]`.
    pub wk: Tensor,
    /// Value projection `[E, E]`.
    pub wv: Tensor,
    /// Output projection `[E, E]`.
    pub wo: Tensor,
    /// Query bias `[E]`, or none.
    pub bq: Option<Tensor>,
    /// Key bias `[E]`, or none.
    pub bk: Option<Tensor>,
    /// Value bias `[E]`, or none.
    pub bv: Option<Tensor>,
    /// Output bias `[E]`, or none.
    pub bo: Option<Tensor>,
    /// Number of heads H; E = H·D.
    pub heads: usize,
}

/// Checks `heads` against E and returns D.
fn check_heads(embed_dim: usize, heads: usize) -> Result<usize> {
    if heads == 0 {
        return Err(Error::invalid(
            "multi_head_attention needs at least one head, got 0",
        ));
    }
    if embed_dim == 0 || !embed_dim.is_multiple_of(heads) {
        return Err(Error::shape(
            OP,
            format!("embed dim E = {embed_dim} is not a positive multiple of heads = {heads}"),
        ));
    }
    let d = embed_dim / heads;
    if d > MAX_HEAD_DIM {
        return Err(Error::shape(
            OP,
            format!(
                "head dimension D = {d} (E = {embed_dim} / {heads} heads) exceeds {MAX_HEAD_DIM}"
            ),
        ));
    }
    Ok(d)
}

/// Splits a 2-D `[N, E]` or 3-D `[B, N, E]` shape into (B, N, E).
fn split(name: &str, s: &[usize]) -> Result<(usize, usize, usize)> {
    match *s {
        [n, e] => Ok((1, n, e)),
        [b, n, e] => Ok((b, n, e)),
        _ => Err(Error::shape(
            OP,
            format!("{name} must be 2-D [N, E] or 3-D [B, N, E], got shape {s:?}"),
        )),
    }
}

impl MultiHeadAttention {
    /// A layer from its four `[E, E]` weights, without biases; checks the shapes and `heads`.
    pub fn new(wq: Tensor, wk: Tensor, wv: Tensor, wo: Tensor, heads: usize) -> Result<Self> {
        let layer = MultiHeadAttention {
            wq,
            wk,
            wv,
            wo,
            bq: None,
            bk: None,
            bv: None,
            bo: None,
            heads,
        };
        layer.check()?;
        Ok(layer)
    }

    /// A layer of embed dim E = `embed_dim` with `heads` heads, each weight drawn from `law`
    /// with `gain` ([`init::weight`]) under `seed`, in its own Philox stream ([`STREAMS`]);
    /// no biases.
    pub fn init(
        gpu: &Gpu,
        embed_dim: usize,
        heads: usize,
        law: Init,
        gain: f32,
        seed: u64,
    ) -> Result<Self> {
        check_heads(embed_dim, heads)?;
        let shape = [embed_dim, embed_dim];
        let draw = |stream| init::weight(gpu, shape, law, gain, seed, stream);
        Self::new(
            draw(STREAMS[0])?,
            draw(STREAMS[1])?,
            draw(STREAMS[2])?,
            draw(STREAMS[3])?,
            heads,
        )
    }

    /// [`MultiHeadAttention::init`] with Xavier uniform weights of gain 1 (U\[−a, a\],
    /// a = sqrt(6/(2E)) = sqrt(3/E), variance 1/E) and no biases.
    pub fn xavier(gpu: &Gpu, embed_dim: usize, heads: usize, seed: u64) -> Result<Self> {
        Self::init(gpu, embed_dim, heads, Init::XavierUniform, 1.0, seed)
    }

    /// Loads `wq.npy`, `wk.npy`, `wv.npy`, `wo.npy` (`[E, E]`, float32 or float64) from `dir`,
    /// and each of `bq.npy`, `bk.npy`, `bv.npy`, `bo.npy` (`[E]`) that is present. Errors name
    /// the file and the shapes: a weight that is not square, weights that differ in shape, a
    /// bias that is not `[E]`, E not a multiple of `heads`, non-finite values.
    pub fn from_npy(gpu: &Gpu, dir: &Path, heads: usize) -> Result<Self> {
        let read = |name: &str| -> Result<(Vec<f32>, Vec<usize>)> {
            let path = dir.join(name);
            let (data, shape) = npy::read_f32(&path)?;
            check_finite(&path.display().to_string(), &data)?;
            Ok((data, shape))
        };
        let (wq, shape) = read(WEIGHT_FILES[0])?;
        let e = match *shape {
            [rows, cols] if rows == cols => rows,
            _ => {
                return Err(Error::shape(
                    OP,
                    format!(
                        "{} has shape {shape:?} but a weight must be square [E, E]",
                        dir.join(WEIGHT_FILES[0]).display()
                    ),
                ))
            }
        };
        check_heads(e, heads).map_err(|err| {
            err.in_context(format!(
                "{} ({shape:?}) with {heads} heads",
                dir.join(WEIGHT_FILES[0]).display()
            ))
        })?;
        let weight = |name: &str| -> Result<Tensor> {
            let (data, s) = read(name)?;
            if s != [e, e] {
                return Err(Error::shape(
                    OP,
                    format!(
                        "{} has shape {s:?} but {} has {shape:?}; every weight must be [E, E] = [{e}, {e}]",
                        dir.join(name).display(),
                        WEIGHT_FILES[0]
                    ),
                ));
            }
            Tensor::from_slice(gpu, &data, &s)
        };
        let bias = |name: &str| -> Result<Option<Tensor>> {
            if !dir.join(name).exists() {
                return Ok(None);
            }
            let (data, s) = read(name)?;
            if s != [e] {
                return Err(Error::shape(
                    OP,
                    format!(
                        "{} has shape {s:?} but a bias must be [E] = [{e}] (E from {} {shape:?})",
                        dir.join(name).display(),
                        WEIGHT_FILES[0]
                    ),
                ));
            }
            Ok(Some(Tensor::from_slice(gpu, &data, &s)?))
        };
        let layer = MultiHeadAttention {
            wq: Tensor::from_slice(gpu, &wq, &shape)?,
            wk: weight(WEIGHT_FILES[1])?,
            wv: weight(WEIGHT_FILES[2])?,
            wo: weight(WEIGHT_FILES[3])?,
            bq: bias(BIAS_FILES[0])?,
            bk: bias(BIAS_FILES[1])?,
            bv: bias(BIAS_FILES[2])?,
            bo: bias(BIAS_FILES[3])?,
            heads,
        };
        layer.check()?;
        Ok(layer)
    }

    /// Writes the weights to `dir` (created if missing) as `wq.npy`, `wk.npy`, `wv.npy`,
    /// `wo.npy` and the biases the layer has as `bq.npy` … `bo.npy`, each file atomically.
    /// A bias file for a bias the layer lacks is removed, so that [`from_npy`] reads back
    /// exactly this layer.
    ///
    /// [`from_npy`]: MultiHeadAttention::from_npy
    pub fn save_npy(&self, gpu: &Gpu, dir: &Path) -> Result<()> {
        self.check()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        for (name, w) in WEIGHT_FILES.iter().zip(self.weights()) {
            npy::write_f32(&dir.join(name), &w.to_vec(gpu)?, w.shape())?;
        }
        for (name, b) in BIAS_FILES.iter().zip(self.biases()) {
            let path = dir.join(name);
            match b {
                Some(b) => npy::write_f32(&path, &b.to_vec(gpu)?, b.shape())?,
                None if path.exists() => std::fs::remove_file(&path)
                    .map_err(|e| Error::io(format!("removing stale {}", path.display()), e))?,
                None => {}
            }
        }
        Ok(())
    }

    /// The weights in the order Wq, Wk, Wv, Wo.
    pub fn weights(&self) -> [&Tensor; 4] {
        [&self.wq, &self.wk, &self.wv, &self.wo]
    }

    /// The biases in the order bq, bk, bv, bo.
    pub fn biases(&self) -> [Option<&Tensor>; 4] {
        [
            self.bq.as_ref(),
            self.bk.as_ref(),
            self.bv.as_ref(),
            self.bo.as_ref(),
        ]
    }

    /// The embed dim E (the rows of Wq; [`check`](MultiHeadAttention::check) validates it).
    pub fn embed_dim(&self) -> usize {
        self.wq.shape()[0]
    }

    /// Checks that every weight is `[E, E]`, every bias `[E]`, and that E = H·D with
    /// 1 <= D <= 256; returns E. Errors name the tensor and the shapes.
    pub fn check(&self) -> Result<usize> {
        let s = self.wq.shape();
        let e = match *s {
            [rows, cols] if rows == cols => rows,
            _ => {
                return Err(Error::shape(
                    OP,
                    format!("Wq has shape {s:?} but must be square [E, E]"),
                ))
            }
        };
        for (name, w) in ["Wk", "Wv", "Wo"].iter().zip(&self.weights()[1..]) {
            if w.shape() != [e, e] {
                return Err(Error::shape(
                    OP,
                    format!(
                        "{name} has shape {:?} but Wq has {s:?}; every weight must be [E, E] = [{e}, {e}]",
                        w.shape()
                    ),
                ));
            }
        }
        for (name, b) in ["bq", "bk", "bv", "bo"].iter().zip(self.biases()) {
            if let Some(b) = b {
                if b.shape() != [e] {
                    return Err(Error::shape(
                        OP,
                        format!(
                            "{name} has shape {:?} but a bias must be [E] = [{e}]",
                            b.shape()
                        ),
                    ));
                }
            }
        }
        check_heads(e, self.heads)?;
        Ok(e)
    }

    /// The head dimension D = E / H.
    pub fn head_dim(&self) -> Result<usize> {
        check_heads(self.check()?, self.heads)
    }

    /// The forward pass as a new tensor of `query`'s shape (see the module docs).
    pub fn forward(
        &self,
        gpu: &Gpu,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_mask: Option<&Tensor>,
        options: &AttentionOptions,
    ) -> Result<Tensor> {
        self.check_inputs(query, key, value)?;
        let out = Tensor::empty(gpu, query.shape())?;
        self.forward_into(gpu, query, key, value, key_mask, &out, options)?;
        Ok(out)
    }

    /// The forward pass into `out` (`query`'s shape, not sharing a buffer with an input or a
    /// weight): five kernels in one submission, then a wait.
    #[expect(
        clippy::too_many_arguments,
        reason = "the operands are query, key, value, a mask and an output"
    )]
    pub fn forward_into(
        &self,
        gpu: &Gpu,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_mask: Option<&Tensor>,
        out: &Tensor,
        options: &AttentionOptions,
    ) -> Result<()> {
        let (batch, nq, nk, e) = self.check_inputs(query, key, value)?;
        if out.shape() != query.shape() {
            return Err(Error::shape(
                OP,
                format!(
                    "the output has shape {:?} but must have the query's shape {:?}",
                    out.shape(),
                    query.shape()
                ),
            ));
        }
        let inputs = [query, key, value, &self.wq, &self.wk, &self.wv, &self.wo];
        let others = self.biases().into_iter().chain([key_mask]).flatten();
        if inputs
            .into_iter()
            .chain(others)
            .any(|t| t.buffer() == out.buffer())
        {
            return Err(Error::invalid(
                "multi_head_attention: the output must not share a buffer with an input, a \
                 weight or a bias",
            ));
        }
        let (qn, kn) = (batch * nq, batch * nk);
        // Projections on [rows, E] views: one matmul each, whatever the batch.
        let q = Tensor::empty(gpu, query.shape())?;
        let k = Tensor::empty(gpu, key.shape())?;
        let v = Tensor::empty(gpu, value.shape())?;
        let o = Tensor::empty(gpu, query.shape())?;
        let mut dispatches: Vec<Dispatch> = Vec::new();
        let projections = [
            (query, &self.wq, self.bq.as_ref(), &q, qn),
            (key, &self.wk, self.bk.as_ref(), &k, kn),
            (value, &self.wv, self.bv.as_ref(), &v, kn),
        ];
        for (x, w, bias, y, rows) in projections {
            dispatches.extend(matmul::plan(
                gpu,
                &x.view(&[rows, e])?,
                w,
                &y.view(&[rows, e])?,
                &MatmulOptions {
                    bias,
                    ..Default::default()
                },
            )?);
        }
        dispatches.extend(attention::plan(
            gpu, &q, &k, &v, key_mask, &o, self.heads, options,
        )?);
        dispatches.extend(matmul::plan(
            gpu,
            &o.view(&[qn, e])?,
            &self.wo,
            &out.view(&[qn, e])?,
            &MatmulOptions {
                bias: self.bo.as_ref(),
                ..Default::default()
            },
        )?);
        gpu.execute(&dispatches)
    }

    /// Checks the weights and the input shapes; returns (B, Nq, Nk, E).
    fn check_inputs(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
    ) -> Result<(usize, usize, usize, usize)> {
        let e = self.check()?;
        let (qs, ks, vs) = (query.shape(), key.shape(), value.shape());
        let (qb, nq, qe) = split("the query", qs)?;
        let (kb, nk, ke) = split("the key", ks)?;
        split("the value", vs)?;
        if qs.len() != ks.len() || qs.len() != vs.len() {
            return Err(Error::shape(
                OP,
                format!(
                    "query {qs:?}, key {ks:?} and value {vs:?} must all be 2-D [N, E] or all 3-D [B, N, E]"
                ),
            ));
        }
        if qe != e || ke != e || vs[vs.len() - 1] != e {
            return Err(Error::shape(
                OP,
                format!(
                    "query {qs:?}, key {ks:?} and value {vs:?} must all end in the embed dim E = {e} \
                     (the weights are [{e}, {e}])"
                ),
            ));
        }
        if kb != qb {
            return Err(Error::shape(
                OP,
                format!("batch sizes differ: query {qs:?} has {qb}, key {ks:?} has {kb}"),
            ));
        }
        if vs != ks {
            return Err(Error::shape(
                OP,
                format!("value {vs:?} must have the key's shape {ks:?} ([B, Nk, E])"),
            ));
        }
        Ok((qb, nq, nk, e))
    }
}
