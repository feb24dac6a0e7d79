//! Graph passes: rewrites of a graph into an equivalent one that later stages prefer:
//! BatchNormalization folded into the convolution that feeds it, `x · sigmoid(x)` recognised as
//! one SiLU and the erf form of GELU as one GELU, and element-wise epilogues (bias, activations, residual adds, scaling) fused into
//! the Conv/Gemm/MatMul producing their input, so that one node is one layer; layers over one
//! spatial axis recast as 2-D ones (`lift`), and convolutions no generator takes as an explicit
//! im2col and matrix product (`im2col`), and normalisations no generator takes expanded into
//! reductions and element-wise operators (`expand`), and 3-D pooling as two 2-D ones (`pool3d`).

mod expand;
mod im2col;
mod lift;
mod pool3d;
mod rewrite;

pub use expand::expand_norms;
pub use im2col::conv_as_im2col;
pub use lift::lift_1d_spatial;
pub use pool3d::pool_3d_separably;

use crate::shape::broadcast_shapes;
use crate::{BinaryOp, EpilogueStep, Graph, Node, Op, Tensor, TensorData, UnaryOp, ValueId};
use std::collections::HashMap;

/// How many nodes read each value (graph outputs count as readers).
fn reader_counts(graph: &Graph) -> Vec<usize> {
    let mut counts = vec![0; graph.values.len()];
    for id in graph.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).chain(&graph.outputs) {
        counts[id.0] += 1;
    }
    counts
}

/// The index of the node producing each computed value.
fn producers(graph: &Graph) -> HashMap<ValueId, usize> {
    graph.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |&o| (o, i))).collect()
}

/// Drops the nodes at the given indices.
fn remove_nodes(graph: &mut Graph, indices: &[usize]) {
    let mut index = 0;
    graph.nodes.retain(|_| {
        index += 1;
        !indices.contains(&(index - 1))
    });
}

fn constant_f32(graph: &Graph, id: Option<ValueId>) -> Option<&[f32]> {
    match graph.value(id?).constant.as_ref()?.data() {
        TensorData::F32(v) => Some(v),
        _ => None,
    }
}

/// Folds every inference-mode BatchNormalization whose input is a convolution with constant
/// weights read by nothing else: the convolution's weights and bias absorb the normalisation
/// (`w' = w·s`, `b' = (b − mean)·s + beta` with `s = scale / sqrt(var + eps)` per output
/// channel) and take over the BatchNormalization's output. Returns the number folded.
pub fn fold_batch_norm(graph: &mut Graph) -> usize {
    let readers = reader_counts(graph);
    let producer = producers(graph);
    let mut folded = Vec::new();
    for bn in 0..graph.nodes.len() {
        let Op::BatchNorm { epsilon } = graph.nodes[bn].op else { continue };
        let Some(x) = graph.nodes[bn].inputs[0] else { continue };
        let Some(&conv) = producer.get(&x) else { continue };
        if !matches!(graph.nodes[conv].op, Op::Conv(_)) || readers[x.0] != 1 {
            continue;
        }
        let p: Vec<Option<&[f32]>> = (1..5).map(|i| constant_f32(graph, graph.nodes[bn].inputs[i])).collect();
        let (Some(scale), Some(beta), Some(mean), Some(var)) = (p[0], p[1], p[2], p[3]) else { continue };
        let conv_node = &graph.nodes[conv];
        let Some(w) = constant_f32(graph, conv_node.inputs[1]) else { continue };
        let w_ty = graph.value(conv_node.inputs[1].expect("conv has weights")).ty.clone();
        let out_channels = w_ty.shape[0];
        let bias = match conv_node.inputs.get(2).copied().flatten() {
            Some(b) => match constant_f32(graph, Some(b)) {
                Some(v) => v.to_vec(),
                None => continue,
            },
            None => vec![0.0; out_channels],
        };
        let factor: Vec<f64> =
            (0..out_channels).map(|c| scale[c] as f64 / (var[c] as f64 + epsilon as f64).sqrt()).collect();
        let per_channel = w.len() / out_channels;
        let new_w: Vec<f32> = w.iter().enumerate().map(|(i, &v)| (v as f64 * factor[i / per_channel]) as f32).collect();
        let new_b: Vec<f32> = (0..out_channels)
            .map(|c| ((bias[c] as f64 - mean[c] as f64) * factor[c] + beta[c] as f64) as f32)
            .collect();
        let name = graph.nodes[conv].name.clone();
        let w_id =
            graph.add_constant(format!("{name}:weight+bn"), Tensor::from_f32(w_ty.shape, new_w).expect("same shape"));
        let b_id = graph.add_constant(
            format!("{name}:bias+bn"),
            Tensor::from_f32(vec![out_channels], new_b).expect("one per channel"),
        );
        let y = graph.nodes[bn].outputs[0];
        let conv_node = &mut graph.nodes[conv];
        conv_node.inputs.resize(3, None);
        conv_node.inputs[1] = Some(w_id);
        conv_node.inputs[2] = Some(b_id);
        conv_node.outputs[0] = y;
        conv_node.source_op.push_str("+BatchNormalization");
        folded.push(bn);
    }
    remove_nodes(graph, &folded);
    folded.len()
}

