//! Generated GEMM kernels against the reference evaluator, over random shapes (edge tiles in
//! every dimension), random schedules, epilogues, thread counts 1..4 and both opt levels.

mod common;

use common::{apply_epilogue, epilogue_case, epilogue_operands};
use proptest::prelude::*;
use veltair_codegen::gemm::{compile_gemm, pack_b, ASource, Bias, GemmSchedule, GemmSpec, Parallel};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{Op, Tensor};
use veltair_load::LoadedKernel;

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn reference(spec: &GemmSpec, a: &[f32], b: &[f32], bias: &[f32], operands: &[Vec<f32>]) -> Vec<f32> {
    let ta = Tensor::from_f32(vec![spec.m, spec.k], a.to_vec()).unwrap();
    let tb = Tensor::from_f32(vec![spec.k, spec.n], b.to_vec()).unwrap();
    let c = veltair_ref::eval_op(&Op::MatMul, &[Some(&ta), Some(&tb)]).unwrap().remove(0);
    let mut c = c.as_f32("c").unwrap().to_vec();
    for m in 0..spec.m {
        for n in 0..spec.n {
            let v = &mut c[m * spec.n + n];
            *v += match spec.bias {
                Bias::None => 0.0,
                Bias::PerRow => bias[m],
                Bias::PerCol => bias[n],
            };
            *v = apply_epilogue(&spec.epilogue, operands, spec.n, (m, n), *v);
        }
    }
    c
}

/// Runs `kernel` over the GEMM argument table: A, packed B, the bias when the spec has one, C,
/// scratch, then the epilogue operands.
fn call(kernel: &LoadedKernel, spec: &GemmSpec, bufs: [&mut [f32]; 5], operands: &mut [Vec<f32>], threads: usize) {
    let [a, bp, bias, c, scratch] = bufs;
    let mut args: Vec<&mut [f32]> = vec![a, bp];
    if spec.bias != Bias::None {
        args.push(bias);
    }
    args.extend([c, scratch]);
    args.extend(operands.iter_mut().map(|o| o.as_mut_slice()));
    kernel.run(&mut args, threads).unwrap();
}

