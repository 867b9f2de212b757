//! Layer normalization and its Jacobian-vector product against the f64 reference, on shapes
//! that are not multiples of the workgroup (cols 1, 3, 33, 127, 1000, 5000; those that are
//! multiples of 4, and 4 and 256, run the vec4 entry point, the others the scalar one), with
//! poisoned outputs; row statistics of the output; the JVP against central finite
//! differences; rows past the adapter's loop limit refused.
//!
//! Tolerance (`tol`). The kernel's statistics are merged (Chan et al.'s pairwise update) over
//! a thread's cols/(4·WG) blocks of four and then a tree of log2(WG) levels, on values shifted
//! by the row's first; like summation, each merge adds a relative error of a few u = 2⁻²⁴ to
//! the mean and the sum of squared deviations, so the error grows with k = cols/WG + log2(WG)
//! at most. The inputs are offset + U[−a, a), whose values differ from the shift by at most
//! 2a, while σ ≈ a/sqrt(3): the mean's error is at most k·u·2a ≈ 3.5·k·u·σ, the variance's
//! about 2·k·u·σ², so x̂ carries at most about (3.5 + 1)·k·u plus a few u from the element's
//! own operations. `tol` = 6·(k + 2)·u for the values and 12·(k + 2)·u for the JVP (whose two
//! extra statistics, the mean of t and the co-moment, have the same bounds): a few 1e-6 at
//! cols 5000, while a wrong ε, a wrong divisor (n − 1 for n) or a missing term is off by 1e-4
//! or more. These are worst-case bounds; on lavapipe the measured errors are about one ulp.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, poisoned,
    random, random_scaled,
};
use speckle::cpu::layernorm::{layernorm, layernorm_f64, layernorm_jvp, layernorm_jvp_f64};
use speckle::ops::layernorm::{self, LayerNormOptions, DEFAULT_EPS};
use speckle::{Gpu, Tensor};

const U: f64 = 1.0 / 16_777_216.0;

/// The workgroup size the host picks for rows of `cols` (`ops::row_workgroup_size` on an
/// adapter allowing 256 threads).
fn wg(cols: usize) -> usize {
    cols.next_power_of_two().clamp(32, 256)
}

/// 6·(cols/WG + log2(WG) + 2)·u: see the module docs.
fn tol(cols: usize) -> f64 {
    let w = wg(cols);
    6.0 * ((cols / w) as f64 + (w as f64).log2() + 2.0) * U
}

/// Seeded rows `offset + U[−scale, scale)`.
fn rows(len: usize, seed: u64, offset: f32, scale: f32) -> Vec<f32> {
    random_scaled(len, seed, scale)
        .into_iter()
        .map(|v| v + offset)
        .collect()
}

const SHAPES: [(usize, usize); 8] = [
    (1, 1),
    (7, 3),
    (3, 4),
    (250, 33),
    (5, 127),
    (9, 256),
    (33, 1000),
    (3, 5000),
];

#[test]
fn rows_of_whole_vec4s_take_the_vec4_entry() {
    let vec4: Vec<usize> = SHAPES
        .iter()
        .map(|&(_, c)| c)
        .filter(|&c| layernorm::takes_vec4(c))
        .collect();
    assert_eq!(vec4, [4, 256, 1000, 5000]);
}

#[test]
fn values_match_the_reference() {
    let gpu = gpu();
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let seed = 10 + i as u64;
        let x_host = rows(r * c, seed, 2.5, 3.0);
        let g_host: Vec<f32> = random(c, seed + 100).iter().map(|v| 1.0 + v).collect();
        let b_host = random(c, seed + 200);
        let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
        let g = Tensor::from_slice(gpu, &g_host, &[c]).unwrap();
        let b = Tensor::from_slice(gpu, &b_host, &[c]).unwrap();
        for (what, gamma, beta) in [
            ("plain", None, None),
            ("gamma", Some(&g), None),
            ("gamma and beta", Some(&g), Some(&b)),
        ] {
            let options = LayerNormOptions {
                gamma,
                beta,
                eps: DEFAULT_EPS,
            };
            let y = poisoned(gpu, &[r, c]);
            gpu.execute(&layernorm::plan(gpu, &x, &y, &options).unwrap())
                .unwrap();
            let want = layernorm(
                &x_host,
                c,
                gamma.map(|_| g_host.as_slice()),
                beta.map(|_| b_host.as_slice()),
                f64::from(DEFAULT_EPS),
            );
            let got = y.to_vec(gpu).unwrap();
            if c == 1 && beta.is_none() {
                // One value per row: x − μ = 0 exactly, so y = 0 (β) exactly.
                assert!(got.iter().all(|&v| v == 0.0), "{what} [{r}, 1]: {got:?}");
            }
            assert_rel_close(&format!("{what} [{r}, {c}]"), &got, &want, tol(c));
        }
    }
}

