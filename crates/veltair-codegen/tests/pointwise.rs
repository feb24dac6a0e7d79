//! Element-wise kernels against the reference evaluator: every supported unary operator over a
//! sweep of ordinary and special values, the accuracy of the vector math over the whole f32
//! range, fixed broadcast patterns, and random broadcast chains over random shapes and thread
//! counts.
//!
//! Tolerances: operators computed exactly (arithmetic, Relu, Clip, rounding…) must match to
//! 2 ulp; approximations within `abs·max(1, |x|) + rel·|want|` with the bounds in `tolerance`;
//! random chains, whose last step may be an approximation, within 1e-5 + 1e-5·|want|.

mod common;

use common::values;
use proptest::prelude::*;
use veltair_codegen::pointwise::{compile_pointwise, PointwiseSpec, PointwiseStep, MAX_RANK};
use veltair_codegen::{CodegenError, OptLevel, Target};
use veltair_ir::{BinaryOp, Op, Tensor, UnaryOp};
use veltair_load::LoadedKernel;

/// Runs `spec` on `inputs` with `threads` threads.
fn run(spec: &PointwiseSpec, inputs: &[Vec<f32>], threads: usize, opt: OptLevel) -> Vec<f32> {
    let target = Target::x86_64_v3(opt).unwrap();
    let code = compile_pointwise(spec, &target).unwrap();
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut bufs: Vec<Vec<f32>> = inputs.to_vec();
    bufs.push(vec![f32::NAN; spec.out_shape.iter().product()]);
    let mut args: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    kernel.run(&mut args, threads).unwrap();
    bufs.pop().unwrap()
}

fn run_unary(op: UnaryOp, xs: &[f32], opt: OptLevel) -> Vec<f32> {
    let n = xs.len();
    let spec = PointwiseSpec { out_shape: vec![n], inputs: vec![vec![n]], steps: vec![PointwiseStep::Unary(op)] };
    run(&spec, &[xs.to_vec()], 2, opt)
}

fn reference_unary(op: UnaryOp, xs: &[f32]) -> Vec<f32> {
    let x = Tensor::from_f32(vec![xs.len()], xs.to_vec()).unwrap();
    let y = veltair_ref::eval_op(&Op::Unary(op), &[Some(&x)]).unwrap().remove(0);
    y.as_f32("y").unwrap().to_vec()
}

/// Every operator the kernels support, with attributes.
fn unary_ops() -> Vec<UnaryOp> {
    use UnaryOp::*;
    vec![
        Sqrt,
        Reciprocal,
        Exp,
        Log,
        Erf,
        Neg,
        Abs,
        Sign,
        Floor,
        Ceil,
        Round,
        Tanh,
        Sigmoid,
        Silu,
        Softplus,
        Softsign,
        Relu,
        HardSwish,
        LeakyRelu { alpha: 0.01 },
        Elu { alpha: 1.5 },
        Selu { alpha: 1.673_263_2, gamma: 1.050_701 },
        Celu { alpha: 0.7 },
        Celu { alpha: -2.0 },
        ThresholdedRelu { alpha: 0.9 },
        HardSigmoid { alpha: 0.2, beta: 0.5 },
        Clip { min: Some(-0.5), max: Some(6.0) },
        Clip { min: None, max: Some(0.25) },
        Clip { min: Some(0.1), max: None },
        Gelu { tanh: false },
        Gelu { tanh: true },
    ]
}

/// `(abs, rel)`: allowed error `abs·max(1, |x|) + rel·|want|`.
fn tolerance(op: UnaryOp) -> (f32, f32) {
    use UnaryOp::*;
    match op {
        Exp | Tanh | Sigmoid | Silu => (1e-38, 1e-6),
        Log | Softplus | Elu { .. } | Selu { .. } | Celu { .. } => (1e-7, 1e-6),
        Erf | Gelu { tanh: false } => (2e-7, 0.0),
        Gelu { tanh: true } => (1e-6, 1e-5),
        _ => (0.0, 2.5e-7),
    }
}

