//! The only unsafe code in veltair: mapping generated machine code executable and calling it.
//!
//! Invariants this module relies on (established by the code generators and checked here
//! where possible):
//! 1. The bytes come from `compile`, which refused any relocation: they are position
//!    independent and call nothing outside themselves.
//! 2. Every generated function has the signature `extern "C" fn(*const *mut u8, i64, i64)` and
//!    touches memory only through its argument table, within `MachineCode::arg_elems[i]` f32
//!    elements of entry `i`, as long as it runs on at most `MachineCode::max_threads` threads
//!    (per-thread scratch is sized for that). `run` and `run_in` check both before calling.
//! 3. Calls with different `thread_index` values write disjoint parts of the outputs (the
//!    generators partition the parallel loop by thread index), so concurrent calls on the same
//!    buffers do not race.
//! 4. Kernels never write the arguments that hold constants (packed weights, biases): their
//!    outputs and scratch are always activation buffers.

use crate::{CodegenError, MachineCode};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

type KernelFn = unsafe extern "C" fn(*const *mut u8, i64, i64);

/// A generated function mapped executable in this process.
pub struct LoadedKernel {
    /// Owns the executable mapping; dropping it would unmap `entry`.
    _module: JITModule,
    entry: KernelFn,
    arg_elems: Vec<usize>,
    max_threads: usize,
}

// The mapping is immutable after finalisation and the code is reentrant (invariant 3).
unsafe impl Send for LoadedKernel {}
unsafe impl Sync for LoadedKernel {}

impl LoadedKernel {
    /// Maps `code` into executable memory.
    pub fn load(code: &MachineCode, target: &crate::Target) -> Result<LoadedKernel, CodegenError> {
        target.check_host().map_err(CodegenError::Load)?;
        let mut module = JITModule::new(JITBuilder::with_isa(target.isa.clone(), default_libcall_names()));
        let mut sig = module.make_signature();
        let ptr = cranelift_codegen::ir::types::I64;
        for _ in 0..3 {
            sig.params.push(cranelift_codegen::ir::AbiParam::new(ptr));
        }
        let id =
            module.declare_function("kernel", Linkage::Local, &sig).map_err(|e| CodegenError::Load(e.to_string()))?;
        module
            .define_function_bytes(id, code.alignment, &code.bytes, &[])
            .map_err(|e| CodegenError::Load(e.to_string()))?;
        module.finalize_definitions().map_err(|e| CodegenError::Load(e.to_string()))?;
        let raw = module.get_finalized_function(id);
        // SAFETY: `raw` points at the finalized, executable copy of `code.bytes`, a function
        // with the uniform kernel signature (invariant 2).
        let entry = unsafe { std::mem::transmute::<*const u8, KernelFn>(raw) };
        Ok(LoadedKernel { _module: module, entry, arg_elems: code.arg_elems.clone(), max_threads: code.max_threads })
    }

    /// Runs the kernel on `threads` threads (thread indices 0..threads) over `args`, each of
    /// which must hold at least the elements the kernel declared.
    pub fn run(&self, args: &mut [&mut [f32]], threads: usize) -> Result<(), CodegenError> {
        self.check_arity(args.len())?;
        for (i, (a, &need)) in args.iter().zip(&self.arg_elems).enumerate() {
            check_len(i, a.len(), need)?;
        }
        let table: Vec<usize> = args.iter_mut().map(|a| a.as_mut_ptr() as usize).collect();
        self.call(&table, Team::Scoped(threads.max(1)))
    }

