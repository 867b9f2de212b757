//! Initialization laws and signal propagation through deep random networks
//! (`speckle::init`, `speckle::study::propagation`): the statistical claims of the lecture
//! notes, with tolerances derived in the comments, on fixed seeds.
//!
//! Notation: n the width, L the depth, B the batch. For a study result,
//! R_l = norm_ratio[l]² + norm_spread[l]² is the mean over the batch of ‖h_l,b‖²/‖x_b‖² (the
//! spreads are population standard deviations), and D_l = R_l / R_{l−1} (R_0 = 1) its growth
//! at layer l. Given the layers before l, E[D_l] is the factor by which one layer multiplies
//! the expected squared norm (1 for He + ReLU, 1/2 for Xavier + ReLU on square layers, γ² for
//! a linear layer of gain γ): R_l is a martingale times that factor, so the D_l are
//! uncorrelated and their average over the L layers has a standard deviation of at most
//! sqrt(var(F)/L), with F the factor by which one layer multiplies the squared norm of one
//! input. For Gaussian weights F = (c/n)·Σ_j φ(g_j)² over n independent standard normals g_j:
//! var(F) = 5c²/(4n) for ReLU (E[ReLU(g)⁴] = 3/2, E[ReLU(g)²]² = 1/4), 2c²/n for the
//! identity. Tolerances are 5 of those standard deviations (inputs that share the weights are
//! correlated, so the batch does not shrink the bound; it only makes it conservative).

mod common;

use common::{assert_rel_close, gpu};
use speckle::cpu::activation::apply;
use speckle::cpu::layernorm::layernorm_f64;
use speckle::init::{self, Init};
use speckle::ops::activation;
use speckle::ops::random_fill::{self, RandomSpec};
use speckle::study::propagation::{
    self, default_configs, product_configs, PropagationConfig, PropagationResult, INPUT_STREAM,
    TANGENT_STREAM,
};
use speckle::{Activation, Tensor};

fn config(
    init: Init,
    activation: Activation,
    gain: f32,
    width: usize,
    depth: usize,
) -> PropagationConfig {
    PropagationConfig {
        init,
        activation,
        gain,
        width,
        depth,
        batch: 128,
        layernorm: false,
        seed: 2024,
    }
}

fn study(c: &PropagationConfig) -> PropagationResult {
    let mut done = Vec::new();
    let r = propagation::run(gpu(), c, &mut |l| done.push(l)).unwrap();
    assert_eq!(
        done,
        (1..=c.depth).collect::<Vec<_>>(),
        "progress after each layer"
    );
    for v in [
        &r.norm_ratio,
        &r.norm_spread,
        &r.activation_variance,
        &r.jacobian_ratio,
        &r.jacobian_spread,
    ] {
        assert_eq!(v.len(), c.depth);
    }
    r
}

/// R_l = mean over the batch of the squared norm ratios, l = 1 ..= L.
fn mean_squared_ratio(r: &PropagationResult) -> Vec<f64> {
    r.norm_ratio
        .iter()
        .zip(&r.norm_spread)
        .map(|(m, s)| m * m + s * s)
        .collect()
}

/// The average over the layers of D_l = R_l / R_{l−1}, R_0 = 1.
fn mean_growth(r: &PropagationResult) -> f64 {
    let squares = mean_squared_ratio(r);
    let mut previous = 1.0;
    let mut sum = 0.0;
    for &s in &squares {
        sum += s / previous;
        previous = s;
    }
    sum / squares.len() as f64
}

// ---- The lecture notes' ReLU claim ----

