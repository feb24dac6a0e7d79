//! Single-operator graphs lowered to generated code and run by the executor at 1 and 2
//! threads, against the reference evaluator: the layer kinds and layouts the zoo models do not
//! exercise (softmax and reductions over inner axes, slices, expands, transposes, standalone
//! batch normalisation and pooling kinds, broadcasting element-wise chains).

use veltair_codegen::{OptLevel, Target};
use veltair_exec::Executor;
use veltair_ir::{BinaryOp, DType, Graph, Op, PoolAttrs, ReduceOp, SliceAxis, Tensor, TensorType};
use veltair_lower::{lower, LowerOptions};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0)
        .collect()
}

/// Runs `op` over runtime inputs of `shapes` (plus `constants`) through the lowering and the
/// reference evaluator and compares (rtol 1e-4, atol 1e-5).
fn check(name: &str, op: Op, shapes: &[Vec<usize>], constants: Vec<Tensor>) {
    check_within(name, op, shapes, constants, (1e-4, 1e-5));
}

/// [`check`] at the given (rtol, atol).
fn check_within(name: &str, op: Op, shapes: &[Vec<usize>], constants: Vec<Tensor>, (rtol, atol): (f64, f64)) {
    let mut g = Graph::default();
    let mut ins = Vec::new();
    let mut feeds = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let v = g.add_value(format!("x{i}"), TensorType { dtype: DType::F32, shape: shape.clone() });
        g.inputs.push(v);
        ins.push(Some(v));
        feeds.push(Tensor::from_f32(shape.clone(), values(shape.iter().product(), i as u32 + 1)).unwrap());
    }
    for (i, c) in constants.into_iter().enumerate() {
        ins.push(Some(g.add_constant(format!("c{i}"), c)));
    }
    let y = g.add_node(name, name, op, ins, &["y".to_string()]).unwrap()[0];
    g.outputs.push(y);
    let want = veltair_ref::evaluate(&g, &feeds).unwrap().remove(0);
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let plan = lower(&g, &target, &LowerOptions { max_threads: 2, ..LowerOptions::default() })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for threads in [1, 2] {
        let mut exec = Executor::new(plan.clone(), threads).unwrap();
        let got = exec.run(&feeds).unwrap().remove(0);
        let c = veltair_ir::compare(&got, &want, rtol, atol);
        assert!(c.ok, "{name} at {threads} threads: {c:?}");
    }
}

#[test]
fn softmax_and_reductions_over_inner_axes() {
    for axis in 0..3 {
        check("softmax", Op::Softmax { axis, log: axis == 1, coerce_2d: false }, &[vec![3, 5, 6]], vec![]);
    }
    check("softmax_2d", Op::Softmax { axis: 1, log: false, coerce_2d: true }, &[vec![2, 3, 4]], vec![]);
    for (axes, keepdims) in [(vec![0, 2], true), (vec![1], false), (vec![2], true), (vec![0, 1, 2], false)] {
        for op in [ReduceOp::Mean, ReduceOp::Max, ReduceOp::SumSquare] {
            check("reduce", Op::Reduce { op, axes: axes.clone(), keepdims }, &[vec![4, 3, 5]], vec![]);
        }
    }
}

#[test]
fn data_movement() {
    check("transpose", Op::Transpose(vec![2, 0, 1]), &[vec![3, 4, 5]], vec![]);
    let slice =
        vec![SliceAxis { axis: 1, start: 4, step: -2, len: 2 }, SliceAxis { axis: 2, start: 1, step: 1, len: 3 }];
    check("slice", Op::Slice(slice), &[vec![2, 5, 6]], vec![]);
    check("expand", Op::Expand(vec![2, 3, 4]), &[vec![3, 1]], vec![]);
    check("concat", Op::Concat { axis: 0 }, &[vec![2, 3], vec![1, 3]], vec![]);
    check("concat_images", Op::Concat { axis: 1 }, &[vec![1, 3, 4, 4], vec![1, 5, 4, 4]], vec![]);
}

