//! Compiling one Cranelift function to position-independent bytes, refusing any relocation
//! (generated kernels must be storable in a bundle and mapped anywhere).

use crate::Target;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::Context;

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("Cranelift rejected the function: {0}")]
    Cranelift(String),
    #[error("generated code has {0} relocation(s); kernels must be relocation-free")]
    Relocations(usize),
    #[error("invalid schedule: {0}")]
    Schedule(String),
    #[error("cannot load code: {0}")]
    Load(String),
}

/// Relocation-free machine code for one layer function, with the buffer sizes (in f32
/// elements) it reads and writes through its argument table.
#[derive(Clone, Debug)]
pub struct MachineCode {
    pub bytes: Vec<u8>,
    pub alignment: u64,
    /// Elements each argument-table entry must provide, in table order.
    pub arg_elems: Vec<usize>,
    /// Most threads the code may run on (its per-thread scratch is sized for that many).
    pub max_threads: usize,
}

/// Compiles `func` for `target`; `arg_elems` describes its argument table.
pub fn compile(func: Function, target: &Target, arg_elems: Vec<usize>) -> Result<MachineCode, CodegenError> {
    let mut ctx = Context::for_function(func);
    let code = ctx
        .compile(&*target.isa, &mut ControlPlane::default())
        .map_err(|e| CodegenError::Cranelift(format!("{:?}", e.inner)))?;
    let relocs = code.buffer.relocs().len();
    if relocs != 0 {
        return Err(CodegenError::Relocations(relocs));
    }
    Ok(MachineCode {
        bytes: code.code_buffer().to_vec(),
        alignment: code.buffer.alignment as u64,
        arg_elems,
        max_threads: usize::MAX,
    })
}