/// Operators whose output an epilogue can be fused into.
fn is_anchor(op: &Op) -> bool {
    match op {
        Op::Conv(_) | Op::ConvTranspose { .. } | Op::Gemm { .. } | Op::MatMul => true,
        Op::Fused { main, .. } => is_anchor(main),
        _ => false,
    }
}

/// The epilogue step node `reader` would become after the layer producing `acc`, and the extra
/// operand it reads, if it is an element-wise node that can be fused.
fn as_step(graph: &Graph, reader: &Node, acc: ValueId) -> Option<(EpilogueStep, Option<ValueId>)> {
    let out_ty = &graph.value(acc).ty;
    match &reader.op {
        Op::Unary(u) if reader.inputs == [Some(acc)] => Some((EpilogueStep::Unary(*u), None)),
        Op::Binary(
            op @ (BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Max | BinaryOp::Min),
        ) if reader.inputs.len() == 2 => {
            let (a, b) = (reader.inputs[0]?, reader.inputs[1]?);
            let (operand, operand_first) = match (a == acc, b == acc) {
                (true, false) => (b, false),
                (false, true) => (a, true),
                _ => return None,
            };
            let x = &graph.value(operand).ty;
            let fits = x.dtype == out_ty.dtype && broadcast_shapes(&[&out_ty.shape, &x.shape]).ok()? == out_ty.shape;
            fits.then_some((EpilogueStep::Binary { op: *op, input: usize::MAX, operand_first }, Some(operand)))
        }
        _ => None,
    }
}

/// Fuses chains of element-wise nodes into the Conv/ConvTranspose/Gemm/MatMul whose output
/// they alone consume. A binary step's other operand must be computed before the layer (a
/// constant, a graph input or an earlier node's output). Returns the number of nodes fused.
pub fn fuse_epilogues(graph: &mut Graph) -> usize {
    let mut fused = 0;
    while let Some((anchor, reader)) = next_fusion(graph) {
        let reader_node = graph.nodes.remove(reader);
        let acc = graph.nodes[anchor].outputs[0];
        let (step, operand) = as_step(graph, &reader_node, acc).expect("checked by next_fusion");
        let node = &mut graph.nodes[anchor];
        let (main, main_inputs, mut epilogue) = match std::mem::replace(&mut node.op, Op::MatMul) {
            Op::Fused { main, main_inputs, epilogue } => (main, main_inputs, epilogue),
            op => (Box::new(op), node.inputs.len(), Vec::new()),
        };
        let step = match (step, operand) {
            (EpilogueStep::Binary { op, operand_first, .. }, Some(x)) => {
                node.inputs.push(Some(x));
                EpilogueStep::Binary { op, input: node.inputs.len() - 1, operand_first }
            }
            (step, _) => step,
        };
        epilogue.push(step);
        node.op = Op::Fused { main, main_inputs, epilogue };
        node.outputs[0] = reader_node.outputs[0];
        node.source_op = format!("{}+{}", node.source_op, reader_node.source_op);
        fused += 1;
    }
    fused
}

/// The first (anchor, reader) node pair that can be fused.
fn next_fusion(graph: &Graph) -> Option<(usize, usize)> {
    let readers = reader_counts(graph);
    let producer = producers(graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        let out = node.outputs[0];
        if !is_anchor(&node.op) || node.outputs.len() != 1 || readers[out.0] != 1 || graph.outputs.contains(&out) {
            continue;
        }
        let Some(j) = graph.nodes.iter().position(|n| n.inputs.contains(&Some(out))) else { continue };
        let Some((_, operand)) = as_step(graph, &graph.nodes[j], out) else { continue };
        let ready = operand.is_none_or(|x| producer.get(&x).is_none_or(|&p| p < i));
        if ready && graph.nodes[j].outputs.len() == 1 {
            return Some((i, j));
        }
    }
    None
}

/// Rewrites `Mul(x, Sigmoid(x))` (either operand order) into one `Unary(Silu)` node when the
/// sigmoid's output is read only by that Mul. Returns the number rewritten.
pub fn recognize_silu(graph: &mut Graph) -> usize {
    let readers = reader_counts(graph);
    let producer = producers(graph);
    let mut dead = Vec::new();
    for m in 0..graph.nodes.len() {
        let node = &graph.nodes[m];
        if node.op != Op::Binary(BinaryOp::Mul) || node.inputs.len() != 2 {
            continue;
        }
        let (Some(a), Some(b)) = (node.inputs[0], node.inputs[1]) else { continue };
        let sigmoid_of = |v: ValueId| {
            let s = *producer.get(&v)?;
            let sn = &graph.nodes[s];
            (sn.op == Op::Unary(UnaryOp::Sigmoid) && readers[v.0] == 1 && !graph.outputs.contains(&v))
                .then_some((s, sn.inputs[0]?))
        };
        let found = match (sigmoid_of(b), sigmoid_of(a)) {
            (Some((s, x)), _) if x == a => Some(s),
            (_, Some((s, x))) if x == b => Some(s),
            _ => None,
        };
        let Some(s) = found else { continue };
        let x = graph.nodes[s].inputs[0];
        let node = &mut graph.nodes[m];
        node.op = Op::Unary(UnaryOp::Silu);
        node.inputs = vec![x];
        node.source_op = "SiLU".to_string();
        dead.push(s);
    }
    remove_nodes(graph, &dead);
    dead.len()
}