#[test]
fn normalisation_and_pooling() {
    let c = 6;
    let params: Vec<Tensor> = (0..4)
        .map(|i| {
            Tensor::from_f32(
                vec![c],
                values(c, 10 + i).into_iter().map(|v| if i == 3 { v.abs() + 0.5 } else { v }).collect(),
            )
            .unwrap()
        })
        .collect();
    check("batch_norm", Op::BatchNorm { epsilon: 1e-5 }, &[vec![2, c, 5, 4]], params);
    let pool = PoolAttrs {
        kernel: vec![3, 2],
        strides: vec![2, 1],
        dilations: vec![1, 1],
        pads_begin: vec![1, 0],
        pads_end: vec![1, 1],
        ceil_mode: false,
        count_include_pad: false,
        column_major_indices: false,
    };
    check("average_pool", Op::AveragePool(pool.clone()), &[vec![1, 7, 9, 8]], vec![]);
    check("max_pool", Op::MaxPool(pool), &[vec![2, 5, 6, 6]], vec![]);
    check("global_max_pool", Op::GlobalMaxPool, &[vec![2, 9, 5, 3]], vec![]);
    check("lrn", Op::Lrn { size: 4, alpha: 0.2, beta: 0.75, bias: 1.5 }, &[vec![1, 7, 3, 3]], vec![]);
}

#[test]
fn broadcasting_element_wise() {
    check("add_rows", Op::Binary(BinaryOp::Add), &[vec![4, 1, 6], vec![3, 1]], vec![]);
    check(
        "mul_channels",
        Op::Binary(BinaryOp::Mul),
        &[vec![2, 5, 3, 3]],
        vec![Tensor::from_f32(vec![5, 1, 1], values(5, 7)).unwrap()],
    );
    check("div_scalar", Op::Binary(BinaryOp::Div), &[vec![3, 7]], vec![Tensor::from_f32(vec![], vec![1.7]).unwrap()]);
}

#[test]
fn convolutions_grouped_strided_and_winograd() {
    use veltair_ir::ConvAttrs;
    let conv = |k: usize, stride: usize, pad: usize, group: usize| {
        Op::Conv(ConvAttrs {
            kernel: vec![k, k],
            strides: vec![stride, stride],
            dilations: vec![1, 1],
            pads_begin: vec![pad, pad],
            pads_end: vec![pad, pad],
            group,
        })
    };
    for (k, stride, pad, group, cin, cout) in
        [(3, 1, 1, 2, 8, 6), (1, 2, 0, 3, 9, 12), (3, 2, 1, 4, 8, 8), (3, 1, 1, 1, 12, 10)]
    {
        let w = Tensor::from_f32(vec![cout, cin / group, k, k], values(cout * cin / group * k * k, 5)).unwrap();
        let b = Tensor::from_f32(vec![cout], values(cout, 6)).unwrap();
        // Winograd (the dense 3x3 stride-1 case) rounds differently: the zoo's tolerance.
        check_within("conv", conv(k, stride, pad, group), &[vec![1, cin, 9, 7]], vec![w, b], (1e-3, 1e-4));
    }
}

#[test]
fn resize_modes() {
    use veltair_ir::{CoordMode, NearestMode, ResizeAttrs, ResizeMode};
    let x = vec![1, 3, 5, 6];
    let base = ResizeAttrs {
        mode: ResizeMode::Nearest,
        coord: CoordMode::Asymmetric,
        nearest: NearestMode::Floor,
        out_shape: vec![1, 3, 10, 12],
        scales: vec![1.0, 1.0, 2.0, 2.0],
        roi: vec![],
        cubic_coeff_a: -0.75,
        antialias: false,
        exclude_outside: false,
        extrapolation_value: 0.0,
    };
    let down = ResizeAttrs { out_shape: vec![1, 3, 3, 4], scales: vec![1.0, 1.0, 0.6, 0.7], ..base.clone() };
    let crop = ResizeAttrs {
        mode: ResizeMode::Linear,
        coord: CoordMode::TfCropAndResize,
        roi: vec![0.0, 0.0, -0.2, 0.1, 1.0, 1.0, 1.1, 0.8],
        extrapolation_value: 7.5,
        ..base.clone()
    };
    for r in [
        base.clone(),
        ResizeAttrs { mode: ResizeMode::Linear, coord: CoordMode::HalfPixel, ..base.clone() },
        ResizeAttrs { mode: ResizeMode::Cubic, coord: CoordMode::AlignCorners, ..base.clone() },
        ResizeAttrs { mode: ResizeMode::Linear, antialias: true, coord: CoordMode::HalfPixel, ..down.clone() },
        ResizeAttrs { mode: ResizeMode::Cubic, exclude_outside: true, coord: CoordMode::PytorchHalfPixel, ..down },
        crop,
        ResizeAttrs { out_shape: vec![1, 3, 5, 6], scales: vec![1.0; 4], ..base.clone() },
        ResizeAttrs { out_shape: vec![2, 3, 5, 6], scales: vec![2.0, 1.0, 1.0, 1.0], ..base },
    ] {
        check("resize", Op::Resize(r), std::slice::from_ref(&x), vec![]);
    }
}

