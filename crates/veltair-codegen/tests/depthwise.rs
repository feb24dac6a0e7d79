//! Depthwise convolutions over NHWC images against the reference evaluator's grouped NCHW
//! convolution: random geometries (channel tails, strides, dilations, asymmetric padding),
//! activations and thread counts.

mod common;

use common::{apply_epilogue, epilogue_case, epilogue_operands, nchw_to_nhwc, values};
use proptest::prelude::*;
use veltair_codegen::depthwise::{compile_depthwise, DepthwiseSpec};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::tiling::describe;
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{ConvAttrs, Op, Tensor};
use veltair_load::LoadedKernel;

#[allow(clippy::too_many_arguments)]
fn check(
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    k: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    pads: [usize; 4],
    bias: bool,
    epilogue: usize,
    threads: usize,
) -> Result<(), TestCaseError> {
    let attrs = ConvAttrs {
        kernel: vec![k.0, k.1],
        strides: vec![stride.0, stride.1],
        dilations: vec![dilation.0, dilation.1],
        pads_begin: vec![pads[0], pads[1]],
        pads_end: vec![pads[2], pads[3]],
        group: c,
    };
    let x = Tensor::from_f32(vec![batch, c, h, w], values(batch * c * h * w, 1)).unwrap();
    let wt = Tensor::from_f32(vec![c, 1, k.0, k.1], values(c * k.0 * k.1, 2)).unwrap();
    let bv = values(c, 3);
    let bt = Tensor::from_f32(vec![c], if bias { bv.clone() } else { vec![0.0; c] }).unwrap();
    let want = veltair_ref::eval_op(&Op::Conv(attrs), &[Some(&x), Some(&wt), Some(&bt)]).unwrap().remove(0);
    let (oh, ow) = (want.shape()[2], want.shape()[3]);
    let g = ConvGeometry { batch, h, w, c, kh: k.0, kw: k.1, stride, dilation, pad: (pads[0], pads[1]), oh, ow };
    let spec = DepthwiseSpec { geometry: g, bias, epilogue: epilogue_case(epilogue) };
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let code = compile_depthwise(&spec, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut x_nhwc = nchw_to_nhwc(x.as_f32("x").unwrap(), batch, c, h * w);
    let mut wp = spec.pack_weights(wt.as_f32("w").unwrap());
    let mut bp = spec.pack_bias(&bv);
    let mut out = vec![f32::NAN; batch * oh * ow * c];
    let mut args: Vec<&mut [f32]> = vec![&mut x_nhwc, &mut wp];
    if bias {
        args.push(&mut bp);
    }
    args.push(&mut out);
    let mut operands = epilogue_operands(&spec.epilogue, batch * oh * ow, c);
    args.extend(operands.iter_mut().map(|o| o.as_mut_slice()));
    kernel.run(&mut args, threads).unwrap();
    let wv = want.as_f32("y").unwrap();
    for n in 0..batch {
        for ci in 0..c {
            for p in 0..oh * ow {
                let raw = wv[(n * c + ci) * oh * ow + p];
                let expect = apply_epilogue(&spec.epilogue, &operands, c, (n * oh * ow + p, ci), raw);
                let got = out[(n * oh * ow + p) * c + ci];
                prop_assert!((got - expect).abs() <= 1e-5, "n {n} c {ci} pixel {p}: got {got}, want {expect}");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Widths up to 40 give rows with a loop over interior blocks (at least two blocks of 8
    /// pixels) as well as rows of fixed blocks only; pads up to 4 exceed `k − 1` for small
    /// kernels (windows with no tap inside the input, rows of border rows only).
    #[test]
    fn depthwise_matches_reference(
        batch in 1usize..3, h in 1usize..12, w in 1usize..40, c in 1usize..14,
        k in (1usize..6, 1usize..6), stride in (1usize..3, 1usize..3), dilation in (1usize..3, 1usize..3),
        pads in [0usize..5, 0usize..5, 0usize..5, 0usize..5], bias in any::<bool>(), epilogue in 0usize..5,
        threads in 1usize..4,
    ) {
        prop_assume!(h + pads[0] + pads[2] > (k.0 - 1) * dilation.0 && w + pads[1] + pads[3] > (k.1 - 1) * dilation.1);
        check(batch, h, w, c, k, stride, dilation, pads, bias, epilogue, threads)?;
    }
}

/// The layer shapes of MobileNetV2 and EfficientNet-B0 (3x3 and 5x5, stride 1 and 2, "same"
/// padding) at reduced sizes, with a channel tail.
#[test]
fn depthwise_network_shapes() {
    for (hw, k, stride) in [(30, 3, 1), (40, 3, 2), (23, 5, 1), (40, 5, 2), (7, 3, 1), (7, 5, 1)] {
        let p = k / 2;
        check(1, hw, hw, 22, (k, k), (stride, stride), (1, 1), [p, p, p, p], true, 2, 2).unwrap();
    }
}

/// The schedule shown for a row wide enough for a loop over interior blocks, and for a narrow one.
#[test]
fn depthwise_describe() {
    for (hw, order) in [(56, "reorder r ow.0 c ow.1 kh kw"), (7, "reorder r c ow.0 ow.1 kh kw")] {
        let geometry = ConvGeometry {
            batch: 1,
            h: hw,
            w: hw,
            c: 32,
            kh: 3,
            kw: 3,
            stride: (1, 1),
            dilation: (1, 1),
            pad: (1, 1),
            oh: hw,
            ow: hw,
        };
        let spec = DepthwiseSpec { geometry, bias: true, epilogue: epilogue_case(1) };
        let text = describe(spec.describe(2));
        assert!(text.contains("split ow 8") && text.contains(order) && text.contains("parallel r 2"), "{text}");
    }
}
