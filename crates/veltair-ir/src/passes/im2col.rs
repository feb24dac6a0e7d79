//! Convolutions no generator takes (weights computed at run time, three or more spatial axes)
//! as an explicit im2col and a matrix product, in graph operators the lowering has: the input
//! zero-padded, one strided slice per kernel tap stacked into columns `[N, G, C/G·T, P]`
//! (channel major, tap minor, as the weights `[M, C/G, K…]` flatten), one product per group
//! `[G, M/G, C/G·T] × [N, G, C/G·T, P]`, the bias added, the result viewed as `[N, M, O…]`.

use super::rewrite::{replace_nodes, Rewrite};
use crate::{BinaryOp, ConvAttrs, Graph, IrError, Node, Op, PadMode, SliceAxis};

/// Rewrites every Conv whose weights are not constant or whose spatial rank is not 1 or 2.
/// Returns the number rewritten.
pub fn conv_as_im2col(graph: &mut Graph) -> usize {
    replace_nodes(graph, |graph, node| {
        let Op::Conv(attrs) = &node.op else { return None };
        let w = node.inputs.get(1).copied().flatten()?;
        let spatial = attrs.kernel.len();
        let generated = graph.value(w).constant.is_some() && (1..=2).contains(&spatial);
        if generated {
            return None;
        }
        let mut r = Rewrite::new(graph, node);
        im2col(&mut r, node, attrs).ok()?;
        Some(r.nodes)
    })
}

fn im2col(r: &mut Rewrite, node: &Node, a: &ConvAttrs) -> Result<(), IrError> {
    let missing = || IrError::shape("a convolution input is missing");
    let x = node.inputs[0].ok_or_else(missing)?;
    let w = node.inputs[1].ok_or_else(missing)?;
    let out = node.outputs[0];
    let (xs, ys) = (r.shape(x).to_vec(), r.shape(out).to_vec());
    let (n, c, m) = (xs[0], xs[1], ys[1]);
    let spatial = a.kernel.len();
    let padded = a.pads_begin.iter().chain(&a.pads_end).any(|&p| p > 0);
    let xp = if padded {
        let pads = |p: &[usize]| [0, 0].into_iter().chain(p.iter().map(|&p| p as i64)).collect();
        let pad = Op::Pad { begin: pads(&a.pads_begin), end: pads(&a.pads_end), mode: PadMode::Constant, value: 0.0 };
        r.node(pad, vec![Some(x)])?
    } else {
        x
    };
    let taps: usize = a.kernel.iter().product();
    let positions: usize = ys[2..].iter().product();
    let mut columns = Vec::with_capacity(taps);
    for t in 0..taps {
        let mut rest = t;
        let mut axes = vec![SliceAxis { axis: 0, start: 0, step: 1, len: 0 }; spatial];
        for i in (0..spatial).rev() {
            let k = rest % a.kernel[i];
            rest /= a.kernel[i];
            axes[i] = SliceAxis { axis: 2 + i, start: k * a.dilations[i], step: a.strides[i] as i64, len: ys[2 + i] };
        }
        let tap = r.node(Op::Slice(axes), vec![Some(xp)])?;
        columns.push(Some(r.view(tap, vec![n, c, 1, positions])?));
    }
    let stacked = if taps == 1 { columns[0].ok_or_else(missing)? } else { r.node(Op::Concat { axis: 2 }, columns)? };
    let g = a.group;
    let cols = r.view(stacked, vec![n, g, c / g * taps, positions])?;
    let weights = r.view(w, vec![g, m / g, c / g * taps])?;
    let product = r.main_outputs(Op::MatMul, vec![Some(weights), Some(cols)], 1)?[0];
    let mut y = r.view(product, vec![n, m, positions])?;
    if let Some(b) = node.inputs.get(2).copied().flatten() {
        let bias = r.view(b, vec![m, 1])?;
        y = r.node(Op::Binary(BinaryOp::Add), vec![Some(y), Some(bias)])?;
    }
    if r.shape(y) != [n, m, positions] {
        return Err(IrError::shape("the im2col product has the wrong shape"));
    }
    r.view_into(y, out);
    Ok(())
}
