//! Graph passes keep their graphs' outputs (the reference evaluator gives the same results
//! before and after): BatchNormalization folding and epilogue fusion on the committed zoo, 1-D
//! layers recast as 2-D, convolutions as explicit im2col, expanded normalisations and separated
//! 3-D pooling on small built graphs.

use veltair_ir::{passes::fold_batch_norm, Op};
use veltair_tests::{prepare_case, small_zoo};

#[test]
fn batch_norm_folding_preserves_outputs() {
    let mut folded_models = 0;
    for dir in small_zoo() {
        let mut case = prepare_case(&dir).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        let before = veltair_ref::evaluate(&case.graph, &case.feeds[0]).unwrap();
        let bn_before = case.graph.nodes.iter().filter(|n| matches!(n.op, Op::BatchNorm { .. })).count();
        let folded = fold_batch_norm(&mut case.graph);
        let bn_after = case.graph.nodes.iter().filter(|n| matches!(n.op, Op::BatchNorm { .. })).count();
        assert_eq!(bn_before - bn_after, folded, "{}", dir.display());
        if bn_before > 0 {
            assert_eq!(bn_after, 0, "{}: every BatchNormalization follows a convolution", dir.display());
            folded_models += 1;
        }
        let after = veltair_ref::evaluate(&case.graph, &case.feeds[0]).unwrap();
        for (a, b) in after.iter().zip(&before) {
            let c = veltair_ir::compare(a, b, 1e-4, 1e-5);
            assert!(c.ok, "{}: {c:?}", dir.display());
        }
    }
    assert!(folded_models >= 4, "resnet50, mobilenetv2, efficientnet_b0 and tiny_yolov2 have BatchNormalization");
}

#[test]
fn epilogue_fusion_preserves_outputs_and_merges_layers() {
    use veltair_ir::passes::{fuse_epilogues, recognize_gelu, recognize_silu};
    let mut total = 0;
    for dir in small_zoo() {
        let mut case = prepare_case(&dir).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        let before = veltair_ref::evaluate(&case.graph, &case.feeds[0]).unwrap();
        let nodes_before = case.graph.nodes.len();
        fold_batch_norm(&mut case.graph);
        let silus = recognize_silu(&mut case.graph);
        if dir.ends_with("efficientnet_b0") {
            assert!(silus > 10, "EfficientNet's SiLUs were not recognised ({silus})");
        }
        let gelus = recognize_gelu(&mut case.graph);
        if dir.ends_with("bert_base") {
            assert_eq!(gelus, 2, "the BERT encoder's two GELUs were not recognised");
        }
        let folded_nodes = case.graph.nodes.len();
        let fused = fuse_epilogues(&mut case.graph);
        assert_eq!(case.graph.nodes.len(), folded_nodes - fused, "{}", dir.display());
        total += fused;
        let after = veltair_ref::evaluate(&case.graph, &case.feeds[0]).unwrap();
        for (a, b) in after.iter().zip(&before) {
            let c = veltair_ir::compare(a, b, 1e-4, 1e-5);
            assert!(c.ok, "{}: {c:?}", dir.display());
        }
        eprintln!("{}: {nodes_before} nodes -> {} layers", dir.display(), case.graph.nodes.len());
    }
    assert!(total > 50, "only {total} element-wise nodes fused across the zoo");
}

