//! Studies: experiments built from the kernels whose results are numbers per configuration,
//! serializable for the CLI's `study` command and its plots.
//!
//! * [`propagation`]: how signal norms and input–output Jacobians of deep random networks
//!   grow, vanish or stay put with depth, under each initialization law and activation.

pub mod propagation;
