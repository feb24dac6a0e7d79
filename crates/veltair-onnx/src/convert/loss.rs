//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss inlined as IR steps. The class each
//! target names is selected by comparing the target with the class indices (a one-hot mask)
//! rather than by a gather: `loss = -Σ_c [t = c] · x[c] · w[c]`, zero where the target is
//! `ignore_index`; `mean` divides the sum by the selected weights' sum, as the reference does.

use super::{axis, invalid, Body, Lowered, NodeCtx, Operand};
use crate::NodeProblem;
use veltair_ir::{BinaryOp, CompareOp, Op, ReduceOp, Tensor, UnaryOp};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    Ok(Some(match op {
        "NegativeLogLikelihoodLoss" => {
            let mut body = Body::new(ctx.ty(0)?.dtype);
            let x = ctx.input(0).map(Operand::Value).ok_or_else(|| invalid("input is missing"))?;
            let loss = nll(ctx, &mut body, x)?;
            body.finish(vec![loss])
        }
        "SoftmaxCrossEntropyLoss" => {
            let mut body = Body::new(ctx.ty(0)?.dtype);
            let scores = ctx.input(0).map(Operand::Value).ok_or_else(|| invalid("scores are missing"))?;
            axis(1, ctx.ty(0)?.shape.len())?;
            let log_prob = body.push(Op::Softmax { axis: 1, log: true, coerce_2d: false }, vec![scores]);
            let loss = nll(ctx, &mut body, log_prob.clone())?;
            body.finish(vec![loss, log_prob])
        }
        _ => return Ok(None),
    }))
}

/// The loss of log-probabilities `x` (`[N, C, d…]`) against targets (input 1, `[N, d…]`) with
/// optional class weights (input 2).
fn nll(ctx: &NodeCtx, body: &mut Body, x: Operand) -> Result<Operand, NodeProblem> {
    let a = &ctx.attrs;
    let (xt, tt) = (ctx.ty(0)?.clone(), ctx.ty(1)?.clone());
    let rank = xt.shape.len();
    if rank < 2 || tt.shape.len() != rank - 1 || tt.shape[0] != xt.shape[0] || tt.shape[1..] != xt.shape[2..] {
        return Err(invalid(format!("targets {:?} do not fit the input {:?}", tt.shape, xt.shape)));
    }
    if !xt.dtype.is_float() || tt.dtype.is_float() {
        return Err(invalid(format!("a loss over {} with {} targets", xt.dtype, tt.dtype)));
    }
    let classes = xt.shape[1];
    let fail = |e: veltair_ir::IrError| invalid(e.to_string());
    // [1, C, 1, …] class indices against the targets viewed [N, 1, d…].
    let mut class_shape = vec![1; rank];
    class_shape[1] = classes;
    let indices = Tensor::from_i64(class_shape.clone(), (0..classes as i64).collect()).map_err(fail)?;
    let indices = body.constant_as(indices, tt.dtype);
    let mut target_shape = tt.shape.clone();
    target_shape.insert(1, 1);
    let t = body.push(Op::Reshape(target_shape), vec![Operand::Value(ctx.input(1).expect("typed above"))]);
    let mut one_hot = body.push(Op::Compare(CompareOp::Equal), vec![t.clone(), indices]);
    if let Some(ignore) = a.int("ignore_index")? {
        let ignore = body.constant_as(Tensor::from_i64(Vec::new(), vec![ignore]).map_err(fail)?, tt.dtype);
        let ignored = body.push(Op::Compare(CompareOp::Equal), vec![t, ignore]);
        let kept = body.push(Op::Unary(UnaryOp::Not), vec![ignored]);
        one_hot = body.push(Op::Binary(BinaryOp::And), vec![one_hot, kept]);
    }
    let zero = body.scalar(0.0)?;
    let per_class = |body: &mut Body, v: Operand| {
        let chosen = body.push(Op::Where, vec![one_hot.clone(), v, zero.clone()]);
        body.push(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, vec![chosen])
    };
    let picked = per_class(body, x);
    // The weight of each target's class (1 without weights; 0 where ignored).
    let weights = match ctx.input(2) {
        Some(w) => {
            let w = body.push(Op::Reshape(class_shape), vec![Operand::Value(w)]);
            Some(per_class(body, w))
        }
        None => None,
    };
    let weighted = match &weights {
        Some(w) => body.push(Op::Binary(BinaryOp::Mul), vec![picked, w.clone()]),
        None => picked,
    };
    let loss = body.push(Op::Unary(UnaryOp::Neg), vec![weighted]);
    let all = Op::Reduce { op: ReduceOp::Sum, axes: (0..rank - 1).collect(), keepdims: false };
    Ok(match a.string_or("reduction", "mean")?.as_str() {
        "none" => loss,
        "sum" => body.push(all, vec![loss]),
        "mean" => {
            let total = body.push(all.clone(), vec![loss]);
            // The selected weights, or the count of kept targets (the mask keeps the class axis).
            let (counted, count_axes) = match weights {
                Some(w) => (w, all),
                None => {
                    let mask = body.push(Op::Cast { to: xt.dtype, saturate: false }, vec![one_hot]);
                    (mask, Op::Reduce { op: ReduceOp::Sum, axes: (0..rank).collect(), keepdims: false })
                }
            };
            let denominator = body.push(count_axes, vec![counted]);
            body.push(Op::Binary(BinaryOp::Div), vec![total, denominator])
        }
        other => return Err(invalid(format!("reduction must be none, sum or mean, is {other:?}"))),
    })
}