    /// Runs the kernel over arguments that are regions of one activation `arena` or read-only
    /// `constants`, on the threads of `team`. Distinct arena regions must be disjoint or
    /// identical (identical regions are only ever read: a planner binds a kernel's outputs to
    /// regions live at the same time as its inputs, hence disjoint from them).
    pub fn run_in(
        &self,
        arena: &mut [f32],
        constants: &[Vec<f32>],
        args: &[ArgRef],
        team: Team,
    ) -> Result<(), CodegenError> {
        self.check_arity(args.len())?;
        let mut table = Vec::with_capacity(args.len());
        for (i, (arg, &need)) in args.iter().zip(&self.arg_elems).enumerate() {
            let ptr = match *arg {
                ArgRef::Arena { offset, len } => {
                    check_len(i, len, need)?;
                    if offset.checked_add(len).is_none_or(|end| end > arena.len()) {
                        return Err(CodegenError::Load(format!(
                            "argument #{i} ({offset}+{len}) lies outside the {}-element arena",
                            arena.len()
                        )));
                    }
                    arena[offset..].as_mut_ptr() as usize
                }
                ArgRef::Const(c) => {
                    let data = constants
                        .get(c)
                        .ok_or_else(|| CodegenError::Load(format!("argument #{i} names missing constant {c}")))?;
                    check_len(i, data.len(), need)?;
                    data.as_ptr() as usize
                }
            };
            table.push(ptr);
        }
        for (i, a) in args.iter().enumerate() {
            for b in &args[..i] {
                if let (ArgRef::Arena { offset: o1, len: l1 }, ArgRef::Arena { offset: o2, len: l2 }) = (a, b) {
                    let overlap = o1 < &(o2 + l2) && o2 < &(o1 + l1);
                    if overlap && (o1, l1) != (o2, l2) {
                        return Err(CodegenError::Load(format!("argument #{i} partly overlaps another")));
                    }
                }
            }
        }
        self.call(&table, team)
    }

    fn check_arity(&self, given: usize) -> Result<(), CodegenError> {
        if given != self.arg_elems.len() {
            return Err(CodegenError::Load(format!(
                "{given} buffers given, the kernel takes {}",
                self.arg_elems.len()
            )));
        }
        Ok(())
    }

    /// Calls the kernel once per thread of `team` over a checked pointer table.
    fn call(&self, table: &[usize], team: Team) -> Result<(), CodegenError> {
        let threads = team.width();
        if threads > self.max_threads {
            return Err(CodegenError::Load(format!(
                "{threads} threads requested, the kernel supports {}",
                self.max_threads
            )));
        }
        let call = |t: usize| {
            // SAFETY: every table entry points to a live buffer at least as long as the kernel
            // accesses (checked by the callers, invariant 2); concurrent calls write disjoint
            // regions (invariant 3); constants are never written (invariant 4); the buffers
            // outlive this function, which returns only after every call has finished.
            unsafe { (self.entry)(table.as_ptr() as *const *mut u8, t as i64, threads as i64) }
        };
        match team {
            Team::Scoped(1) | Team::Pool(None) => call(0),
            Team::Scoped(_) => std::thread::scope(|s| {
                for t in 1..threads {
                    s.spawn(move || call(t));
                }
                call(0);
            }),
            Team::Pool(Some(pool)) => {
                pool.broadcast(|ctx| call(ctx.index()));
            }
        }
        Ok(())
    }
}

/// Where one argument-table entry points: a region of the activation arena or a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgRef {
    Arena { offset: usize, len: usize },
    Const(usize),
}

/// The threads a kernel runs on.
#[derive(Clone, Copy)]
pub enum Team<'a> {
    /// This many scoped threads, spawned for the call (tests and one-off runs).
    Scoped(usize),
    /// Every thread of a persistent pool, or only the calling thread (`None`).
    Pool(Option<&'a rayon::ThreadPool>),
}

impl Team<'_> {
    /// Threads the kernel runs on.
    pub fn width(&self) -> usize {
        match self {
            Team::Scoped(n) => (*n).max(1),
            Team::Pool(None) => 1,
            Team::Pool(Some(p)) => p.current_num_threads(),
        }
    }
}

fn check_len(i: usize, have: usize, need: usize) -> Result<(), CodegenError> {
    if have < need {
        return Err(CodegenError::Load(format!("buffer #{i} has {have} elements, the kernel needs {need}")));
    }
    Ok(())
}

/// Measures nothing itself: runs `iters` rounds of 12 independent 256-bit FMAs (the width
/// onnxruntime's kernels use, which Cranelift cannot emit) and returns a value that depends on
/// them. Time it to get the 256-bit FMA peak; `None` when the host lacks AVX2/FMA.
pub fn fma_peak_256(iters: u64) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were just detected.
            return Some(unsafe { fma256_loop(iters) });
        }
    }
    let _ = iters;
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma256_loop(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let x = _mm256_set1_ps(1.0);
    let y = _mm256_set1_ps(1e-7);
    let mut acc = [x; 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, x, y);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for a in acc {
        sum = _mm256_add_ps(sum, a);
    }
    _mm256_cvtss_f32(sum)
}