#[test]
fn relu_keeps_half_the_second_moment_not_half_the_variance() {
    let gpu = gpu();
    // N = 2^20 draws x ~ N(0, σ²), σ = 1.5, on the GPU; ReLU on the GPU; moments in f64.
    let n = 1usize << 20;
    let sigma = 1.5f64;
    let x = random_fill::run(
        gpu,
        &[1024, 1024],
        &RandomSpec {
            scale: sigma as f32,
            ..RandomSpec::gaussian(77, 0)
        },
    )
    .unwrap();
    let y = activation::run(gpu, Activation::Relu, &x).unwrap();
    let (x, y) = (x.to_vec(gpu).unwrap(), y.to_vec(gpu).unwrap());
    let nf = n as f64;
    let second_x = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / nf;
    let mean_y = y.iter().map(|&v| f64::from(v)).sum::<f64>() / nf;
    let second_y = y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / nf;
    let var_y = second_y - mean_y * mean_y;
    let s2 = sigma * sigma;
    let sd = |c: f64| c * s2 / nf.sqrt();
    // E[ReLU(x)²] = σ²/2: var(ReLU(x)²) = E[ReLU⁴] − σ⁴/4 = 3σ⁴/2 − σ⁴/4 = 5σ⁴/4.
    assert!(
        (second_y - s2 / 2.0).abs() < 5.0 * sd((1.25f64).sqrt()),
        "E[ReLU(x)²] = {second_y}, σ²/2 = {}",
        s2 / 2.0
    );
    // Against the sample's own second moment: mean of x²(1[x > 0] − 1/2), variance 3σ⁴/4.
    assert!(
        (second_y - second_x / 2.0).abs() < 5.0 * sd((0.75f64).sqrt()),
        "E[ReLU(x)²] = {second_y}, half the sample's E[x²] = {}",
        second_x / 2.0
    );
    // The variance is smaller: (1/2 − 1/(2π))σ² ≈ 0.341σ². Its estimate's deviation is at
    // most that of the second moment plus 2·E[ReLU]·that of the mean:
    // (sqrt(5/4) + 2·sqrt(1/(2π))·sqrt(1/2 − 1/(2π)))·σ²/sqrt(N) ≤ 1.6·σ²/sqrt(N).
    let want = (0.5 - 1.0 / (2.0 * std::f64::consts::PI)) * s2;
    assert!(
        (var_y - want).abs() < 5.0 * sd(1.6),
        "var(ReLU(x)) = {var_y}, (1/2 − 1/(2π))σ² = {want}"
    );
    assert!(var_y < 0.36 * s2, "var(ReLU(x)) = {var_y} is not σ²/2");
}

// ---- Depth: He keeps the squared norm, Xavier halves it under ReLU, γ^L for linear ----

#[test]
fn he_initialized_relu_networks_keep_the_squared_norm() {
    let (n, depth) = (256, 30);
    for law in [Init::KaimingNormal, Init::KaimingUniform] {
        let r = study(&config(law, Activation::Relu, 1.0, n, depth));
        // E[D_l] = 1; var(F) = 5·2²/(4n) = 5/n (c = 2); the average of 30 has sd
        // sqrt(5/(nL)) = 0.026: 5 sd = 0.128 (uniform weights give the same mean and, by the
        // central limit theorem over 256 terms, about the same variance). Xavier's 1/2 or a
        // gain of 1.1 (1.21 per layer) are far outside.
        let growth = mean_growth(&r);
        let tol = 5.0 * (5.0 / (n * depth) as f64).sqrt();
        assert!(
            (growth - 1.0).abs() < tol,
            "{}: mean growth of E‖h‖² per layer {growth}, expected 1 ± {tol:.3}",
            law.name()
        );
        // E[R_l] = 1 at every depth, with var(R_l) <= (1 + 5/n)^l − 1 (one input: a product
        // of l independent factors of mean 1 and variance 5/n; a batch mean of such inputs
        // varies no more). At l = 30: sd <= 0.89, so R_30 < 1 + 5·0.89 = 5.4. A weak bound,
        // since the per-layer fluctuations compound, but Xavier (2^-30) and a gain of 1.1
        // (1.21^30 ≈ 300) miss it by orders of magnitude.
        let squares = mean_squared_ratio(&r);
        for (l, &s) in squares.iter().enumerate() {
            let sd = ((1.0 + 5.0 / n as f64).powi(l as i32 + 1) - 1.0).sqrt();
            assert!(
                s > 0.0 && (s - 1.0).abs() < 5.0 * sd,
                "{} layer {}: E‖h‖²/‖x‖² = {s}, 1 ± {:.3}",
                law.name(),
                l + 1,
                5.0 * sd
            );
        }
        // The activations keep a second moment of order 1 at every layer: the variance of
        // ReLU outputs is (1/2 − 1/(2π))/(1/2) = 0.68 of their second moment (Gaussian z).
        assert!(r
            .activation_variance
            .iter()
            .all(|&v| v > 0.0 && v.is_finite()));
    }
}

