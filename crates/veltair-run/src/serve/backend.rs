//! The contract between the HTTP layer and whatever runs the models: the [`Backend`] trait
//! and the tensors, signatures and errors it speaks in. The server validates every request
//! against [`Backend::models`] before [`Backend::submit`], so a backend only ever receives
//! tensors whose names, datatypes, shapes and lengths match its signature, in signature order.

use std::fmt;

/// Element type of a port, named as the Open Inference Protocol names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Fp32,
    Int64,
}

impl DataType {
    /// The protocol's name: `FP32` or `INT64`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Fp32 => "FP32",
            DataType::Int64 => "INT64",
        }
    }

    /// The datatype with this protocol name, if it is one the server supports.
    pub fn from_name(name: &str) -> Option<DataType> {
        match name {
            "FP32" => Some(DataType::Fp32),
            "INT64" => Some(DataType::Int64),
            _ => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flat, row-major elements of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::F32(_) => DataType::Fp32,
            TensorData::I64(_) => DataType::Int64,
        }
    }
}

/// A tensor on the wire, already validated against the model's signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// One input or output of a model's signature (shapes are static).
#[derive(Clone, Debug, PartialEq)]
pub struct PortInfo {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<usize>,
}

/// A servable model: its name (the `{name}` of the URLs) and signature.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub inputs: Vec<PortInfo>,
    pub outputs: Vec<PortInfo>,
}

/// Why a query was not enqueued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// No such model (answered 400).
    UnknownModel(String),
    /// The model's queue is full (answered 503 at once: the server never waits for room).
    Busy,
    /// The backend is stopping and takes no new work (answered 503).
    ShuttingDown,
}

/// A query's outcome: its output tensors, or a message answered as 500.
pub type Reply = Result<Vec<Tensor>, String>;

/// What the server needs from the engine. Calls come from the server's few async worker
/// threads and must not block: inference runs on the backend's own threads.
pub trait Backend: Send + Sync + 'static {
    /// Every servable model with its signature.
    fn models(&self) -> Vec<ModelInfo>;
    /// Whether `model` can take queries now (loaded, workers up).
    fn ready(&self, model: &str) -> bool;
    /// Enqueue one query; `done` is called exactly once (from any thread) with the outputs.
    fn submit(&self, model: &str, inputs: Vec<Tensor>, done: Box<dyn FnOnce(Reply) + Send>) -> Result<(), SubmitError>;
    /// Backend-side metrics in Prometheus text exposition format (appended to /metrics).
    fn metrics(&self) -> String;
}
