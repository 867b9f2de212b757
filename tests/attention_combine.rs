//! The combine step of split-KV attention against its f64 reference: 1 to 7 key ranges,
//! awkward row, head and head-dimension counts, log-sum-exps spread over ±80 (so that some
//! weights underflow in f32), ranges that saw no key (lse NEG) with NaN in their partial rows,
//! rows that no range saw (exact zeros), blocks of rows, ranges and columns under small
//! bindings and a low loop limit, the loop-limit refusal and the shape errors. Outputs are
//! poisoned with NaN first, so an element never written fails.
//!
//! Tolerance: an output is a convex combination of S ≤ 7 partial values of order 1. Its f32
//! error is a few ulp per term from the weights (exp(x) for x ≤ 0 within a few ulp; a weight
//! with a larger error is exp(−|x|) small, which bounds its contribution), S roundings in
//! each of the two sums and one in the division: about (2S + 10) ulp ≈ 1.5e-6 of the largest
//! partial, and the norm of the output shrinks by at most sqrt(S) against the partials' as
//! random values average out. 1e-5 relative is above that; a wrong weight, head or index is
//! off by 1e-2 or more. Measured on lavapipe: every case below 5e-8.

mod common;

use common::{
    assert_rel_close, gpu, gpu_with_binding_limit, gpu_with_loop_limit, loop_refusal_of, poisoned,
    random, random_scaled,
};
use speckle::cpu::attention_combine::attention_combine as reference;
use speckle::ops::attention_combine::{self, loop_iterations, NEG};
use speckle::{Error, Gpu, Tensor};

const TOL: f64 = 1e-5;

/// Host inputs of one combine: `splits` ranges of `rows` rows of `heads` heads of `head_dim`.
struct Inputs {
    splits: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
    partials: Vec<f32>,
    lse: Vec<f32>,
}

impl Inputs {
    /// Seeded partials in [-1, 1) and lse in [-80, 80). With `holes`, some ranges saw no key
    /// for some (row, head) (lse NEG, partial row NaN), and every range missed the heads of
    /// [`Inputs::dark`].
    fn new(
        (splits, rows, heads, head_dim): (usize, usize, usize, usize),
        seed: u64,
        holes: bool,
    ) -> Inputs {
        let mut x = Inputs {
            splits,
            rows,
            heads,
            head_dim,
            partials: random(splits * rows * heads * head_dim, seed),
            lse: random_scaled(splits * rows * heads, seed + 1, 80.0),
        };
        if holes {
            for s in 0..splits {
                for r in 0..rows {
                    for h in 0..heads {
                        if x.dark(r, h) || (s + 2 * r + 3 * h) % 4 == 0 {
                            x.blank(s, r, h);
                        }
                    }
                }
            }
        }
        x
    }

    /// Whether the holes of [`Inputs::new`] leave head `h` of row `r` unseen by every range.
    fn dark(&self, r: usize, h: usize) -> bool {
        (r + 2 * h) % 5 == 3
    }

    /// Range `s` saw no key for head `h` of row `r`: lse NEG, and NaN in its partial row,
    /// which the combine must not read into the output.
    fn blank(&mut self, s: usize, r: usize, h: usize) {
        self.lse[(s * self.rows + r) * self.heads + h] = NEG;
        let row_len = self.heads * self.head_dim;
        let start = (s * self.rows + r) * row_len + h * self.head_dim;
        self.partials[start..start + self.head_dim].fill(f32::NAN);
    }

    fn row_len(&self) -> usize {
        self.heads * self.head_dim
    }

    fn label(&self) -> String {
        format!(
            "S {} R {} H {} D {}",
            self.splits, self.rows, self.heads, self.head_dim
        )
    }

    /// The inputs on `gpu`, as [S, R, H·D] and [S, R, H].
    fn upload(&self, gpu: &Gpu) -> (Tensor, Tensor) {
        let (s, r) = (self.splits, self.rows);
        (
            Tensor::from_slice(gpu, &self.partials, &[s, r, self.row_len()]).unwrap(),
            Tensor::from_slice(gpu, &self.lse, &[s, r, self.heads]).unwrap(),
        )
    }

    fn reference(&self) -> Vec<f64> {
        reference(
            &self.partials,
            &self.lse,
            self.splits,
            self.rows,
            self.heads,
            self.head_dim,
        )
    }

    /// Whether no range saw a key for head `h` of row `r`.
    fn unseen(&self, r: usize, h: usize) -> bool {
        (0..self.splits).all(|s| self.lse[(s * self.rows + r) * self.heads + h] == NEG)
    }
}

