//! The Adam step against the f64 reference over several steps (bias corrections included).
//!
//! Tolerance: each step is a handful of f32 operations per element (relative error a few
//! 2⁻²⁴); the update lr·m̂/(sqrt(v̂)+ε) is O(lr), so after 5 steps w differs from the f64
//! reference by ~1e-7 relative; 1e-5 leaves room and still catches a wrong formula.

mod common;

use common::{assert_rel_close, gpu, random, random_scaled};
use speckle::cpu::adam::adam as reference;
use speckle::ops::adam::{self, AdamOptions};
use speckle::Tensor;

#[test]
fn steps_match_the_reference() {
    let gpu = gpu();
    let len = 1031;
    let w_host = random(len, 1);
    let w = Tensor::from_slice(gpu, &w_host, &[len]).unwrap();
    let m = Tensor::zeros(gpu, &[len]).unwrap();
    let v = Tensor::zeros(gpu, &[len]).unwrap();
    let g = Tensor::zeros(gpu, &[len]).unwrap();
    let o = AdamOptions {
        lr: 0.01,
        ..Default::default()
    };
    let mut wr: Vec<f64> = w_host.iter().map(|&x| f64::from(x)).collect();
    let (mut mr, mut vr) = (vec![0.0; len], vec![0.0; len]);
    for t in 1..=5u32 {
        let g_host = random_scaled(len, 10 + u64::from(t), 2.0);
        g.write(gpu, &g_host).unwrap();
        adam::run(gpu, &o, t, &g, &w, &m, &v).unwrap();
        let gr: Vec<f64> = g_host.iter().map(|&x| f64::from(x)).collect();
        reference(
            &gr,
            &mut wr,
            &mut mr,
            &mut vr,
            t as i32,
            f64::from(o.lr),
            f64::from(o.beta1),
            f64::from(o.beta2),
            f64::from(o.eps),
        );
    }
    assert_rel_close("adam w", &w.to_vec(gpu).unwrap(), &wr, 1e-5);
    assert_rel_close("adam m", &m.to_vec(gpu).unwrap(), &mr, 1e-5);
    assert_rel_close("adam v", &v.to_vec(gpu).unwrap(), &vr, 1e-5);
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = gpu();
    let a = Tensor::zeros(gpu, &[4]).unwrap();
    let b = Tensor::zeros(gpu, &[5]).unwrap();
    let o = AdamOptions::default();
    assert!(adam::run(gpu, &o, 1, &a, &b, &a, &a).is_err());
    assert!(adam::run(gpu, &o, 0, &a, &a, &a, &a).is_err());
    let bad = AdamOptions { beta1: 1.0, ..o };
    assert!(adam::run(gpu, &bad, 1, &a, &a, &a, &a).is_err());
}
