//! Normalisations no generator takes, expanded into the reductions and element-wise operators
//! they are defined by (as ONNX's function bodies define them): LayerNormalization with its
//! mean and inverse-standard-deviation outputs or with a scale or bias that broadcasts over
//! fewer axes, InstanceNormalization, and BatchNormalization with parameters computed at run
//! time.

use super::rewrite::{replace_nodes, Rewrite};
use crate::{BinaryOp, Graph, IrError, Node, Op, ReduceOp, Tensor, UnaryOp, ValueId};

/// Expands every such normalisation node. Returns the number expanded.
pub fn expand_norms(graph: &mut Graph) -> usize {
    replace_nodes(graph, |graph, node| {
        let x = node.inputs.first().copied().flatten()?;
        let rank = graph.value(x).ty.shape.len();
        let (axes, epsilon, per_channel) = match node.op {
            Op::LayerNorm { axis, epsilon } => {
                let len: usize = graph.value(x).ty.shape[axis..].iter().product();
                let params_fit = node.inputs[1..].iter().flatten().all(|&p| graph.value(p).ty.numel() == len);
                if node.outputs.len() == 1 && params_fit {
                    return None;
                }
                ((axis..rank).collect(), epsilon, false)
            }
            Op::InstanceNorm { epsilon } => ((2..rank).collect(), epsilon, true),
            Op::BatchNorm { epsilon } => {
                if node.inputs[1..].iter().flatten().all(|&p| graph.value(p).constant.is_some()) {
                    return None;
                }
                (Vec::new(), epsilon, true)
            }
            _ => return None,
        };
        let mut r = Rewrite::new(graph, node);
        expand(&mut r, node, x, &axes, epsilon, per_channel).ok()?;
        Some(r.nodes)
    })
}

/// `(x − mean) / sqrt(var + ε) · scale + bias`, the statistics over `axes` (BatchNorm's given
/// as inputs 3 and 4 when `axes` is empty); with `per_channel` the parameters are `[C]` vectors
/// applied along axis 1.
fn expand(
    r: &mut Rewrite,
    node: &Node,
    x: ValueId,
    axes: &[usize],
    epsilon: f32,
    per_channel: bool,
) -> Result<(), IrError> {
    let rank = r.shape(x).len();
    let param = |r: &mut Rewrite, i: usize| -> Result<Option<ValueId>, IrError> {
        let Some(v) = node.inputs.get(i).copied().flatten() else { return Ok(None) };
        if !per_channel {
            return Ok(Some(v));
        }
        let mut shape = vec![1; rank.saturating_sub(1)];
        if let Some(c) = shape.first_mut() {
            *c = r.graph.value(v).ty.numel();
        }
        r.view(v, shape).map(Some)
    };
    let binary = |r: &mut Rewrite, op, a: ValueId, b: ValueId| r.node(Op::Binary(op), vec![Some(a), Some(b)]);
    let (mean, var) = if axes.is_empty() {
        let missing = || IrError::shape("a batch-norm statistic is missing");
        (param(r, 3)?.ok_or_else(missing)?, param(r, 4)?.ok_or_else(missing)?)
    } else {
        let reduce = Op::Reduce { op: ReduceOp::Mean, axes: axes.to_vec(), keepdims: true };
        let mean = r.node(reduce.clone(), vec![Some(x)])?;
        let d = binary(r, BinaryOp::Sub, x, mean)?;
        let squares = binary(r, BinaryOp::Mul, d, d)?;
        (mean, r.node(reduce, vec![Some(squares)])?)
    };
    let centred = binary(r, BinaryOp::Sub, x, mean)?;
    let mut eps = r.graph.add_constant(format!("{}.epsilon", node.name), Tensor::from_f32(vec![], vec![epsilon])?);
    let dtype = r.graph.value(x).ty.dtype;
    if dtype != r.graph.value(eps).ty.dtype {
        eps = r.node(Op::Cast { to: dtype, saturate: false }, vec![Some(eps)])?;
    }
    let shifted = binary(r, BinaryOp::Add, var, eps)?;
    let std = r.node(Op::Unary(UnaryOp::Sqrt), vec![Some(shifted)])?;
    let inv_std = r.node(Op::Unary(UnaryOp::Reciprocal), vec![Some(std)])?;
    let mut y = binary(r, BinaryOp::Mul, centred, inv_std)?;
    // Every normalisation here takes its scale as input 1 and its bias as input 2.
    if let Some(s) = param(r, 1)? {
        y = binary(r, BinaryOp::Mul, y, s)?;
    }
    if let Some(b) = param(r, 2)? {
        y = binary(r, BinaryOp::Add, y, b)?;
    }
    let results = [y, mean, inv_std];
    for (&result, &out) in results.iter().zip(&node.outputs) {
        let want = r.graph.value(out).ty.clone();
        let mut v = result;
        if r.graph.value(v).ty.dtype != want.dtype {
            v = r.node(Op::Cast { to: want.dtype, saturate: false }, vec![Some(v)])?;
        }
        if r.shape(v).iter().product::<usize>() != want.numel() {
            return Err(IrError::shape("an expanded normalisation result has the wrong size"));
        }
        r.view_into(v, out);
    }
    Ok(())
}
