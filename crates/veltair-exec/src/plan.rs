//! What the lowering produces and the executor runs: kernels, constants, the arena size, the
//! model's input/output ports and the steps in execution order. A step is one layer (or layout
//! conversion); it has one or more versions, each a call of one kernel over its arguments, all
//! computing the same result with different schedules.

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

/// One layer: the same computation in one or more versions.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The graph node (or layout conversion) this step computes, for reports.
    pub label: String,
    /// Multiply-accumulates (or element operations for kernels without any) per run.
    pub macs: u64,
    /// At least one; the first is the lowering's default schedule.
    pub versions: Vec<Version>,
}

/// One way to compute a step: a call of `kernel` over `args`.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub kernel: usize,
    pub args: Vec<ArgRef>,
    /// The kernel's iteration domain and loop-tiling schedule, as text.
    pub schedule: String,
    /// Estimated bytes the kernel's loop nest keeps in cache per thread (the analytical model's
    /// working set; 0 where no model applies).
    pub footprint: u64,
}

impl Plan {
    /// Bytes of constants the plan holds.
    pub fn constant_bytes(&self) -> usize {
        self.constants.iter().map(|c| c.len() * 4).sum()
    }
}
