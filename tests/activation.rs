//! Activations against the f64 reference, out of place, in place and chunked.
//!
//! Tolerance: each output is one f32 evaluation of a smooth function (exp, tanh), a few ulp
//! (relative 1e-6) at worst; 1e-5 relative over the whole tensor leaves a margin, while any
//! wrong branch or constant is off by far more.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random_scaled};
use speckle::cpu::activation::activation as reference;
use speckle::ops::activation;
use speckle::{Activation, Tensor};

const ALL: [Activation; 9] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.01 },
    Activation::Gelu,
    Activation::Selu,
    Activation::Tanh,
    Activation::Square,
    Activation::Abs,
    Activation::Threshold { level: 0.25 },
];

#[test]
fn every_activation_matches_the_reference() {
    let gpu = gpu();
    // Values up to ±6 cover the curved parts of gelu, selu and tanh and both sides of 0.
    for (i, &len) in [1usize, 7, 33, 250, 4099].iter().enumerate() {
        let x_host = random_scaled(len, 100 + i as u64, 6.0);
        let x = Tensor::from_slice(gpu, &x_host, &[len]).unwrap();
        for act in ALL {
            let y = activation::run(gpu, act, &x).unwrap();
            assert_rel_close(
                &format!("{} on {len}", act.name()),
                &y.to_vec(gpu).unwrap(),
                &reference(act, &x_host),
                1e-5,
            );
        }
    }
}

#[test]
fn large_inputs_stay_finite() {
    let gpu = gpu();
    let x_host: Vec<f32> = vec![-1e30, -500.0, -89.0, -20.0, 20.0, 89.0, 500.0, 1e30];
    let x = Tensor::from_slice(gpu, &x_host, &[x_host.len()]).unwrap();
    for act in [
        Activation::Gelu,
        Activation::Selu,
        Activation::Tanh,
        Activation::LeakyRelu { slope: 0.5 },
    ] {
        let y = activation::run(gpu, act, &x).unwrap().to_vec(gpu).unwrap();
        assert_rel_close(
            &format!("{} at large |x|", act.name()),
            &y,
            &reference(act, &x_host),
            1e-5,
        );
    }
}

#[test]
fn in_place_overwrites_the_input() {
    let gpu = gpu();
    let x_host = random_scaled(1000, 7, 3.0);
    let x = Tensor::from_slice(gpu, &x_host, &[10, 100]).unwrap();
    activation::run_in_place(gpu, Activation::Gelu, &x).unwrap();
    assert_rel_close(
        "gelu in place",
        &x.to_vec(gpu).unwrap(),
        &reference(Activation::Gelu, &x_host),
        1e-5,
    );
}

#[test]
fn tensors_larger_than_one_binding_are_chunked() {
    let gpu = gpu_with_binding_limit(1024);
    let x_host = random_scaled(10_007, 9, 4.0);
    let x = Tensor::from_slice(&gpu, &x_host, &[10_007]).unwrap();
    let y = Tensor::filled(&gpu, &[10_007], f32::NAN).unwrap();
    let plan = activation::plan(&gpu, Activation::Selu, &x, &y).unwrap();
    assert!(
        plan.len() >= 10,
        "1 KiB bindings must split 40 KB ({} dispatches)",
        plan.len()
    );
    gpu.execute(&plan).unwrap();
    assert_rel_close(
        "selu chunked",
        &y.to_vec(&gpu).unwrap(),
        &reference(Activation::Selu, &x_host),
        1e-5,
    );
}

#[test]
fn names_round_trip_and_unknown_names_are_errors() {
    for name in Activation::NAMES {
        assert_eq!(
            Activation::from_name(name, 0.01, 0.0).unwrap().name(),
            *name
        );
    }
    let e = Activation::from_name("swish", 0.01, 0.0).unwrap_err();
    assert!(
        e.to_string().contains("swish") && e.to_string().contains("relu"),
        "{e}"
    );
}

#[test]
fn mismatched_output_is_an_error() {
    let gpu = gpu();
    let x = Tensor::zeros(gpu, &[4]).unwrap();
    let y = Tensor::zeros(gpu, &[5]).unwrap();
    assert!(activation::plan(gpu, Activation::Relu, &x, &y).is_err());
}
