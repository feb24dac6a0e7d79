//! Tensors of the ONNX backend-test layout (`input_N.pb` / `output_N.pb`, each one serialized
//! `TensorProto`), decoded with a minimal prost message: the runtime does not link the ONNX
//! importer. Every element type ONNX test data uses, in `raw_data` or the typed fields.

use std::path::{Path, PathBuf};
use veltair_ir::{decode_le_bytes, DType, Tensor, TypedFields};

/// The `TensorProto` fields test data uses (tags from onnx.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    double_data: Vec<f64>,
    #[prost(uint64, repeated, tag = "11")]
    uint64_data: Vec<u64>,
}

/// Reads one `.pb` tensor file: its name and value.
pub fn read_tensor(path: &Path) -> Result<(String, Tensor), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let t: TensorProto = prost::Message::decode(bytes.as_slice())
        .map_err(|e| format!("{} is not a TensorProto: {e}", path.display()))?;
    let dtype = DType::from_onnx_code(t.data_type)
        .ok_or_else(|| format!("{}: element type code {} is not supported", path.display(), t.data_type))?;
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
    let data = if t.raw_data.is_empty() {
        let fields = TypedFields {
            float_data: &t.float_data,
            double_data: &t.double_data,
            int32_data: &t.int32_data,
            int64_data: &t.int64_data,
            uint64_data: &t.uint64_data,
        };
        fields.decode(dtype, elems)
    } else {
        decode_le_bytes(&t.raw_data, dtype, elems).ok_or_else(|| {
            format!("{}: raw_data holds {} bytes, not {elems} {dtype} elements", path.display(), t.raw_data.len())
        })?
    };
    let tensor = Tensor::new(shape, data).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((t.name, tensor))
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
