//! Row kernels (softmax, layer normalisation, reductions along the last axis) against the
//! reference evaluator over random `[rows, len]` views (lengths 1 to 70, tails of every size)
//! and thread counts.
//!
//! Tolerances: softmax 1e-6 + 1e-5·|want|, log-softmax and layer normalisation 1e-5 +
//! 1e-5·|want|; sums 1e-5·(1 + Σ|x|) (the kernels accumulate in f32, the reference in f64),
//! products 1e-5·|want|.

mod common;

use common::values;
use proptest::prelude::*;
use veltair_codegen::rowwise::{compile_layernorm, compile_reduce_rows, compile_softmax};
use veltair_codegen::{CodegenError, OptLevel, Target};
use veltair_ir::{Op, ReduceOp, Tensor};
use veltair_load::{LoadedKernel, MachineCode};

fn target(speed: bool) -> Target {
    Target::x86_64_v3(if speed { OptLevel::Speed } else { OptLevel::None }).unwrap()
}

/// Runs `code` over `inputs` plus an output of `out_len` elements; returns the output.
fn run(code: &MachineCode, inputs: &[Vec<f32>], out_len: usize, threads: usize) -> Vec<f32> {
    let kernel = LoadedKernel::load(code).unwrap();
    let mut bufs: Vec<Vec<f32>> = inputs.to_vec();
    bufs.push(vec![f32::NAN; out_len]);
    let mut args: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    kernel.run(&mut args, threads).unwrap();
    bufs.pop().unwrap()
}

fn eval(op: Op, inputs: &[&Tensor]) -> Vec<f32> {
    let args: Vec<Option<&Tensor>> = inputs.iter().map(|&t| Some(t)).collect();
    veltair_ref::eval_op(&op, &args).unwrap().remove(0).as_f32("want").unwrap().to_vec()
}

fn close(got: &[f32], want: &[f32], tol: impl Fn(usize, f32) -> f32, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol(i, w);
        prop_assert!(ok, "{}: element {} is {}, want {}", what, i, g, w);
    }
    Ok(())
}

/// `rows·len` test values in `[−scale, scale]`.
fn data(rows: usize, len: usize, seed: u32, scale: f32) -> Vec<f32> {
    values(rows * len, seed).into_iter().map(|v| v * scale).collect()
}

fn check_softmax(
    rows: usize,
    len: usize,
    log: bool,
    scale: f32,
    threads: usize,
    speed: bool,
) -> Result<(), TestCaseError> {
    let x = data(rows, len, 11, scale);
    let t = target(speed);
    let code = compile_softmax(rows, len, log, &t).unwrap();
    let got = run(&code, std::slice::from_ref(&x), rows * len, threads);
    let xt = Tensor::from_f32(vec![rows, len], x).unwrap();
    let want = eval(Op::Softmax { axis: 1, log, coerce_2d: false }, &[&xt]);
    let abs = if log { 1e-5 } else { 1e-6 };
    close(&got, &want, |_, w| abs + 1e-5 * w.abs(), if log { "log-softmax" } else { "softmax" })
}

fn check_layernorm(rows: usize, len: usize, bias: bool, threads: usize, speed: bool) -> Result<(), TestCaseError> {
    let x: Vec<f32> = data(rows, len, 5, 2.0).into_iter().map(|v| v + 0.5).collect();
    let scale = data(1, len, 6, 1.5);
    let shift = data(1, len, 7, 1.0);
    let epsilon = 1e-5;
    let t = target(speed);
    let code = compile_layernorm(rows, len, epsilon, bias, &t).unwrap();
    let mut inputs = vec![x.clone(), scale.clone()];
    if bias {
        inputs.push(shift.clone());
    }
    let got = run(&code, &inputs, rows * len, threads);
    let xt = Tensor::from_f32(vec![rows, len], x).unwrap();
    let st = Tensor::from_f32(vec![len], scale).unwrap();
    let bt = Tensor::from_f32(vec![len], shift).unwrap();
    let mut args = vec![&xt, &st];
    if bias {
        args.push(&bt);
    }
    let want = eval(Op::LayerNorm { axis: 1, epsilon }, &args);
    close(&got, &want, |_, w| 1e-5 + 1e-5 * w.abs(), "layer norm")
}