#[test]
fn rows_have_mean_zero_and_variance_one() {
    let gpu = gpu();
    // With γ = 1, β = 0, each output row has mean 0 and biased variance σ²/(σ² + ε) exactly;
    // the f32 output deviates by at most e = tol per value (relative to x̂ ~ 1), so the row
    // mean by e and the variance by 2e + e².
    for (i, &(r, c)) in [(7usize, 3usize), (33, 1000), (3, 5000)].iter().enumerate() {
        let x_host = rows(r * c, 40 + i as u64, -1.5, 2.0);
        let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
        let y = poisoned(gpu, &[r, c]);
        gpu.execute(&layernorm::plan(gpu, &x, &y, &Default::default()).unwrap())
            .unwrap();
        let y = y.to_vec(gpu).unwrap();
        let e = tol(c);
        for (row, (xr, yr)) in x_host.chunks(c).zip(y.chunks(c)).enumerate() {
            let n = c as f64;
            let (xm, xv) = mean_var(xr);
            let (m, v) = mean_var(yr);
            let want = xv / (xv + f64::from(DEFAULT_EPS));
            assert!(
                m.abs() <= e,
                "[{r}, {c}] row {row}: mean {m:.3e}, tolerance {e:.3e} (input mean {xm})"
            );
            assert!(
                (v - want).abs() <= 2.0 * e + e * e,
                "[{r}, {c}] row {row}: variance {v}, expected {want} (tolerance {:.3e}, n = {n})",
                2.0 * e + e * e
            );
            if c >= 1000 {
                // Long rows have σ² ≈ a²/3 = 4/3 (a = 2), so ε/σ² ≈ 7.5e-6: variance 1.
                assert!((v - 1.0).abs() < 1e-4, "[{r}, {c}] row {row}: variance {v}");
            }
        }
    }
}

/// Mean and biased variance in f64.
fn mean_var(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / n;
    (m, var)
}

#[test]
fn a_large_common_offset_costs_no_precision() {
    let gpu = gpu();
    // Rows 1000 + U[−1, 1): a one-pass E[x²] − μ² in f32 would lose every digit (x² ≈ 1e6,
    // ulp 0.06, against σ² ≈ 1/3); the shifted statistics see only x − x[0], within ±2, and
    // merge deviations from means, never raw squares, so the bound of the module docs holds
    // unchanged.
    let (r, c) = (9, 1000);
    let x_host = rows(r * c, 50, 1000.0, 1.0);
    let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
    let y = layernorm::run(gpu, &x, &Default::default()).unwrap();
    let want = layernorm(&x_host, c, None, None, f64::from(DEFAULT_EPS));
    assert_rel_close("offset 1000", &y.to_vec(gpu).unwrap(), &want, tol(c));
}