#[test]
fn transposed_convolutions() {
    use veltair_ir::ConvAttrs;
    // (kernel, stride, dilation, pad begin, pad end, output padding, cin, cout)
    for (k, s, d, pb, pe, op, cin, cout) in
        [(3, 2, 1, 1, 1, 1, 4, 6), (4, 2, 1, 1, 1, 0, 5, 3), (3, 1, 1, 0, 0, 0, 6, 8), (2, 3, 2, 0, 1, 2, 3, 5)]
    {
        let attrs = ConvAttrs {
            kernel: vec![k, k],
            strides: vec![s, s],
            dilations: vec![d, d],
            pads_begin: vec![pb, pb],
            pads_end: vec![pe, pe],
            group: 1,
        };
        let w = Tensor::from_f32(vec![cin, cout, k, k], values(cin * cout * k * k, 8)).unwrap();
        let b = Tensor::from_f32(vec![cout], values(cout, 9)).unwrap();
        let op = Op::ConvTranspose { conv: attrs, output_padding: vec![op, op] };
        check_within("conv_transpose", op, &[vec![2, cin, 5, 4]], vec![w, b], (1e-3, 1e-4));
    }
}

#[test]
fn pads_and_tiles() {
    use veltair_ir::PadMode;
    for mode in [PadMode::Constant, PadMode::Edge, PadMode::Reflect, PadMode::Wrap] {
        let pad = Op::Pad { begin: vec![0, 1, 2, -1], end: vec![1, 0, 3, 2], mode, value: 2.5 };
        check("pad", pad, &[vec![2, 3, 4, 5]], vec![]);
    }
    check("tile", Op::Tile(vec![2, 1, 3]), &[vec![2, 3, 5]], vec![]);
}

#[test]
fn gemm_with_runtime_operands_scales_transposes_and_broadcast_c() {
    let (m, k, n) = (3, 5, 4);
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if trans_a { vec![k, m] } else { vec![m, k] };
        let b = if trans_b { vec![n, k] } else { vec![k, n] };
        for c in [vec![], vec![1], vec![n], vec![1, n], vec![m, 1], vec![m, n]] {
            for (alpha, beta) in [(1.0, 1.0), (0.5, 1.0), (1.0, 0.25), (-2.0, 3.0), (1.0, 0.0)] {
                let gemm = Op::Gemm { alpha, beta, trans_a, trans_b };
                // Every operand at run time (as the ONNX node tests give them) …
                check("gemm", gemm.clone(), &[a.clone(), b.clone(), c.clone()], vec![]);
                // … and B, C constant (the packed-weight path).
                let consts = vec![
                    Tensor::from_f32(b.clone(), values(k * n, 3)).unwrap(),
                    Tensor::from_f32(c.clone(), values(c.iter().product(), 4)).unwrap(),
                ];
                check("gemm_constant_b", gemm, std::slice::from_ref(&a), consts);
            }
        }
    }
    let no_c = Op::Gemm { alpha: 0.5, beta: 1.0, trans_a: true, trans_b: true };
    check("gemm_no_c", no_c, &[vec![k, m], vec![n, k]], vec![]);
}