/// The single value of a one-element f32 constant.
fn scalar(graph: &Graph, id: ValueId) -> Option<f32> {
    match constant_f32(graph, Some(id))? {
        [x] => Some(*x),
        _ => None,
    }
}

/// `(other operand, constant)` when `node` is the binary `op` of a value and a scalar
/// constant (either order).
fn with_scalar(graph: &Graph, node: &Node, op: BinaryOp) -> Option<(ValueId, f32)> {
    if node.op != Op::Binary(op) || node.inputs.len() != 2 {
        return None;
    }
    let (a, b) = (node.inputs[0]?, node.inputs[1]?);
    match (scalar(graph, a), scalar(graph, b)) {
        (None, Some(c)) => Some((a, c)),
        (Some(c), None) if matches!(op, BinaryOp::Add | BinaryOp::Mul) => Some((b, c)),
        _ => None,
    }
}

/// Rewrites the exact GELU as exporters write it, `x · (erf(x / √2) + 1) · 0.5` (the scaling
/// as a division by √2 or a multiplication by 1/√2; the 0.5 applied last or to `x` first),
/// into one `Unary(Gelu)` node when every intermediate is read only inside the pattern.
/// Returns the number rewritten.
pub fn recognize_gelu(graph: &mut Graph) -> usize {
    const TOL: f32 = 1e-4;
    let readers = reader_counts(graph);
    let producer = producers(graph);
    let private = |v: ValueId| readers[v.0] == 1 && !graph.outputs.contains(&v);
    let node_of = |v: ValueId| producer.get(&v).copied();
    let mut dead = Vec::new();
    let mut rewrites = Vec::new();
    for (e, erf) in graph.nodes.iter().enumerate() {
        if erf.op != Op::Unary(UnaryOp::Erf) {
            continue;
        }
        let Some(scaled) = erf.inputs[0] else { continue };
        let Some(s) = node_of(scaled) else { continue };
        let x = match (
            with_scalar(graph, &graph.nodes[s], BinaryOp::Div),
            with_scalar(graph, &graph.nodes[s], BinaryOp::Mul),
        ) {
            (Some((x, c)), _) if (c - std::f32::consts::SQRT_2).abs() < TOL => x,
            (_, Some((x, c))) if (c - std::f32::consts::FRAC_1_SQRT_2).abs() < TOL => x,
            _ => continue,
        };
        // erf(...) + 1, read by exactly one Mul.
        let erf_out = erf.outputs[0];
        let Some(a) = graph.nodes.iter().position(|n| n.inputs.contains(&Some(erf_out))) else { continue };
        let plus_one = with_scalar(graph, &graph.nodes[a], BinaryOp::Add).filter(|&(_, c)| (c - 1.0).abs() < TOL);
        if plus_one.is_none() || !private(scaled) || !private(erf_out) {
            continue;
        }
        let sum = graph.nodes[a].outputs[0];
        let Some(m) = graph.nodes.iter().position(|n| n.inputs.contains(&Some(sum))) else { continue };
        let mul = &graph.nodes[m];
        if mul.op != Op::Binary(BinaryOp::Mul) || !private(sum) || mul.inputs.len() != 2 {
            continue;
        }
        let other = if mul.inputs[0] == Some(sum) { mul.inputs[1] } else { mul.inputs[0] };
        let Some(other) = other else { continue };
        let half_of_x = node_of(other)
            .filter(|&h| private(other) && with_scalar(graph, &graph.nodes[h], BinaryOp::Mul) == Some((x, 0.5)));
        let (last, mut nodes) = if let Some(h) = half_of_x {
            (m, vec![s, e, a, h])
        } else if other == x {
            let product = mul.outputs[0];
            let Some(l) = graph.nodes.iter().position(|n| n.inputs.contains(&Some(product))) else { continue };
            if !private(product) || with_scalar(graph, &graph.nodes[l], BinaryOp::Mul) != Some((product, 0.5)) {
                continue;
            }
            (l, vec![s, e, a, m])
        } else {
            continue;
        };
        if nodes.iter().chain([&last]).any(|n| dead.contains(n)) {
            continue;
        }
        dead.append(&mut nodes);
        rewrites.push((last, x));
    }
    for &(last, x) in &rewrites {
        let node = &mut graph.nodes[last];
        node.op = Op::Unary(UnaryOp::Gelu { tanh: false });
        node.inputs = vec![Some(x)];
        node.source_op = "GELU".to_string();
    }
    remove_nodes(graph, &dead);
    rewrites.len()
}
