//! A dense layer on the GPU, checked against the CPU: y = relu(x·W + b).
//!
//! Run with `cargo run --release --example matmul`.

use speckle::bench::random_vec;
use speckle::cpu::{self, matmul::Problem};
use speckle::ops::matmul;
use speckle::{Activation, Gpu, MatmulOptions, Tensor};

fn main() -> speckle::Result<()> {
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter_info().name);

    let (batch, inputs, outputs) = (64, 300, 129);
    let x_host = random_vec(batch * inputs, 1);
    let w_host = random_vec(inputs * outputs, 2);
    let b_host = random_vec(outputs, 3);
    let x = Tensor::from_slice(&gpu, &x_host, &[batch, inputs])?;
    let w = Tensor::from_slice(&gpu, &w_host, &[inputs, outputs])?;
    let b = Tensor::from_slice(&gpu, &b_host, &[outputs])?;

    // The bias and the activation run in the matmul's epilogue: one kernel, one pass over y.
    let options = MatmulOptions {
        bias: Some(&b),
        activation: Activation::Relu,
        ..Default::default()
    };
    let y = matmul::run(&gpu, &x, &w, &options)?;
    let y_host = y.to_vec(&gpu)?;

    let reference = cpu::matmul::matmul(&Problem {
        bias: Some(&b_host),
        activation: Activation::Relu,
        ..Problem::new(&x_host, &[batch, inputs], &w_host, &[inputs, outputs])
    })?;
    let error = cpu::relative_error(&y_host, &reference);
    let active = y_host.iter().filter(|&&v| v > 0.0).count();
    println!(
        "y = relu(x·W + b): shape {:?}, {active} of {} outputs active, relative error {error:.2e} against f64",
        y.shape(),
        y_host.len()
    );
    Ok(())
}