fn run(spec: GemmSpec, sched: GemmSchedule, threads: usize, opt: OptLevel) -> Result<(), TestCaseError> {
    let target = Target::x86_64_v3(opt).unwrap();
    let code = compile_gemm(&spec, &sched, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(!code.bytes.is_empty());
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut a = values(spec.m * spec.k, 1);
    let b = values(spec.k * spec.n, 2);
    let mut bp = pack_b(&spec, &sched, &b);
    let mut bias = values(spec.m.max(spec.n), 3);
    let mut c = vec![f32::NAN; spec.m * spec.n];
    let mut scratch = vec![f32::NAN; code.arg_elems[code.arg_elems.len() - 1 - spec.epilogue.operands.len()]];
    let mut operands = epilogue_operands(&spec.epilogue, spec.m, spec.n);
    let want = reference(&spec, &a, &b, &bias, &operands);
    call(&kernel, &spec, [&mut a, &mut bp, &mut bias, &mut c, &mut scratch], &mut operands, threads);
    for (i, (got, want)) in c.iter().zip(&want).enumerate() {
        let tol = 1e-4 * (spec.k as f32).sqrt() + 1e-5 * want.abs();
        prop_assert!(
            (got - want).abs() <= tol,
            "element {i} (row {}, col {}): got {got}, want {want}",
            i / spec.n,
            i % spec.n
        );
    }
    Ok(())
}

fn spec_strategy() -> impl Strategy<Value = GemmSpec> {
    (1usize..40, 1usize..40, 1usize..70, 0usize..3, 0usize..5).prop_map(|(m, n, k, bias, epilogue)| GemmSpec {
        m,
        n,
        k,
        a: ASource::Matrix,
        bias: [Bias::None, Bias::PerRow, Bias::PerCol][bias],
        epilogue: epilogue_case(epilogue),
        out: None,
    })
}

fn schedule_strategy() -> impl Strategy<Value = GemmSchedule> {
    (1usize..=12, 1usize..=2, 1usize..48, 1usize..5, 1usize..=8, any::<bool>())
        .prop_filter("fits the register file", |(mr, nv, _, _, _, _)| mr * nv + nv < 16)
        .prop_map(|(mr, nr_vecs, kc, mc_tiles, k_unroll, rows)| GemmSchedule {
            mr,
            nr_vecs,
            kc,
            mc: mc_tiles * mr,
            k_unroll,
            max_threads: 4,
            parallel: if rows { Parallel::Rows } else { Parallel::Panels },
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_gemm_matches_reference(spec in spec_strategy(), sched in schedule_strategy(), threads in 1usize..=4, speed in any::<bool>()) {
        run(spec, sched, threads, if speed { OptLevel::Speed } else { OptLevel::None })?;
    }
}

#[test]
fn large_tiles_and_many_k_blocks() {
    let spec = GemmSpec {
        m: 100,
        n: 70,
        k: 300,
        a: ASource::Matrix,
        bias: Bias::PerCol,
        epilogue: epilogue_case(3),
        out: None,
    };
    for sched in [
        GemmSchedule { mr: 12, nr_vecs: 1, kc: 64, mc: 48, k_unroll: 8, max_threads: 3, parallel: Parallel::Panels },
        GemmSchedule { mr: 6, nr_vecs: 2, kc: 128, mc: 24, k_unroll: 4, max_threads: 3, parallel: Parallel::Rows },
        GemmSchedule { mr: 8, nr_vecs: 1, kc: 300, mc: 8, k_unroll: 1, max_threads: 3, parallel: Parallel::Panels },
    ] {
        run(spec.clone(), sched, 3, OptLevel::None).unwrap();
    }
}

#[test]
fn more_threads_than_the_scratch_allows_are_refused() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let spec =
        GemmSpec { m: 8, n: 8, k: 8, a: ASource::Matrix, bias: Bias::None, epilogue: Default::default(), out: None };
    let s = GemmSchedule { mr: 4, nr_vecs: 1, kc: 8, mc: 8, k_unroll: 1, max_threads: 2, parallel: Parallel::Panels };
    let code = compile_gemm(&spec, &s, &target).unwrap();
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut bufs: Vec<Vec<f32>> = code.arg_elems.iter().map(|&n| vec![0.0; n]).collect();
    let mut args: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    assert!(kernel.run(&mut args, 2).is_ok());
    assert!(kernel.run(&mut args, 3).is_err());
    let mut short: Vec<&mut [f32]> = bufs.iter_mut().map(|b| &mut b[..1]).collect();
    assert!(kernel.run(&mut short, 1).is_err());
}

#[test]
fn invalid_schedules_are_refused() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let spec =
        GemmSpec { m: 8, n: 8, k: 8, a: ASource::Matrix, bias: Bias::None, epilogue: Default::default(), out: None };
    let ok = GemmSchedule { mr: 4, nr_vecs: 1, kc: 8, mc: 8, k_unroll: 1, max_threads: 2, parallel: Parallel::Panels };
    assert!(compile_gemm(&spec, &ok, &target).is_ok());
    for bad in [
        GemmSchedule { mr: 12, nr_vecs: 2, ..ok },
        GemmSchedule { k_unroll: 0, ..ok },
        GemmSchedule { mc: 6, ..ok },
        GemmSchedule { max_threads: 0, ..ok },
    ] {
        assert!(compile_gemm(&spec, &bad, &target).is_err(), "{bad:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn schedules_print_parse_and_rebuild_the_same_kernel(spec in spec_strategy(), sched in schedule_strategy()) {
        let text = sched.to_schedule(&spec).to_string();
        let parsed: veltair_codegen::tiling::Schedule = text.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), text.clone());
        let back = GemmSchedule::from_schedule(&spec, &parsed).unwrap();
        prop_assert_eq!(back, sched);
        let target = Target::x86_64_v3(OptLevel::None).unwrap();
        prop_assert_eq!(compile_gemm(&spec, &back, &target).unwrap().bytes, compile_gemm(&spec, &sched, &target).unwrap().bytes);
    }
}