/// A dense grid on [−12, 12] plus special and extreme values.
fn sweep() -> Vec<f32> {
    let mut v: Vec<f32> = (-2400..=2400).map(|i| i as f32 / 200.0).collect();
    v.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-30,
        -1e-30,
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        30.5,
        -30.5,
        88.5,
        88.8,
        -87.5,
        -95.0,
        -103.0,
        -110.0,
        100.0,
        -100.0,
        1e30,
        -1e30,
        0.5,
        1.5,
        2.5,
        -2.5,
    ]);
    v
}

#[test]
fn every_unary_op_matches_reference() {
    let xs = sweep();
    for op in unary_ops() {
        let want = reference_unary(op, &xs);
        let (abs, rel) = tolerance(op);
        for opt in [OptLevel::None, OptLevel::Speed] {
            let got = run_unary(op, &xs, opt);
            for ((&x, &g), &w) in xs.iter().zip(&got).zip(&want) {
                if x.is_nan() && matches!(op, UnaryOp::Celu { .. }) {
                    assert!(g.is_nan(), "{op:?}(NaN) = {g}");
                    continue;
                }
                let ok =
                    (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= abs * x.abs().max(1.0) + rel * w.abs();
                assert!(ok, "{op:?}({x:e}) = {g:e}, reference {w:e} ({opt:?})");
            }
        }
    }
}

/// Largest error of `got` against `truth` over `xs`, relative where `|truth| ≥ floor` and
/// absolute below; `None` entries of `truth` are skipped.
fn max_error(xs: &[f32], got: &[f32], truth: impl Fn(f32) -> f64, floor: f64, name: &str) -> (f64, f64) {
    let (mut worst_rel, mut worst_abs) = (0f64, 0f64);
    for (&x, &g) in xs.iter().zip(got) {
        let t = truth(x);
        if t.is_nan() {
            assert!(g.is_nan(), "{name}({x:e}) = {g:e}, want NaN");
            continue;
        }
        let t32 = t as f32;
        if t32.is_infinite() {
            assert_eq!(g, t32, "{name}({x:e}) should overflow");
            continue;
        }
        let err = (g as f64 - t).abs();
        if t.abs() >= floor {
            worst_rel = worst_rel.max(err / t.abs());
        } else {
            worst_abs = worst_abs.max(err);
        }
    }
    (worst_rel, worst_abs)
}

fn erf_reference(xs: &[f32]) -> Vec<f32> {
    reference_unary(UnaryOp::Erf, xs)
}

#[test]
fn math_accuracy_over_the_f32_range() {
    // Every 331st bit pattern: ~13 million values of both signs, all exponents.
    let mut xs: Vec<f32> = (0..=u32::MAX).step_by(331).map(f32::from_bits).collect();
    xs.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 88.72283, 88.7229, -87.33655, -103.972, -103.98]);
    let normal = f32::MIN_POSITIVE as f64;
    let sub_ulp = 2f64.powi(-149);

    let got = run_unary(UnaryOp::Exp, &xs, OptLevel::Speed);
    let (rel, abs) = max_error(&xs, &got, |x| (x as f64).exp(), normal, "exp");
    eprintln!("exp: max relative error {rel:.3e}, subnormal absolute {abs:.3e}");
    assert!(rel <= 1e-7 && abs <= sub_ulp);

    let got = run_unary(UnaryOp::Sigmoid, &xs, OptLevel::Speed);
    let (rel, abs) = max_error(&xs, &got, |x| 1.0 / (1.0 + (-(x as f64)).exp()), normal, "sigmoid");
    eprintln!("sigmoid: max relative error {rel:.3e}, subnormal absolute {abs:.3e}");
    assert!(rel <= 2e-7 && abs <= 2.0 * sub_ulp);

    let got = run_unary(UnaryOp::Tanh, &xs, OptLevel::Speed);
    let (rel, abs) = max_error(&xs, &got, |x| (x as f64).tanh(), 0.0, "tanh");
    eprintln!("tanh: max relative error {rel:.3e}");
    assert!(rel <= 2e-7 && abs == 0.0);

    let got = run_unary(UnaryOp::Log, &xs, OptLevel::Speed);
    let (rel, abs) = max_error(&xs, &got, |x| (x as f64).ln(), 0.0, "log");
    eprintln!("log: max relative error {rel:.3e}");
    assert!(rel <= 1e-7 && abs == 0.0);

    // expm1 through Elu with α = 1 (x < 0) and Celu with α = −1 (x > 0: −expm1(−x)).
    let got = run_unary(UnaryOp::Elu { alpha: 1.0 }, &xs, OptLevel::Speed);
    let elu = |x: f32| if x < 0.0 { (x as f64).exp_m1() } else { x as f64 };
    let (rel, _) = max_error(&xs, &got, elu, 0.0, "expm1");
    eprintln!("expm1 (x < 0): max relative error {rel:.3e}");
    assert!(rel <= 1.5e-7);
    let got = run_unary(UnaryOp::Celu { alpha: -1.0 }, &xs, OptLevel::Speed);
    let celu = |x: f32| if x < 0.0 { -(-(x as f64)).exp_m1() } else { x as f64 };
    let (rel, _) = max_error(&xs, &got, celu, 0.0, "expm1");
    eprintln!("expm1 (x > 0): max relative error {rel:.3e}");
    assert!(rel <= 1.5e-7);

    // log1p through Softplus: max(x, 0) + ln(1 + e^−|x|).
    let got = run_unary(UnaryOp::Softplus, &xs, OptLevel::Speed);
    let softplus = |x: f32| {
        let x = x as f64;
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    };
    let (rel, abs) = max_error(&xs, &got, softplus, normal, "softplus");
    eprintln!("softplus: max relative error {rel:.3e}, subnormal absolute {abs:.3e}");
    assert!(rel <= 2e-7 && abs <= sub_ulp);

    let got = run_unary(UnaryOp::Erf, &xs, OptLevel::Speed);
    let want = erf_reference(&xs);
    let mut worst = 0f32;
    for ((&x, &g), &w) in xs.iter().zip(&got).zip(&want) {
        if w.is_nan() {
            assert!(g.is_nan(), "erf({x:e}) = {g:e}, want NaN");
        } else {
            worst = worst.max((g - w).abs());
        }
    }
    eprintln!("erf: max absolute error {worst:.3e}");
    assert!(worst <= 1.5e-7);
}

