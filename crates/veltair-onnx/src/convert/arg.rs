//! ArgMax, ArgMin and Hardmax inlined as IR steps: the extreme along the axis, the positions
//! equal to it (or, in a row holding NaN, the NaN positions: numpy's arg functions treat NaN
//! as the extreme), the smallest (or with `select_last_index` the largest) such position as an
//! f32 index (exact up to 2^24), cast to i64. Hardmax is the one-hot of ArgMax.

use super::{axis, invalid, Body, Lowered, NodeCtx, Operand};
use crate::NodeProblem;
use veltair_ir::{CompareOp, DType, Op, ReduceOp, Tensor, UnaryOp};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    let a = &ctx.attrs;
    let extreme = match op {
        "ArgMax" | "Hardmax" => ReduceOp::Max,
        "ArgMin" => ReduceOp::Min,
        _ => return Ok(None),
    };
    let rank = ctx.ty(0)?.shape.len();
    let mut body = Body::new(ctx.ty(0)?.dtype);
    if op == "Hardmax" {
        if ctx.opset < 13 {
            return Err(invalid("Hardmax before opset 13 (the 2-D coercion) is not inlined"));
        }
        let ax = axis(a.int_or("axis", -1)?, rank)?;
        let (index, iota) = arg_index(ctx, &mut body, ax, extreme, false)?;
        let hit = body.push(Op::Compare(CompareOp::Equal), vec![index, iota]);
        let (one, zero) = (body.scalar(1.0)?, body.scalar(0.0)?);
        let y = body.push(Op::Where, vec![hit, one, zero]);
        return Ok(Some(body.finish(vec![y])));
    }
    let ax = axis(a.int_or("axis", 0)?, rank)?;
    let (index, _) = arg_index(ctx, &mut body, ax, extreme, a.int_or("select_last_index", 0)? != 0)?;
    let index = if a.int_or("keepdims", 1)? != 0 {
        index
    } else {
        let mut shape = ctx.ty(0)?.shape.clone();
        shape.remove(ax);
        body.push(Op::Reshape(shape), vec![index])
    };
    let y = body.push(Op::Cast { to: DType::I64, saturate: false }, vec![index]);
    Ok(Some(body.finish(vec![y])))
}

/// The f32 index (kept dims) of the first or last extreme of input 0 along `ax`, and the f32
/// index ramp along the axis it was chosen from.
fn arg_index(
    ctx: &NodeCtx,
    body: &mut Body,
    ax: usize,
    extreme: ReduceOp,
    last: bool,
) -> Result<(Operand, Operand), NodeProblem> {
    let shape = ctx.ty(0)?.shape.clone();
    let n = shape[ax];
    if n > 1 << 24 {
        return Err(invalid(format!("an axis of {n} elements (indices are exact up to 2^24)")));
    }
    let x = Operand::Value(ctx.input(0).ok_or_else(|| invalid("the input is missing"))?);
    let along = |op| Op::Reduce { op, axes: vec![ax], keepdims: true };
    let m = body.push(along(extreme), vec![x.clone()]);
    let at_extreme = body.push(Op::Compare(CompareOp::Equal), vec![x.clone(), m]);
    let is_number = body.push(Op::Compare(CompareOp::Equal), vec![x.clone(), x]);
    let is_nan = body.unary(UnaryOp::Not, is_number);
    let nan_count = body.push(Op::Cast { to: DType::F32, saturate: false }, vec![is_nan.clone()]);
    let nan_count = body.push(along(ReduceOp::Max), vec![nan_count]);
    let zero =
        body.constant_as(Tensor::from_f32(Vec::new(), vec![0.0]).map_err(|e| invalid(e.to_string()))?, DType::F32);
    let has_nan = body.push(Op::Compare(CompareOp::Greater), vec![nan_count, zero]);
    let candidates = body.push(Op::Where, vec![has_nan, is_nan, at_extreme]);
    let mut ramp_shape = vec![1; shape.len()];
    ramp_shape[ax] = n;
    let ramp = Tensor::from_f32(ramp_shape, (0..n).map(|i| i as f32).collect()).map_err(|e| invalid(e.to_string()))?;
    let ramp = body.constant_as(ramp, DType::F32);
    let fill = if last { -1.0 } else { n as f32 };
    let fill =
        body.constant_as(Tensor::from_f32(Vec::new(), vec![fill]).map_err(|e| invalid(e.to_string()))?, DType::F32);
    let positions = body.push(Op::Where, vec![candidates, ramp.clone(), fill]);
    let index = body.push(along(if last { ReduceOp::Max } else { ReduceOp::Min }), vec![positions]);
    Ok((index, ramp))
}