#[test]
fn xavier_initialized_relu_networks_halve_the_squared_norm_per_layer() {
    let (n, depth) = (256, 30);
    let r = study(&config(
        Init::XavierUniform,
        Activation::Relu,
        1.0,
        n,
        depth,
    ));
    // Variance 2/(n + n) = 1/n: one layer multiplies E‖h‖² by n·(1/n)·(1/2) = 1/2, i.e.
    // 1/2·(2·fan_in/(fan_in + fan_out)). var(F) = 5/(4n) (c = 1): 5 sd of the average of 30
    // is 5·sqrt(5/(4nL)) = 0.064.
    let growth = mean_growth(&r);
    let tol = 5.0 * (5.0 / (4.0 * (n * depth) as f64)).sqrt();
    assert!(
        (growth - 0.5).abs() < tol,
        "mean growth of E‖h‖² per layer {growth}, expected 1/2 ± {tol:.3}"
    );
    // After 30 layers the squared norm is about 2^-30 ≈ 1e-9 (the signal vanishes) and the
    // norms about 2^-15: f32 still holds them.
    let squares = mean_squared_ratio(&r);
    assert!(
        squares[depth - 1] < 1e-6 && squares[depth - 1] > 0.0,
        "{squares:?}"
    );
}

#[test]
fn linear_networks_scale_norms_as_gain_to_the_depth() {
    let (n, depth) = (256, 30);
    for gain in [0.9f32, 1.0, 1.1] {
        let g = f64::from(gain);
        // Orthogonal weights: ‖x·W‖ = γ‖x‖ exactly, so every ratio is γ^l with no spread.
        // f32 rounding: each layer's matmul (k = 256) and the rounding of W to f32 change a
        // norm by about sqrt(k)·u ≈ 1e-6 relative (worst case k·u = 1.5e-5); 30 layers stay
        // well below 1e-3.
        let r = study(&config(
            Init::Orthogonal,
            Activation::Identity,
            gain,
            n,
            depth,
        ));
        for l in 0..depth {
            let want = g.powi(l as i32 + 1);
            for (what, ratio, spread) in [
                ("norm", r.norm_ratio[l], r.norm_spread[l]),
                ("jacobian", r.jacobian_ratio[l], r.jacobian_spread[l]),
            ] {
                assert!(
                    (ratio / want - 1.0).abs() < 1e-3 && spread < 1e-3 * want,
                    "orthogonal gain {gain} layer {}: {what} ratio {ratio} ± {spread}, γ^l = {want}",
                    l + 1
                );
            }
        }
        // Xavier normal: E‖x·W‖² = γ²‖x‖² (variance γ²/n), so in expectation of squared norms.
        // var(F) = 2γ⁴/n: 5 sd of the average growth over 30 layers is 5γ²·sqrt(2/(nL)) =
        // 0.081γ², which separates 0.81, 1 and 1.21.
        let r = study(&config(
            Init::XavierNormal,
            Activation::Identity,
            gain,
            n,
            depth,
        ));
        let growth = mean_growth(&r);
        let tol = 5.0 * g * g * (2.0 / (n * depth) as f64).sqrt();
        assert!(
            (growth - g * g).abs() < tol,
            "xavier_normal gain {gain}: mean growth {growth}, expected γ² = {} ± {tol:.3}",
            g * g
        );
        // In log scale at the last layer: log R_L is a sum of L terms of variance about 2/n
        // and mean about −1/n, so |log R_L − 2L·log γ| < 5·sqrt(2L/n) + L/n ≈ 2.5 (a factor
        // 12), against 2L·log γ = ±6 for γ = 1.1 or 0.9.
        let last = mean_squared_ratio(&r)[depth - 1].ln();
        let want = 2.0 * depth as f64 * g.ln();
        let tol = 5.0 * (2.0 * depth as f64 / n as f64).sqrt() + depth as f64 / n as f64;
        assert!(
            (last - want).abs() < tol,
            "xavier_normal gain {gain}: log R_L {last}, expected {want} ± {tol:.2}"
        );
    }
}

// ---- Width: Hanin's Σ 1/n_i ----