/// Checks `steps` over `out` with inputs of shapes `inputs` against the reference evaluator.
fn check_chain(
    out: &[usize],
    inputs: &[Vec<usize>],
    steps: &[PointwiseStep],
    threads: usize,
    opt: OptLevel,
) -> Result<(), TestCaseError> {
    let data: Vec<Vec<f32>> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| values(s.iter().product(), i as u32 + 7).into_iter().map(|v| 3.0 * v).collect())
        .collect();
    let tensors: Vec<Tensor> =
        inputs.iter().zip(&data).map(|(s, d)| Tensor::from_f32(s.clone(), d.clone()).unwrap()).collect();
    let eval = |op: Op, args: &[&Tensor]| {
        let args: Vec<Option<&Tensor>> = args.iter().map(|&t| Some(t)).collect();
        veltair_ref::eval_op(&op, &args).unwrap().remove(0)
    };
    let mut acc = eval(Op::Expand(out.to_vec()), &[&tensors[0]]);
    for step in steps {
        acc = match *step {
            PointwiseStep::Unary(u) => eval(Op::Unary(u), &[&acc]),
            PointwiseStep::Binary { op, input, operand_first: true } => eval(Op::Binary(op), &[&tensors[input], &acc]),
            PointwiseStep::Binary { op, input, operand_first: false } => eval(Op::Binary(op), &[&acc, &tensors[input]]),
        };
    }
    let spec = PointwiseSpec { out_shape: out.to_vec(), inputs: inputs.to_vec(), steps: steps.to_vec() };
    let got = run(&spec, &data, threads, opt);
    let want = acc.as_f32("want").unwrap();
    prop_assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-5 + 1e-5 * w.abs();
        prop_assert!(ok, "element {}: got {}, want {} ({:?})", i, g, w, spec);
    }
    Ok(())
}

