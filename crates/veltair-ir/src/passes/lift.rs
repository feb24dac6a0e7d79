//! Convolutions and pooling over one spatial axis as their 2-D forms over a height of 1, so the
//! 2-D generators serve them: operands viewed with a unit axis inserted (`[N, C, L]` as
//! `[N, C, 1, L]`, weights `[M, C/g, k]` as `[M, C/g, 1, k]`, fused epilogue operands likewise),
//! attributes given a leading unit axis, results viewed back to their 1-D shapes.

use crate::infer::infer;
use crate::{ConvAttrs, Graph, Node, Op, PoolAttrs, TensorType, ValueId};

/// Rewrites every Conv, ConvTranspose, MaxPool, AveragePool and global pooling over one spatial
/// axis (fused epilogues included) into its 2-D form. Returns the number rewritten.
pub fn lift_1d_spatial(graph: &mut Graph) -> usize {
    let nodes = std::mem::take(&mut graph.nodes);
    let mut lifted = 0;
    for node in nodes {
        match lift_node(graph, &node) {
            Some(mut rewritten) => {
                graph.nodes.append(&mut rewritten);
                lifted += 1;
            }
            None => graph.nodes.push(node),
        }
    }
    lifted
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

fn lift_conv(a: &ConvAttrs) -> ConvAttrs {
    let unit = |v: &[usize], u: usize| [u].iter().chain(v).copied().collect::<Vec<_>>();
    ConvAttrs {
        kernel: unit(&a.kernel, 1),
        strides: unit(&a.strides, 1),
        dilations: unit(&a.dilations, 1),
        pads_begin: unit(&a.pads_begin, 0),
        pads_end: unit(&a.pads_end, 0),
        group: a.group,
    }
}

fn lift_pool(a: &PoolAttrs) -> PoolAttrs {
    let unit = |v: &[usize], u: usize| [u].iter().chain(v).copied().collect::<Vec<_>>();
    PoolAttrs {
        kernel: unit(&a.kernel, 1),
        strides: unit(&a.strides, 1),
        dilations: unit(&a.dilations, 1),
        pads_begin: unit(&a.pads_begin, 0),
        pads_end: unit(&a.pads_end, 0),
        ..a.clone()
    }
}

/// The 2-D form of a layer operator over one spatial axis, `None` for anything else.
fn lift_op(op: &Op) -> Option<Op> {
    Some(match op {
        Op::Conv(a) if a.kernel.len() == 1 => Op::Conv(lift_conv(a)),
        Op::ConvTranspose { conv, output_padding } if conv.kernel.len() == 1 => Op::ConvTranspose {
            conv: lift_conv(conv),
            output_padding: [0].iter().chain(output_padding).copied().collect(),
        },
        Op::MaxPool(a) if a.kernel.len() == 1 => Op::MaxPool(lift_pool(a)),
        Op::AveragePool(a) if a.kernel.len() == 1 => Op::AveragePool(lift_pool(a)),
        Op::Fused { main, main_inputs, epilogue } => {
            Op::Fused { main: Box::new(lift_op(main)?), main_inputs: *main_inputs, epilogue: epilogue.clone() }
        }
        _ => return None,
    })
}

/// The nodes that replace `node` (views of its operands, the 2-D node, views of its results),
/// or `None` when it is not a 1-D layer or its 2-D form does not check.
fn lift_node(graph: &mut Graph, node: &Node) -> Option<Vec<Node>> {
    let x = node.inputs.first().copied().flatten()?;
    if graph.value(x).ty.shape.len() != 3 {
        return None;
    }
    let op = match &node.op {
        Op::GlobalAveragePool | Op::GlobalMaxPool => node.op.clone(),
        op => lift_op(op)?,
    };
    let layer_inputs = match &node.op {
        Op::Fused { main_inputs, .. } => *main_inputs,
        _ => node.inputs.len(),
    };
    let lifted_shape = |i: usize, shape: &[usize]| match i {
        // The data and the weights: a unit axis before the spatial one; the bias as it is.
        0 | 1 if i < layer_inputs => with_unit_axis(shape),
        _ if i < layer_inputs => shape.to_vec(),
        // Fused epilogue operands broadcast against the 2-D result.
        _ => with_unit_axis(shape),
    };
    let lifted_types: Vec<Option<TensorType>> = node
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(|v| TensorType { shape: lifted_shape(i, &graph.value(v).ty.shape), ..graph.value(v).ty.clone() })
        })
        .collect();
    let tys = infer(&op, &lifted_types.iter().map(Option::as_ref).collect::<Vec<_>>()).ok()?;
    let fits = tys.len() >= node.outputs.len()
        && node.outputs.iter().zip(&tys).all(|(&o, t)| with_unit_axis(&graph.value(o).ty.shape) == t.shape);
    if !fits {
        return None;
    }
    let mut views = Vec::new();
    let inputs = node
        .inputs
        .iter()
        .zip(lifted_types)
        .map(|(v, ty)| Some(view(graph, &mut views, &node.name, (*v)?, ty?.shape)))
        .collect();
    let mut results = Vec::new();
    let mut tails = Vec::new();
    for (&o, ty) in node.outputs.iter().zip(tys) {
        let r = graph.add_value(format!("{}.2d", graph.value(o).name), ty);
        results.push(r);
        let shape = graph.value(o).ty.shape.clone();
        tails.push(reshape_node(&node.name, r, o, shape));
    }
    views.push(Node { name: node.name.clone(), source_op: node.source_op.clone(), op, inputs, outputs: results });
    views.extend(tails);
    Some(views)
}

fn reshape_node(layer: &str, from: ValueId, to: ValueId, shape: Vec<usize>) -> Node {
    Node {
        name: format!("{layer}.view{}", from.0),
        source_op: "Reshape".into(),
        op: Op::Reshape(shape),
        inputs: vec![Some(from)],
        outputs: vec![to],
    }
}

/// `v` viewed as `shape`: itself when the shape is unchanged, a reshaped constant for a
/// constant, else a new value computed by a Reshape node pushed to `nodes`.
fn view(graph: &mut Graph, nodes: &mut Vec<Node>, layer: &str, v: ValueId, shape: Vec<usize>) -> ValueId {
    let value = graph.value(v);
    if value.ty.shape == shape {
        return v;
    }
    let name = format!("{}.2d", value.name);
    if let Some(t) = &value.constant {
        let t = t.clone().reshaped(shape).expect("a unit axis keeps the element count");
        return graph.add_constant(name, t);
    }
    let ty = TensorType { shape: shape.clone(), ..value.ty.clone() };
    let r = graph.add_value(name, ty);
    nodes.push(reshape_node(layer, v, r, shape));
    r
}
