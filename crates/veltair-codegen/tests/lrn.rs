//! LRN over NHWC tensors against the reference evaluator's NCHW LRN: random batch and image
//! sizes, channel counts (tails of every size, fewer channels than the window), odd and even
//! windows, alpha, beta (the square-root cases 0.5, 0.75, 1 and general values through
//! exp/log), bias, value scales and thread counts, within 1e-5 relative.

mod common;

use common::{nchw_to_nhwc, values};
use proptest::prelude::*;
use veltair_codegen::lrn::{compile_lrn, LrnSpec, MAX_SIZE};
use veltair_codegen::tiling::describe;
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{Op, Tensor};
use veltair_load::LoadedKernel;

#[allow(clippy::too_many_arguments)]
fn check(
    batch: usize,
    hw: usize,
    c: usize,
    size: usize,
    alpha: f32,
    beta: f32,
    bias: f32,
    scale: f32,
    threads: usize,
) -> Result<(), TestCaseError> {
    let data: Vec<f32> = values(batch * c * hw, 7).into_iter().map(|v| v * scale).collect();
    let x = Tensor::from_f32(vec![batch, c, hw, 1], data).unwrap();
    let op = Op::Lrn { size, alpha, beta, bias };
    let spec = LrnSpec { pixels: batch * hw, channels: c, size, alpha, beta, bias };
    let y = veltair_ref::eval_op(&op, &[Some(&x)]).unwrap().remove(0);
    let want = nchw_to_nhwc(y.as_f32("y").unwrap(), batch, c, hw);
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let code = compile_lrn(&spec, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut xs = nchw_to_nhwc(x.as_f32("x").unwrap(), batch, c, hw);
    let mut out = vec![f32::NAN; xs.len()];
    kernel.run(&mut [&mut xs, &mut out], threads).unwrap();
    for (i, (&got, &w)) in out.iter().zip(&want).enumerate() {
        let ok = (got - w).abs() <= 1e-5 * w.abs();
        prop_assert!(ok, "pixel {} channel {}: got {}, want {}", i / c, i % c, got, w);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn lrn_matches_reference(
        batch in 1usize..3, hw in 1usize..12, c in 1usize..40, size in 1usize..12,
        alpha in 1e-4f32..2.0, beta in prop_oneof![Just(0.5f32), Just(0.75), Just(1.0), -1.0f32..2.5],
        bias in 0.5f32..3.0, scale in prop_oneof![Just(1.0f32), 0.01f32..20.0], threads in 1usize..4,
    ) {
        check(batch, hw, c, size, alpha, beta, bias, scale, threads)?;
    }
}

/// GoogLeNet's two LRN layers (size 5, alpha 1e-4, beta 0.75, bias 1) on smaller images.
#[test]
fn lrn_googlenet() {
    for c in [64, 192] {
        check(1, 9, c, 5, 1e-4, 0.75, 1.0, 30.0, 2).unwrap();
    }
}

#[test]
fn lrn_refuses_wide_windows_and_describes() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let spec = LrnSpec { pixels: 4, channels: 8, size: MAX_SIZE + 1, alpha: 1e-4, beta: 0.75, bias: 1.0 };
    assert!(compile_lrn(&spec, &target).is_err());
    let text = describe(LrnSpec { size: 5, ..spec }.describe(3));
    assert!(text.contains("c+k-2") && text.contains("parallel p 3") && text.contains("unroll k 5"), "{text}");
}
