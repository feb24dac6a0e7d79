//! Convolutions and pooling over one spatial axis as their 2-D forms over a height of 1, so the
//! 2-D generators serve them: operands viewed with a unit axis inserted (`[N, C, L]` as
//! `[N, C, 1, L]`, weights `[M, C/g, k]` as `[M, C/g, 1, k]`, fused epilogue operands likewise),
//! attributes given a leading unit axis, results viewed back to their 1-D shapes.

use super::rewrite::{replace_nodes, Rewrite};
use crate::{Graph, IrError, Node, Op};

/// Rewrites every Conv, ConvTranspose, MaxPool, AveragePool and global pooling over one spatial
/// axis (fused epilogues included) into its 2-D form. Returns the number rewritten.
pub fn lift_1d_spatial(graph: &mut Graph) -> usize {
    replace_nodes(graph, |graph, node| {
        let op = lifted_op(graph, node)?;
        let mut r = Rewrite::new(graph, node);
        lift(&mut r, node, op).ok()?;
        Some(r.nodes)
    })
}

/// `shape` with a unit axis inserted before its last (operands of rank 2 and more; lower ranks
/// broadcast against the last axis either way).
fn with_unit_axis(shape: &[usize]) -> Vec<usize> {
    let mut s = shape.to_vec();
    if s.len() >= 2 {
        s.insert(s.len() - 1, 1);
    }
    s
}

/// `v` with a leading `unit`.
fn lead(v: &[usize], unit: usize) -> Vec<usize> {
    [unit].iter().chain(v).copied().collect()
}

/// The 2-D form of a layer operator over one spatial axis, `None` for anything else.
fn lift_op(op: &Op) -> Option<Op> {
    Some(match op {
        Op::Conv(a) if a.kernel.len() == 1 => Op::Conv(a.map_axes(lead)),
        Op::ConvTranspose { conv, output_padding } if conv.kernel.len() == 1 => {
            Op::ConvTranspose { conv: conv.map_axes(lead), output_padding: lead(output_padding, 0) }
        }
        Op::MaxPool(a) if a.kernel.len() == 1 => Op::MaxPool(a.map_axes(lead)),
        Op::AveragePool(a) if a.kernel.len() == 1 => Op::AveragePool(a.map_axes(lead)),
        Op::Fused { main, main_inputs, epilogue } => {
            Op::Fused { main: Box::new(lift_op(main)?), main_inputs: *main_inputs, epilogue: epilogue.clone() }
        }
        _ => return None,
    })
}

/// The 2-D operator of `node` when it is a layer over one spatial axis.
fn lifted_op(graph: &Graph, node: &Node) -> Option<Op> {
    let x = node.inputs.first().copied().flatten()?;
    if graph.value(x).ty.shape.len() != 3 {
        return None;
    }
    match &node.op {
        Op::GlobalAveragePool | Op::GlobalMaxPool => Some(node.op.clone()),
        op => lift_op(op),
    }
}

/// Views of the operands, the 2-D node, and views of its results into the node's outputs.
fn lift(r: &mut Rewrite, node: &Node, op: Op) -> Result<(), IrError> {
    let layer_inputs = match &node.op {
        Op::Fused { main_inputs, .. } => *main_inputs,
        _ => node.inputs.len(),
    };
    let mut inputs = Vec::new();
    for (i, input) in node.inputs.iter().enumerate() {
        let Some(v) = *input else {
            inputs.push(None);
            continue;
        };
        let shape = match i {
            // The data and the weights: a unit axis before the spatial one; the bias as it is.
            0 | 1 if i < layer_inputs => with_unit_axis(r.shape(v)),
            _ if i < layer_inputs => r.shape(v).to_vec(),
            // Fused epilogue operands broadcast against the 2-D result.
            _ => with_unit_axis(r.shape(v)),
        };
        inputs.push(Some(r.view(v, shape)?));
    }
    let results = r.main_outputs(op, inputs, node.outputs.len())?;
    for (&result, &out) in results.iter().zip(&node.outputs) {
        if r.shape(result) != with_unit_axis(r.shape(out)) {
            return Err(IrError::shape("the 2-D layer's result is not the 1-D one's view"));
        }
        r.view_into(result, out);
    }
    Ok(())
}
