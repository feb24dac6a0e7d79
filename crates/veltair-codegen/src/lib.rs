//! Cranelift code generation (planned): lowers loop-tiling IR schedules of each layer to
//! relocation-free machine code. Empty until the code-generation issue lands; see
//! ARCHITECTURE.md for its place in the pipeline.