#[test]
fn jvp_matches_the_reference_and_finite_differences() {
    let gpu = gpu();
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let seed = 60 + i as u64;
        let x_host = rows(r * c, seed, 0.7, 2.0);
        let t_host = random(r * c, seed + 1);
        let g_host: Vec<f32> = random(c, seed + 2).iter().map(|v| 1.0 + v).collect();
        let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
        let t = Tensor::from_slice(gpu, &t_host, &[r, c]).unwrap();
        let g = Tensor::from_slice(gpu, &g_host, &[c]).unwrap();
        let b = Tensor::from_slice(gpu, &random(c, seed + 3), &[c]).unwrap();
        for (what, gamma) in [("plain", None), ("gamma", Some(&g))] {
            // β is given to show that the JVP ignores it.
            let options = LayerNormOptions {
                gamma,
                beta: Some(&b),
                eps: DEFAULT_EPS,
            };
            let dy = poisoned(gpu, &[r, c]);
            gpu.execute(&layernorm::plan_jvp(gpu, &x, &t, &dy, &options).unwrap())
                .unwrap();
            let got = dy.to_vec(gpu).unwrap();
            let gamma_host = gamma.map(|_| g_host.as_slice());
            let want = layernorm_jvp(&x_host, &t_host, c, gamma_host, f64::from(DEFAULT_EPS));
            assert_rel_close(&format!("jvp {what} [{r}, {c}]"), &got, &want, 2.0 * tol(c));

            // Central differences of the f64 reference: the truncation error is O(h²) relative
            // (third derivatives of size ~1/σ³ with σ ≈ 1.15, t ~ 1), 1e-8 at h = 1e-4; the
            // rounding error 1e-16/h = 1e-12. 1e-6 bounds both.
            let h = 1e-4;
            let x64: Vec<f64> = x_host.iter().map(|&v| f64::from(v)).collect();
            let t64: Vec<f64> = t_host.iter().map(|&v| f64::from(v)).collect();
            let g64: Option<Vec<f64>> =
                gamma_host.map(|g| g.iter().map(|&v| f64::from(v)).collect());
            let moved = |s: f64| -> Vec<f64> {
                let xs: Vec<f64> = x64.iter().zip(&t64).map(|(x, t)| x + s * t).collect();
                layernorm_f64(&xs, c, g64.as_deref(), None, f64::from(DEFAULT_EPS))
            };
            let (plus, minus) = (moved(h), moved(-h));
            let fd: Vec<f64> = plus
                .iter()
                .zip(&minus)
                .map(|(p, m)| (p - m) / (2.0 * h))
                .collect();
            let exact = layernorm_jvp_f64(&x64, &t64, c, g64.as_deref(), f64::from(DEFAULT_EPS));
            let fd32: Vec<f32> = fd.iter().map(|&v| v as f32).collect();
            // fd rounded to f32 adds u/2 relative.
            assert_rel_close(
                &format!("finite differences {what} [{r}, {c}]"),
                &fd32,
                &exact,
                1e-6,
            );
            assert_rel_close(
                &format!("jvp against finite differences {what} [{r}, {c}]"),
                &got,
                &fd,
                2.0 * tol(c) + 1e-6,
            );
        }
    }
}

#[test]
fn rows_held_in_registers_match_the_reference() {
    // Rows of whole vec4s up to 4 · MAX_HELD · WG values are read once and held (on lavapipe,
    // WG = 8: every count of held vec4s, the last one partial); 260 columns are read twice.
    let gpu = gpu();
    for (i, c) in [12, 36, 100, 252, 260].into_iter().enumerate() {
        let r = 9;
        let seed = 80 + i as u64;
        let x_host = rows(r * c, seed, 1.5, 2.0);
        let t_host = random(r * c, seed + 1);
        let g_host: Vec<f32> = random(c, seed + 2).iter().map(|v| 1.0 + v).collect();
        let b_host = random(c, seed + 3);
        let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
        let t = Tensor::from_slice(gpu, &t_host, &[r, c]).unwrap();
        let g = Tensor::from_slice(gpu, &g_host, &[c]).unwrap();
        let b = Tensor::from_slice(gpu, &b_host, &[c]).unwrap();
        let options = LayerNormOptions {
            gamma: Some(&g),
            beta: Some(&b),
            eps: DEFAULT_EPS,
        };
        let eps = f64::from(DEFAULT_EPS);
        let y = poisoned(gpu, &[r, c]);
        gpu.execute(&layernorm::plan(gpu, &x, &y, &options).unwrap())
            .unwrap();
        let want = layernorm(&x_host, c, Some(&g_host), Some(&b_host), eps);
        assert_rel_close(
            &format!("held [{r}, {c}]"),
            &y.to_vec(gpu).unwrap(),
            &want,
            tol(c),
        );
        let dy = poisoned(gpu, &[r, c]);
        gpu.execute(&layernorm::plan_jvp(gpu, &x, &t, &dy, &options).unwrap())
            .unwrap();
        let want = layernorm_jvp(&x_host, &t_host, c, Some(&g_host), eps);
        let label = format!("held jvp [{r}, {c}]");
        assert_rel_close(&label, &dy.to_vec(gpu).unwrap(), &want, 2.0 * tol(c));
    }
}

