//! Lowering a graph of layers to an executable plan.
