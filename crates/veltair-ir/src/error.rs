//! Errors raised while building or checking the IR (shape inference, graph structure).

use thiserror::Error;

/// An error in the IR: a shape that does not fit an operator, a bad attribute value, or a
/// tensor that would be too large.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("invalid attribute: {0}")]
    Attribute(String),
    #[error("unsupported element type {dtype} for {what}")]
    DType { dtype: crate::DType, what: String },
    #[error("tensor too large: {0}")]
    TooLarge(String),
    #[error("invalid value: {0}")]
    Value(String),
}

impl IrError {
    pub fn shape(msg: impl Into<String>) -> Self {
        IrError::Shape(msg.into())
    }
    pub fn attr(msg: impl Into<String>) -> Self {
        IrError::Attribute(msg.into())
    }
    pub fn value(msg: impl Into<String>) -> Self {
        IrError::Value(msg.into())
    }
    pub fn dtype(dtype: crate::DType, what: impl Into<String>) -> Self {
        IrError::DType { dtype, what: what.into() }
    }
}