#[test]
fn in_place_and_aliased_outputs() {
    let gpu = gpu();
    for (r, c) in [(6, 250), (5, 252)] {
        in_place(gpu, r, c);
    }
}

fn in_place(gpu: &Gpu, r: usize, c: usize) {
    let x_host = rows(r * c, 70, 0.3, 1.0);
    let t_host = random(r * c, 71);
    let eps = f64::from(DEFAULT_EPS);
    // The JVP into t, then the values into x (the order a network layer uses).
    let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
    let t = Tensor::from_slice(gpu, &t_host, &[r, c]).unwrap();
    gpu.execute(&layernorm::plan_jvp(gpu, &x, &t, &t, &Default::default()).unwrap())
        .unwrap();
    gpu.execute(&layernorm::plan(gpu, &x, &x, &Default::default()).unwrap())
        .unwrap();
    assert_rel_close(
        &format!("jvp in place [{r}, {c}]"),
        &t.to_vec(gpu).unwrap(),
        &layernorm_jvp(&x_host, &t_host, c, None, eps),
        2.0 * tol(c),
    );
    assert_rel_close(
        &format!("values in place [{r}, {c}]"),
        &x.to_vec(gpu).unwrap(),
        &layernorm(&x_host, c, None, None, eps),
        tol(c),
    );
}

#[test]
fn many_rows_are_split_over_dispatches_and_long_rows_are_errors() {
    let gpu = gpu_with_binding_limit(1024);
    // Rows of 44 values take the vec4 entry; 5 of them fill a dispatch, so later windows
    // start inside the binding's alignment (at element 4 with lavapipe's 32 bytes).
    for (r, c) in [(100, 33), (100, 44)] {
        split_rows(&gpu, r, c);
    }
    // A row of 1000 values does not fit a 1 KiB binding.
    let long = Tensor::zeros(&gpu, &[2, 1000]).unwrap();
    let e = layernorm::plan(&gpu, &long, &long, &Default::default()).unwrap_err();
    assert!(
        e.to_string().contains("1000") && e.to_string().contains("binding"),
        "{e}"
    );
}