fn check_reduce(rows: usize, len: usize, op: ReduceOp, threads: usize, speed: bool) -> Result<(), TestCaseError> {
    let mut x = data(rows, len, 3, 2.0);
    if op == ReduceOp::LogSum {
        // Keep the sum away from 0, where its logarithm magnifies rounding.
        x.iter_mut().for_each(|v| *v = v.abs() + 0.1);
    }
    let t = target(speed);
    let code = compile_reduce_rows(rows, len, op, &t).unwrap();
    let got = run(&code, std::slice::from_ref(&x), rows, threads);
    let magnitude: Vec<f32> = x.chunks(len).map(|r| r.iter().map(|v| v.abs()).sum()).collect();
    let xt = Tensor::from_f32(vec![rows, len], x).unwrap();
    let want = eval(Op::Reduce { op, axes: vec![1], keepdims: false }, &[&xt]);
    let tol = |i: usize, w: f32| match op {
        ReduceOp::Prod => 1e-5 * w.abs(),
        ReduceOp::Mean => 1e-5 * (1.0 + magnitude[i] / len as f32),
        _ => 1e-5 * (1.0 + magnitude[i]),
    };
    close(&got, &want, tol, &format!("{op:?}"))
}

const REDUCTIONS: [ReduceOp; 10] = [
    ReduceOp::Sum,
    ReduceOp::Mean,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::Prod,
    ReduceOp::L1,
    ReduceOp::L2,
    ReduceOp::SumSquare,
    ReduceOp::LogSum,
    ReduceOp::LogSumExp,
];

#[test]
fn long_rows() {
    for len in [1000, 1027] {
        check_softmax(3, len, false, 8.0, 2, true).unwrap();
        check_softmax(3, len, true, 8.0, 2, true).unwrap();
        check_layernorm(3, len, true, 2, true).unwrap();
        for op in REDUCTIONS {
            check_reduce(3, len, op, 2, true).unwrap();
        }
    }
}

#[test]
fn softmax_special_rows() {
    // A row of −inf (NaN, as in the reference), a row with +inf, a huge spread, and NaN.
    let len = 5;
    let x = vec![
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        1.0,
        f32::INFINITY,
        2.0,
        3.0,
        4.0,
        -1000.0,
        1000.0,
        0.0,
        f32::NEG_INFINITY,
        999.0,
        1.0,
        f32::NAN,
        2.0,
        3.0,
        4.0,
    ];
    let rows = x.len() / len;
    for log in [false, true] {
        let t = target(false);
        let code = compile_softmax(rows, len, log, &t).unwrap();
        let got = run(&code, std::slice::from_ref(&x), x.len(), 1);
        let xt = Tensor::from_f32(vec![rows, len], x.clone()).unwrap();
        let want = eval(Op::Softmax { axis: 1, log, coerce_2d: false }, &[&xt]);
        close(&got, &want, |_, w| 1e-6 + 1e-5 * w.abs(), "softmax").unwrap();
    }
}

#[test]
fn empty_views_are_refused() {
    let t = target(false);
    assert!(matches!(compile_softmax(0, 4, false, &t), Err(CodegenError::Schedule(_))));
    assert!(matches!(compile_layernorm(3, 0, 1e-5, true, &t), Err(CodegenError::Schedule(_))));
    assert!(matches!(compile_reduce_rows(2, 0, ReduceOp::Sum, &t), Err(CodegenError::Schedule(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn softmax_matches_reference(
        rows in 1usize..7, len in 1usize..70, log in any::<bool>(), scale in prop_oneof![Just(1.0f32), Just(30.0)],
        threads in 1usize..=4, speed in any::<bool>(),
    ) {
        check_softmax(rows, len, log, scale, threads, speed)?;
    }

    #[test]
    fn layernorm_matches_reference(
        rows in 1usize..7, len in 1usize..70, bias in any::<bool>(), threads in 1usize..=4, speed in any::<bool>(),
    ) {
        check_layernorm(rows, len, bias, threads, speed)?;
    }

    #[test]
    fn reductions_match_reference(
        rows in 1usize..7, len in 1usize..70, op in 0usize..REDUCTIONS.len(), threads in 1usize..=4, speed in any::<bool>(),
    ) {
        check_reduce(rows, len, REDUCTIONS[op], threads, speed)?;
    }
}