#[test]
fn schedules_outside_the_template_are_refused() {
    let spec =
        GemmSpec { m: 8, n: 8, k: 8, a: ASource::Matrix, bias: Bias::None, epilogue: Default::default(), out: None };
    let ok = GemmSchedule { mr: 4, nr_vecs: 1, kc: 8, mc: 8, k_unroll: 1, max_threads: 2, parallel: Parallel::Panels }
        .to_schedule(&spec)
        .to_string();
    for (from, to) in [
        ("reorder k.0 m.0 n.0 m.1 k.1 m.2 n.1", "reorder m.0 k.0 n.0 m.1 k.1 m.2 n.1"),
        ("split n 4", "split n 6"),
        ("vectorize n.1 4", "vectorize n.1 8"),
        ("unroll k.1 1\n", ""),
        ("split m 8 4", "split m 6 4"),
    ] {
        let bad: veltair_codegen::tiling::Schedule = ok.replace(from, to).parse().unwrap();
        let err = GemmSchedule::from_schedule(&spec, &bad);
        assert!(err.is_err(), "`{from}` -> `{to}` was accepted");
    }
    for garbage in ["split", "split k x", "pack B [n.0 k", "frobnicate k", "parallel n.0"] {
        assert!(garbage.parse::<veltair_codegen::tiling::Schedule>().is_err(), "{garbage}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, failure_persistence: None, ..ProptestConfig::default() })]

    /// C as a column slice of a wider matrix (a Concat output): the slice gets the product,
    /// every other column is left untouched.
    #[test]
    fn output_slices_of_wider_matrices(
        spec in spec_strategy(), sched in schedule_strategy(), left in 0usize..9, right in 0usize..9, threads in 1usize..=4,
    ) {
        use veltair_codegen::gemm::OutView;
        let (m, n) = (spec.m, spec.n);
        let stride = left + n + right;
        let wide = GemmSpec { out: Some(OutView { row_stride: stride, col_offset: left }), ..spec.clone() };
        let target = Target::x86_64_v3(OptLevel::None).unwrap();
        let code = compile_gemm(&wide, &sched, &target).unwrap();
        let kernel = LoadedKernel::load(&code).unwrap();
        let mut a = values(m * spec.k, 1);
        let b = values(spec.k * n, 2);
        let mut bp = pack_b(&wide, &sched, &b);
        let mut bias = values(m.max(n), 3);
        let mut c = vec![f32::NAN; m * stride];
        let mut scratch = vec![f32::NAN; code.arg_elems[code.arg_elems.len() - 1 - spec.epilogue.operands.len()]];
        let mut operands = epilogue_operands(&spec.epilogue, m, n);
        let want = reference(&spec, &a, &b, &bias, &operands);
        call(&kernel, &spec, [&mut a, &mut bp, &mut bias, &mut c, &mut scratch], &mut operands, threads);
        for r in 0..m {
            for col in 0..stride {
                let got = c[r * stride + col];
                if (left..left + n).contains(&col) {
                    let w = want[r * n + col - left];
                    prop_assert!((got - w).abs() <= 1e-4 * (spec.k as f32).sqrt() + 1e-5 * w.abs(), "row {r} col {col}: {got} vs {w}");
                } else {
                    prop_assert!(got.is_nan(), "row {r} col {col} outside the slice was written");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    /// A batch of products with padded strides: each product lands in its own slot, the gaps
    /// between slots are left untouched.
    #[test]
    fn batched_products_match_reference(
        m in 1usize..20, n in 1usize..20, k in 1usize..30, count in 1usize..4, gap in 0usize..5,
        sched in schedule_strategy(), threads in 1usize..=4,
    ) {
        use veltair_codegen::gemm::{compile_batched_gemm, GemmBatch};
        let spec = GemmSpec { m, n, k, a: ASource::Matrix, bias: Bias::None, epilogue: Default::default(), out: None };
        let packed_len = spec.arg_elems(&sched)[1];
        let batch = GemmBatch { count, a_stride: m * k + gap, b_stride: packed_len, c_stride: m * n + gap };
        let target = Target::x86_64_v3(OptLevel::None).unwrap();
        let code = compile_batched_gemm(&spec, &sched, &batch, &target).unwrap();
        let kernel = LoadedKernel::load(&code).unwrap();
        let mut a = values(batch.a_stride * count, 1);
        let bs: Vec<Vec<f32>> = (0..count).map(|i| values(k * n, 7 + i as u64)).collect();
        let mut bp: Vec<f32> = bs.iter().flat_map(|b| pack_b(&spec, &sched, b)).collect();
        let mut c = vec![f32::NAN; batch.c_stride * count];
        let mut scratch = vec![f32::NAN; code.arg_elems[3]];
        kernel.run(&mut [&mut a, &mut bp, &mut c, &mut scratch], threads).unwrap();
        for i in 0..count {
            let want = reference(&spec, &a[i * batch.a_stride..][..m * k], &bs[i], &[], &[]);
            let got = &c[i * batch.c_stride..][..batch.c_stride];
            for (j, g) in got.iter().enumerate() {
                match want.get(j) {
                    Some(w) => prop_assert!((g - w).abs() <= 1e-4 * (k as f32).sqrt() + 1e-5 * w.abs(), "product {i} element {j}"),
                    None => prop_assert!(g.is_nan(), "product {i}: gap element {j} written"),
                }
            }
        }
    }
}
