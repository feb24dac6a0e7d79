//! Tensors of the ONNX backend-test layout (`input_N.pb` / `output_N.pb`, each one serialized
//! `TensorProto`), decoded with a minimal prost message: the runtime does not link the ONNX
//! importer. Float and int64 tensors, in `raw_data` or the typed fields.

use std::path::{Path, PathBuf};
use veltair_run::serve::TensorData;

/// The `TensorProto` fields test data uses (tags from onnx.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

const FLOAT: i32 = 1;
const INT64: i32 = 7;

/// A decoded tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TestTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Reads one `.pb` tensor file.
pub fn read_tensor(path: &Path) -> Result<TestTensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let t: TensorProto = prost::Message::decode(bytes.as_slice())
        .map_err(|e| format!("{} is not a TensorProto: {e}", path.display()))?;
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{}: negative dimension", path.display()))?;
    let elems = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("{}: shape too large", path.display()))?;
    let raw = |width: usize| {
        if t.raw_data.len() != elems.saturating_mul(width) {
            return Err(format!(
                "{}: raw_data holds {} bytes, shape {:?} needs {}",
                path.display(),
                t.raw_data.len(),
                shape,
                elems * width
            ));
        }
        Ok(t.raw_data.chunks_exact(width))
    };
    let data = match t.data_type {
        FLOAT if t.raw_data.is_empty() => TensorData::F32(t.float_data),
        FLOAT => TensorData::F32(raw(4)?.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        INT64 if t.raw_data.is_empty() => TensorData::I64(t.int64_data),
        INT64 => TensorData::I64(
            raw(8)?.map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect(),
        ),
        other => return Err(format!("{}: element type {other} (only float and int64 are supported)", path.display())),
    };
    if data.len() != elems {
        return Err(format!("{}: {} values for shape {:?}", path.display(), data.len(), shape));
    }
    Ok(TestTensor { name: t.name, shape, data })
}

/// The `PREFIX_N.pb` files of `dir`, in order of N.
pub fn numbered(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<(usize, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name.strip_prefix(prefix)?.strip_prefix('_')?.strip_suffix(".pb")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}