#[test]
fn jacobian_fluctuations_shrink_as_the_width_grows() {
    // He + ReLU at depth 20: Hanin (2018) shows that ‖J v‖²/‖v‖² fluctuates with a variance
    // growing like exp(5·Σ_l 1/n_l) − 1, here exp(100/n) − 1: 5e2, 3.8 and 0.48 for
    // n = 16, 64, 256. The measure is the relative spread over the batch, spread/ratio (the
    // raw spread is not monotone: at n = 16 many units die and the mean ratio itself
    // collapses, which shrinks the raw spread with it). Batch 128; one network per width.
    let widths = [16usize, 64, 256];
    let relative: Vec<f64> = widths
        .iter()
        .map(|&n| {
            let r = study(&config(Init::KaimingNormal, Activation::Relu, 1.0, n, 20));
            r.jacobian_spread[19] / r.jacobian_ratio[19]
        })
        .collect();
    assert!(
        relative[0] > relative[1] && relative[1] > relative[2],
        "relative spread of ‖Jv‖/‖v‖ at widths {widths:?}: {relative:?}, expected decreasing"
    );
    // At n = 256 the log-normal approximation applies: log(‖Jv‖²/‖v‖²) has variance about
    // s² = 5L/n = 0.39, so ‖Jv‖/‖v‖ has relative spread sqrt(exp(s²/4) − 1) = 0.32. Inputs
    // sharing one network and finite-width corrections move it; a factor 2 either way.
    let predicted = ((100.0f64 / 256.0 / 4.0).exp() - 1.0).sqrt();
    assert!(
        relative[2] > predicted / 2.0 && relative[2] < predicted * 2.0,
        "relative spread at n = 256: {}, Hanin's prediction {predicted:.3}",
        relative[2]
    );
}

// ---- LayerNorm inside the study ----

#[test]
fn layernorm_rows_have_mean_zero_and_variance_one_in_the_study() {
    let gpu = gpu();
    // A linear network with LayerNorm: h_l = LayerNorm(z_l), so every row has mean 0 and
    // biased variance σ²/(σ² + ε) ≈ 1 (σ² ≈ 1 here, so within 1e-5 + f32 rounding): the
    // variance of all entries is 1 − (grand mean)² ≈ 1 and ‖h_l,b‖ = sqrt(n) for every b,
    // whatever the gain (0.5 would otherwise shrink norms by 2^-20).
    let (n, depth, batch) = (64usize, 20usize, 32usize);
    let c = PropagationConfig {
        batch,
        layernorm: true,
        ..config(Init::XavierNormal, Activation::Identity, 0.5, n, depth)
    };
    let r = study(&c);
    let x = random_fill::run(
        gpu,
        &[batch, n],
        &RandomSpec::gaussian(c.seed, INPUT_STREAM),
    )
    .unwrap()
    .to_vec(gpu)
    .unwrap();
    let ratios: Vec<f64> = x
        .chunks(n)
        .map(|row| {
            (n as f64).sqrt()
                / row
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    .sqrt()
        })
        .collect();
    let mean = ratios.iter().sum::<f64>() / batch as f64;
    let spread = (ratios.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / batch as f64).sqrt();
    for l in 0..depth {
        // ε/σ² with σ² = 0.25·(1/n)·n = 0.25 for gain 0.5: 4e-5; f32 rounding ~1e-6.
        assert!(
            (r.activation_variance[l] - 1.0).abs() < 1e-4,
            "layer {}: variance of the entries {}",
            l + 1,
            r.activation_variance[l]
        );
        assert!(
            (r.norm_ratio[l] / mean - 1.0).abs() < 1e-4
                && (r.norm_spread[l] - spread).abs() < 1e-4 * mean,
            "layer {}: norm ratio {} ± {}, expected sqrt(n)/‖x_b‖: {mean} ± {spread}",
            l + 1,
            r.norm_ratio[l],
            r.norm_spread[l]
        );
    }
}

// ---- The forward-mode Jacobian against finite differences ----

/// The network's layer outputs for one input, in f64: h_1 ..= h_L.
fn forward(x: &[f64], weights: &[Vec<f64>], n: usize, act: Activation, ln: bool) -> Vec<Vec<f64>> {
    let mut h = x.to_vec();
    let mut out = Vec::new();
    for w in weights {
        let mut z: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| h[i] * w[i * n + j]).sum())
            .collect();
        if ln {
            z = layernorm_f64(&z, n, None, None, 1e-5);
        }
        h = z.iter().map(|&v| apply(act, v)).collect();
        out.push(h.clone());
    }
    out
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    (m, s)
}

