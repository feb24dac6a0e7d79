//! The veltair graph IR: element types, tensors, operators with resolved static attributes,
//! shape inference and the model graph that the importer builds and every later stage reads.

mod compare;
mod dtype;
mod encoding;
mod error;
mod graph;
pub mod infer;
pub mod narrow;
mod op;
pub mod passes;
pub mod shape;
mod stats;
mod tensor;

pub use compare::{compare, Comparison};
pub use dtype::DType;
pub use encoding::{decode_le_bytes, TypedFields};
pub use error::IrError;
pub use graph::{Graph, Node, Value, ValueId};
pub use op::{
    BinaryOp, CompareOp, ConvAttrs, CoordMode, EpilogueStep, NearestMode, Op, PadMode, PoolAttrs, ReduceOp,
    ResizeAttrs, ResizeMode, SliceAxis, UnaryOp,
};
pub use stats::NodeStats;
pub use tensor::{bf16, f16, Element, Tensor, TensorData, TensorType, MAX_ELEMENTS};
