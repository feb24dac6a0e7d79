//! Graph passes keep every committed zoo model's outputs: BatchNormalization folding removes
//! the BN layers of the CNNs and the reference evaluator gives the same results before and after.

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
