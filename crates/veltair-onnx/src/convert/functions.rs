//! Operators ONNX defines as functions of other operators, inlined as IR steps so the
//! reference evaluator and the lowering see only operators they have: DepthToSpace and
//! SpaceToDepth (a reshape, a transpose, a reshape), RMSNormalization (`x / sqrt(mean(x²) + ε)
//! · scale` over the trailing axes from `axis`).

use super::{axis, invalid, Lowered, NodeCtx, Operand};
use crate::NodeProblem;
use veltair_ir::{BinaryOp, Op, ReduceOp, Tensor, UnaryOp};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    let a = &ctx.attrs;
    Ok(Some(match op {
        "DepthToSpace" => {
            let crd = a.string_or("mode", "DCR")? == "CRD";
            depth_to_space(ctx, block(ctx)?, crd)?
        }
        "SpaceToDepth" => {
            let crd = a.string_or("mode", "DCR")? == "CRD";
            space_to_depth(ctx, block(ctx)?, crd)?
        }
        "RMSNormalization" => rms_norm(ctx, a.int_or("axis", -1)?, a.float_or("epsilon", 1e-5)?)?,
        _ => return Ok(None),
    }))
}

fn block(ctx: &NodeCtx) -> Result<usize, NodeProblem> {
    match ctx.attrs.int("blocksize")? {
        Some(b) if b >= 1 => Ok(b as usize),
        other => Err(invalid(format!("blocksize must be a positive integer, is {other:?}"))),
    }
}

/// `[N, C, H, W]` with checks that the operator's block divides what it must.
fn image(ctx: &NodeCtx) -> Result<[usize; 4], NodeProblem> {
    match ctx.ty(0)?.shape[..] {
        [n, c, h, w] => Ok([n, c, h, w]),
        ref s => Err(invalid(format!("the input must have rank 4, has shape {s:?}"))),
    }
}

/// Reshape, Transpose, Reshape of input 0.
fn shuffle(ctx: &NodeCtx, split: Vec<usize>, perm: Vec<usize>, merged: Vec<usize>) -> Lowered {
    let x = ctx.input(0).map(Operand::Value);
    Lowered::Steps(vec![
        (Op::Reshape(split), vec![x]),
        (Op::Transpose(perm), vec![Some(Operand::Step(0))]),
        (Op::Reshape(merged), vec![Some(Operand::Step(1))]),
    ])
}

fn depth_to_space(ctx: &NodeCtx, b: usize, crd: bool) -> Result<Lowered, NodeProblem> {
    let [n, c, h, w] = image(ctx)?;
    if !c.is_multiple_of(b * b) {
        return Err(invalid(format!("{c} channels are not a multiple of blocksize² = {}", b * b)));
    }
    let merged = vec![n, c / (b * b), h * b, w * b];
    Ok(if crd {
        shuffle(ctx, vec![n, c / (b * b), b, b, h, w], vec![0, 1, 4, 2, 5, 3], merged)
    } else {
        shuffle(ctx, vec![n, b, b, c / (b * b), h, w], vec![0, 3, 4, 1, 5, 2], merged)
    })
}

fn space_to_depth(ctx: &NodeCtx, b: usize, crd: bool) -> Result<Lowered, NodeProblem> {
    let [n, c, h, w] = image(ctx)?;
    if !h.is_multiple_of(b) || !w.is_multiple_of(b) {
        return Err(invalid(format!("{h}x{w} is not a multiple of blocksize {b}")));
    }
    // DCR: the block offsets are the major part of the output channel; CRD: the minor part.
    let perm = if crd { vec![0, 1, 3, 5, 2, 4] } else { vec![0, 3, 5, 1, 2, 4] };
    Ok(shuffle(ctx, vec![n, c, h / b, b, w / b, b], perm, vec![n, c * b * b, h / b, w / b]))
}

fn rms_norm(ctx: &NodeCtx, ax: i64, epsilon: f32) -> Result<Lowered, NodeProblem> {
    let ty = ctx.ty(0)?;
    let first = axis(ax, ty.shape.len())?;
    let x = || ctx.input(0).map(Operand::Value);
    let step = |k: usize| Some(Operand::Step(k));
    let eps = Tensor::from_f32(Vec::new(), vec![epsilon]).map_err(|e| invalid(e.to_string()))?;
    let binary = |op| Op::Binary(op);
    Ok(Lowered::Steps(vec![
        (binary(BinaryOp::Mul), vec![x(), x()]),
        (Op::Reduce { op: ReduceOp::Mean, axes: (first..ty.shape.len()).collect(), keepdims: true }, vec![step(0)]),
        (Op::Cast { to: ty.dtype, saturate: false }, vec![Some(Operand::Constant(eps))]),
        (binary(BinaryOp::Add), vec![step(1), step(2)]),
        (Op::Unary(UnaryOp::Sqrt), vec![step(3)]),
        (Op::Unary(UnaryOp::Reciprocal), vec![step(4)]),
        (binary(BinaryOp::Mul), vec![x(), step(5)]),
        (binary(BinaryOp::Mul), vec![step(6), ctx.input(1).map(Operand::Value)]),
    ]))
}
