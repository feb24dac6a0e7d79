//! Element types a tensor can hold. f32 is the compute type; the other types carry shapes,
//! indices and masks, or appear at model boundaries (f16/bf16 inputs, casts).

use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    Bool,
    // Narrow storage types (see `narrow`): values only pass through casts and layout ops.
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    F8E8M0,
    F4E2M1,
    I4,
    U4,
    I2,
    U2,
}

/// (type, ONNX `TensorProto.DataType` code, name) for every supported type.
const TABLE: [(DType, i32, &str); 23] = [
    (DType::F32, 1, "f32"),
    (DType::U8, 2, "u8"),
    (DType::I8, 3, "i8"),
    (DType::U16, 4, "u16"),
    (DType::I16, 5, "i16"),
    (DType::I32, 6, "i32"),
    (DType::I64, 7, "i64"),
    (DType::Bool, 9, "bool"),
    (DType::F16, 10, "f16"),
    (DType::F64, 11, "f64"),
    (DType::U32, 12, "u32"),
    (DType::U64, 13, "u64"),
    (DType::BF16, 16, "bf16"),
    (DType::F8E4M3FN, 17, "f8e4m3fn"),
    (DType::F8E4M3FNUZ, 18, "f8e4m3fnuz"),
    (DType::F8E5M2, 19, "f8e5m2"),
    (DType::F8E5M2FNUZ, 20, "f8e5m2fnuz"),
    (DType::U4, 21, "u4"),
    (DType::I4, 22, "i4"),
    (DType::F4E2M1, 23, "f4e2m1"),
    (DType::F8E8M0, 24, "f8e8m0"),
    (DType::U2, 25, "u2"),
    (DType::I2, 26, "i2"),
];

impl DType {
    /// Size of one element in bytes (narrow types count as one byte).
    pub fn size(self) -> usize {
        match self {
            _ if self.is_narrow() => 1,
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            _ => 1,
        }
    }

    /// True for the narrow storage types (8 bits or fewer, other than i8/u8/bool).
    pub fn is_narrow(self) -> bool {
        self.onnx_code() >= 17
    }

    /// True for the floating-point compute types.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    fn entry(self) -> &'static (DType, i32, &'static str) {
        TABLE.iter().find(|e| e.0 == self).expect("every type is in the table")
    }

    /// The ONNX `TensorProto.DataType` code of this type.
    pub fn onnx_code(self) -> i32 {
        self.entry().1
    }

    /// The type for an ONNX `TensorProto.DataType` code, if veltair supports it.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        TABLE.iter().find(|e| e.1 == code).map(|e| e.0)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.entry().2)
    }
}
