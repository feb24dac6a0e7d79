//! Runs a [`Plan`]: loads its kernels, owns the arena and a thread pool of the chosen width,
//! writes inputs in, calls each step's kernel on every thread, reads outputs out.

use crate::boundary::{read_outputs, write_inputs, InputError};
use crate::Plan;
use std::time::{Duration, Instant};
use veltair_ir::Tensor;
use veltair_load::{LoadError, LoadedKernel, Team};

/// Why a plan cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Kernel(#[from] LoadError),
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("cannot start {0} worker threads: {1}")]
    Pool(usize, String),
    #[error("step `{label}`: {source}")]
    Step { label: String, source: LoadError },
    #[error("the plan has no step {step} with a version {version}")]
    NoVersion { step: usize, version: usize },
}

/// How long one step took in a profiled run.
#[derive(Clone, Debug)]
pub struct StepTime {
    pub label: String,
    pub elapsed: Duration,
}

/// A plan loaded for execution at a fixed width, each step running its chosen version.
pub struct Executor {
    plan: Plan,
    kernels: Vec<LoadedKernel>,
    /// The version each step runs (initially the first, the lowering's default).
    choice: Vec<usize>,
    arena: Vec<f32>,
    /// `None` when running on the calling thread alone.
    pool: Option<rayon::ThreadPool>,
}

impl Executor {
    /// Maps the plan's kernels and prepares an arena and `threads` workers. The workers inherit
    /// the calling thread's core affinity: see `pinned` for measurements.
    pub fn new(plan: Plan, threads: usize) -> Result<Executor, ExecError> {
        Executor::build(plan, threads, None)
    }

    /// Like `new` with one worker per core of `cores`, worker `t` pinned to `cores[t]`. Timing a
    /// width needs this: workers created by a thread pinned to one core would otherwise all
    /// share that core, and a width-2 kernel would run at width-1 speed.
    pub fn pinned(plan: Plan, cores: &[usize]) -> Result<Executor, ExecError> {
        Executor::build(plan, cores.len(), Some(cores.to_vec()))
    }

    fn build(plan: Plan, threads: usize, cores: Option<Vec<usize>>) -> Result<Executor, ExecError> {
        let kernels = plan.kernels.iter().map(LoadedKernel::load).collect::<Result<Vec<_>, _>>()?;
        let pool = match threads {
            0 | 1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("veltair-worker-{i}"))
                    .start_handler(move |i| {
                        if let Some(&core) = cores.as_ref().and_then(|c| c.get(i)) {
                            core_affinity::set_for_current(core_affinity::CoreId { id: core });
                        }
                    })
                    .build()
                    .map_err(|e| ExecError::Pool(n, e.to_string()))?,
            ),
        };
        let arena = vec![0.0; plan.arena_elems];
        let choice = vec![0; plan.steps.len()];
        Ok(Executor { plan, kernels, choice, arena, pool })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Threads every step runs on.
    pub fn width(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// Makes `step` run its version `version` from now on.
    pub fn choose(&mut self, step: usize, version: usize) -> Result<(), ExecError> {
        self.check_version(step, version)?;
        self.choice[step] = version;
        Ok(())
    }

    /// Runs version `version` of `step` alone, on whatever the arena holds: for timing
    /// versions. After `load_inputs` and steps `0..step` in order, that is the step's real
    /// input (every version writes the same outputs and never its inputs, so repeating a step
    /// changes nothing).
    pub fn run_step(&mut self, step: usize, version: usize) -> Result<(), ExecError> {
        self.check_version(step, version)?;
        self.call(step, version)
    }

    fn check_version(&self, step: usize, version: usize) -> Result<(), ExecError> {
        match self.plan.steps.get(step) {
            Some(s) if version < s.versions.len() => Ok(()),
            _ => Err(ExecError::NoVersion { step, version }),
        }
    }

    fn call(&mut self, step: usize, version: usize) -> Result<(), ExecError> {
        let (s, plan) = (&self.plan.steps[step], &self.plan);
        let v = &s.versions[version];
        self.kernels[v.kernel]
            .run_in(&mut self.arena, &plan.constants, &v.args, Team::Pool(self.pool.as_ref()))
            .map_err(|source| ExecError::Step { label: s.label.clone(), source })
    }

    /// Runs the model on `inputs` (every model input, in port order) and returns its outputs.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
        self.run_with(inputs, |_, _| {})
    }

    /// Like [`Executor::run`], also returning how long each step took.
    pub fn run_profiled(&mut self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, Vec<StepTime>), ExecError> {
        let mut times = Vec::with_capacity(self.plan.steps.len());
        let outputs =
            self.run_with(inputs, |label, elapsed| times.push(StepTime { label: label.to_string(), elapsed }))?;
        Ok((outputs, times))
    }

    fn run_with(
        &mut self,
        inputs: &[Tensor],
        mut on_step: impl FnMut(&str, Duration),
    ) -> Result<Vec<Tensor>, ExecError> {
        self.load_inputs(inputs)?;
        for step in 0..self.plan.steps.len() {
            let start = Instant::now();
            self.call(step, self.choice[step])?;
            on_step(&self.plan.steps[step].label, start.elapsed());
        }
        Ok(read_outputs(&self.plan, &self.arena))
    }

    /// Checks `inputs` (every model input, in port order) and writes them into the arena
    /// without running anything: then running the steps one by one in order (`run_step`)
    /// computes the model on them.
    pub fn load_inputs(&mut self, inputs: &[Tensor]) -> Result<(), ExecError> {
        Ok(write_inputs(&self.plan, &mut self.arena, inputs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::Constants;

    /// The core each worker of `exec`'s pool may run on, by worker index.
    fn worker_cores(exec: &Executor) -> Vec<Vec<usize>> {
        let pool = exec.pool.as_ref().expect("a pool of two workers");
        pool.broadcast(|_| core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect())
    }

    #[test]
    fn pinned_workers_run_on_their_own_cores_even_when_created_from_a_pinned_thread() {
        let cores: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
        if cores.len() < 2 {
            return;
        }
        let empty = Plan {
            name: "empty".into(),
            kernels: Vec::new(),
            constants: Constants::Owned(Vec::new()),
            arena_elems: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
            steps: Vec::new(),
            max_threads: 2,
            calibration: None,
        };
        std::thread::spawn(move || {
            assert!(core_affinity::set_for_current(core_affinity::CoreId { id: cores[0] }));
            let inherited = Executor::new(empty.clone(), 2).unwrap();
            assert_eq!(worker_cores(&inherited), vec![vec![cores[0]]; 2], "unpinned workers inherit the affinity");
            let pinned = Executor::pinned(empty, &cores[..2]).unwrap();
            assert_eq!(worker_cores(&pinned), vec![vec![cores[0]], vec![cores[1]]]);
        })
        .join()
        .unwrap();
    }
}
