//! The only unsafe code in veltair: mapping generated machine code executable and calling it.
//!
//! Invariants this module relies on (established by the code generators and checked here
//! where possible):
//! 1. The bytes come from `compile`, which refused any relocation: they are position
//!    independent and call nothing outside themselves.
//! 2. Every generated function has the signature `extern "C" fn(*const *mut u8, i64, i64)` and
//!    touches memory only through its argument table, within `MachineCode::arg_elems[i]` f32
//!    elements of entry `i`. `run` checks every buffer's length against that before calling.
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
        Ok(LoadedKernel { _module: module, entry, arg_elems: code.arg_elems.clone() })
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