/// Combines `x` on `gpu` into a poisoned output, compares with the reference within [`TOL`],
/// checks that every head no range saw is exactly zero, and returns the number of dispatches.
fn check(gpu: &Gpu, x: &Inputs) -> usize {
    let (partials, lse) = x.upload(gpu);
    let out = poisoned(gpu, &[x.rows, x.row_len()]);
    let plan = attention_combine::plan(gpu, &partials, &lse, &out).unwrap();
    gpu.execute(&plan).unwrap();
    let got = out.to_vec(gpu).unwrap();
    assert_rel_close(&x.label(), &got, &x.reference(), TOL);
    for r in 0..x.rows {
        for h in (0..x.heads).filter(|&h| x.unseen(r, h)) {
            let start = r * x.row_len() + h * x.head_dim;
            let row = &got[start..start + x.head_dim];
            assert!(
                row.iter().all(|&v| v == 0.0),
                "{}: row {r} head {h}, which no range saw, is {row:?}, not zeros",
                x.label()
            );
        }
    }
    plan.len()
}

/// (S, R, H, D) with no dimension a multiple of anything in particular.
const SHAPES: [(usize, usize, usize, usize); 7] = [
    (1, 1, 1, 1),
    (1, 37, 3, 5),
    (2, 7, 2, 64),
    (3, 37, 3, 5),
    (3, 250, 4, 1),
    (7, 33, 1, 31),
    (7, 37, 3, 5),
];

#[test]
fn awkward_shapes_match_the_reference() {
    let gpu = gpu();
    for (k, &shape) in SHAPES.iter().enumerate() {
        check(gpu, &Inputs::new(shape, 10 + k as u64, false));
    }
}

#[test]
fn ranges_that_saw_no_key_are_left_out_even_with_nan_partials() {
    let gpu = gpu();
    for (k, &shape) in SHAPES.iter().enumerate() {
        let x = Inputs::new(shape, 20 + k as u64, true);
        assert!(
            x.partials.iter().any(|v| v.is_nan()),
            "{}: the test needs NaN partials",
            x.label()
        );
        check(gpu, &x);
    }
}

#[test]
fn heads_no_range_saw_are_exact_zeros() {
    let gpu = gpu();
    let mut x = Inputs::new((3, 6, 2, 7), 30, false);
    // Row 2 head 1 and every head of row 4: no range saw a key.
    for s in 0..x.splits {
        x.blank(s, 2, 1);
        x.blank(s, 4, 0);
        x.blank(s, 4, 1);
    }
    let (partials, lse) = x.upload(gpu);
    let out = attention_combine::run(gpu, &partials, &lse).unwrap();
    let got = out.to_vec(gpu).unwrap();
    assert_rel_close(&x.label(), &got, &x.reference(), TOL);
    let row_len = x.row_len();
    let unseen = [
        &got[2 * row_len + 7..3 * row_len],
        &got[4 * row_len..5 * row_len],
    ];
    for values in unseen {
        assert!(values.iter().all(|&v| v == 0.0), "{values:?}");
    }
    // The heads beside them were seen.
    assert!(got[2 * row_len..2 * row_len + 7].iter().all(|&v| v != 0.0));
}

#[test]
fn one_range_passes_its_partial_through_exactly() {
    // With one range the weight is exp(0) = 1 and the output the partial itself.
    let gpu = gpu();
    let x = Inputs::new((1, 37, 3, 5), 40, false);
    let (partials, lse) = x.upload(gpu);
    let got = attention_combine::run(gpu, &partials, &lse)
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    assert_eq!(got, x.partials);
}

#[test]
fn far_apart_log_sum_exps_take_the_dominant_range() {
    // lse 0 against -120: exp(-120) underflows in f32, so the output is range 1's partial
    // (to rounding); the reference keeps the 1e-52 of range 0.
    let gpu = gpu();
    let mut x = Inputs::new((2, 5, 2, 3), 50, false);
    for r in 0..x.rows {
        for h in 0..x.heads {
            x.lse[r * x.heads + h] = -120.0;
            x.lse[(x.rows + r) * x.heads + h] = 0.0;
        }
    }
    check(gpu, &x);
    let (partials, lse) = x.upload(gpu);
    let got = attention_combine::run(gpu, &partials, &lse)
        .unwrap()
        .to_vec(gpu)
        .unwrap();
    assert_eq!(got, x.partials[x.rows * x.row_len()..]);
}

#[test]
fn small_bindings_cut_rows_ranges_and_columns() {
    // 4 KiB bindings hold about 1,000 values: (2, 40, 3, 5) takes both ranges in blocks of
    // rows; (7, 37, 3, 5) one range (555 values) at a time; (3, 100, 3, 5) one range of some
    // rows at a time; (3, 2, 2, 600) and (2, 3, 200, 7) rows longer than a binding, in blocks of
    // columns that start inside a head.
    let gpu = gpu_with_binding_limit(4096);
    let cases = [
        (2, 40, 3, 5),
        (7, 37, 3, 5),
        (3, 100, 3, 5),
        (3, 2, 2, 600),
        (2, 3, 200, 7),
    ];
    for (k, &shape) in cases.iter().enumerate() {
        for holes in [false, true] {
            let x = Inputs::new(shape, 60 + k as u64, holes);
            let dispatches = check(&gpu, &x);
            assert!(
                dispatches > 1,
                "{}: {dispatches} dispatch(es) under a 4 KiB binding",
                x.label()
            );
        }
    }
}