#[test]
fn variadic_element_wise() {
    for op in [BinaryOp::Max, BinaryOp::Min, BinaryOp::Add] {
        check("one_input", Op::Binary(op), &[vec![3, 4]], vec![]);
        check("three_inputs", Op::Binary(op), &[vec![3, 4], vec![4], vec![3, 1]], vec![]);
    }
    check("mean_one", Op::Mean, &[vec![5]], vec![]);
    check("mean_three", Op::Mean, &[vec![2, 3], vec![3], vec![2, 3]], vec![]);
}

#[test]
fn matmul_with_one_dimensional_and_runtime_operands() {
    check("vec_mat", Op::MatMul, &[vec![5], vec![5, 3]], vec![]);
    check("mat_vec", Op::MatMul, &[vec![4, 5], vec![5]], vec![]);
    check("batched_vec", Op::MatMul, &[vec![2, 4, 5], vec![5]], vec![]);
    check("vec_batched", Op::MatMul, &[vec![5], vec![2, 5, 3]], vec![]);
    check("vec_vec", Op::MatMul, &[vec![5], vec![5]], vec![]);
    check("broadcast_batch", Op::MatMul, &[vec![2, 1, 3, 5], vec![4, 5, 2]], vec![]);
    check("broadcast_both", Op::MatMul, &[vec![3, 1, 2, 5], vec![1, 4, 5, 2]], vec![]);
}

/// Runs a graph (inputs fed in order) through the lowering at 1 and 2 threads against the
/// reference evaluator.
fn check_graph(name: &str, g: &Graph, feeds: &[Tensor]) {
    let want = veltair_ref::evaluate(g, feeds).unwrap();
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let plan = lower(g, &target, &LowerOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    for threads in [1, 2] {
        let mut exec = Executor::new(plan.clone(), threads).unwrap();
        let got = exec.run(feeds).unwrap();
        assert_eq!(got.len(), want.len(), "{name}: output count");
        for (g, w) in got.into_iter().zip(&want) {
            let c = veltair_ir::compare(&g, w, 1e-4, 1e-5);
            assert!(c.ok, "{name} at {threads} threads: {c:?}");
        }
    }
}

#[test]
fn lower_rank_operands_of_channels_last_images() {
    use veltair_ir::ConvAttrs;
    // conv(x) + z with z of rank 3 ([C, H, W], stored plain) and of rank 4: unfused, then
    // fused into the convolution by the epilogue pass.
    for (fuse, z_shape) in [(false, vec![6, 5, 4]), (true, vec![6, 5, 4]), (true, vec![1, 6, 5, 4]), (true, vec![5, 1])]
    {
        let mut g = Graph::default();
        let x = g.add_value("x", TensorType { dtype: DType::F32, shape: vec![1, 3, 5, 4] });
        let z = g.add_value("z", TensorType { dtype: DType::F32, shape: z_shape.clone() });
        g.inputs.extend([x, z]);
        let w = g.add_constant("w", Tensor::from_f32(vec![6, 3, 3, 3], values(162, 3)).unwrap());
        let attrs = ConvAttrs {
            kernel: vec![3, 3],
            strides: vec![1, 1],
            dilations: vec![1, 1],
            pads_begin: vec![1, 1],
            pads_end: vec![1, 1],
            group: 1,
        };
        let y = g.add_node("conv", "Conv", Op::Conv(attrs), vec![Some(x), Some(w)], &["y".to_string()]).unwrap()[0];
        let s =
            g.add_node("add", "Add", Op::Binary(BinaryOp::Add), vec![Some(y), Some(z)], &["s".to_string()]).unwrap();
        g.outputs.push(s[0]);
        if fuse {
            assert_eq!(veltair_ir::passes::fuse_epilogues(&mut g), 1, "the Add fuses into the convolution");
        }
        let feeds = [
            Tensor::from_f32(vec![1, 3, 5, 4], values(60, 1)).unwrap(),
            Tensor::from_f32(z_shape.clone(), values(z_shape.iter().product(), 2)).unwrap(),
        ];
        check_graph(&format!("conv + z{z_shape:?} fused {fuse}"), &g, &feeds);
    }
}
