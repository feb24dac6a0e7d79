//! Max and average pooling over NHWC images against the reference evaluator's NCHW pooling:
//! random geometries (channel tails, strides, dilations, asymmetric padding, ceil mode, both
//! `count_include_pad` conventions, windows with no tap inside the input), global pooling, and
//! thread counts.

mod common;

use common::{nchw_to_nhwc, values};
use proptest::prelude::*;
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::pool::{compile_global_pool, compile_pool, PoolKind, PoolSpec};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{Op, PoolAttrs, Tensor};
use veltair_load::LoadedKernel;

#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    k: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    /// Top, left, bottom, right.
    pads: [usize; 4],
    ceil_mode: bool,
    kind: PoolKind,
}

fn target() -> Target {
    Target::x86_64_v3(OptLevel::None).unwrap()
}

/// Exact equality for max pooling, 1e-5 for averages; NaN only where the reference has NaN.
fn close(got: f32, want: f32, exact: bool) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if exact {
        got == want
    } else {
        (got - want).abs() <= 1e-5
    }
}

/// Checks one case and returns the reference output (NHWC).
fn check(case: &Case, threads: usize) -> Result<Vec<f32>, TestCaseError> {
    let Case { batch, h, w, c, k, stride, dilation, pads, ceil_mode, kind } = *case;
    let attrs = PoolAttrs {
        kernel: vec![k.0, k.1],
        strides: vec![stride.0, stride.1],
        dilations: vec![dilation.0, dilation.1],
        pads_begin: vec![pads[0], pads[1]],
        pads_end: vec![pads[2], pads[3]],
        ceil_mode,
        count_include_pad: matches!(kind, PoolKind::Average { count_include_pad: true }),
        column_major_indices: false,
    };
    let op = if kind == PoolKind::Max { Op::MaxPool(attrs) } else { Op::AveragePool(attrs) };
    let x = Tensor::from_f32(vec![batch, c, h, w], values(batch * c * h * w, 7)).unwrap();
    let want = veltair_ref::eval_op(&op, &[Some(&x)]).unwrap().remove(0);
    let (oh, ow) = (want.shape()[2], want.shape()[3]);
    let geometry = ConvGeometry { batch, h, w, c, kh: k.0, kw: k.1, stride, dilation, pad: (pads[0], pads[1]), oh, ow };
    let spec = PoolSpec { geometry, pad_end: (pads[2], pads[3]), kind };
    let target = target();
    let code = compile_pool(&spec, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut x_nhwc = nchw_to_nhwc(x.as_f32("x").unwrap(), batch, c, h * w);
    let mut out = vec![0.5f32; batch * oh * ow * c];
    kernel.run(&mut [&mut x_nhwc, &mut out], threads).unwrap();
    let want = nchw_to_nhwc(want.as_f32("y").unwrap(), batch, c, oh * ow);
    for (i, (&g, &e)) in out.iter().zip(&want).enumerate() {
        prop_assert!(close(g, e, kind == PoolKind::Max), "element {i} of {oh}x{ow} output: got {g}, want {e}");
    }
    Ok(want)
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..3, 1usize..10, 1usize..10, 1usize..22),
        ((1usize..5, 1usize..5), (1usize..4, 1usize..4), (1usize..4, 1usize..4)),
        [0usize..4, 0usize..4, 0usize..4, 0usize..4],
        any::<bool>(),
        0usize..3,
    )
        .prop_map(|((batch, h, w, c), (k, stride, dilation), pads, ceil_mode, kind)| {
            let kind = match kind {
                0 => PoolKind::Max,
                1 => PoolKind::Average { count_include_pad: false },
                _ => PoolKind::Average { count_include_pad: true },
            };
            Case { batch, h, w, c, k, stride, dilation, pads, ceil_mode, kind }
        })
        .prop_filter("pads below the window, window within the padded input", |c| {
            let window = ((c.k.0 - 1) * c.dilation.0 + 1, (c.k.1 - 1) * c.dilation.1 + 1);
            c.pads[0] < window.0
                && c.pads[2] < window.0
                && c.pads[1] < window.1
                && c.pads[3] < window.1
                && c.h + c.pads[0] + c.pads[2] >= window.0
                && c.w + c.pads[1] + c.pads[3] >= window.1
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pool_matches_reference(case in case(), threads in 1usize..5) {
        check(&case, threads)?;
    }

    #[test]
    fn global_pool_matches_reference(
        batch in 1usize..4, h in 1usize..8, w in 1usize..8, c in 1usize..40, max in any::<bool>(), threads in 1usize..5,
    ) {
        let x = Tensor::from_f32(vec![batch, c, h, w], values(batch * c * h * w, 11)).unwrap();
        let op = if max { Op::GlobalMaxPool } else { Op::GlobalAveragePool };
        let want = veltair_ref::eval_op(&op, &[Some(&x)]).unwrap().remove(0);
        let target = target();
        let kernel = LoadedKernel::load(&compile_global_pool(batch, h * w, c, max, &target).unwrap()).unwrap();
        let mut x_nhwc = nchw_to_nhwc(x.as_f32("x").unwrap(), batch, c, h * w);
        let mut out = vec![0.5f32; batch * c];
        kernel.run(&mut [&mut x_nhwc, &mut out], threads).unwrap();
        for (i, (&g, &e)) in out.iter().zip(want.as_f32("y").unwrap()).enumerate() {
            prop_assert!(close(g, e, max), "element {i}: got {g}, want {e}");
        }
    }
}

/// A dilated window can skip over a one-row input entirely: max and exclusive average are NaN
/// there (as in the reference), the inclusive average is 0.
#[test]
fn windows_without_inside_taps() {
    for kind in
        [PoolKind::Max, PoolKind::Average { count_include_pad: false }, PoolKind::Average { count_include_pad: true }]
    {
        let case = Case {
            batch: 1,
            h: 1,
            w: 2,
            c: 5,
            k: (2, 1),
            stride: (1, 1),
            dilation: (3, 1),
            pads: [1, 0, 2, 0],
            ceil_mode: false,
            kind,
        };
        let want = check(&case, 2).unwrap();
        let inclusive = kind == PoolKind::Average { count_include_pad: true };
        assert!(want[..5].iter().all(|v| if inclusive { *v == 0.0 } else { v.is_nan() }), "{kind:?}: {want:?}");
    }
}

#[test]
fn rejects_windows_past_the_input() {
    let geometry = ConvGeometry {
        batch: 1,
        h: 4,
        w: 4,
        c: 3,
        kh: 2,
        kw: 2,
        stride: (2, 2),
        dilation: (1, 1),
        pad: (0, 0),
        oh: 3,
        ow: 2,
    };
    let spec = PoolSpec { geometry, pad_end: (0, 0), kind: PoolKind::Max };
    assert!(compile_pool(&spec, &target()).is_err());
}
