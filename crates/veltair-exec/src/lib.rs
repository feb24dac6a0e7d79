//! The executor: a model lowered to a [`Plan`] (generated layer kernels, packed constants and
//! arena regions) runs step by step on one activation arena whose regions are reused by
//! liveness, at a chosen thread count.

mod arena;
mod bundled;
mod constants;
mod plan;
mod runner;

pub use arena::{plan_arena, Lifetime};
pub use bundled::{from_bundle, open_bundle, to_bundle, BundleLoadError};
pub use constants::Constants;
pub use plan::{Plan, Port, PortType, Step, Version};
pub use runner::{read_outputs, write_inputs, ExecError, Executor, Feed, StepTime};
