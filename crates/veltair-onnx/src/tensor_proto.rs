//! Conversion of ONNX `TensorProto` messages (typed fields, `raw_data`, external data files)
//! into IR tensors, and reading of standalone `.pb` tensor files.

use crate::NodeProblem;
use onnx_protobuf::{Message, TensorProto};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};
use veltair_ir::{decode_le_bytes, shape::checked_numel, DType, Tensor, TypedFields};

/// The ONNX name of a data type code, for messages.
pub fn onnx_type_name(code: i32) -> String {
    let name = match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        17..=20 => "FLOAT8",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        _ => return format!("type code {code}"),
    };
    name.to_string()
}

/// The IR element type of an ONNX type code, or an "unsupported" problem naming it.
pub fn dtype_of(code: i32) -> Result<DType, NodeProblem> {
    DType::from_onnx_code(code)
        .ok_or_else(|| NodeProblem::Unsupported(format!("element type {}", onnx_type_name(code))))
}

fn invalid(m: impl Into<String>) -> NodeProblem {
    NodeProblem::Invalid(m.into())
}

/// Converts a `TensorProto`; `base_dir` resolves external data locations.
pub fn tensor_from_proto(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, NodeProblem> {
    let dtype = dtype_of(t.data_type)?;
    let mut shape = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        shape.push(usize::try_from(d).map_err(|_| invalid(format!("tensor '{}' has negative dim {d}", t.name)))?);
    }
    let numel = checked_numel(&shape).map_err(|e| invalid(format!("tensor '{}': {e}", t.name)))?;
    let external;
    let raw: &[u8] = if t.data_location.value() == 1 {
        external = read_external(t, base_dir, numel * dtype.size())?;
        &external
    } else {
        &t.raw_data
    };
    let data = if !raw.is_empty() || t.data_location.value() == 1 {
        decode_le_bytes(raw, dtype, numel).ok_or_else(|| {
            invalid(format!("tensor '{}': {} bytes of raw data for {numel} {dtype} elements", t.name, raw.len()))
        })?
    } else {
        let fields = TypedFields {
            float_data: &t.float_data,
            double_data: &t.double_data,
            int32_data: &t.int32_data,
            int64_data: &t.int64_data,
            uint64_data: &t.uint64_data,
        };
        fields.decode(dtype, numel)
    };
    if data.len() != numel {
        return Err(invalid(format!("tensor '{}': shape needs {numel} elements, the data has {}", t.name, data.len())));
    }
    Tensor::new(shape, data).map_err(|e| invalid(e.to_string()))
}

/// Reads the bytes of an externally stored tensor. Locations must be relative paths inside the
/// model's directory.
fn read_external(t: &TensorProto, base_dir: Option<&Path>, expected: usize) -> Result<Vec<u8>, NodeProblem> {
    let field = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.clone());
    let location =
        field("location").ok_or_else(|| invalid(format!("tensor '{}': external data without a location", t.name)))?;
    let rel = Path::new(&location);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(invalid(format!(
            "tensor '{}': external data location '{location}' must be a relative path inside the model's directory",
            t.name
        )));
    }
    let base =
        base_dir.ok_or_else(|| invalid(format!("tensor '{}': external data needs the model's directory", t.name)))?;
    let parse = |k: &str| -> Result<Option<u64>, NodeProblem> {
        field(k)
            .map(|v| v.parse::<u64>().map_err(|_| invalid(format!("tensor '{}': bad external data {k} '{v}'", t.name))))
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?.unwrap_or(expected as u64);
    let path = base.join(rel);
    let io =
        |e: std::io::Error| invalid(format!("tensor '{}': cannot read external data {}: {e}", t.name, path.display()));
    let mut file = std::fs::File::open(&path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(invalid(format!(
            "tensor '{}': external data range {offset}+{length} exceeds {} ({size} bytes)",
            t.name,
            path.display()
        )));
    }
    let mut bytes = vec![0u8; length as usize];
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    file.read_exact(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Reads a serialized `TensorProto` file (the ONNX backend-test `input_N.pb` layout); returns
/// the tensor's name and value.
pub fn read_tensor_file(path: &Path) -> Result<(String, Tensor), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let proto =
        TensorProto::parse_from_bytes(&bytes).map_err(|e| format!("{} is not a TensorProto: {e}", path.display()))?;
    let tensor = tensor_from_proto(&proto, path.parent()).map_err(|p| match p {
        NodeProblem::Invalid(m) | NodeProblem::Unsupported(m) => format!("{}: {m}", path.display()),
        NodeProblem::NeedsConstant { .. } => format!("{}: unreadable tensor", path.display()),
    })?;
    Ok((proto.name.clone(), tensor))
}