#[test]
fn a_low_loop_limit_cuts_the_ranges_into_blocks() {
    for (per_dispatch, dispatches) in [(1, 7), (2, 4), (3, 3)] {
        let gpu = gpu_with_loop_limit(loop_iterations(per_dispatch));
        for holes in [false, true] {
            let x = Inputs::new((7, 37, 3, 5), 70 + per_dispatch as u64, holes);
            assert_eq!(
                check(&gpu, &x),
                dispatches,
                "{} with {per_dispatch} ranges per dispatch",
                x.label()
            );
        }
    }
}

#[test]
fn a_loop_limit_below_one_range_is_refused() {
    let limit = loop_iterations(1) - 1;
    let gpu = gpu_with_loop_limit(limit);
    let x = Inputs::new((2, 3, 2, 4), 80, false);
    let (partials, lse) = x.upload(&gpu);
    let out = poisoned(&gpu, &[x.rows, x.row_len()]);
    let e = attention_combine::plan(&gpu, &partials, &lse, &out)
        .map(|plan| plan.len())
        .expect_err("one range needs more loop passes than the limit");
    let r = loop_refusal_of(e, loop_iterations(1), limit, &[]);
    assert_eq!(r.kernel, "attention_combine", "{}", r.message);
}

#[test]
fn loop_iterations_count_two_loops_over_the_ranges() {
    // Each loop of n passes counts n + 1 (src/ops/loop_limit.rs).
    assert_eq!(loop_iterations(1), 4);
    assert_eq!(loop_iterations(7), 16);
}

/// The message of planning a combine of tensors of these shapes, which must be refused.
fn refusal(partials: &[usize], lse: &[usize], out: &[usize]) -> (Error, String) {
    let gpu = gpu();
    let t = |shape: &[usize]| Tensor::zeros(gpu, shape).unwrap();
    let e = attention_combine::plan(gpu, &t(partials), &t(lse), &t(out))
        .map(|plan| plan.len())
        .expect_err("mismatched shapes");
    let message = e.to_string();
    (e, message)
}

/// Shapes of partials, lse and out that do not fit, and words the refusal must contain.
type ShapeCase = (
    &'static [usize],
    &'static [usize],
    &'static [usize],
    &'static [&'static str],
);

#[test]
fn shape_errors_name_the_numbers() {
    let gpu = gpu();
    let t = |shape: &[usize]| Tensor::zeros(gpu, shape).unwrap();
    // The shapes the cases below break one at a time plan.
    attention_combine::plan(gpu, &t(&[2, 5, 12]), &t(&[2, 5, 3]), &t(&[5, 12])).unwrap();
    let cases: [ShapeCase; 6] = [
        (&[10, 12], &[2, 5, 3], &[5, 12], &["[10, 12]", "rank 2"]),
        (&[2, 5, 12], &[2, 5, 3], &[60], &["[60]", "rank 1"]),
        (&[2, 5, 12], &[3, 5, 3], &[5, 12], &["[3, 5, 3]", "S = 2"]),
        (&[2, 5, 12], &[2, 4, 3], &[5, 12], &["[2, 4, 3]", "R = 5"]),
        (&[2, 5, 12], &[2, 5, 3], &[5, 10], &["[5, 10]", "[5, 12]"]),
        (&[2, 5, 12], &[2, 5, 5], &[5, 12], &["12 values", "H = 5"]),
    ];
    for (p, l, o, words) in cases {
        let (e, message) = refusal(p, l, o);
        assert!(matches!(e, Error::Shape { .. }), "{message}");
        for word in words {
            assert!(message.contains(word), "{word:?} not in: {message}");
        }
    }
    let partials = t(&[1, 5, 12]);
    let in_place = partials.view(&[5, 12]).unwrap();
    let e = attention_combine::plan(gpu, &partials, &t(&[1, 5, 3]), &in_place)
        .map(|plan| plan.len())
        .expect_err("out aliases partials");
    assert!(e.to_string().contains("shares a buffer"), "{e}");
    let e = attention_combine::run(gpu, &t(&[5, 12]), &t(&[1, 5, 3]))
        .map(|out| out.len())
        .expect_err("partials of rank 2");
    assert!(e.to_string().contains("[5, 12]"), "{e}");
}
