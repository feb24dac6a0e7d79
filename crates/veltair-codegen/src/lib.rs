//! Code generation: layer schedules lowered through Cranelift to relocation-free x86-64
//! machine code (`veltair_load::MachineCode`, loaded and called by `veltair-load`).
//!
//! Every generated layer function has one ABI: `fn(args: *const *mut u8, thread_index: i64,
//! thread_count: i64)`, where `args` points to the layer's tensor pointers. The function
//! computes its own share of the parallel loop, so the same code runs at any width.

mod builder;
mod compile;
pub mod copy;
pub mod depthwise;
pub mod epilogue;
pub mod gather;
pub mod gemm;
pub mod im2col;
pub mod lrn;
pub mod math;
pub mod matmul;
pub mod pointwise;
pub mod pool;
pub mod probe;
mod remainder;
pub mod resample;
mod round;
pub mod rowwise;
mod target;
pub mod tiling;
pub mod typed;
pub mod winograd;

pub use compile::{compile, CodegenError};
pub use target::{OptLevel, Target};
