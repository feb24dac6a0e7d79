//! Dense row-major tensors with a static shape, and the type (element type + shape) that
//! describes a value in the graph.

use crate::{DType, IrError};
pub use half::{bf16, f16};
use std::fmt;

/// Upper bound on the element count of any one tensor (1 GiB of f32). Shapes beyond it are
/// rejected during shape inference, so damaged models fail cleanly instead of exhausting memory.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Element type and static shape of a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        TensorType { dtype, shape }
    }

    /// Number of elements (the shape is already known to be within [`MAX_ELEMENTS`]).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.dtype, crate::shape::format_dims(&self.shape))
    }
}

/// The elements of a tensor, one vector variant per element type.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I16(Vec<i16>),
    I8(Vec<i8>),
    U64(Vec<u64>),
    U32(Vec<u32>),
    U16(Vec<u16>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
    /// A narrow storage type, held as the f32 values its codes stand for.
    Narrow(DType, Vec<f32>),
}

/// Applies the same generic expression to whichever vector a `TensorData` holds, rebuilding the
/// same variant: `map_data!(data, v => expr)` where `expr` produces a `Vec` of the same type.
#[macro_export]
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        $crate::for_each_variant!($data, $v => $body, rebuild)
    };
}

/// Evaluates a generic expression over whichever vector a `TensorData` holds:
/// `with_data!(data, v => expr)` where `expr` has the same type for every element type.
#[macro_export]
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        $crate::for_each_variant!($data, $v => $body, plain)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! for_each_variant {
    ($data:expr, $v:ident => $body:expr, $mode:ident) => {
        $crate::for_each_variant!(@arms $data, $v, $body, $mode, F32 F64 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 Bool)
    };
    (@arms $data:expr, $v:ident, $body:expr, rebuild, $($var:ident)*) => {
        match $data {
            $($crate::TensorData::$var($v) => $crate::TensorData::$var($body),)*
            $crate::TensorData::Narrow(dt, $v) => $crate::TensorData::Narrow($crate::DType::clone(&dt), $body),
        }
    };
    (@arms $data:expr, $v:ident, $body:expr, plain, $($var:ident)*) => {
        match $data {
            $($crate::TensorData::$var($v) => $body,)*
            $crate::TensorData::Narrow(_, $v) => $body,
        }
    };
}

/// Lossy conversions every element type supports, used by the type-generic paths.
pub trait Element: Copy {
    fn to_f64(self) -> f64;
    fn to_i64(self) -> i64;
}

macro_rules! element_as {
    ($($t:ty),*) => {$(
        impl Element for $t {
            fn to_f64(self) -> f64 { self as f64 }
            fn to_i64(self) -> i64 { self as i64 }
        }
    )*};
}
element_as!(f32, f64, i64, i32, i16, i8, u64, u32, u16, u8);

impl Element for bool {
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
}

impl Element for f16 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_i64(self) -> i64 {
        f32::from(self) as i64
    }
}

impl Element for bf16 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_i64(self) -> i64 {
        f32::from(self) as i64
    }
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::F16(_) => DType::F16,
            TensorData::BF16(_) => DType::BF16,
            TensorData::I64(_) => DType::I64,
            TensorData::I32(_) => DType::I32,
            TensorData::I16(_) => DType::I16,
            TensorData::I8(_) => DType::I8,
            TensorData::U64(_) => DType::U64,
            TensorData::U32(_) => DType::U32,
            TensorData::U16(_) => DType::U16,
            TensorData::U8(_) => DType::U8,
            TensorData::Bool(_) => DType::Bool,
            TensorData::Narrow(dt, _) => *dt,
        }
    }

    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A vector of `n` zeros (false for bool) of the given type.
    pub fn zeros(dtype: DType, n: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F64 => TensorData::F64(vec![0.0; n]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; n]),
            DType::BF16 => TensorData::BF16(vec![bf16::ZERO; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::I16 => TensorData::I16(vec![0; n]),
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::U64 => TensorData::U64(vec![0; n]),
            DType::U32 => TensorData::U32(vec![0; n]),
            DType::U16 => TensorData::U16(vec![0; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![false; n]),
            narrow => TensorData::Narrow(narrow, vec![0.0; n]),
        }
    }

    /// New data whose element `i` is `self[index[i]]`.
    pub fn gather(&self, index: &[usize]) -> TensorData {
        map_data!(self, v => index.iter().map(|&i| v[i]).collect())
    }

    /// Every element converted to f64 (bool as 0/1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_data!(self, v => v.iter().map(|x| x.to_f64()).collect())
    }

    /// Every element converted to i64 (floats truncate toward zero, bool as 0/1).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        with_data!(self, v => v.iter().map(|x| x.to_i64()).collect())
    }
}

/// A dense row-major tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// A tensor from a shape and data; the element count must match the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, IrError> {
        let numel = crate::shape::checked_numel(&shape)?;
        if numel != data.len() {
            return Err(IrError::shape(format!(
                "shape [{}] needs {} elements, data has {}",
                crate::shape::format_dims(&shape),
                numel,
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, IrError> {
        Tensor::new(shape, TensorData::F32(data))
    }

    pub fn from_i64(shape: Vec<usize>, data: Vec<i64>) -> Result<Tensor, IrError> {
        Tensor::new(shape, TensorData::I64(data))
    }

    /// A tensor of zeros of the given type.
    pub fn zeros(ty: &TensorType) -> Tensor {
        Tensor { shape: ty.shape.clone(), data: TensorData::zeros(ty.dtype, ty.numel()) }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape.clone())
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Size of the elements in bytes.
    pub fn byte_size(&self) -> usize {
        self.numel() * self.dtype().size()
    }

    /// The same data under another shape with the same element count.
    pub fn reshaped(self, shape: Vec<usize>) -> Result<Tensor, IrError> {
        Tensor::new(shape, self.data)
    }

    /// The f32 elements, or an error naming `what` when the tensor holds another type.
    pub fn as_f32(&self, what: &str) -> Result<&[f32], IrError> {
        match &self.data {
            TensorData::F32(v) => Ok(v),
            other => Err(IrError::dtype(other.dtype(), what)),
        }
    }

    /// The elements as integers, for tensors that carry shapes, axes or indices.
    pub fn as_i64_vec(&self, what: &str) -> Result<Vec<i64>, IrError> {
        match self.dtype() {
            d if d.is_float() || d == DType::Bool => Err(IrError::dtype(d, what)),
            _ => Ok(self.data.to_i64_vec()),
        }
    }
}
