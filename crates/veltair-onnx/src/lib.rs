//! ONNX import: reads a model with `onnx-protobuf`, pins dynamic input dimensions, converts
//! every node (opset-aware) into the static-shape graph IR and folds every node whose inputs
//! are all constant (shape-computing subgraphs, weight transposes) into constants.

mod attrs;
mod convert;
mod error;
mod import;
mod tensor_proto;
mod test_data;

pub use convert::SUPPORTED_OPS;
pub use error::{ImportError, NodeProblem, UnsupportedOp};
pub use import::{ImportOptions, OnnxModel};
pub use tensor_proto::read_tensor_file;
pub use test_data::DataSet;