/// Values in [-1, 1) from a fixed sequence.
fn ramp(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

/// A graph of one input `[2, 6, 11]` feeding `layers` (each given the previous output).
fn one_d_graph(layers: &[Op]) -> veltair_ir::Graph {
    use veltair_ir::{DType, Graph, Tensor, TensorType};
    let mut g = Graph::default();
    let mut x = g.add_value("x", TensorType { dtype: DType::F32, shape: vec![2, 6, 11] });
    g.inputs.push(x);
    for (i, op) in layers.iter().enumerate() {
        let mut inputs = vec![Some(x)];
        if let Op::Conv(a) | Op::ConvTranspose { conv: a, .. } = op {
            let (cin, cout) = (g.value(x).ty.shape[1], 4);
            let w_shape = match op {
                Op::Conv(_) => vec![cout, cin / a.group, a.kernel[0]],
                _ => vec![cin, cout / a.group, a.kernel[0]],
            };
            let w = Tensor::from_f32(w_shape.clone(), ramp(w_shape.iter().product(), i as u32)).unwrap();
            inputs.push(Some(g.add_constant(format!("w{i}"), w)));
            inputs.push(Some(g.add_constant(format!("b{i}"), Tensor::from_f32(vec![cout], ramp(cout, 7)).unwrap())));
        }
        x = g.add_node(format!("n{i}"), "layer", op.clone(), inputs, &[format!("y{i}")]).unwrap()[0];
    }
    g.outputs.push(x);
    g
}

#[test]
fn one_d_layers_recast_as_2d_keep_their_outputs() {
    use veltair_ir::passes::lift_1d_spatial;
    use veltair_ir::{ConvAttrs, PoolAttrs, Tensor};
    let conv = |k: usize, s: usize, d: usize, p: (usize, usize), group: usize| ConvAttrs {
        kernel: vec![k],
        strides: vec![s],
        dilations: vec![d],
        pads_begin: vec![p.0],
        pads_end: vec![p.1],
        group,
    };
    let pool = PoolAttrs {
        kernel: vec![3],
        strides: vec![2],
        dilations: vec![1],
        pads_begin: vec![1],
        pads_end: vec![0],
        ceil_mode: true,
        count_include_pad: false,
        column_major_indices: false,
    };
    let chains = [
        vec![Op::Conv(conv(3, 1, 1, (1, 1), 1)), Op::MaxPool(pool.clone())],
        vec![Op::Conv(conv(2, 2, 2, (0, 1), 2)), Op::AveragePool(pool.clone()), Op::GlobalAveragePool],
        vec![Op::ConvTranspose { conv: conv(3, 2, 1, (1, 0), 1), output_padding: vec![1] }, Op::GlobalMaxPool],
    ];
    for layers in chains {
        let mut g = one_d_graph(&layers);
        let x = Tensor::from_f32(vec![2, 6, 11], ramp(132, 3)).unwrap();
        let before = veltair_ref::evaluate(&g, std::slice::from_ref(&x)).unwrap();
        assert_eq!(lift_1d_spatial(&mut g), layers.len(), "{layers:?}");
        let rank = |op: &Op| match op {
            Op::Conv(a) | Op::ConvTranspose { conv: a, .. } => a.kernel.len(),
            Op::MaxPool(a) | Op::AveragePool(a) => a.kernel.len(),
            _ => 2,
        };
        assert!(g.nodes.iter().all(|n| rank(&n.op) == 2), "{layers:?}: a 1-D layer is left");
        let after = veltair_ref::evaluate(&g, &[x]).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].shape(), before[0].shape());
        let c = veltair_ir::compare(&after[0], &before[0], 1e-5, 1e-6);
        assert!(c.ok, "{layers:?}: {c:?}");
    }
}

#[test]
fn convolutions_as_im2col_keep_their_outputs() {
    use veltair_ir::passes::conv_as_im2col;
    use veltair_ir::{ConvAttrs, DType, Graph, Tensor, TensorType};
    // (input shape, weight shape, strides, dilations, pads, group, constant weights, bias)
    let cases = [
        (vec![2, 4, 7, 6], vec![6, 2, 3, 2], vec![2, 1], vec![1, 2], vec![1, 0, 2, 1], 2, false, true),
        (vec![1, 3, 9], vec![3, 1, 4], vec![1], vec![1], vec![3, 0], 3, false, false),
        (vec![1, 2, 5, 4, 6], vec![3, 2, 2, 3, 1], vec![1, 2, 1], vec![2, 1, 1], vec![0, 1, 0, 1, 0, 2], 1, true, true),
    ];
    for (xs, ws, strides, dilations, pads, group, constant, bias) in cases {
        let spatial = strides.len();
        let attrs = ConvAttrs {
            kernel: ws[2..].to_vec(),
            strides,
            dilations,
            pads_begin: pads[..spatial].to_vec(),
            pads_end: pads[spatial..].to_vec(),
            group,
        };
        let mut g = Graph::default();
        let x = g.add_value("x", TensorType { dtype: DType::F32, shape: xs.clone() });
        g.inputs.push(x);
        let w_tensor = Tensor::from_f32(ws.clone(), ramp(ws.iter().product(), 5)).unwrap();
        let w = if constant {
            g.add_constant("w", w_tensor.clone())
        } else {
            let w = g.add_value("w", TensorType { dtype: DType::F32, shape: ws.clone() });
            g.inputs.push(w);
            w
        };
        let mut inputs = vec![Some(x), Some(w)];
        if bias {
            inputs.push(Some(g.add_constant("b", Tensor::from_f32(vec![ws[0]], ramp(ws[0], 9)).unwrap())));
        }
        let y = g.add_node("conv", "Conv", Op::Conv(attrs), inputs, &["y".to_string()]).unwrap()[0];
        g.outputs.push(y);
        let mut feeds = vec![Tensor::from_f32(xs.clone(), ramp(xs.iter().product(), 1)).unwrap()];
        if !constant {
            feeds.push(w_tensor);
        }
        let before = veltair_ref::evaluate(&g, &feeds).unwrap();
        assert_eq!(conv_as_im2col(&mut g), 1, "{xs:?} * {ws:?}");
        assert!(!g.nodes.iter().any(|n| matches!(n.op, Op::Conv(_))), "the convolution is left");
        let after = veltair_ref::evaluate(&g, &feeds).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].shape(), before[0].shape());
        let c = veltair_ir::compare(&after[0], &before[0], 1e-5, 1e-6);
        assert!(c.ok, "{xs:?} * {ws:?}: {c:?}");
    }
}