#[test]
fn broadcast_patterns() {
    let add = |input| PointwiseStep::Binary { op: BinaryOp::Add, input, operand_first: false };
    let mul = |input| PointwiseStep::Binary { op: BinaryOp::Mul, input, operand_first: true };
    let relu = PointwiseStep::Unary(UnaryOp::Relu);
    let cases: Vec<(Vec<usize>, Vec<Vec<usize>>)> = vec![
        // NHWC per-channel bias, NCHW per-channel bias, scalar, per-row, full residual.
        (vec![2, 3, 5, 7], vec![vec![2, 3, 5, 7], vec![7]]),
        (vec![2, 6, 3, 3], vec![vec![2, 6, 3, 3], vec![1, 6, 1, 1]]),
        (vec![3, 9], vec![vec![3, 9], vec![]]),
        (vec![5, 10], vec![vec![5, 10], vec![5, 1]]),
        (vec![4, 13], vec![vec![4, 13], vec![4, 13]]),
        // Size-1 axes in the middle, an input broadcast along the middle, input 0 broadcast.
        (vec![3, 1, 4, 1, 6], vec![vec![3, 1, 4, 1, 6], vec![3, 1, 1, 1, 6]]),
        (vec![2, 3, 4, 5], vec![vec![2, 1, 4, 5], vec![1, 3, 1, 5]]),
        (vec![6, 2], vec![vec![1], vec![6, 2]]),
        (vec![], vec![vec![], vec![]]),
        (vec![1, 1, 3], vec![vec![3], vec![1, 1, 1]]),
        (vec![2, 3, 2, 3, 2, 3], vec![vec![2, 1, 2, 1, 2, 1], vec![3, 1, 3]]),
    ];
    for (out, inputs) in cases {
        for threads in [1, 3] {
            check_chain(&out, &inputs, &[add(1), relu.clone(), mul(1)], threads, OptLevel::None).unwrap();
        }
    }
}

#[test]
fn unsupported_layers_are_refused() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let spec = |out: Vec<usize>, inputs: Vec<Vec<usize>>, steps: Vec<PointwiseStep>| PointwiseSpec {
        out_shape: out,
        inputs,
        steps,
    };
    let bin = |op, input| PointwiseStep::Binary { op, input, operand_first: false };
    let refused = [
        spec(vec![1; MAX_RANK + 1], vec![vec![1; MAX_RANK + 1]], vec![]),
        spec(vec![4], vec![vec![4]], vec![PointwiseStep::Unary(UnaryOp::Sin)]),
        spec(vec![4], vec![vec![4], vec![4]], vec![bin(BinaryOp::Mod { fmod: true }, 1)]),
        spec(vec![4], vec![vec![4]], vec![bin(BinaryOp::Add, 1)]),
        spec(vec![4, 3], vec![vec![4, 3], vec![4]], vec![bin(BinaryOp::Add, 1)]),
        spec(vec![4], vec![vec![1, 4]], vec![]),
        spec(vec![4], vec![], vec![]),
    ];
    for s in refused {
        assert!(matches!(compile_pointwise(&s, &target), Err(CodegenError::Schedule(_))), "{s:?} was accepted");
    }
}

/// Operators whose f32 results equal the reference's bit for bit (or nearly), safe anywhere
/// in a chain; any supported operator may end it.
fn exact_unary(i: usize) -> UnaryOp {
    use UnaryOp::*;
    [
        Neg,
        Abs,
        Relu,
        Sign,
        Floor,
        Ceil,
        Round,
        Sqrt,
        Reciprocal,
        LeakyRelu { alpha: 0.1 },
        ThresholdedRelu { alpha: 0.3 },
        Clip { min: Some(-0.5), max: Some(0.7) },
        Clip { min: None, max: Some(0.2) },
    ][i % 13]
}

fn binary(i: usize) -> BinaryOp {
    [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min][i % 6]
}

