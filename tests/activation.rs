//! Activations and their Jacobian-vector products (act'(z) ⊙ t) against the f64 reference,
//! out of place, in place and chunked; the reference derivatives against finite differences.
//!
//! Tolerance: each output is one f32 evaluation of a smooth function (exp, tanh), a few ulp
//! (relative 1e-6) at worst; 1e-5 relative over the whole tensor leaves a margin, while any
//! wrong branch or constant is off by far more.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random, random_scaled};
use speckle::cpu::activation::activation as reference;
use speckle::cpu::activation::{activation_jvp, apply, derivative};
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
            let y = Tensor::filled(gpu, &[len], f32::NAN).unwrap();
            gpu.execute(&activation::plan(gpu, act, &x, &y).unwrap())
                .unwrap();
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
fn whole_vec4s_and_a_scalar_tail() {
    // The body of a tensor runs four elements per invocation, a tail of 1 to 3 elements one
    // per invocation, in a second dispatch; both must cover their elements exactly (the
    // output is poisoned).
    let gpu = gpu();
    for (len, dispatches) in [
        (3usize, 1usize),
        (4, 1),
        (8, 1),
        (4097, 2),
        (4099, 2),
        (4100, 1),
    ] {
        let x_host = random_scaled(len, 40 + len as u64, 4.0);
        let t_host = random(len, 41 + len as u64);
        let x = Tensor::from_slice(gpu, &x_host, &[len]).unwrap();
        let t = Tensor::from_slice(gpu, &t_host, &[len]).unwrap();
        let y = Tensor::filled(gpu, &[len], f32::NAN).unwrap();
        let plan = activation::plan(gpu, Activation::Gelu, &x, &y).unwrap();
        assert_eq!(plan.len(), dispatches, "dispatches for {len} elements");
        gpu.execute(&plan).unwrap();
        assert_rel_close(
            &format!("gelu on {len}"),
            &y.to_vec(gpu).unwrap(),
            &reference(Activation::Gelu, &x_host),
            1e-5,
        );
        let out = Tensor::filled(gpu, &[len], f32::NAN).unwrap();
        let plan = activation::plan_jvp(gpu, Activation::Selu, &x, &t, &out).unwrap();
        assert_eq!(plan.len(), dispatches, "JVP dispatches for {len} elements");
        gpu.execute(&plan).unwrap();
        assert_rel_close(
            &format!("selu' on {len}"),
            &out.to_vec(gpu).unwrap(),
            &activation_jvp(Activation::Selu, &x_host, &t_host),
            1e-5,
        );
    }
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

// ---- Jacobian-vector products: out = act'(z) ⊙ t ----

#[test]
fn every_jvp_matches_the_reference() {
    let gpu = gpu();
    // Same inputs as the values; the tangent is uniform in [−1, 1). Each output is one f32
    // evaluation of a smooth derivative times t (a few ulp), except where 1 + tanh(u) cancels
    // in gelu' for x < −3, an absolute error of about u = 6e-8 against outputs of order 0.1
    // to 1: 1e-5 relative over the tensor bounds both.
    for (i, &len) in [1usize, 7, 33, 250, 4099].iter().enumerate() {
        let z_host = random_scaled(len, 200 + i as u64, 6.0);
        let t_host = random(len, 300 + i as u64);
        let z = Tensor::from_slice(gpu, &z_host, &[len]).unwrap();
        let t = Tensor::from_slice(gpu, &t_host, &[len]).unwrap();
        for act in ALL {
            let out = Tensor::filled(gpu, &[len], f32::NAN).unwrap();
            gpu.execute(&activation::plan_jvp(gpu, act, &z, &t, &out).unwrap())
                .unwrap();
            assert_rel_close(
                &format!("{}' on {len}", act.name()),
                &out.to_vec(gpu).unwrap(),
                &activation_jvp(act, &z_host, &t_host),
                1e-5,
            );
        }
    }
}

#[test]
fn reference_derivatives_match_finite_differences() {
    // Central differences in f64 with h = 1e-5: truncation h²·|f'''|/6 ≤ 1e-10·(a few), rounding
    // 1e-16/h = 1e-11; points within 1e-3 of a kink (0, or the threshold's level) are skipped.
    let h = 1e-5;
    for act in ALL {
        for k in -600..=600 {
            let x = f64::from(k) * 0.01 + 0.005;
            let kink = match act {
                Activation::Threshold { level } => f64::from(level),
                _ => 0.0,
            };
            if (x - kink).abs() < 1e-3 {
                continue;
            }
            let fd = (apply(act, x + h) - apply(act, x - h)) / (2.0 * h);
            let d = derivative(act, x);
            assert!(
                (fd - d).abs() <= 1e-8 * (1.0 + d.abs()),
                "{}'({x}) = {d}, finite differences {fd}",
                act.name()
            );
        }
    }
}

#[test]
fn derivatives_at_the_kinks() {
    let gpu = gpu();
    // relu'(0) = 0 (as PyTorch), leaky_relu'(0) = slope, abs'(0) = 0, threshold' = 0.
    let z = Tensor::from_slice(gpu, &[0.0, -0.0, 1.0, -1.0], &[4]).unwrap();
    let t = Tensor::from_slice(gpu, &[1.0, 1.0, 1.0, 1.0], &[4]).unwrap();
    for (act, want) in [
        (Activation::Relu, [0.0, 0.0, 1.0, 0.0]),
        (
            Activation::LeakyRelu { slope: 0.25 },
            [0.25, 0.25, 1.0, 0.25],
        ),
        (Activation::Abs, [0.0, 0.0, 1.0, -1.0]),
        (Activation::Threshold { level: 0.0 }, [0.0; 4]),
        (Activation::Identity, [1.0; 4]),
        (Activation::Square, [0.0, 0.0, 2.0, -2.0]),
    ] {
        let got = activation::run_jvp(gpu, act, &z, &t)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        assert_eq!(got, want, "{}", act.name());
        let cpu: Vec<f32> = [0.0, -0.0, 1.0, -1.0]
            .iter()
            .map(|&x| derivative(act, x) as f32)
            .collect();
        assert_eq!(cpu, want, "{} on the CPU", act.name());
    }
}

#[test]
fn jvp_at_large_inputs_stays_finite() {
    let gpu = gpu();
    let z_host: Vec<f32> = vec![-1e30, -500.0, -89.0, -20.0, 20.0, 89.0, 500.0, 1e30];
    let t_host = vec![1.0f32; z_host.len()];
    let z = Tensor::from_slice(gpu, &z_host, &[z_host.len()]).unwrap();
    let t = Tensor::from_slice(gpu, &t_host, &[z_host.len()]).unwrap();
    for act in [
        Activation::Gelu,
        Activation::Selu,
        Activation::Tanh,
        Activation::LeakyRelu { slope: 0.5 },
    ] {
        let got = activation::run_jvp(gpu, act, &z, &t)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        assert_rel_close(
            &format!("{}' at large |x|", act.name()),
            &got,
            &activation_jvp(act, &z_host, &t_host),
            1e-5,
        );
    }
}

#[test]
fn jvp_in_place_and_chunked() {
    // In place into the tangent (t ← act'(z) ⊙ t), on a device whose 1 KiB bindings split
    // 40 KB into many dispatches.
    let gpu = gpu_with_binding_limit(1024);
    let len = 10_007;
    let z_host = random_scaled(len, 11, 4.0);
    let t_host = random(len, 12);
    let z = Tensor::from_slice(&gpu, &z_host, &[len]).unwrap();
    let t = Tensor::from_slice(&gpu, &t_host, &[len]).unwrap();
    let plan = activation::plan_jvp(&gpu, Activation::Tanh, &z, &t, &t).unwrap();
    assert!(plan.len() >= 10, "{} dispatches", plan.len());
    gpu.execute(&plan).unwrap();
    assert_rel_close(
        "tanh' in place, chunked",
        &t.to_vec(&gpu).unwrap(),
        &activation_jvp(Activation::Tanh, &z_host, &t_host),
        1e-5,
    );
    // In place into z.
    let gpu = common::gpu();
    let z = Tensor::from_slice(gpu, &z_host, &[len]).unwrap();
    let t = Tensor::from_slice(gpu, &t_host, &[len]).unwrap();
    gpu.execute(&activation::plan_jvp(gpu, Activation::Selu, &z, &t, &z).unwrap())
        .unwrap();
    assert_rel_close(
        "selu' into z",
        &z.to_vec(gpu).unwrap(),
        &activation_jvp(Activation::Selu, &z_host, &t_host),
        1e-5,
    );
}

#[test]
fn jvp_size_mismatch_is_an_error_and_linear_is_identity() {
    let gpu = gpu();
    let a = Tensor::zeros(gpu, &[4]).unwrap();
    let b = Tensor::zeros(gpu, &[5]).unwrap();
    let e = activation::plan_jvp(gpu, Activation::Relu, &a, &b, &a).unwrap_err();
    assert!(
        e.to_string().contains("[4]") && e.to_string().contains("[5]"),
        "{e}"
    );
    assert!(activation::plan_jvp(gpu, Activation::Relu, &a, &a, &b).is_err());
    assert_eq!(
        Activation::from_name("linear", 0.01, 0.0).unwrap(),
        Activation::Identity
    );
}
