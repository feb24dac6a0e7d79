//! Batched MatMul of two runtime operands against the reference evaluator: random shapes
//! (column tails, chunks of more than 32 columns), shared operands, epilogues, thread counts.

mod common;

use common::{apply_epilogue, epilogue_case, epilogue_operands, values};
use proptest::prelude::*;
use veltair_codegen::matmul::{compile_batched_matmul, BatchedMatmulSpec};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{Op, Tensor};
use veltair_load::LoadedKernel;

#[allow(clippy::too_many_arguments)]
fn check(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    share_a: bool,
    share_b: bool,
    epilogue: usize,
    threads: usize,
) -> Result<(), TestCaseError> {
    let (ab, bb) = (if share_a { 1 } else { batch }, if share_b { 1 } else { batch });
    let a = values(ab * m * k, 1);
    let bv = values(bb * k * n, 2);
    let ta = Tensor::from_f32(vec![ab, m, k], a.clone()).unwrap();
    let tb = Tensor::from_f32(vec![bb, k, n], bv.clone()).unwrap();
    let want = veltair_ref::eval_op(&Op::MatMul, &[Some(&ta), Some(&tb)]).unwrap().remove(0);
    let want = want.as_f32("c").unwrap();
    let spec = BatchedMatmulSpec {
        batch,
        m,
        k,
        n,
        a_batch_stride: if share_a { 0 } else { m * k },
        b_batch_stride: if share_b { 0 } else { k * n },
        epilogue: epilogue_case(epilogue),
    };
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let code = compile_batched_matmul(&spec, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kernel = LoadedKernel::load(&code).unwrap();
    let (mut a, mut bv) = (a, bv);
    let mut c = vec![f32::NAN; batch * m * n];
    let mut operands = epilogue_operands(&spec.epilogue, batch * m, n);
    let mut args: Vec<&mut [f32]> = vec![&mut a, &mut bv, &mut c];
    args.extend(operands.iter_mut().map(|o| o.as_mut_slice()));
    kernel.run(&mut args, threads).unwrap();
    // With both operands shared the reference computes one batch; the kernel repeats it.
    let want_batches = ab.max(bb);
    for r in 0..batch * m {
        let wr = (r / m) % want_batches * m + r % m;
        for j in 0..n {
            let expect = apply_epilogue(&spec.epilogue, &operands, n, (r, j), want[wr * n + j]);
            let got = c[r * n + j];
            prop_assert!(
                (got - expect).abs() <= 1e-5 * (k as f32).sqrt() + 1e-5,
                "row {r} col {j}: got {got}, want {expect}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn batched_matmul_matches_reference(
        batch in 1usize..5, m in 1usize..9, k in 1usize..20, n in 1usize..45,
        share_a in any::<bool>(), share_b in any::<bool>(), epilogue in 0usize..5, threads in 1usize..4,
    ) {
        check(batch, m, k, n, share_a, share_b, epilogue, threads)?;
    }
}
