//! Every committed small zoo model, run through the importer and the reference evaluator,
//! matches the onnxruntime outputs committed beside it.

use veltair_tests::{prepare_case, small_zoo};

#[test]
fn small_zoo_matches_onnxruntime() {
    let dirs = small_zoo();
    assert!(dirs.len() >= 6, "expected the six committed zoo models, found {}", dirs.len());
    for dir in dirs {
        let case = prepare_case(&dir).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        for (feeds, expected) in case.feeds.iter().zip(&case.expected) {
            let got = veltair_ref::evaluate(&case.graph, feeds).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            assert_eq!(got.len(), expected.len(), "{}", dir.display());
            for (g, e) in got.iter().zip(expected) {
                let c = veltair_ir::compare(g, e, 1e-3, 1e-4);
                assert!(c.ok, "{}: {c:?}", dir.display());
            }
        }
    }
}
