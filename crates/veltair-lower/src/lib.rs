//! Lowering: a graph of layers (after the graph passes) to an executable [`Plan`] of
//! generated kernels. Images flow channels-last (NHWC) between layers that want it
//! (convolutions, pooling, element-wise chains on images); everything else sees ONNX order,
//! with transposing copies inserted where the two meet and at the model's boundaries.
//! Reshapes are views; identical kernels are compiled once.

mod builder;
mod conv_transpose;
mod elementwise;
mod gemm_step;
mod layers;
mod layout;
mod lowerer;
mod matrix;
mod movement;
mod pooling;
mod resample;
mod schedule;
mod simple;
mod space;
mod tail;
mod typed;

pub use lowerer::{lower, LowerError, LowerOptions};
pub use space::{gemm_candidates, CacheSizes, Candidate, Footprint};
pub use veltair_exec::Plan;
