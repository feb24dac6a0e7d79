//! Gather with i64 indices (negative indices wrap) and i64 → f32 conversion against the
//! reference evaluator, plus the clamping of out-of-range indices that keeps reads in bounds.

mod common;

use common::values;
use proptest::prelude::*;
use veltair_codegen::gather::{compile_gather, GatherSpec};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{Op, Tensor};
use veltair_load::LoadedKernel;

/// i64 values stored as pairs of f32 slots, as buffers hold them.
fn as_slots(v: &[i64]) -> Vec<f32> {
    v.iter().flat_map(|&x| [f32::from_bits(x as u32), f32::from_bits((x >> 32) as u32)]).collect()
}

fn gather(spec: GatherSpec, idx: &[i64], threads: usize) -> Vec<f32> {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let kernel = LoadedKernel::load(&compile_gather(&spec, &target).unwrap()).unwrap();
    let mut data = values(spec.outer * spec.axis_len * spec.inner, 4);
    let mut slots = as_slots(idx);
    let mut out = vec![f32::NAN; spec.outer * spec.indices * spec.inner];
    kernel.run(&mut [&mut data, &mut slots, &mut out], threads).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gather_matches_reference(
        outer in 1usize..4, axis_len in 1usize..9, inner in 1usize..11, raw in prop::collection::vec(0i64..1000, 1..12),
        threads in 1usize..4,
    ) {
        let idx: Vec<i64> = raw.iter().map(|&r| r % (2 * axis_len as i64) - axis_len as i64).collect();
        let spec = GatherSpec { outer, axis_len, inner, indices: idx.len() };
        let data = Tensor::from_f32(vec![outer, axis_len, inner], values(outer * axis_len * inner, 4)).unwrap();
        let it = Tensor::from_i64(vec![idx.len()], idx.clone()).unwrap();
        let want = veltair_ref::eval_op(&Op::Gather { axis: 1 }, &[Some(&data), Some(&it)]).unwrap().remove(0);
        prop_assert_eq!(gather(spec, &idx, threads), want.as_f32("y").unwrap().to_vec());
    }
}

#[test]
fn out_of_range_indices_are_clamped() {
    let spec = GatherSpec { outer: 1, axis_len: 3, inner: 2, indices: 3 };
    let data = values(6, 4);
    let out = gather(spec, &[i64::MAX, -100, 7], 2);
    assert_eq!(out, [&data[4..6], &data[0..2], &data[4..6]].concat());
}
