//! MaxPool and AveragePool over three spatial axes as two 2-D poolings, since a box window
//! separates: the input viewed `[N, C·D, H, W]` and pooled over (H, W), the result viewed
//! `[N, C, D, OH·OW]` and pooled over D with a `(kd, 1)` window. Maxima of maxima are maxima;
//! an average's divisor (the window's size, or its count of non-padding elements) is the
//! product of the per-axis ones, so averages of averages are averages.

use super::rewrite::{replace_nodes, Rewrite};
use crate::{Graph, IrError, Node, Op, PoolAttrs};

/// Rewrites every single-output 3-D MaxPool and AveragePool. Returns the number rewritten.
pub fn pool_3d_separably(graph: &mut Graph) -> usize {
    replace_nodes(graph, |graph, node| {
        let (Op::MaxPool(a) | Op::AveragePool(a)) = &node.op else { return None };
        if a.kernel.len() != 3 || node.outputs.len() != 1 {
            return None;
        }
        let mut r = Rewrite::new(graph, node);
        separate(&mut r, node, a).ok()?;
        Some(r.nodes)
    })
}

/// The attributes over the spatial axes `axes` of `a`, with a unit window on the extra axis
/// `unit_last` adds.
fn over(a: &PoolAttrs, axes: &[usize], unit_last: bool) -> PoolAttrs {
    a.map_axes(|v, neutral| axes.iter().map(|&i| v[i]).chain(unit_last.then_some(neutral)).collect())
}

fn separate(r: &mut Rewrite, node: &Node, a: &PoolAttrs) -> Result<(), IrError> {
    let x = node.inputs[0].ok_or_else(|| IrError::shape("the pooling input is missing"))?;
    let out = node.outputs[0];
    let (xs, ys) = (r.shape(x).to_vec(), r.shape(out).to_vec());
    let pool = |attrs: PoolAttrs| match node.op {
        Op::MaxPool(_) => Op::MaxPool(attrs),
        _ => Op::AveragePool(attrs),
    };
    let planes = r.view(x, vec![xs[0], xs[1] * xs[2], xs[3], xs[4]])?;
    let pooled_hw = r.main_outputs(pool(over(a, &[1, 2], false)), vec![Some(planes)], 1)?[0];
    let columns = r.view(pooled_hw, vec![xs[0], xs[1], xs[2], ys[3] * ys[4]])?;
    let pooled = r.node(pool(over(a, &[0], true)), vec![Some(columns)])?;
    if r.shape(pooled) != [ys[0], ys[1], ys[2], ys[3] * ys[4]] {
        return Err(IrError::shape("the separated pooling has the wrong shape"));
    }
    r.view_into(pooled, out);
    Ok(())
}
