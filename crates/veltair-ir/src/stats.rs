//! Per-node cost figures for listings and scheduling: multiply-accumulates and parameter bytes.

use crate::{Graph, Node, Op};

/// Work and parameter size of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Multiply-accumulate operations (Conv, ConvTranspose, Gemm, MatMul; 0 otherwise).
    pub macs: u64,
    /// Bytes of the node's constant inputs (weights).
    pub param_bytes: u64,
}

impl NodeStats {
    pub fn of(graph: &Graph, node: &Node) -> NodeStats {
        let ty = |i: usize| node.inputs.get(i).copied().flatten().map(|id| &graph.value(id).ty);
        let out = &graph.value(node.outputs[0]).ty;
        let op = match &node.op {
            Op::Fused { main, .. } => main.as_ref(),
            op => op,
        };
        let macs = match op {
            Op::Conv(_) => ty(1).map_or(0, |w| out.numel() as u64 * w.shape[1..].iter().product::<usize>() as u64),
            Op::ConvTranspose { .. } => {
                ty(0).zip(ty(1)).map_or(0, |(x, w)| x.numel() as u64 * w.shape[1..].iter().product::<usize>() as u64)
            }
            Op::Gemm { trans_a, .. } => ty(0).map_or(0, |a| {
                let k = if *trans_a { a.shape[0] } else { a.shape[1] };
                out.numel() as u64 * k as u64
            }),
            Op::MatMul => ty(0).map_or(0, |a| out.numel() as u64 * a.shape[a.rank() - 1] as u64),
            _ => 0,
        };
        let param_bytes = node
            .inputs
            .iter()
            .flatten()
            .filter_map(|&id| graph.value(id).constant.as_ref())
            .map(|t| t.byte_size() as u64)
            .sum();
        NodeStats { macs, param_bytes }
    }
}
