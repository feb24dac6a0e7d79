//! What the lowering produces and the executor runs: kernels, constants, the arena size, the
//! model's input/output ports and the steps in execution order. A step is one layer (or layout
//! conversion); it has one or more versions, each a call of one kernel over its arguments, all
//! computing the same result with different schedules.

use crate::Constants;
use veltair_bundle::{Calibration, Latency};
use veltair_ir::{DType, Tensor};
use veltair_load::{ArgRef, MachineCode};

/// A lowered model.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub kernels: Vec<MachineCode>,
    /// Read-only kernel operands (packed weights, biases, permuted broadcast operands).
    pub constants: Constants,
    /// Floats of the activation arena.
    pub arena_elems: usize,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub steps: Vec<Step>,
    /// Most threads any kernel runs on (the width the plan was lowered for).
    pub max_threads: usize,
    /// How the contention levels of the versions' latencies were produced (after tuning).
    pub calibration: Option<Calibration>,
}

/// A model input or output: a tensor of the model's element type, stored in ONNX (row-major,
/// NCHW) layout at an arena offset in its [`Storage`].
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<usize>,
    /// The element type the model declares; the arena holds it as [`Storage::of`] it.
    pub dtype: DType,
    pub offset: usize,
    /// For an input that determines shapes: the value the plan was compiled for. Such an input
    /// must be given exactly this value and has no arena storage.
    pub fixed: Option<Tensor>,
}

/// How elements live in the arena: floats of every width as f32 (one slot), integers and
/// booleans as i64 (two slots, low half first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    F32,
    I64,
}

impl Storage {
    /// The storage of elements of `dtype`.
    pub fn of(dtype: DType) -> Storage {
        let narrow_int = matches!(dtype, DType::I4 | DType::U4 | DType::I2 | DType::U2);
        if dtype.is_float() || dtype.is_narrow() && !narrow_int {
            Storage::F32
        } else {
            Storage::I64
        }
    }

    /// Arena slots (f32-sized) one element occupies.
    pub fn slots(self) -> usize {
        match self {
            Storage::F32 => 1,
            Storage::I64 => 2,
        }
    }
}

impl Port {
    pub fn elems(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn storage(&self) -> Storage {
        Storage::of(self.dtype)
    }

    /// Arena slots (f32-sized) the tensor occupies.
    pub fn slots(&self) -> usize {
        self.storage().slots() * self.elems()
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
    /// Measured median latencies per (width, contention level); empty until tuned.
    pub latencies: Vec<Latency>,
}

impl Plan {
    /// Keeps, for each step, the versions `keep[step]` lists, in that order (an empty list
    /// keeps the step as it is), then drops kernels and owned constants no version uses any
    /// more. Fails on an index out of range.
    pub fn retain_versions(&mut self, keep: &[Vec<usize>]) -> Result<(), String> {
        for (i, (step, wanted)) in self.steps.iter_mut().zip(keep).enumerate() {
            if wanted.is_empty() {
                continue;
            }
            let mut kept = Vec::with_capacity(wanted.len());
            for &v in wanted {
                let version = step.versions.get(v).ok_or_else(|| format!("step {i} has no version {v}"))?;
                kept.push(version.clone());
            }
            step.versions = kept;
        }
        self.drop_unused();
        Ok(())
    }

    /// Removes kernels (and owned constants) no version refers to, renumbering the rest.
    fn drop_unused(&mut self) {
        let versions = || self.steps.iter().flat_map(|s| &s.versions);
        let mut kernel_used = vec![false; self.kernels.len()];
        let mut const_used = vec![false; self.constants.len()];
        for v in versions() {
            kernel_used[v.kernel] = true;
            for a in &v.args {
                if let ArgRef::Const(c) = a {
                    const_used[*c] = true;
                }
            }
        }
        // The new index of a used entry: how many used entries precede it.
        let renumber = |used: &[bool]| {
            let mut next = 0;
            used.iter()
                .map(|&u| {
                    let index = next;
                    next += u as usize;
                    index
                })
                .collect::<Vec<_>>()
        };
        let (kernel_to, const_to) = (renumber(&kernel_used), renumber(&const_used));
        let mut used = kernel_used.iter();
        self.kernels.retain(|_| *used.next().unwrap_or(&false));
        if let Constants::Owned(list) = &mut self.constants {
            let mut used = const_used.iter();
            list.retain(|_| *used.next().unwrap_or(&false));
        }
        let owned = matches!(self.constants, Constants::Owned(_));
        for v in self.steps.iter_mut().flat_map(|s| &mut s.versions) {
            v.kernel = kernel_to[v.kernel];
            for a in &mut v.args {
                if let (ArgRef::Const(c), true) = (a, owned) {
                    *c = const_to[*c];
                }
            }
        }
    }

    /// Puts the inputs in `order` (the model's input names), adding a fixed port for each of
    /// `fixed` (inputs the compiler bound to a value because they determine shapes). Fails when
    /// a name of `order` is neither an input of the plan nor fixed.
    pub fn fix_inputs(&mut self, order: &[String], fixed: &[(String, Tensor)]) -> Result<(), String> {
        let mut ports = Vec::with_capacity(order.len());
        for name in order {
            if let Some((_, t)) = fixed.iter().find(|(n, _)| n == name) {
                let (shape, dtype) = (t.shape().to_vec(), t.dtype());
                ports.push(Port { name: name.clone(), shape, dtype, offset: 0, fixed: Some(t.clone()) });
            } else {
                let port = self.inputs.iter().find(|p| &p.name == name);
                ports.push(port.cloned().ok_or_else(|| format!("model input `{name}` is not an input of the plan"))?);
            }
        }
        self.inputs = ports;
        Ok(())
    }

    /// Bytes of constants the plan holds.
    pub fn constant_bytes(&self) -> usize {
        self.constants.bytes()
    }
}