#[test]
fn expanded_normalisations_keep_their_outputs() {
    use veltair_ir::passes::expand_norms;
    use veltair_ir::{DType, Graph, Tensor, TensorType};
    let xs = vec![2, 3, 4, 5];
    // (operator, shapes of its parameters (all graph inputs), outputs)
    let cases = [
        (Op::LayerNorm { axis: 2, epsilon: 1e-5 }, vec![vec![4, 5], vec![5]], 3),
        (Op::LayerNorm { axis: 1, epsilon: 1e-3 }, vec![vec![1, 4, 1]], 1),
        (Op::InstanceNorm { epsilon: 1e-4 }, vec![vec![3], vec![3]], 1),
        (Op::BatchNorm { epsilon: 1e-5 }, vec![vec![3]; 4], 1),
    ];
    for (op, params, outputs) in cases {
        let mut g = Graph::default();
        let x = g.add_value("x", TensorType { dtype: DType::F32, shape: xs.clone() });
        g.inputs.push(x);
        let mut feeds = vec![Tensor::from_f32(xs.clone(), ramp(xs.iter().product(), 1)).unwrap()];
        let mut inputs = vec![Some(x)];
        for (i, shape) in params.iter().enumerate() {
            let p = g.add_value(format!("p{i}"), TensorType { dtype: DType::F32, shape: shape.clone() });
            g.inputs.push(p);
            inputs.push(Some(p));
            // Variances (BatchNorm's input 4) must be positive.
            let values = ramp(shape.iter().product(), i as u32)
                .iter()
                .map(|v| if i == 3 { v.abs() + 0.1 } else { *v })
                .collect();
            feeds.push(Tensor::from_f32(shape.clone(), values).unwrap());
        }
        let names: Vec<String> = (0..outputs).map(|i| format!("y{i}")).collect();
        g.outputs = g.add_node("norm", "norm", op.clone(), inputs, &names).unwrap();
        let before = veltair_ref::evaluate(&g, &feeds).unwrap();
        assert_eq!(expand_norms(&mut g), 1, "{op:?}");
        let after = veltair_ref::evaluate(&g, &feeds).unwrap();
        assert_eq!(after.len(), outputs);
        assert_eq!(before.len(), outputs);
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(a.shape(), b.shape(), "{op:?}");
            let c = veltair_ir::compare(a, b, 1e-4, 1e-5);
            assert!(c.ok, "{op:?}: {c:?}");
        }
    }
}

#[test]
fn three_d_pooling_separated_keeps_its_outputs() {
    use veltair_ir::passes::pool_3d_separably;
    use veltair_ir::{DType, Graph, PoolAttrs, Tensor, TensorType};
    let xs = vec![1, 2, 6, 5, 7];
    for max in [true, false] {
        for (count_include_pad, ceil_mode) in [(false, false), (true, true), (false, true)] {
            let attrs = PoolAttrs {
                kernel: vec![3, 2, 3],
                strides: vec![2, 1, 2],
                dilations: vec![1, 2, 1],
                pads_begin: vec![1, 0, 1],
                pads_end: vec![1, 1, 0],
                ceil_mode,
                count_include_pad,
                column_major_indices: false,
            };
            let op = if max { Op::MaxPool(attrs) } else { Op::AveragePool(attrs) };
            let mut g = Graph::default();
            let x = g.add_value("x", TensorType { dtype: DType::F32, shape: xs.clone() });
            g.inputs.push(x);
            g.outputs = g.add_node("pool", "pool", op.clone(), vec![Some(x)], &["y".to_string()]).unwrap();
            let feeds = [Tensor::from_f32(xs.clone(), ramp(xs.iter().product(), 4)).unwrap()];
            let before = veltair_ref::evaluate(&g, &feeds).unwrap();
            assert_eq!(pool_3d_separably(&mut g), 1, "{op:?}");
            let after = veltair_ref::evaluate(&g, &feeds).unwrap();
            assert_eq!(after.len(), 1);
            assert_eq!(after[0].shape(), before[0].shape(), "{op:?}");
            let c = veltair_ir::compare(&after[0], &before[0], 1e-5, 1e-6);
            assert!(c.ok, "{op:?}: {c:?}");
        }
    }
}
