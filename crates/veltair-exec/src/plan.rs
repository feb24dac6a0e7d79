//! What the lowering produces and the executor runs: kernels, constants, the arena size, the
//! model's input/output ports and the steps (one kernel call each) in execution order.

use veltair_load::{ArgRef, MachineCode};

/// A lowered model.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub kernels: Vec<MachineCode>,
    /// Read-only kernel operands (packed weights, biases, permuted broadcast operands).
    pub constants: Vec<Vec<f32>>,
    /// Floats of the activation arena.
    pub arena_elems: usize,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub steps: Vec<Step>,
}

/// A model input or output: a tensor in ONNX (row-major, NCHW) layout at an arena offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: PortType,
    pub offset: usize,
}

/// Element type of a port. An i64 element occupies two f32 slots of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortType {
    F32,
    I64,
}

impl Port {
    pub fn elems(&self) -> usize {
        self.shape.iter().product()
    }

    /// Arena slots (f32-sized) the tensor occupies.
    pub fn slots(&self) -> usize {
        match self.dtype {
            PortType::F32 => self.elems(),
            PortType::I64 => 2 * self.elems(),
        }
    }
}

/// One kernel call.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The graph node (or layout conversion) this step computes, for reports.
    pub label: String,
    pub kernel: usize,
    pub args: Vec<ArgRef>,
    /// Multiply-accumulates (or element operations for kernels without any) per run.
    pub macs: u64,
    /// The kernel's iteration domain and loop-tiling schedule, as text.
    pub schedule: String,
}

impl Plan {
    /// Bytes of constants the plan holds.
    pub fn constant_bytes(&self) -> usize {
        self.constants.iter().map(|c| c.len() * 4).sum()
    }
}
