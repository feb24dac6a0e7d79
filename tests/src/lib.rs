//! Shared helpers for veltair's cross-crate tests and the conformance runner: locating the
//! committed zoo, and running a model directory in the backend-test layout through the importer
//! and the reference evaluator.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use veltair_ir::passes::{fold_batch_norm, fuse_epilogues, recognize_gelu, recognize_silu};
use veltair_ir::{Graph, Tensor};
use veltair_onnx::{DataSet, ImportError, ImportOptions, OnnxModel};

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the repo root").to_path_buf()
}

/// Directories of the committed small zoo models (`models/small/<name>`), sorted by name.
pub fn small_zoo() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("models/small"))
        .expect("models/small exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The `test_data_set_N` directories of a model directory, in order.
pub fn data_dirs(model_dir: &Path) -> Vec<PathBuf> {
    (0..).map(|i| model_dir.join(format!("test_data_set_{i}"))).take_while(|d| d.is_dir()).collect()
}

/// Why running a test case stopped before comparing outputs.
#[derive(Debug)]
pub enum CaseError {
    Import(ImportError),
    /// Data files or evaluation failed.
    Run(String),
}

/// A model imported for its test data, with each data set's inputs in graph-input order.
pub struct PreparedCase {
    pub graph: Graph,
    pub feeds: Vec<Vec<Tensor>>,
    pub expected: Vec<Vec<Tensor>>,
}

/// The case's graph with the passes `veltair-compile` applies before lowering.
pub fn compiled_graph(case: &PreparedCase) -> Graph {
    let mut graph = case.graph.clone();
    fold_batch_norm(&mut graph);
    recognize_silu(&mut graph);
    recognize_gelu(&mut graph);
    fuse_epilogues(&mut graph);
    graph
}

/// Loads a backend-test model directory and imports it with shapes (and shape-fixing input
/// values) from its first data set.
pub fn prepare_case(dir: &Path) -> Result<PreparedCase, CaseError> {
    let model = OnnxModel::load(&dir.join("model.onnx")).map_err(CaseError::Import)?;
    let names = model.input_names();
    let sets: Vec<DataSet> =
        data_dirs(dir).iter().map(|d| DataSet::load(d)).collect::<Result<_, _>>().map_err(CaseError::Run)?;
    let first = sets.first().ok_or_else(|| CaseError::Run("no test_data_set_0".into()))?;
    if first.inputs.len() != names.len() {
        return Err(CaseError::Run(format!("{} input files for {} model inputs", first.inputs.len(), names.len())));
    }
    let samples: HashMap<String, Tensor> = names.iter().cloned().zip(first.inputs.iter().cloned()).collect();
    let (graph, _) = model.import_for_samples(&ImportOptions::default(), &samples).map_err(CaseError::Import)?;
    let feeds = sets
        .iter()
        .map(|s| {
            graph
                .inputs
                .iter()
                .map(|&id| {
                    let i =
                        names.iter().position(|n| *n == graph.value(id).name).expect("graph inputs are model inputs");
                    s.inputs.get(i).cloned().ok_or_else(|| CaseError::Run("missing input file".into()))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let expected = sets.into_iter().map(|s| s.outputs).collect();
    Ok(PreparedCase { graph, feeds, expected })
}
