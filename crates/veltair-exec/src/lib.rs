//! The executor: a model lowered to a [`Plan`] (generated layer kernels, packed constants and
//! arena regions) runs step by step on one activation arena whose regions are reused by
//! liveness, at a chosen thread count.

mod arena;
mod boundary;
mod bundled;
mod constants;
mod plan;
mod runner;

pub use arena::{plan_arena, Lifetime};
pub use boundary::{read_outputs, synthetic_input, write_inputs, InputError};
pub use bundled::{from_bundle, open_bundle, to_bundle, BundleLoadError};
pub use constants::Constants;
pub use plan::{Plan, Port, Step, Storage, Version};
pub use runner::{ExecError, Executor, StepTime};
