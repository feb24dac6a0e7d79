//! Winograd convolutions composed as a caller would (input transform, one GEMM per transform
//! position on sub-slices of `V` and `M`, output transform with bias and epilogue) against the
//! reference evaluator's convolution: random sizes with ragged last tiles, asymmetric padding,
//! both tiles, thread counts and epilogues.
//!
//! Accuracy bound: Winograd's transforms add rounding error proportional to the magnitudes of
//! the products in the window rather than to the result, so every output must be within
//! `3e-5 · (Σ|x·w| + |bias|) + 1e-5` of the reference. Over 300 random cases the worst errors
//! were 6.7e-6 of `Σ|x·w|` for F(4x4) (small channel counts; about 1.3e-6 at 64 channels) and
//! 4.2e-7 for F(2x2).

mod common;

use common::{apply_epilogue, epilogue_case, epilogue_operands, nchw_to_nhwc, values};
use proptest::prelude::*;
use veltair_codegen::epilogue::Epilogue;
use veltair_codegen::gemm::{compile_gemm, pack_b, GemmSchedule, Parallel};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::winograd::{
    compile_input_transform, compile_output_transform, transform_weights, WinogradSpec, WinogradTile,
};
use veltair_codegen::{CodegenError, OptLevel, Target};
use veltair_ir::{ConvAttrs, Op, Tensor};
use veltair_load::LoadedKernel;

/// Relative error allowed against `Σ|x·w| + |bias|`.
const TOLERANCE: f32 = 3e-5;

#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    cout: usize,
    /// Top, left, bottom, right.
    pads: [usize; 4],
    tile: WinogradTile,
    bias: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=2, 1usize..=14, 1usize..=14, 1usize..=20, 1usize..=20, [0usize..=2, 0..=2, 0..=2, 0..=2], any::<bool>())
        .prop_flat_map(|(batch, h, w, c, cout, pads, bias)| {
            prop_oneof![Just(WinogradTile::F4x4), Just(WinogradTile::F2x2)].prop_map(move |tile| Case {
                batch,
                h,
                w,
                c,
                cout,
                pads,
                tile,
                bias,
            })
        })
        .prop_filter("window fits the padded input", |c| {
            c.h + c.pads[0] + c.pads[2] >= 3 && c.w + c.pads[1] + c.pads[3] >= 3
        })
}

