//! The ONNX backend-test data layout: a directory of `input_N.pb` and `output_N.pb` tensor
//! files, N counting graph inputs and outputs in model order.

use crate::read_tensor_file;
use std::path::Path;
use veltair_ir::Tensor;

/// The tensors of one data directory, in index order.
pub struct DataSet {
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<Tensor>,
}

fn numbered(dir: &Path, prefix: &str) -> Result<Vec<Tensor>, String> {
    let mut out = Vec::new();
    loop {
        let path = dir.join(format!("{prefix}_{}.pb", out.len()));
        if !path.exists() {
            return Ok(out);
        }
        out.push(read_tensor_file(&path)?.1);
    }
}

impl DataSet {
    /// Reads `input_0.pb, input_1.pb, …` and `output_0.pb, …` from `dir`.
    pub fn load(dir: &Path) -> Result<DataSet, String> {
        if !dir.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        let set = DataSet { inputs: numbered(dir, "input")?, outputs: numbered(dir, "output")? };
        if set.outputs.is_empty() {
            return Err(format!("{} holds no output_0.pb", dir.display()));
        }
        Ok(set)
    }
}
