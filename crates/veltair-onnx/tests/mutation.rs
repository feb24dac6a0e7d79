//! Robustness: thousands of truncated, byte-mutated and structurally mutated versions of a
//! committed zoo model go through import (and, when that succeeds, evaluation). Truncated files
//! must be rejected; nothing may panic.

use onnx_protobuf::{Message, ModelProto};
use proptest::prelude::*;
use std::path::PathBuf;
use veltair_ir::{NodeStats, Tensor};
use veltair_onnx::{ImportOptions, OnnxModel, SUPPORTED_OPS};

fn zoo_model(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/small").join(name).join("model.onnx");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fuzzed models: a CNN (opset 10) and a transformer with shape subgraphs (opset 17).
fn seeds() -> &'static [Vec<u8>; 2] {
    static BYTES: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| [zoo_model("mobilenetv2"), zoo_model("bert_base")])
}

/// Imports (with BERT's symbolic batch pinned), and evaluates on zeros when the graph is small
/// enough to run quickly. Returns whether the import succeeded.
fn import_and_maybe_run(bytes: &[u8]) -> bool {
    let Ok(model) = OnnxModel::from_bytes(bytes, None) else {
        return false;
    };
    let mut opts = ImportOptions::default();
    for name in model.input_names().into_iter().filter(|n| n == "input_ids" || n == "attention_mask") {
        opts.input_shapes.insert(name, vec![1, 16]);
    }
    let Ok(graph) = model.import(&opts) else {
        return false;
    };
    let macs: u64 = graph.nodes.iter().map(|n| NodeStats::of(&graph, n).macs).sum();
    let biggest = graph.values.iter().map(|v| v.ty.numel()).max().unwrap_or(0);
    if macs < 50_000_000 && biggest < 1 << 22 {
        let feeds: Vec<Tensor> = graph.inputs.iter().map(|&id| Tensor::zeros(&graph.value(id).ty)).collect();
        let _ = veltair_ref::evaluate(&graph, &feeds);
    }
    true
}

/// 1500 cases per property unless `PROPTEST_CASES` asks for more (a longer local fuzz run).
fn fuzz_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1500);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

#[test]
fn original_models_import() {
    for b in seeds() {
        assert!(import_and_maybe_run(b));
    }
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    fn every_truncation_is_rejected(which in 0usize..2, cut in 0usize..usize::MAX) {
        let b = &seeds()[which];
        let cut = cut % b.len();
        prop_assert!(!import_and_maybe_run(&b[..cut]), "a prefix of {cut} bytes imported");
    }

    #[test]
    fn byte_mutations_never_panic(which in 0usize..2, edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..12)) {
        let mut b = seeds()[which].clone();
        for (pos, byte) in edits {
            let n = b.len();
            b[pos % n] = byte;
        }
        import_and_maybe_run(&b);
    }
}

/// One structural edit of a parsed model.
#[derive(Debug, Clone)]
enum Edit {
    AttrInt { node: usize, value: i64 },
    AttrInts { node: usize, slot: usize, value: i64 },
    AttrFloat { node: usize, value: f32 },
    InitDim { init: usize, slot: usize, value: i64 },
    OpType { node: usize, op: usize },
    SwapInput { node: usize, other: usize },
    DropInput { node: usize },
    DropNode { node: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let small = prop_oneof![-3i64..20, Just(i64::MAX), Just(i64::MIN), Just(-1), Just(0), Just(1 << 40)];
    prop_oneof![
        (any::<usize>(), small.clone()).prop_map(|(node, value)| Edit::AttrInt { node, value }),
        (any::<usize>(), any::<usize>(), small.clone()).prop_map(|(node, slot, value)| Edit::AttrInts {
            node,
            slot,
            value
        }),
        (any::<usize>(), prop_oneof![Just(f32::NAN), Just(-1.0f32), Just(0.0f32), Just(1e30f32), -4.0f32..4.0])
            .prop_map(|(node, value)| Edit::AttrFloat { node, value }),
        (any::<usize>(), any::<usize>(), small).prop_map(|(init, slot, value)| Edit::InitDim { init, slot, value }),
        (any::<usize>(), any::<usize>()).prop_map(|(node, op)| Edit::OpType { node, op }),
        (any::<usize>(), any::<usize>()).prop_map(|(node, other)| Edit::SwapInput { node, other }),
        any::<usize>().prop_map(|node| Edit::DropInput { node }),
        any::<usize>().prop_map(|node| Edit::DropNode { node }),
    ]
}

fn apply(m: &mut ModelProto, e: &Edit) {
    let g = m.graph.as_mut().expect("zoo model has a graph");
    let nodes = g.node.len();
    match *e {
        Edit::AttrInt { node, value } => {
            if let Some(a) = g.node[node % nodes].attribute.first_mut() {
                a.i = value;
            }
        }
        Edit::AttrInts { node, slot, value } => {
            if let Some(a) = g.node[node % nodes].attribute.iter_mut().find(|a| !a.ints.is_empty()) {
                let n = a.ints.len();
                a.ints[slot % n] = value;
            }
        }
        Edit::AttrFloat { node, value } => {
            if let Some(a) = g.node[node % nodes].attribute.first_mut() {
                a.f = value;
            }
        }
        Edit::InitDim { init, slot, value } => {
            let n = g.initializer.len();
            let t = &mut g.initializer[init % n];
            if !t.dims.is_empty() {
                let k = t.dims.len();
                t.dims[slot % k] = value;
            }
        }
        Edit::OpType { node, op } => g.node[node % nodes].op_type = SUPPORTED_OPS[op % SUPPORTED_OPS.len()].to_string(),
        Edit::SwapInput { node, other } => {
            let name = g.node[other % nodes].output[0].clone();
            if let Some(i) = g.node[node % nodes].input.first_mut() {
                *i = name;
            }
        }
        Edit::DropInput { node } => {
            g.node[node % nodes].input.pop();
        }
        Edit::DropNode { node } => {
            g.node.remove(node % nodes);
        }
    }
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    fn structural_mutations_never_panic(which in 0usize..2, edits in prop::collection::vec(edit(), 1..4)) {
        let mut m = ModelProto::parse_from_bytes(&seeds()[which]).expect("zoo model parses");
        for e in &edits {
            apply(&mut m, e);
        }
        import_and_maybe_run(&m.write_to_bytes().expect("serialisable"));
    }
}
