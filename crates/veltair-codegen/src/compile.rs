//! Compiling one Cranelift function to position-independent bytes, refusing any relocation
//! (generated kernels must be storable in a bundle and mapped anywhere).

use crate::Target;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::Context;
use veltair_load::MachineCode;

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("Cranelift rejected the function: {0}")]
    Cranelift(String),
    #[error("generated code has {0} relocation(s); kernels must be relocation-free")]
    Relocations(usize),
    #[error("invalid schedule: {0}")]
    Schedule(String),
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
        features: target.features().iter().map(|f| f.to_string()).collect(),
    })
}
