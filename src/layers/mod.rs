//! Layers: weights that live on the GPU and a forward pass that chains kernels in one
//! submission. Weights follow the `x·W` convention of [`crate::init`] (`W` is
//! `[in_features, out_features]`, the transpose of PyTorch's storage).

pub mod multi_head_attention;

pub use multi_head_attention::MultiHeadAttention;
