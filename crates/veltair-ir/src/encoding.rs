//! The two ways ONNX's `TensorProto` stores elements, decoded into [`TensorData`]: little-endian
//! `raw_data` bytes, and the typed repeated fields. Shared by the importer and by the runtime's
//! own minimal test-data reader (which does not link the importer).

use crate::{bf16, f16, narrow, DType, TensorData};

/// Decodes `numel` elements of `dtype` from little-endian bytes (sub-byte types packed);
/// `None` when the byte count does not fit.
pub fn decode_le_bytes(raw: &[u8], dtype: DType, numel: usize) -> Option<TensorData> {
    if dtype.is_narrow() {
        return narrow::unpack(dtype, raw, numel).map(|v| TensorData::Narrow(dtype, v));
    }
    if raw.len() != numel.checked_mul(dtype.size())? {
        return None;
    }
    macro_rules! le {
        ($t:ty) => {
            raw.chunks_exact(std::mem::size_of::<$t>())
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")))
                .collect()
        };
    }
    Some(match dtype {
        DType::F32 => TensorData::F32(le!(f32)),
        DType::F64 => TensorData::F64(le!(f64)),
        DType::F16 => TensorData::F16(le!(f16)),
        DType::BF16 => TensorData::BF16(le!(bf16)),
        DType::I64 => TensorData::I64(le!(i64)),
        DType::I32 => TensorData::I32(le!(i32)),
        DType::I16 => TensorData::I16(le!(i16)),
        DType::I8 => TensorData::I8(le!(i8)),
        DType::U64 => TensorData::U64(le!(u64)),
        DType::U32 => TensorData::U32(le!(u32)),
        DType::U16 => TensorData::U16(le!(u16)),
        DType::U8 => TensorData::U8(raw.to_vec()),
        DType::Bool => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
        _ => return None,
    })
}

/// The typed repeated fields of a `TensorProto`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TypedFields<'a> {
    pub float_data: &'a [f32],
    pub double_data: &'a [f64],
    /// Every type narrower than 32 bits (f16/bf16 as their bit patterns, sub-byte types one
    /// packed byte per entry), and i32.
    pub int32_data: &'a [i32],
    pub int64_data: &'a [i64],
    /// u32 and u64.
    pub uint64_data: &'a [u64],
}

impl TypedFields<'_> {
    /// The elements of `dtype` these fields hold (`numel` unpacks sub-byte types; a wrong count
    /// shows up as an element-count mismatch with the shape).
    pub fn decode(&self, dtype: DType, numel: usize) -> TensorData {
        let i32s = self.int32_data;
        match dtype {
            DType::F32 => TensorData::F32(self.float_data.to_vec()),
            DType::F64 => TensorData::F64(self.double_data.to_vec()),
            DType::F16 => TensorData::F16(i32s.iter().map(|&v| f16::from_bits(v as u16)).collect()),
            DType::BF16 => TensorData::BF16(i32s.iter().map(|&v| bf16::from_bits(v as u16)).collect()),
            DType::I64 => TensorData::I64(self.int64_data.to_vec()),
            DType::I32 => TensorData::I32(i32s.to_vec()),
            DType::I16 => TensorData::I16(i32s.iter().map(|&v| v as i16).collect()),
            DType::I8 => TensorData::I8(i32s.iter().map(|&v| v as i8).collect()),
            DType::U64 => TensorData::U64(self.uint64_data.to_vec()),
            DType::U32 => TensorData::U32(self.uint64_data.iter().map(|&v| v as u32).collect()),
            DType::U16 => TensorData::U16(i32s.iter().map(|&v| v as u16).collect()),
            DType::U8 => TensorData::U8(i32s.iter().map(|&v| v as u8).collect()),
            DType::Bool => TensorData::Bool(i32s.iter().map(|&v| v != 0).collect()),
            narrow => {
                let bytes: Vec<u8> = i32s.iter().map(|&v| v as u8).collect();
                TensorData::Narrow(narrow, narrow::unpack(narrow, &bytes, numel).unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_fields_agree() {
        let raw: Vec<u8> = [-3i32, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let from_raw = decode_le_bytes(&raw, DType::I32, 2).unwrap();
        let fields = TypedFields { int32_data: &[-3, 7], ..Default::default() };
        assert_eq!(from_raw, fields.decode(DType::I32, 2));
        assert_eq!(from_raw, TensorData::I32(vec![-3, 7]));
        assert!(decode_le_bytes(&raw, DType::I32, 3).is_none(), "8 bytes are not three i32");
        let h = f16::from_f32(1.5);
        let fields = TypedFields { int32_data: &[h.to_bits() as i32], ..Default::default() };
        assert_eq!(fields.decode(DType::F16, 1), TensorData::F16(vec![h]));
        assert_eq!(decode_le_bytes(&h.to_le_bytes(), DType::F16, 1), Some(TensorData::F16(vec![h])));
    }
}