#[test]
fn forward_mode_jacobian_matches_finite_differences() {
    let gpu = gpu();
    let (n, depth, batch) = (8usize, 3usize, 5usize);
    for (law, act, ln) in [
        (Init::KaimingNormal, Activation::Tanh, false),
        (Init::LecunNormal, Activation::Selu, true),
        (Init::XavierUniform, Activation::Gelu, true),
        (Init::KaimingUniform, Activation::Relu, false),
        (Init::Orthogonal, Activation::Identity, true),
        (
            Init::XavierNormal,
            Activation::LeakyRelu { slope: 0.1 },
            false,
        ),
    ] {
        let c = PropagationConfig {
            batch,
            layernorm: ln,
            seed: 99,
            ..config(law, act, 1.3, n, depth)
        };
        let r = study(&c);
        // The GPU's own inputs, tangents and weights, regenerated from the documented streams
        // (bit-identical on one adapter) and read back.
        let read =
            |t: Tensor| -> Vec<f64> { t.to_vec(gpu).unwrap().into_iter().map(f64::from).collect() };
        let x = read(
            random_fill::run(
                gpu,
                &[batch, n],
                &RandomSpec::gaussian(c.seed, INPUT_STREAM),
            )
            .unwrap(),
        );
        let v = read(
            random_fill::run(
                gpu,
                &[batch, n],
                &RandomSpec::gaussian(c.seed, TANGENT_STREAM),
            )
            .unwrap(),
        );
        let weights: Vec<Vec<f64>> = (1..=depth)
            .map(|l| {
                read(
                    init::weight(
                        gpu,
                        [n, n],
                        law,
                        c.gain,
                        c.seed,
                        propagation::weight_stream(l),
                    )
                    .unwrap(),
                )
            })
            .collect();
        // Central differences along v_b with step h = 1e-5·‖x_b‖/‖v_b‖: truncation O(h²)
        // ~1e-10 relative, rounding 1e-16/1e-5 ~ 1e-11. A ReLU kink within h of a
        // pre-activation would break it; with 120 pre-activations of size ~1, the chance is
        // ~1e-4, and the seed is fixed.
        let mut norm_ratios = vec![Vec::new(); depth];
        let mut jac_ratios = vec![Vec::new(); depth];
        for b in 0..batch {
            let xb = &x[b * n..(b + 1) * n];
            let vb = &v[b * n..(b + 1) * n];
            let h = 1e-5 * norm(xb) / norm(vb);
            let moved =
                |s: f64| -> Vec<f64> { xb.iter().zip(vb).map(|(x, v)| x + s * v).collect() };
            let (plus, minus) = (
                forward(&moved(h), &weights, n, act, ln),
                forward(&moved(-h), &weights, n, act, ln),
            );
            let center = forward(xb, &weights, n, act, ln);
            for l in 0..depth {
                norm_ratios[l].push(norm(&center[l]) / norm(xb));
                let jv: Vec<f64> = plus[l]
                    .iter()
                    .zip(&minus[l])
                    .map(|(p, m)| (p - m) / (2.0 * h))
                    .collect();
                jac_ratios[l].push(norm(&jv) / norm(vb));
            }
        }
        // The GPU computes in f32 (sums of 8 products, LayerNorm, activations): a few ulp per
        // stage, about 1e-6 relative after 3 layers; 1e-4 leaves room while any wrong term
        // (a missing LayerNorm JVP term, a wrong derivative) is off by percents.
        for l in 0..depth {
            let label = format!("{} layer {}", c.label(), l + 1);
            let (m, s) = mean_std(&norm_ratios[l]);
            assert_rel_close(
                &format!("{label} norm"),
                &[r.norm_ratio[l] as f32, r.norm_spread[l] as f32],
                &[m, s],
                1e-4,
            );
            let (m, s) = mean_std(&jac_ratios[l]);
            assert_rel_close(
                &format!("{label} jacobian"),
                &[r.jacobian_ratio[l] as f32, r.jacobian_spread[l] as f32],
                &[m, s],
                1e-4,
            );
        }
    }
}

// ---- Overflow, errors, configuration sets ----

