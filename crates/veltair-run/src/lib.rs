//! The runtime's library side, shared by the `veltair-run` binary and its tests: multi-tenant
//! scheduling and the HTTP serving layer.

pub mod engine;
pub mod sched;
pub mod serve;