/// Runs the three phases on `target` and compares every output with the reference.
fn check(case: &Case, threads: usize, epilogue: &Epilogue, target: &Target) -> Result<(), TestCaseError> {
    let Case { batch, h, w, c, cout, pads, tile, bias } = case.clone();
    let attrs = ConvAttrs {
        kernel: vec![3, 3],
        strides: vec![1, 1],
        dilations: vec![1, 1],
        pads_begin: vec![pads[0], pads[1]],
        pads_end: vec![pads[2], pads[3]],
        group: 1,
    };
    let x_nchw = Tensor::from_f32(vec![batch, c, h, w], values(batch * c * h * w, 1)).unwrap();
    let w_oihw = Tensor::from_f32(vec![cout, c, 3, 3], values(cout * c * 9, 2)).unwrap();
    let bias_t = Tensor::from_f32(vec![cout], values(cout, 3)).unwrap();
    let inputs = [Some(&x_nchw), Some(&w_oihw), bias.then_some(&bias_t)];
    let want = veltair_ref::eval_op(&Op::Conv(attrs), &inputs).unwrap().remove(0);
    let (oh, ow) = (want.shape()[2], want.shape()[3]);
    let g = ConvGeometry {
        batch,
        h,
        w,
        c,
        kh: 3,
        kw: 3,
        stride: (1, 1),
        dilation: (1, 1),
        pad: (pads[0], pads[1]),
        oh,
        ow,
    };
    let spec = WinogradSpec { geometry: g, cout, tile };
    let fail = |e: CodegenError| TestCaseError::fail(e.to_string());

    // Phase 1: V[ξ][t][c].
    let input_kernel = LoadedKernel::load(&compile_input_transform(&spec, target).map_err(fail)?).unwrap();
    let xv = x_nchw.as_f32("x").unwrap();
    let mut x_nhwc = nchw_to_nhwc(xv, batch, c, h * w);
    let mut v = vec![f32::NAN; spec.v_elems()];
    input_kernel.run(&mut [&mut x_nhwc, &mut v], threads).unwrap();

    // Phase 2: M[ξ] = V[ξ] · U[ξ], one GEMM per transform position.
    let gemm = spec.gemm_spec();
    let sched =
        GemmSchedule { mr: 4, nr_vecs: 2, kc: 8, mc: 8, k_unroll: 2, max_threads: 4, parallel: Parallel::Panels };
    let gemm_kernel = LoadedKernel::load(&compile_gemm(&gemm, &sched, target).map_err(fail)?).unwrap();
    let wv = w_oihw.as_f32("w").unwrap();
    let mut packed: Vec<Vec<f32>> = transform_weights(&spec, wv).iter().map(|u| pack_b(&gemm, &sched, u)).collect();
    let mut m = vec![f32::NAN; spec.m_elems()];
    let mut scratch = vec![f32::NAN; gemm.arg_elems(&sched)[3]];
    assert!(spec.v_stride() >= gemm.m * gemm.k && spec.m_stride() >= gemm.m * gemm.n);
    for (xi, (vx, mx)) in v.chunks_exact_mut(spec.v_stride()).zip(m.chunks_exact_mut(spec.m_stride())).enumerate() {
        gemm_kernel.run(&mut [vx, &mut packed[xi], mx, &mut scratch], threads).unwrap();
    }

    // Phase 3: Y = Aᵀ M A + bias, epilogue.
    let out_code = compile_output_transform(&spec, bias, epilogue, target).map_err(fail)?;
    let output_kernel = LoadedKernel::load(&out_code).unwrap();
    let mut bias_v = bias_t.as_f32("b").unwrap().to_vec();
    let mut out = vec![f32::NAN; spec.output_elems()];
    let mut operands = epilogue_operands(epilogue, g.m(), cout);
    let mut args: Vec<&mut [f32]> = vec![&mut m];
    if bias {
        args.push(&mut bias_v);
    }
    args.push(&mut out);
    args.extend(operands.iter_mut().map(|o| o.as_mut_slice()));
    output_kernel.run(&mut args, threads).unwrap();

    let wantv = want.as_f32("y").unwrap();
    for n in 0..batch {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut magnitude = if bias { bias_v[co].abs() } else { 0.0 };
                    for ci in 0..c {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = ((oy + ky).wrapping_sub(pads[0]), (ox + kx).wrapping_sub(pads[1]));
                                if iy < h && ix < w {
                                    let xe = xv[((n * c + ci) * h + iy) * w + ix];
                                    magnitude += (xe * wv[((co * c + ci) * 3 + ky) * 3 + kx]).abs();
                                }
                            }
                        }
                    }
                    let pixel = (n * oh + oy) * ow + ox;
                    let raw = wantv[((n * cout + co) * oh + oy) * ow + ox];
                    let expect = apply_epilogue(epilogue, &operands, cout, (pixel, co), raw);
                    let got = out[pixel * cout + co];
                    prop_assert!(
                        (got - expect).abs() <= TOLERANCE * magnitude + 1e-5,
                        "n {n} co {co} ({oy}, {ox}): got {got}, want {expect} (magnitude {magnitude})"
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn winograd_conv_matches_reference(case in case(), threads in 1usize..=4, epilogue in 0usize..5) {
        let target = Target::x86_64_v3(OptLevel::None).unwrap();
        check(&case, threads, &epilogue_case(epilogue), &target)?;
    }
}

/// A ResNet-like layer (64 channels, ragged 18x18 output) at both tiles, through the optimising
/// code generator.
#[test]
fn wider_layer_matches_reference() {
    let target = Target::x86_64_v3(OptLevel::Speed).unwrap();
    for tile in [WinogradTile::F4x4, WinogradTile::F2x2] {
        let case = Case { batch: 1, h: 18, w: 18, c: 64, cout: 36, pads: [1, 1, 1, 1], tile, bias: true };
        check(&case, 2, &epilogue_case(1), &target).unwrap();
    }
}

#[test]
fn unsupported_geometry_is_refused() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let ok = ConvGeometry {
        batch: 1,
        h: 8,
        w: 8,
        c: 4,
        kh: 3,
        kw: 3,
        stride: (1, 1),
        dilation: (1, 1),
        pad: (1, 1),
        oh: 8,
        ow: 8,
    };
    let bad = [
        ConvGeometry { kh: 5, kw: 5, ..ok },
        ConvGeometry { stride: (2, 2), oh: 4, ow: 4, ..ok },
        ConvGeometry { dilation: (1, 2), ..ok },
        ConvGeometry { c: 0, ..ok },
    ];
    for geometry in bad {
        let spec = WinogradSpec { geometry, cout: 8, tile: WinogradTile::F4x4 };
        assert!(matches!(compile_input_transform(&spec, &target), Err(CodegenError::Schedule(_))), "{geometry:?}");
        let out = compile_output_transform(&spec, true, &Epilogue::default(), &target);
        assert!(matches!(out, Err(CodegenError::Schedule(_))), "{geometry:?}");
    }
    let spec = WinogradSpec { geometry: ok, cout: 8, tile: WinogradTile::F4x4 };
    assert!(compile_input_transform(&spec, &target).is_ok());
}
