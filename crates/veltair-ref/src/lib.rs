//! The reference evaluator: a plain, obviously-correct implementation of every IR operator.
//! It is the oracle that generated code is checked against, so clarity beats speed; the only
//! concession to speed is keeping inner loops contiguous so full-size models finish.

mod conv;
mod elementwise;
mod linalg;
mod movement;
mod norm;
mod pool;
mod reduce;
mod resize;

pub use movement::pad_source;
pub use resize::{axis_taps, Taps};
use std::collections::HashMap;
use std::fmt;
use veltair_ir::{infer::infer, EpilogueStep, Graph, IrError, Op, Tensor, ValueId};

/// An evaluation failure, naming the node it happened in.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    /// Node name and ONNX op, or empty for graph-level problems (wrong inputs).
    pub node: String,
    pub error: IrError,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.node.is_empty() {
            write!(f, "{}", self.error)
        } else {
            write!(f, "node {}: {}", self.node, self.error)
        }
    }
}

impl std::error::Error for EvalError {}

/// Evaluates one operator. Output types are checked by shape inference first, so the kernels
/// below can index freely. Returns every output the operator defines.
pub fn eval_op(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, IrError> {
    let tys: Vec<_> = inputs.iter().map(|t| t.map(Tensor::ty)).collect();
    let ty_refs: Vec<_> = tys.iter().map(Option::as_ref).collect();
    let out_tys = infer(op, &ty_refs)?;
    let x = |i: usize| inputs[i].expect("presence checked by shape inference");
    let opt = |i: usize| inputs.get(i).copied().flatten();
    let first = out_tys[0].clone();
    let single = |t: Tensor| vec![t];
    Ok(match op {
        Op::Conv(a) => single(conv::conv(a, x(0), x(1), opt(2), first)?),
        Op::ConvTranspose { conv: a, .. } => single(conv::conv_transpose(a, x(0), x(1), opt(2), first)?),
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            single(linalg::gemm(x(0), x(1), opt(2), *alpha, *beta, *trans_a, *trans_b, first)?)
        }
        Op::MatMul => single(linalg::matmul(x(0), x(1), first)?),
        Op::Binary(b) => single(elementwise::binary_chain(*b, &present(inputs), &first.shape)?),
        Op::Mean => single(elementwise::mean(&present(inputs), &first.shape)?),
        Op::Compare(c) => single(elementwise::compare(*c, x(0), x(1), &first.shape)?),
        Op::Where => single(elementwise::select(x(0), x(1), x(2), &first.shape)?),
        Op::Unary(u) => single(elementwise::unary(*u, x(0))?),
        Op::Cast { to, saturate } => single(elementwise::cast(x(0), *to, *saturate)),
        Op::Softmax { axis, log, coerce_2d } => single(norm::softmax(x(0), *axis, *log, *coerce_2d)?),
        Op::LayerNorm { axis, epsilon } => norm::layer_norm(x(0), x(1), opt(2), *axis, *epsilon)?,
        Op::BatchNorm { epsilon } => single(norm::batch_norm(x(0), [x(1), x(2), x(3), x(4)], *epsilon)?),
        Op::InstanceNorm { epsilon } => single(norm::instance_norm(x(0), x(1), x(2), *epsilon)?),
        Op::Lrn { size, alpha, beta, bias } => single(norm::lrn(x(0), *size, *alpha, *beta, *bias)?),
        Op::MaxPool(p) => pool::max_pool(p, x(0), first)?,
        Op::AveragePool(p) => single(pool::average_pool(p, x(0), first)?),
        Op::GlobalAveragePool => single(pool::global_pool(x(0), false, first)?),
        Op::GlobalMaxPool => single(pool::global_pool(x(0), true, first)?),
        Op::Reshape(shape) => single(x(0).clone().reshaped(shape.clone())?),
        Op::Transpose(perm) => single(movement::transpose(x(0), perm, first)?),
        Op::Concat { axis } => single(movement::concat(&present(inputs), *axis, first)?),
        Op::Split { axis, sizes } => movement::split(x(0), *axis, sizes, &out_tys)?,
        Op::Slice(axes) => single(movement::slice(x(0), axes, first)?),
        Op::Gather { axis } => single(movement::gather(x(0), x(1), *axis, first)?),
        Op::Expand(_) => single(movement::expand(x(0), first)?),
        Op::Tile(_) => single(movement::tile(x(0), first)?),
        Op::Pad { begin, mode, value, .. } => single(movement::pad(x(0), begin, *mode, *value, first)?),
        Op::Reduce { op: r, axes, .. } => single(reduce::reduce(*r, x(0), axes, first)?),
        Op::Resize(r) => single(resize::resize(r, x(0))?),
        Op::Fused { main, main_inputs, epilogue } => {
            let mut acc = eval_op(main, &inputs[..*main_inputs])?.remove(0);
            for step in epilogue {
                acc = match step {
                    EpilogueStep::Unary(u) => elementwise::unary(*u, &acc)?,
                    EpilogueStep::Binary { op, input, operand_first } => {
                        let operand = x(*input);
                        let pair = if *operand_first { [operand, &acc] } else { [&acc, operand] };
                        elementwise::binary_chain(*op, &pair, &first.shape)?
                    }
                };
            }
            single(acc)
        }
    })
}

fn present<'a>(inputs: &[Option<&'a Tensor>]) -> Vec<&'a Tensor> {
    inputs.iter().flatten().copied().collect()
}

/// Runs a whole graph on the given inputs (in graph-input order) and returns its outputs.
/// Intermediate tensors are dropped after their last use.
pub fn evaluate(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let graph_err = |e: IrError| EvalError { node: String::new(), error: e };
    if inputs.len() != graph.inputs.len() {
        return Err(graph_err(IrError::value(format!(
            "the graph has {} inputs, {} were given",
            graph.inputs.len(),
            inputs.len()
        ))));
    }
    let mut last_use: HashMap<ValueId, usize> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        for id in node.inputs.iter().flatten() {
            last_use.insert(*id, i);
        }
    }
    let mut live: HashMap<ValueId, Tensor> = HashMap::new();
    for (&id, t) in graph.inputs.iter().zip(inputs) {
        let v = graph.value(id);
        if t.ty() != v.ty {
            return Err(graph_err(IrError::shape(format!("input '{}' must be {}, got {}", v.name, v.ty, t.ty()))));
        }
        live.insert(id, t.clone());
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let args: Vec<Option<&Tensor>> = node
            .inputs
            .iter()
            .map(|id| id.map(|id| live.get(&id).or(graph.value(id).constant.as_ref())))
            .map(|t| t.flatten())
            .collect();
        let node_err = |e: IrError| EvalError { node: format!("'{}' ({})", node.name, node.source_op), error: e };
        if args.iter().zip(&node.inputs).any(|(a, id)| id.is_some() && a.is_none()) {
            return Err(node_err(IrError::value("an input value is not available")));
        }
        let outs = eval_op(&node.op, &args).map_err(node_err)?;
        for (&id, t) in node.outputs.iter().zip(outs) {
            live.insert(id, t);
        }
        for id in node.inputs.iter().flatten() {
            if last_use.get(id) == Some(&i) && !graph.outputs.contains(id) {
                live.remove(id);
            }
        }
    }
    graph
        .outputs
        .iter()
        .map(|&id| {
            live.get(&id)
                .or(graph.value(id).constant.as_ref())
                .cloned()
                .ok_or_else(|| graph_err(IrError::value(format!("output '{}' was not computed", graph.value(id).name))))
        })
        .collect()
}