#[test]
fn exploding_networks_record_non_finite_values_without_failing() {
    // Gain 1000 on a linear network multiplies norms by ~1000 per layer: f32 overflows
    // (3.4e38) after about 13 layers; a ReLU network with He gain 100 after about 19.
    for (law, act, gain) in [
        (Init::XavierUniform, Activation::Identity, 1000.0f32),
        (Init::KaimingNormal, Activation::Relu, 100.0),
        (Init::LecunNormal, Activation::Selu, 100.0),
    ] {
        let c = PropagationConfig {
            batch: 8,
            ..config(law, act, gain, 32, 24)
        };
        let r = study(&c);
        assert!(
            r.norm_ratio[0].is_finite() && r.norm_ratio[0] > 10.0,
            "{}: {:?}",
            c.label(),
            r.norm_ratio
        );
        // The squared norms overflow first (at entries of about 1e19), then the entries; after
        // inf − inf the entries are NaN, which max(NaN, 0) may turn into 0 (ReLU): whatever
        // the GPU computed is recorded.
        let blown = |v: &[f64]| v.iter().any(|x| !x.is_finite());
        assert!(
            blown(&r.norm_ratio) && blown(&r.jacobian_ratio),
            "{}: {:?}",
            c.label(),
            r.norm_ratio
        );
        // Serializable: serde_json writes the non-finite values as null.
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("null"), "{json}");
    }
    // With LayerNorm the same network stays finite: every pre-activation is renormalized.
    let c = PropagationConfig {
        batch: 8,
        layernorm: true,
        ..config(Init::XavierUniform, Activation::Identity, 1000.0, 32, 24)
    };
    let r = study(&c);
    assert!(
        r.norm_ratio.iter().all(|v| v.is_finite()),
        "{:?}",
        r.norm_ratio
    );
}

#[test]
fn bad_configurations_are_errors() {
    let gpu = gpu();
    let good = config(Init::KaimingNormal, Activation::Relu, 1.0, 8, 2);
    let mut never = |_| panic!("no layer may run");
    for (bad, word) in [
        (PropagationConfig { width: 0, ..good }, "width"),
        (PropagationConfig { depth: 0, ..good }, "depth"),
        (PropagationConfig { batch: 0, ..good }, "batch"),
        (PropagationConfig { gain: 0.0, ..good }, "gain"),
        (
            PropagationConfig {
                gain: f32::NAN,
                ..good
            },
            "gain",
        ),
        (
            PropagationConfig {
                depth: propagation::MAX_DEPTH + 1,
                ..good
            },
            "depth",
        ),
        (
            PropagationConfig {
                activation: Activation::LeakyRelu {
                    slope: f32::INFINITY,
                },
                ..good
            },
            "leaky_relu",
        ),
    ] {
        let e = propagation::run(gpu, &bad, &mut never).unwrap_err();
        assert!(e.to_string().contains(word), "{e}");
    }
    let p = |inits: &[&str], acts: &[&str], gains: &[f32], widths: &[usize], depth| {
        product_configs(inits, acts, gains, widths, depth, 16, false, 1)
    };
    for (r, word) in [
        (p(&["he", "bogus"], &["relu"], &[1.0], &[8], 3), "bogus"),
        (p(&["he"], &["swish"], &[1.0], &[8], 3), "swish"),
        (p(&[], &["relu"], &[1.0], &[8], 3), "initialization"),
        (p(&["he"], &["relu"], &[], &[8], 3), "gain"),
        (p(&["he"], &["relu"], &[1.0], &[8, 0], 3), "width"),
        (p(&["he"], &["relu"], &[1.0], &[8], 0), "depth"),
        (p(&["he"], &["relu"], &[-1.0], &[8], 3), "gain"),
    ] {
        let e = r.unwrap_err();
        assert!(e.to_string().contains(word), "{e}");
    }
}