fn split_rows(gpu: &Gpu, r: usize, c: usize) {
    let x_host = rows(r * c, 80, 1.0, 2.0);
    let t_host = random(r * c, 81);
    let x = Tensor::from_slice(gpu, &x_host, &[r, c]).unwrap();
    let t = Tensor::from_slice(gpu, &t_host, &[r, c]).unwrap();
    let y = poisoned(gpu, &[r, c]);
    let plan = layernorm::plan(gpu, &x, &y, &Default::default()).unwrap();
    assert!(
        plan.len() >= 10,
        "1 KiB bindings must split {} KB ({} dispatches)",
        r * c * 4 / 1000,
        plan.len()
    );
    gpu.execute(&plan).unwrap();
    let eps = f64::from(DEFAULT_EPS);
    assert_rel_close(
        &format!("chunked values [{r}, {c}]"),
        &y.to_vec(gpu).unwrap(),
        &layernorm(&x_host, c, None, None, eps),
        tol(c),
    );
    let dy = poisoned(gpu, &[r, c]);
    gpu.execute(&layernorm::plan_jvp(gpu, &x, &t, &dy, &Default::default()).unwrap())
        .unwrap();
    assert_rel_close(
        &format!("chunked jvp [{r}, {c}]"),
        &dy.to_vec(gpu).unwrap(),
        &layernorm_jvp(&x_host, &t_host, c, None, eps),
        2.0 * tol(c),
    );
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(gpu, &[4, 5]).unwrap();
    let y = Tensor::zeros(gpu, &[5, 4]).unwrap();
    let e = layernorm::plan(gpu, &x, &y, &Default::default()).unwrap_err();
    assert!(
        e.to_string().contains("[4, 5]") && e.to_string().contains("[5, 4]"),
        "{e}"
    );
    assert!(layernorm::plan_jvp(gpu, &x, &y, &x, &Default::default()).is_err());
    let g = Tensor::zeros(gpu, &[4]).unwrap();
    let e = layernorm::run(
        gpu,
        &x,
        &LayerNormOptions {
            gamma: Some(&g),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("gamma") && e.to_string().contains("[4]"),
        "{e}"
    );
    let e = layernorm::run(
        gpu,
        &x,
        &LayerNormOptions {
            beta: Some(&g),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("beta"), "{e}");
    for eps in [-1.0, f32::NAN, f32::INFINITY] {
        let options = LayerNormOptions {
            eps,
            ..Default::default()
        };
        assert!(layernorm::run(gpu, &x, &options).is_err(), "eps {eps}");
    }
}

/// Asserts that planning rows of `cols` values on `gpu` is refused for the loop limit, in
/// both modes, with the numbers in the message.
fn assert_refused(gpu: &Gpu, cols: usize, iterations: u64, limit: u64, longest: u64) {
    let x = Tensor::zeros(gpu, &[1, cols]).unwrap();
    let y = Tensor::zeros(gpu, &[1, cols]).unwrap();
    let options = LayerNormOptions::default();
    for e in [
        layernorm::plan(gpu, &x, &y, &options).unwrap_err(),
        layernorm::plan_jvp(gpu, &x, &x, &y, &options).unwrap_err(),
    ] {
        loop_refusal_of(e, iterations, limit, &[&longest.to_string()]);
    }
}

#[test]
fn rows_past_the_loop_limit_are_refused_before_anything_runs() {
    // With 256 threads, an invocation over 5,000 values loops 2 · (5 + 1) + 8 + 1 = 21 times
    // (a loop of n passes counts n + 1; a pass takes a block of 4 · 256 values): within a
    // limit of 21 (checked against the reference), refused under 20 (whose longest rows are
    // 4 · 1,024 = 4,096 values). On a CPU adapter the rows get 256 threads too, the fewest
    // whose loops fit.
    assert_eq!(layernorm::loops(5000, 256), 21);
    let gpu21 = gpu_with_loop_limit(21);
    let (r, c) = (3, 5000);
    let x_host = rows(r * c, 70, 0.5, 2.0);
    let x = Tensor::from_slice(&gpu21, &x_host, &[r, c]).unwrap();
    let y = poisoned(&gpu21, &[r, c]);
    gpu21
        .execute(&layernorm::plan(&gpu21, &x, &y, &Default::default()).unwrap())
        .unwrap();
    let want = layernorm(&x_host, c, None, None, f64::from(DEFAULT_EPS));
    assert_rel_close("limit 21", &y.to_vec(&gpu21).unwrap(), &want, tol(c));
    assert_refused(&gpu_with_loop_limit(20), 5000, 21, 20, 4096);
}

#[test]
fn a_row_of_six_million_values_fits_lavapipes_loop_limit() {
    // Refused while each of three passes took one value per loop pass (70,335 loops with 256
    // threads against lavapipe's 65,535): now two passes of blocks of four, 64 threads on a
    // CPU adapter (2 · (23,438 + 1) + 7 = 46,885 loops), and the row matches the reference.
    let gpu = gpu();
    let c = 6_000_000;
    let x_host = rows(c, 71, 0.5, 2.0);
    let x = Tensor::from_slice(gpu, &x_host, &[1, c]).unwrap();
    let y = poisoned(gpu, &[1, c]);
    gpu.execute(&layernorm::plan(gpu, &x, &y, &Default::default()).unwrap())
        .unwrap();
    let want = layernorm(&x_host, c, None, None, f64::from(DEFAULT_EPS));
    let got = y.to_vec(gpu).unwrap();
    assert_rel_close("6,000,000 values", &got, &want, tol(c));
    // The norm-relative bound above would let a few wrong blocks of four through (one such
    // block moves it by about sqrt(16 / 6e6) = 1.6e-3): every value is also checked on its own.
    // The outputs are below sqrt(3) in magnitude and carry the statistics' f32 error, measured
    // 3.1e-6 at worst; a wrong block is off by O(1).
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() <= 1e-4,
            "value {i} of 6,000,000: {g} against {w}"
        );
    }
}
