//! The projection non-linearities against their f64 reference.

mod common;

use common::{assert_rel_close, gpu, gpu_with_binding_limit, random_scaled};
use speckle::cpu::project_finish::project_finish as reference;
use speckle::ops::project_finish::{self, Finish};
use speckle::{Gpu, Tensor};

fn check(gpu: &Gpu, finish: Finish, batch: usize, n_out: usize) {
    let re_host = random_scaled(batch * n_out, 1, 3.0);
    let im_host = random_scaled(batch * n_out, 2, 3.0);
    let norms_host: Vec<f32> = (0..batch).map(|b| 0.5 + b as f32).collect();
    let re = Tensor::from_slice(gpu, &re_host, &[batch, n_out]).unwrap();
    let im = Tensor::from_slice(gpu, &im_host, &[batch, n_out]).unwrap();
    let norms = Tensor::from_slice(gpu, &norms_host, &[batch]).unwrap();
    let plan = project_finish::plan(
        gpu,
        finish,
        &re,
        (finish == Finish::Optical).then_some(&im),
        (finish == Finish::Positive).then_some(&norms),
        99,
        0.75,
    )
    .unwrap();
    gpu.execute(&plan).unwrap();
    let widen = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let want = reference(
        finish,
        &widen(&re_host),
        &widen(&im_host),
        &widen(&norms_host),
        n_out,
        99,
        0.75,
    );
    // One f32 evaluation of cos or exp per output: a few ulp.
    assert_rel_close(
        &format!("{finish:?}"),
        &re.to_vec(gpu).unwrap(),
        &want,
        1e-5,
    );
}

#[test]
fn every_finish_matches_the_reference() {
    for finish in [
        Finish::Optical,
        Finish::Fourier,
        Finish::Relu,
        Finish::Positive,
    ] {
        check(gpu(), finish, 3, 257);
    }
}

#[test]
fn outputs_larger_than_one_binding_are_chunked() {
    let gpu = gpu_with_binding_limit(1024);
    check(&gpu, Finish::Fourier, 4, 1000);
    check(&gpu, Finish::Optical, 2, 999);
}

#[test]
fn missing_inputs_are_errors() {
    let gpu = gpu();
    let re = Tensor::zeros(gpu, &[2, 3]).unwrap();
    assert!(project_finish::plan(gpu, Finish::Optical, &re, None, None, 1, 1.0).is_err());
    assert!(project_finish::plan(gpu, Finish::Positive, &re, None, None, 1, 1.0).is_err());
}