#[test]
fn configuration_sets() {
    let configs = default_configs(30, &[64, 256], 64, true, 7);
    assert_eq!(configs.len(), 14);
    let names: Vec<String> = configs[..7]
        .iter()
        .map(|c| format!("{}+{}@{}", c.init.name(), c.activation.name(), c.gain))
        .collect();
    assert_eq!(
        names,
        [
            "kaiming_normal+relu@1",
            "xavier_uniform+relu@1",
            "xavier_uniform+tanh@1",
            "lecun_normal+selu@1",
            "xavier_uniform+identity@0.9",
            "xavier_uniform+identity@1",
            "xavier_uniform+identity@1.1",
        ]
    );
    assert!(
        configs[..7].iter().all(|c| c.width == 64) && configs[7..].iter().all(|c| c.width == 256)
    );
    assert!(configs
        .iter()
        .all(|c| c.depth == 30 && c.batch == 64 && c.layernorm && c.seed == 7));

    let product = product_configs(
        &["he", "orthogonal"],
        &["relu", "linear", "tanh"],
        &[1.0, 2.0],
        &[8, 16],
        5,
        4,
        false,
        3,
    )
    .unwrap();
    assert_eq!(product.len(), 2 * 3 * 2 * 2);
    assert_eq!(product[0].init, Init::KaimingNormal);
    assert_eq!(product[1].width, 16, "widths vary fastest");
    assert_eq!(product[2].gain, 2.0);
    assert_eq!(product[4].activation, Activation::Identity);
    assert_eq!(product[23].init, Init::Orthogonal);
    assert_eq!(product[23].activation, Activation::Tanh);

    // The result serializes with the gain as written (0.9, not 0.899999976).
    let r = study(&PropagationConfig {
        batch: 4,
        ..config(Init::XavierUniform, Activation::Identity, 0.9, 8, 2)
    });
    assert_eq!(r.gain, 0.9);
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "init",
        "activation",
        "gain",
        "width",
        "layernorm",
        "norm_ratio",
        "norm_spread",
        "activation_variance",
        "jacobian_ratio",
        "jacobian_spread",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["init"], "xavier_uniform");
    assert_eq!(json["activation"], "identity");
}

// ---- The initialization laws ----

#[test]
fn init_variances_bounds_and_names() {
    let (fi, fo, g) = (300usize, 100usize, 1.5f32);
    let g2 = 2.25f64;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    assert!(close(
        Init::XavierUniform.variance(fi, fo, g),
        g2 * 2.0 / 400.0
    ));
    assert!(close(
        Init::XavierNormal.variance(fi, fo, g),
        g2 * 2.0 / 400.0
    ));
    assert!(close(
        Init::KaimingNormal.variance(fi, fo, g),
        g2 * 2.0 / 300.0
    ));
    assert!(close(
        Init::KaimingUniform.variance(fi, fo, g),
        g2 * 2.0 / 300.0
    ));
    assert!(close(Init::LecunNormal.variance(fi, fo, g), g2 / 300.0));
    assert!(close(Init::Orthogonal.variance(fi, fo, g), g2 / 300.0));
    assert!(close(Init::Orthogonal.variance(fo, fi, g), g2 / 300.0));
    // Uniform laws: variance a²/3.
    for law in [Init::XavierUniform, Init::KaimingUniform] {
        let a = law.bound(fi, fo, g).unwrap();
        assert!(
            close(a * a / 3.0, law.variance(fi, fo, g)),
            "{}",
            law.name()
        );
    }
    assert!(close(
        Init::KaimingUniform.bound(fi, fo, g).unwrap(),
        1.5 * (6.0f64 / 300.0).sqrt()
    ));
    for law in [
        Init::XavierNormal,
        Init::KaimingNormal,
        Init::LecunNormal,
        Init::Orthogonal,
    ] {
        assert!(law.bound(fi, fo, g).is_none());
    }
    // The lecture notes' U[−1/sqrt(d), 1/sqrt(d)] has variance 1/(3d), not 1/d.
    let d = 100.0f64;
    assert!(close((1.0 / d.sqrt()).powi(2) / 3.0, 1.0 / (3.0 * d)));

    for &name in Init::NAMES {
        assert_eq!(Init::from_name(name).unwrap().name(), name);
    }
    for (alias, law) in [
        ("xavier", Init::XavierUniform),
        ("glorot", Init::XavierUniform),
        ("glorot_normal", Init::XavierNormal),
        ("he", Init::KaimingNormal),
        ("he_normal", Init::KaimingNormal),
        ("kaiming", Init::KaimingNormal),
        ("lecun", Init::LecunNormal),
    ] {
        assert_eq!(Init::from_name(alias).unwrap(), law, "{alias}");
    }
    let e = Init::from_name("zeros").unwrap_err().to_string();
    assert!(e.contains("zeros") && e.contains("orthogonal"), "{e}");
}

