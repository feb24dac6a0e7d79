//! Loading generated machine code: a kernel's bytes and what it may touch ([`MachineCode`]),
//! the host's CPU features, the one unsafe module that maps code executable and calls it, and
//! the crew of pinned per-core workers a runtime runs kernels on.
//!
//! Both the compiler (to measure candidate versions) and the runtime (to run bundles) load
//! kernels through this crate, so the bytes measured are the bytes shipped. It does not link
//! Cranelift or anything else of the compiler.
//!
//! Every kernel has one ABI: `extern "C" fn(args: *const *mut u8, thread_index: i64,
//! thread_count: i64)`, where `args` points to the layer's tensor pointers. The function
//! computes its own share of the parallel loop, so the same code runs at any width.

mod code;
mod crew;
mod host;
mod mapped;

pub use code::{ConstantTable, LoadError, MachineCode};
pub use crew::Crew;
pub use host::{host_has, missing_features};
pub use mapped::{fma_peak_256, ArgRef, LoadedKernel, MappedFile, Team};
