//! The only unsafe code in veltair: mapping generated machine code executable and calling it.
//!
//! Invariants this module relies on (established by the code generators and checked here
//! where possible):
//! 1. The bytes come from `compile`, which refused any relocation: they are position
//!    independent and call nothing outside themselves.
//! 2. Every generated function has the signature `extern "C" fn(*const *mut u8, i64, i64)` and
//!    touches memory only through its argument table, within `MachineCode::arg_elems[i]` f32
//!    elements of entry `i`, as long as it runs on at most `MachineCode::max_threads` threads
//!    (per-thread scratch is sized for that). `run` checks both before calling.
//! 3. Calls with different `thread_index` values write disjoint parts of the outputs (the
//!    generators partition the parallel loop by thread index), so concurrent calls on the same
//!    buffers do not race.

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
        if args.len() != self.arg_elems.len() {
            return Err(CodegenError::Load(format!(
                "{} buffers given, the kernel takes {}",
                args.len(),
                self.arg_elems.len()
            )));
        }
        for (i, (a, &need)) in args.iter().zip(&self.arg_elems).enumerate() {
            if a.len() < need {
                return Err(CodegenError::Load(format!(
                    "buffer #{i} has {} elements, the kernel needs {need}",
                    a.len()
                )));
            }
        }
        if threads > self.max_threads {
            return Err(CodegenError::Load(format!(
                "{threads} threads requested, the kernel supports {}",
                self.max_threads
            )));
        }
        let table: Vec<usize> = args.iter_mut().map(|a| a.as_mut_ptr() as usize).collect();
        let threads = threads.max(1);
        let call = |t: usize| {
            // SAFETY: every table entry points to a live buffer at least as long as the kernel
            // accesses (checked above, invariant 2); concurrent calls write disjoint regions
            // (invariant 3); the buffers outlive the scope below.
            unsafe { (self.entry)(table.as_ptr() as *const *mut u8, t as i64, threads as i64) }
        };
        if threads == 1 {
            call(0);
        } else {
            std::thread::scope(|s| {
                for t in 1..threads {
                    s.spawn(move || call(t));
                }
                call(0);
            });
        }
        Ok(())
    }
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