/// Output shape (rank 0 to 6, last axis 1 to 19) and input shapes: each the output's with
/// leading axes dropped and some axes set to 1.
fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>)> {
    let out = (0usize..=5, 1usize..20, any::<bool>()).prop_flat_map(|(outer, last, scalar)| {
        prop::collection::vec(prop_oneof![Just(1usize), 2usize..5], outer).prop_map(move |mut v| {
            if !scalar {
                v.push(last);
            }
            v
        })
    });
    out.prop_flat_map(|out| {
        let rank = out.len();
        let input = (0..=rank, prop::collection::vec(any::<bool>(), rank));
        let inputs = prop::collection::vec(input, 1..=3);
        (Just(out), inputs)
    })
    .prop_map(|(out, inputs)| {
        let shapes = inputs
            .into_iter()
            .map(|(drop, ones)| (drop..out.len()).map(|a| if ones[a] { 1 } else { out[a] }).collect())
            .collect();
        (out, shapes)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn broadcast_chains_match_reference(
        (out, inputs) in shapes(),
        steps in prop::collection::vec((0usize..3, 0usize..64, 0usize..3, any::<bool>()), 1..5),
        last in 0usize..40,
        threads in 1usize..=4,
        speed in any::<bool>(),
    ) {
        let n = inputs.len();
        let mut chain: Vec<PointwiseStep> = steps
            .iter()
            .map(|&(kind, op, input, first)| match kind {
                0 => PointwiseStep::Unary(exact_unary(op)),
                _ => PointwiseStep::Binary { op: binary(op), input: input % n, operand_first: first },
            })
            .collect();
        // Celu is left out: its NaN result differs from the reference's 0.
        let ops = unary_ops();
        if last < ops.len() && !matches!(ops[last], UnaryOp::Celu { .. }) {
            chain.push(PointwiseStep::Unary(ops[last]));
        }
        let opt = if speed { OptLevel::Speed } else { OptLevel::None };
        check_chain(&out, &inputs, &chain, threads, opt)?;
    }
}

#[test]
fn pow_follows_numpy_rules_within_tolerance() {
    let bases = [-3.0f32, -2.0, -1.5, -1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0, 1e-20, f32::INFINITY];
    let exponents = [-3.0f32, -2.5, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 7.0, 0.3];
    let (xs, ys): (Vec<f32>, Vec<f32>) = bases.iter().flat_map(|&x| exponents.iter().map(move |&y| (x, y))).unzip();
    let n = xs.len();
    let spec = PointwiseSpec {
        out_shape: vec![n],
        inputs: vec![vec![n], vec![n]],
        steps: vec![PointwiseStep::Binary { op: BinaryOp::Pow, input: 1, operand_first: false }],
    };
    let got = run(&spec, &[xs.clone(), ys.clone()], 2, OptLevel::None);
    let (x, y) = (Tensor::from_f32(vec![n], xs.clone()).unwrap(), Tensor::from_f32(vec![n], ys.clone()).unwrap());
    let want = veltair_ref::eval_op(&Op::Binary(BinaryOp::Pow), &[Some(&x), Some(&y)]).unwrap().remove(0);
    let want = want.as_f32("want").unwrap();
    assert_eq!(got.len(), want.len());
    for i in 0..n {
        let (g, w) = (got[i], want[i]);
        // The documented error: about |y·ln x|·1e-7 relative.
        let rel = 4e-7 * (1.0 + (ys[i] * xs[i].abs().ln()).abs());
        let close = g == w || g.is_nan() && w.is_nan() || (g - w).abs() <= rel * w.abs();
        assert!(close, "{}^{}: got {g}, want {w}", xs[i], ys[i]);
    }
}

/// An empty output (an axis of 0) runs no row at all: empty buffers are never touched.
#[test]
fn empty_outputs_touch_no_memory() {
    for shape in [vec![2, 0, 4], vec![0], vec![3, 5, 0]] {
        let spec = PointwiseSpec {
            out_shape: shape.clone(),
            inputs: vec![shape.clone(), vec![1]],
            steps: vec![
                PointwiseStep::Unary(UnaryOp::Exp),
                PointwiseStep::Binary { op: BinaryOp::Add, input: 1, operand_first: false },
            ],
        };
        for threads in [1, 2] {
            let out = run(&spec, &[Vec::new(), vec![1.0]], threads, OptLevel::None);
            assert!(out.is_empty(), "{shape:?}");
        }
    }
}
