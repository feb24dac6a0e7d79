//! Import behaviour on small hand-built models: clear errors for broken or unsupported input,
//! opset-dependent semantics, dimension pinning and shape-subgraph folding.

mod common;

use common::*;
use std::collections::HashMap;
use veltair_ir::{Op, Tensor};
use veltair_onnx::{ImportError, ImportOptions, NodeProblem, OnnxModel};

fn import(m: &onnx_protobuf::ModelProto, opts: &ImportOptions) -> Result<veltair_ir::Graph, ImportError> {
    OnnxModel::from_bytes(&bytes(m), None)?.import(opts)
}

fn spec(
    nodes: Vec<onnx_protobuf::NodeProto>,
    inputs: Vec<onnx_protobuf::ValueInfoProto>,
    outputs: Vec<onnx_protobuf::ValueInfoProto>,
) -> ModelSpec {
    ModelSpec { nodes, inputs, outputs, initializers: Vec::new(), opset: 13 }
}

#[test]
fn all_unsupported_ops_are_listed_at_once() {
    let m = model(spec(
        vec![
            node("Foo", "f", &["x"], &["a"], vec![]),
            node("Relu", "r", &["a"], &["b"], vec![]),
            node("Bar", "g", &["b"], &["y"], vec![]),
        ],
        vec![value("x", 1, &[2])],
        vec![value("y", 1, &[2])],
    ));
    let e = import(&m, &ImportOptions::default()).unwrap_err();
    match &e {
        ImportError::Unsupported { opset, ops } => {
            assert_eq!(*opset, 13);
            let names: Vec<&str> = ops.iter().map(|o| o.op.as_str()).collect();
            assert_eq!(names, ["Foo", "Bar"]);
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("node 'f': Foo") && msg.contains("node 'g': Bar"), "{msg}");
}

#[test]
fn missing_initializer_names_node_and_value() {
    let m = model(spec(
        vec![node("Add", "add1", &["x", "W"], &["y"], vec![])],
        vec![value("x", 1, &[2])],
        vec![value("y", 1, &[2])],
    ));
    let msg = import(&m, &ImportOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("'add1'") && msg.contains("'W'"), "{msg}");
}

#[test]
fn cycle_is_reported() {
    let m = model(spec(
        vec![
            node("Relu", "a", &["q"], &["p"], vec![]),
            node("Relu", "b", &["p"], &["q"], vec![]),
            node("Relu", "c", &["x"], &["y"], vec![]),
        ],
        vec![value("x", 1, &[2])],
        vec![value("y", 1, &[2])],
    ));
    let msg = import(&m, &ImportOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("cycle") && msg.contains("'a'") && msg.contains("'b'"), "{msg}");
}

#[test]
fn shape_mismatch_names_node_op_and_opset() {
    let m = model(spec(
        vec![node("Add", "sum", &["x", "z"], &["y"], vec![])],
        vec![value("x", 1, &[2, 3]), value("z", 1, &[4, 3])],
        vec![value("y", 1, &[2, 3])],
    ));
    let e = import(&m, &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(&e, ImportError::Node { node, op, opset: 13, problem: NodeProblem::Invalid(_) } if node == "sum" && op == "Add"),
        "{e:?}"
    );
    assert!(e.to_string().contains("broadcast"), "{e}");
}

#[test]
fn truncated_and_garbage_files_fail_to_parse() {
    let m = model(spec(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![value("x", 1, &[2])],
        vec![value("y", 1, &[2])],
    ));
    let b = bytes(&m);
    assert!(matches!(OnnxModel::from_bytes(&b[..b.len() / 2], None), Err(ImportError::Parse(_))));
    assert!(matches!(OnnxModel::from_bytes(b"\xff\xff\xff\xff not onnx", None), Err(ImportError::Parse(_))));
    assert!(matches!(OnnxModel::from_bytes(&[], None), Err(ImportError::Parse(_))));
}

#[test]
fn dynamic_dims_need_pinning_and_pins_are_checked() {
    let m = model(spec(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![value("x", 1, &[-1, 3])],
        vec![value("y", 1, &[-1, 3])],
    ));
    let e = import(&m, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("--input-shape") && e.contains("'x'"), "{e}");
    let mut opts = ImportOptions::default();
    opts.input_shapes.insert("x".into(), vec![5, 3]);
    let g = import(&m, &opts).unwrap();
    assert_eq!(g.value(g.outputs[0]).ty.shape, vec![5, 3]);
    opts.input_shapes.insert("x".into(), vec![5, 4]);
    assert!(matches!(import(&m, &opts), Err(ImportError::Signature { .. })));
    let mut wrong_name = ImportOptions::default();
    wrong_name.input_shapes.insert("nope".into(), vec![1, 3]);
    assert!(import(&m, &wrong_name).unwrap_err().to_string().contains("not a graph input"));
}

#[test]
fn shape_subgraph_folds_to_a_static_reshape() {
    // Flatten as PyTorch exports it: Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape.
    let mut s = spec(
        vec![
            node("Shape", "shape", &["x"], &["s"], vec![]),
            node("Gather", "gather", &["s", "zero"], &["n"], vec![attr_int("axis", 0)]),
            node("Unsqueeze", "unsq", &["n", "axes"], &["n1"], vec![]),
            node("Concat", "cat", &["n1", "minus1"], &["target"], vec![attr_int("axis", 0)]),
            node("Reshape", "flat", &["x", "target"], &["y"], vec![]),
        ],
        vec![value("x", 1, &[-1, 2, 3])],
        vec![value("y", 1, &[-1, 6])],
    );
    s.initializers =
        vec![tensor_i64("zero", &[], vec![0]), tensor_i64("axes", &[1], vec![0]), tensor_i64("minus1", &[1], vec![-1])];
    let mut opts = ImportOptions::default();
    opts.input_shapes.insert("x".into(), vec![4, 2, 3]);
    let g = import(&model(s), &opts).unwrap();
    assert_eq!(
        g.nodes.len(),
        1,
        "only the reshape remains: {:?}",
        g.nodes.iter().map(|n| &n.source_op).collect::<Vec<_>>()
    );
    assert_eq!(g.nodes[0].op, Op::Reshape(vec![4, 6]));
}

fn softmax_model(opset: i64) -> onnx_protobuf::ModelProto {
    let mut s = spec(
        vec![node("Softmax", "sm", &["x"], &["y"], vec![attr_int("axis", 1)])],
        vec![value("x", 1, &[2, 3, 4])],
        vec![value("y", 1, &[2, 3, 4])],
    );
    s.opset = opset;
    model(s)
}

#[test]
fn softmax_axis_semantics_follow_the_opset() {
    let x = Tensor::from_f32(vec![2, 3, 4], (0..24).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    let run = |opset| {
        let g = import(&softmax_model(opset), &ImportOptions::default()).unwrap();
        veltair_ref::evaluate(&g, std::slice::from_ref(&x)).unwrap().remove(0)
    };
    let (old, new) = (run(11), run(13));
    let (old, new) = (old.as_f32("y").unwrap(), new.as_f32("y").unwrap());
    // Opset 11 normalises over the 12 trailing elements of each batch; opset 13 over axis 1.
    let old_sum: f32 = old[..12].iter().sum();
    assert!((old_sum - 1.0).abs() < 1e-5, "{old_sum}");
    let new_sum: f32 = (0..3).map(|c| new[c * 4]).sum();
    assert!((new_sum - 1.0).abs() < 1e-5, "{new_sum}");
    assert!((old[0] - new[0]).abs() > 1e-3);
}

#[test]
fn clip_bounds_from_attributes_and_inputs_agree() {
    let mut old = spec(
        vec![node("Clip", "c", &["x"], &["y"], vec![attr_float("min", -0.5), attr_float("max", 0.25)])],
        vec![value("x", 1, &[5])],
        vec![value("y", 1, &[5])],
    );
    old.opset = 6;
    let mut new = spec(
        vec![node("Clip", "c", &["x", "lo", "hi"], &["y"], vec![])],
        vec![value("x", 1, &[5])],
        vec![value("y", 1, &[5])],
    );
    new.initializers = vec![tensor_f32("lo", &[], vec![-0.5]), tensor_f32("hi", &[], vec![0.25])];
    let x = Tensor::from_f32(vec![5], vec![-2.0, -0.5, 0.0, 0.2, 3.0]).unwrap();
    for m in [model(old), model(new)] {
        let g = import(&m, &ImportOptions::default()).unwrap();
        let y = veltair_ref::evaluate(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_eq!(y.as_f32("y").unwrap(), &[-0.5, -0.5, 0.0, 0.2, 0.25]);
    }
}

#[test]
fn integer_clip_is_max_then_min_in_the_input_type() {
    let mut m = spec(
        vec![node("Clip", "c", &["x", "lo", "hi"], &["y"], vec![])],
        vec![value("x", 7, &[5])],
        vec![value("y", 7, &[5])],
    );
    m.initializers = vec![tensor_i64("lo", &[], vec![-1]), tensor_i64("hi", &[], vec![3])];
    let g = import(&model(m), &ImportOptions::default()).unwrap();
    assert!(g.nodes.iter().all(|n| !matches!(n.op, Op::Unary(_))), "integer Clip stays a float unary");
    let x = Tensor::from_i64(vec![5], vec![-7, -1, 0, 3, 9]).unwrap();
    let y = veltair_ref::evaluate(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_eq!(y.data().to_i64_vec(), vec![-1, -1, 0, 3, 3]);
}

#[test]
fn initializer_listed_as_input_is_a_constant() {
    let mut s = spec(
        vec![node("Add", "a", &["x", "w"], &["y"], vec![])],
        vec![value("x", 1, &[2]), value("w", 1, &[2])],
        vec![value("y", 1, &[2])],
    );
    s.initializers = vec![tensor_f32("w", &[2], vec![1.0, 2.0])];
    let om = OnnxModel::from_bytes(&bytes(&model(s)), None).unwrap();
    assert_eq!(om.input_names(), vec!["x".to_string()]);
    let g = om.import(&ImportOptions::default()).unwrap();
    assert_eq!(g.inputs.len(), 1);
}

#[test]
fn reshape_target_from_a_graph_input_is_bound_from_samples() {
    let m = model(spec(
        vec![node("Reshape", "r", &["x", "shape"], &["y"], vec![])],
        vec![value("x", 1, &[2, 3]), value("shape", 7, &[2])],
        vec![value("y", 1, &[3, 2])],
    ));
    let om = OnnxModel::from_bytes(&bytes(&m), None).unwrap();
    let e = om.import(&ImportOptions::default()).unwrap_err();
    assert_eq!(e.inputs_needing_values(), vec!["shape".to_string()]);
    let samples: HashMap<String, Tensor> = [
        ("x".to_string(), Tensor::from_f32(vec![2, 3], vec![0.0; 6]).unwrap()),
        ("shape".to_string(), Tensor::from_i64(vec![2], vec![3, -1]).unwrap()),
    ]
    .into();
    let (g, bound) = om.import_for_samples(&ImportOptions::default(), &samples).unwrap();
    assert_eq!(bound, vec!["shape".to_string()]);
    assert_eq!(g.value(g.outputs[0]).ty.shape, vec![3, 2]);
}

#[test]
fn external_data_is_read_beside_the_model_and_must_stay_inside() {
    let dir = std::env::temp_dir().join(format!("veltair-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("w.bin"), [vec![0u8; 8], weights].concat()).unwrap();
    let ext = |location: &str| {
        let mut t = tensor_f32("w", &[2], vec![]);
        t.data_location = onnx_protobuf::tensor_proto::DataLocation::EXTERNAL.into();
        for (k, v) in [("location", location), ("offset", "8"), ("length", "8")] {
            let mut e = onnx_protobuf::StringStringEntryProto::new();
            e.key = k.into();
            e.value = v.into();
            t.external_data.push(e);
        }
        let mut s = spec(
            vec![node("Add", "a", &["x", "w"], &["y"], vec![])],
            vec![value("x", 1, &[2])],
            vec![value("y", 1, &[2])],
        );
        s.initializers = vec![t];
        bytes(&model(s))
    };
    let g = OnnxModel::from_bytes(&ext("w.bin"), Some(&dir)).unwrap().import(&ImportOptions::default()).unwrap();
    let w = g.values.iter().find(|v| v.name == "w").unwrap().constant.clone().unwrap();
    assert_eq!(w.as_f32("w").unwrap(), &[1.5, -2.0]);
    let escape =
        OnnxModel::from_bytes(&ext("../w.bin"), Some(&dir)).unwrap().import(&ImportOptions::default()).unwrap_err();
    assert!(escape.to_string().contains("relative path"), "{escape}");
    let missing =
        OnnxModel::from_bytes(&ext("nope.bin"), Some(&dir)).unwrap().import(&ImportOptions::default()).unwrap_err();
    assert!(missing.to_string().contains("nope.bin"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
