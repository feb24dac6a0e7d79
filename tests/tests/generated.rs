//! Whole committed zoo models lowered to generated code and run by the executor at one and
//! two threads: outputs match the onnxruntime references committed beside each model and the
//! reference evaluator. Graphs with layers that have no generator are refused with a message
//! naming those layers.

use veltair_codegen::{OptLevel, Target};
use veltair_exec::Executor;
use veltair_lower::{lower, LowerError, LowerOptions};
use veltair_tests::{compiled_graph, prepare_case, small_zoo};

#[test]
fn zoo_models_run_on_generated_code() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let mut ran = Vec::new();
    for dir in small_zoo() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = prepare_case(&dir).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let graph = compiled_graph(&case);
        let plan = lower(&graph, &target, &LowerOptions { max_threads: 2, ..LowerOptions::default() })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for threads in [1, 2] {
            let mut exec = Executor::new(plan.clone(), threads).unwrap();
            for (feeds, expected) in case.feeds.iter().zip(&case.expected) {
                let got = exec.run(feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
                let reference = veltair_ref::evaluate(&graph, feeds).unwrap();
                assert_eq!((got.len(), reference.len()), (expected.len(), expected.len()), "{name}: output count");
                for ((g, want), refr) in got.into_iter().zip(expected).zip(&reference) {
                    let vs_ort = veltair_ir::compare(&g, want, 1e-3, 1e-4);
                    assert!(vs_ort.ok, "{name} at {threads} threads vs onnxruntime: {vs_ort:?}");
                    let vs_ref = veltair_ir::compare(&g, refr, 1e-3, 1e-4);
                    assert!(vs_ref.ok, "{name} at {threads} threads vs the reference evaluator: {vs_ref:?}");
                }
            }
        }
        ran.push(name);
    }
    assert_eq!(ran.len(), 6, "models that ran end to end: {ran:?}");
}

/// Lowered with several candidate schedules per GEMM-family layer, every version of every
/// layer computes the same outputs: run `v` forces version `v` of every step that has one.
#[test]
fn every_version_of_every_layer_matches() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let options = LowerOptions { max_threads: 2, versions: 4, ..LowerOptions::default() };
    for dir in small_zoo() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = prepare_case(&dir).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let graph = compiled_graph(&case);
        let plan = lower(&graph, &target, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let most = plan.steps.iter().map(|s| s.versions.len()).max().unwrap();
        assert!(most > 1, "{name}: no layer has more than one version");
        for v in 0..most {
            let threads = 1 + v % 2;
            let mut exec = Executor::new(plan.clone(), threads).unwrap();
            for (i, step) in plan.steps.iter().enumerate() {
                exec.choose(i, v.min(step.versions.len() - 1)).unwrap();
            }
            let (feeds, expected) = (&case.feeds[0], &case.expected[0]);
            let got = exec.run(feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.len(), expected.len(), "{name}: output count");
            for (g, want) in got.into_iter().zip(expected) {
                let vs_ort = veltair_ir::compare(&g, want, 1e-3, 1e-4);
                assert!(vs_ort.ok, "{name}, version {v} at {threads} threads vs onnxruntime: {vs_ort:?}");
            }
        }
    }
}

#[test]
fn layers_without_a_generator_are_named() {
    use veltair_ir::{DType, Graph, Op, TensorType, UnaryOp};
    let mut g = Graph::default();
    let x = g.add_value("x", TensorType { dtype: DType::F32, shape: vec![1, 8] });
    g.inputs.push(x);
    let y = g.add_node("sine", "Sin", Op::Unary(UnaryOp::Sin), vec![Some(x)], &["y".to_string()]).unwrap()[0];
    let z = g.add_node("after", "Relu", Op::Unary(UnaryOp::Relu), vec![Some(y)], &["z".to_string()]).unwrap()[0];
    g.outputs.push(z);
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    match lower(&g, &target, &LowerOptions::default()) {
        Err(LowerError::Unsupported(nodes)) => {
            assert_eq!(nodes.len(), 1, "only the root cause is reported: {nodes:?}");
            assert!(nodes[0].contains("node `sine` (Sin)"), "{nodes:?}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|p| p.steps.len())),
    }
}
