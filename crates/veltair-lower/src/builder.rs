//! Accumulates a plan while layers are lowered: activation buffers with their lifetimes,
//! constants, deduplicated kernel generators and steps; `finish` compiles the kernels in
//! parallel and places the buffers in the arena.

use rayon::prelude::*;
use std::collections::HashMap;
use veltair_codegen::{CodegenError, Target};
use veltair_exec::{plan_arena, Constants, Lifetime, Plan, Port, Step, Version};
use veltair_ir::DType;
use veltair_load::{ArgRef, MachineCode};

/// An activation buffer (index into the builder's buffer list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufId(usize);

/// A kernel argument before arena placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    Buf(BufId),
    Const(usize),
}

/// One version of a step before arena placement.
pub struct PendingVersion {
    pub kernel: usize,
    pub args: Vec<Arg>,
    /// Domain and schedule text.
    pub schedule: String,
    /// Estimated cache working set in bytes (0 where no model applies).
    pub footprint: u64,
}

/// A model input or output before its buffer is placed.
pub struct PendingPort {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub buf: BufId,
}

/// Generates one kernel's machine code for a target.
type Generator = Box<dyn FnOnce(&Target) -> Result<MachineCode, CodegenError> + Send>;

/// Plan under construction.
#[derive(Default)]
pub struct PlanBuilder {
    buffers: Vec<Lifetime>,
    constants: Vec<Vec<f32>>,
    /// Kernel generators with the node each is for, run in parallel by `finish`.
    kernels: Vec<(String, Generator)>,
    kernel_index: HashMap<String, usize>,
    steps: Vec<(String, u64, Vec<PendingVersion>)>,
}

impl PlanBuilder {
    /// A new buffer of `elems` floats, written by the next step.
    pub fn buffer(&mut self, elems: usize) -> BufId {
        let step = self.steps.len();
        self.buffers.push(Lifetime { elems, first: step, last: step });
        BufId(self.buffers.len() - 1)
    }

    /// A buffer holding a model input (live from the start).
    pub fn input_buffer(&mut self, elems: usize) -> BufId {
        let id = self.buffer(elems);
        self.buffers[id.0].first = 0;
        id
    }

    pub fn constant(&mut self, data: Vec<f32>) -> Arg {
        self.constants.push(data);
        Arg::Const(self.constants.len() - 1)
    }

    /// The index of the kernel `make` generates for `key`; each distinct key's kernel is
    /// compiled once, by `finish`, which names `owner` if it fails.
    pub fn kernel(
        &mut self,
        key: String,
        owner: String,
        make: impl FnOnce(&Target) -> Result<MachineCode, CodegenError> + Send + 'static,
    ) -> usize {
        if let Some(&k) = self.kernel_index.get(&key) {
            return k;
        }
        self.kernels.push((owner, Box::new(make)));
        self.kernel_index.insert(key, self.kernels.len() - 1);
        self.kernels.len() - 1
    }

    /// Appends a step with one version, a call of `kernel` over `args`; `schedule` describes
    /// the kernel (domain and schedule text).
    pub fn step(&mut self, label: impl Into<String>, kernel: usize, args: Vec<Arg>, macs: u64, schedule: String) {
        self.step_versions(label, macs, vec![PendingVersion { kernel, args, schedule, footprint: 0 }]);
    }

    /// Appends a step computed by any of `versions` (the first is the default), extending the
    /// lifetimes of the buffers they use.
    pub fn step_versions(&mut self, label: impl Into<String>, macs: u64, versions: Vec<PendingVersion>) {
        let step = self.steps.len();
        for a in versions.iter().flat_map(|v| &v.args) {
            if let Arg::Buf(b) = a {
                let life = &mut self.buffers[b.0];
                life.last = life.last.max(step);
            }
        }
        self.steps.push((label.into(), macs, versions));
    }

    /// Keeps `buf` alive until the end (a model output).
    pub fn keep(&mut self, buf: BufId) {
        self.buffers[buf.0].last = usize::MAX;
    }

    /// Compiles the kernels in parallel (on the current rayon pool), places buffers in the
    /// arena and returns the plan; or every kernel that failed, with its owner.
    pub fn finish(
        self,
        name: String,
        max_threads: usize,
        target: &Target,
        inputs: Vec<PendingPort>,
        outputs: Vec<PendingPort>,
    ) -> Result<Plan, Vec<String>> {
        let compiled: Vec<_> = self
            .kernels
            .into_par_iter()
            .map(|(owner, make)| make(target).map_err(|e| format!("  {owner}: {e}")))
            .collect();
        let failed: Vec<String> = compiled.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
        if !failed.is_empty() {
            return Err(failed);
        }
        let kernels = compiled.into_iter().flatten().collect();
        let (offsets, arena_elems) = plan_arena(&self.buffers);
        let place = |a: &Arg| match *a {
            Arg::Buf(b) => ArgRef::Arena { offset: offsets[b.0], len: self.buffers[b.0].elems },
            Arg::Const(c) => ArgRef::Const(c),
        };
        let port = |p: PendingPort| Port {
            name: p.name,
            shape: p.shape,
            dtype: p.dtype,
            offset: offsets[p.buf.0],
            fixed: None,
        };
        Ok(Plan {
            name,
            steps: self
                .steps
                .into_iter()
                .map(|(label, macs, versions)| Step {
                    label,
                    macs,
                    versions: versions
                        .into_iter()
                        .map(|v| Version {
                            kernel: v.kernel,
                            args: v.args.iter().map(place).collect(),
                            schedule: v.schedule,
                            footprint: v.footprint,
                            latencies: Vec::new(),
                        })
                        .collect(),
                })
                .collect(),
            inputs: inputs.into_iter().map(port).collect(),
            outputs: outputs.into_iter().map(port).collect(),
            kernels,
            constants: Constants::Owned(self.constants),
            max_threads,
            calibration: None,
            arena_elems,
        })
    }
}
