//! Convolutions as implicit-im2col GEMM over NHWC images, against the reference evaluator's
//! NCHW convolution: random geometries (strides, dilations, asymmetric padding, edge tiles),
//! schedules and thread counts.

mod common;

use common::{apply_epilogue, epilogue_case, epilogue_operands, nchw_to_nhwc, values};
use proptest::prelude::*;
use veltair_codegen::gemm::{compile_gemm, pack_b, ASource, Bias, GemmSchedule, GemmSpec, Parallel};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{ConvAttrs, Op, Tensor};
use veltair_load::LoadedKernel;

#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    cout: usize,
    k: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    pads: [usize; 4],
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..3,
        1usize..12,
        1usize..12,
        1usize..14,
        1usize..20,
        (1usize..4, 1usize..4),
        (1usize..3, 1usize..3),
        (1usize..3, 1usize..3),
        [0usize..3, 0usize..3, 0usize..3, 0usize..3],
    )
        .prop_map(|(batch, h, w, c, cout, k, stride, dilation, pads)| Case {
            batch,
            h,
            w,
            c,
            cout,
            k,
            stride,
            dilation,
            pads,
        })
        .prop_filter("window fits the padded input", |c| {
            c.h + c.pads[0] + c.pads[2] > (c.k.0 - 1) * c.dilation.0
                && c.w + c.pads[1] + c.pads[3] > (c.k.1 - 1) * c.dilation.1
        })
}

fn check(case: &Case, sched: GemmSchedule, threads: usize, epilogue: usize) -> Result<(), TestCaseError> {
    let Case { batch, h, w, c, cout, k: (kh, kw), stride, dilation, pads } = case.clone();
    let attrs = ConvAttrs {
        kernel: vec![kh, kw],
        strides: vec![stride.0, stride.1],
        dilations: vec![dilation.0, dilation.1],
        pads_begin: vec![pads[0], pads[1]],
        pads_end: vec![pads[2], pads[3]],
        group: 1,
    };
    let x_nchw = Tensor::from_f32(vec![batch, c, h, w], values(batch * c * h * w, 1)).unwrap();
    let w_oihw = Tensor::from_f32(vec![cout, c, kh, kw], values(cout * c * kh * kw, 2)).unwrap();
    let bias = Tensor::from_f32(vec![cout], values(cout, 3)).unwrap();
    let want = veltair_ref::eval_op(&Op::Conv(attrs), &[Some(&x_nchw), Some(&w_oihw), Some(&bias)]).unwrap().remove(0);
    let (oh, ow) = (want.shape()[2], want.shape()[3]);
    let g = ConvGeometry { batch, h, w, c, kh, kw, stride, dilation, pad: (pads[0], pads[1]), oh, ow };
    let spec = GemmSpec {
        m: g.m(),
        n: cout,
        k: g.k(),
        a: ASource::Conv2d(g),
        bias: Bias::PerCol,
        epilogue: epilogue_case(epilogue),
        out: None,
    };
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let code = compile_gemm(&spec, &sched, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kernel = LoadedKernel::load(&code).unwrap();

    let mut x_nhwc = nchw_to_nhwc(x_nchw.as_f32("x").unwrap(), batch, c, h * w);
    let wv = w_oihw.as_f32("w").unwrap();
    let mut bmat = vec![0f32; g.k() * cout];
    for co in 0..cout {
        for ci in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    bmat[((ky * kw + kx) * c + ci) * cout + co] = wv[((co * c + ci) * kh + ky) * kw + kx];
                }
            }
        }
    }
    let mut bp = pack_b(&spec, &sched, &bmat);
    let mut bias_v = bias.as_f32("b").unwrap().to_vec();
    let mut out = vec![f32::NAN; g.m() * cout];
    let mut scratch = vec![f32::NAN; code.arg_elems[4]];
    let mut operands = epilogue_operands(&spec.epilogue, g.m(), cout);
    let mut args: Vec<&mut [f32]> = vec![&mut x_nhwc, &mut bp, &mut bias_v, &mut out, &mut scratch];
    args.extend(operands.iter_mut().map(|o| o.as_mut_slice()));
    kernel.run(&mut args, threads).unwrap();

    let wantv = want.as_f32("y").unwrap();
    for n in 0..batch {
        for co in 0..cout {
            for p in 0..oh * ow {
                let raw = wantv[(n * cout + co) * oh * ow + p];
                let expect = apply_epilogue(&spec.epilogue, &operands, cout, (n * oh * ow + p, co), raw);
                let got = out[(n * oh * ow + p) * cout + co];
                prop_assert!(
                    (got - expect).abs() <= 1e-4 * (g.k() as f32).sqrt() + 1e-5,
                    "n {n} co {co} pixel {p}: got {got}, want {expect}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn implicit_gemm_conv_matches_reference(case in case(), mr in 1usize..=8, nv in 1usize..=2, kc in 1usize..40, mc_tiles in 1usize..4, u in 1usize..=4, threads in 1usize..=3, epilogue in 0usize..5, kc_mode in 0usize..3, rows in any::<bool>()) {
        prop_assume!(mr * nv + nv < 16);
        // k-blocks of whole taps and inside one tap take the channel-run packing path.
        let kc = match kc_mode {
            0 => kc,
            1 => case.c * (1 + kc % 4),
            _ => if case.c % 2 == 0 { case.c / 2 } else { case.c },
        };
        let sched = GemmSchedule { mr, nr_vecs: nv, kc, mc: mc_tiles * mr, k_unroll: u, max_threads: 3, parallel: if rows { Parallel::Rows } else { Parallel::Panels } };
        check(&case, sched, threads, epilogue)?;
    }
}