#[test]
fn init_on_the_gpu_matches_the_cpu_and_has_its_moments() {
    let gpu = gpu();
    // Bit for bit for the uniform and orthogonal laws, 2e-6 for the normal ones (f32
    // Box–Muller on the GPU).
    for (shape, seed, stream) in [([31usize, 33usize], 3u64, 0u32), ([40, 7], 4, 5)] {
        for law in [
            Init::KaimingUniform,
            Init::KaimingNormal,
            Init::LecunNormal,
            Init::Orthogonal,
        ] {
            let got = init::weight(gpu, shape, law, 0.8, seed, stream)
                .unwrap()
                .to_vec(gpu)
                .unwrap();
            let want = init::weight_reference(shape, law, 0.8, seed, stream).unwrap();
            if matches!(law, Init::KaimingUniform | Init::Orthogonal) {
                let got: Vec<f64> = got.iter().map(|&v| f64::from(v)).collect();
                assert_eq!(got, want, "{} {shape:?}", law.name());
            } else {
                assert_rel_close(&format!("{} {shape:?}", law.name()), &got, &want, 2e-6);
            }
        }
    }
    // Sample variance of 256 × 512 = 131 072 draws: relative sd sqrt(2/N) = 3.9e-3 (normal),
    // sqrt(0.8/N) = 2.5e-3 (uniform); 5 sd.
    let shape = [256usize, 512usize];
    let count = (shape[0] * shape[1]) as f64;
    for (law, rel) in [
        (Init::KaimingNormal, (2.0 / count).sqrt()),
        (Init::KaimingUniform, (0.8 / count).sqrt()),
        (Init::LecunNormal, (2.0 / count).sqrt()),
    ] {
        let w = init::weight(gpu, shape, law, 1.2, 11, 0)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        let var = w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / count;
        let want = law.variance(shape[0], shape[1], 1.2);
        assert!(
            (var / want - 1.0).abs() < 5.0 * rel,
            "{}: variance {var}, expected {want}",
            law.name()
        );
    }
}

#[test]
fn orthogonal_weights_are_orthonormal_times_the_gain() {
    let gpu = gpu();
    // fan_in <= fan_out: orthonormal rows, W·Wᵀ = γ²I; fan_in > fan_out: orthonormal
    // columns, Wᵀ·W = γ²I. Entries rounded to f32: each inner product is off by about
    // sqrt(m)·u·γ² ≲ 1e-6; 1e-5 bounds it.
    let gain = 1.7f64;
    for (fi, fo) in [(5usize, 9usize), (9, 5), (16, 16), (1, 3), (3, 1)] {
        let w = init::weight(gpu, [fi, fo], Init::Orthogonal, gain as f32, 21, 2)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        let at = |i: usize, j: usize| f64::from(w[i * fo + j]);
        let (k, m) = (fi.min(fo), fi.max(fo));
        for a in 0..k {
            for b in 0..k {
                let dot: f64 = (0..m)
                    .map(|s| {
                        if fi <= fo {
                            at(a, s) * at(b, s)
                        } else {
                            at(s, a) * at(s, b)
                        }
                    })
                    .sum();
                let want = if a == b { gain * gain } else { 0.0 };
                assert!(
                    (dot - want).abs() < 1e-5,
                    "[{fi}, {fo}] vectors {a}, {b}: {dot}, expected {want}"
                );
            }
        }
        // Other streams, other matrices.
        let other = init::weight(gpu, [fi, fo], Init::Orthogonal, gain as f32, 21, 3)
            .unwrap()
            .to_vec(gpu)
            .unwrap();
        if fi * fo > 1 {
            assert_ne!(w, other, "[{fi}, {fo}]: streams 2 and 3 give one matrix");
        }
    }
    // The reused-buffer plan writes the same values.
    let w = Tensor::zeros(gpu, &[6, 4]).unwrap();
    let plan = init::plan(gpu, &w, Init::Orthogonal, 1.0, 5, 1).unwrap();
    assert!(plan.is_empty());
    let want = init::weight_reference([6, 4], Init::Orthogonal, 1.0, 5, 1).unwrap();
    let got: Vec<f64> = w.to_vec(gpu).unwrap().into_iter().map(f64::from).collect();
    assert_eq!(got, want);
    let not_2d = Tensor::zeros(gpu, &[24]).unwrap();
    assert!(init::plan(gpu, &not_2d, Init::Orthogonal, 1.0, 5, 1).is_err());
}
