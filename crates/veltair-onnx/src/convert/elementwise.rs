//! Element-wise operators: arithmetic (with the pre-opset-7 `broadcast`/`axis` form),
//! comparisons, logic, bitwise operators and shifts, unary math, Clip (attributes before
//! opset 11, inputs after; on integers as Max/Min steps), Cast.

use super::{invalid, unsupported, Lowered, NodeCtx, Operand, Produced};
use crate::tensor_proto::{dtype_of, onnx_type_name};
use crate::NodeProblem;
use veltair_ir::{BinaryOp, CompareOp, Op, Tensor, UnaryOp};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    let a = &ctx.attrs;
    let binary = |b: BinaryOp| legacy_broadcast(ctx, Op::Binary(b));
    let unary = |u: UnaryOp| Ok(Some(ctx.op(Op::Unary(u), &[0])));
    let compare = |c: CompareOp| legacy_broadcast(ctx, Op::Compare(c));
    match op {
        "Add" => binary(BinaryOp::Add),
        "Sub" => binary(BinaryOp::Sub),
        "Mul" => binary(BinaryOp::Mul),
        "Div" => binary(BinaryOp::Div),
        "Pow" => binary(BinaryOp::Pow),
        "Mod" => binary(BinaryOp::Mod { fmod: a.int_or("fmod", 0)? != 0 }),
        "And" => binary(BinaryOp::And),
        "Or" => binary(BinaryOp::Or),
        "Xor" => binary(BinaryOp::Xor),
        "BitwiseAnd" => binary(BinaryOp::And),
        "BitwiseOr" => binary(BinaryOp::Or),
        "BitwiseXor" => binary(BinaryOp::Xor),
        "BitwiseNot" => {
            // x XOR all-ones (-1 cast to x's type wraps to it).
            let ones = Tensor::from_i64(Vec::new(), vec![-1]).map_err(|e| invalid(e.to_string()))?;
            let cast = Op::Cast { to: ctx.ty(0)?.dtype, saturate: false };
            let x = ctx.input(0).map(Operand::Value);
            Ok(Some(Lowered::chain(vec![
                (cast, vec![Some(Operand::Constant(ones))]),
                (Op::Binary(BinaryOp::Xor), vec![x, Some(Operand::Step(0))]),
            ])))
        }
        "BitShift" => match a.string_or("direction", "")?.as_str() {
            "LEFT" => binary(BinaryOp::ShiftLeft),
            "RIGHT" => binary(BinaryOp::ShiftRight),
            other => Err(invalid(format!("BitShift direction must be LEFT or RIGHT, is {other:?}"))),
        },
        "Max" => Ok(Some(ctx.op_all(Op::Binary(BinaryOp::Max)))),
        "Min" => Ok(Some(ctx.op_all(Op::Binary(BinaryOp::Min)))),
        "Sum" => Ok(Some(ctx.op_all(Op::Binary(BinaryOp::Add)))),
        "Mean" => Ok(Some(ctx.op_all(Op::Mean))),
        "Equal" => compare(CompareOp::Equal),
        "Less" => compare(CompareOp::Less),
        "LessOrEqual" => compare(CompareOp::LessOrEqual),
        "Greater" => compare(CompareOp::Greater),
        "GreaterOrEqual" => compare(CompareOp::GreaterOrEqual),
        "Where" => Ok(Some(ctx.op(Op::Where, &[0, 1, 2]))),
        "Not" => unary(UnaryOp::Not),
        "Sqrt" => unary(UnaryOp::Sqrt),
        "Reciprocal" => unary(UnaryOp::Reciprocal),
        "Exp" => unary(UnaryOp::Exp),
        "Log" => unary(UnaryOp::Log),
        "Erf" => unary(UnaryOp::Erf),
        "Neg" => unary(UnaryOp::Neg),
        "Abs" => unary(UnaryOp::Abs),
        "Sign" => unary(UnaryOp::Sign),
        "Floor" => unary(UnaryOp::Floor),
        "Round" => unary(UnaryOp::Round),
        "Ceil" => unary(UnaryOp::Ceil),
        "Sin" => unary(UnaryOp::Sin),
        "Tan" => unary(UnaryOp::Tan),
        "Asin" => unary(UnaryOp::Asin),
        "Acos" => unary(UnaryOp::Acos),
        "Atan" => unary(UnaryOp::Atan),
        "Sinh" => unary(UnaryOp::Sinh),
        "Cosh" => unary(UnaryOp::Cosh),
        "Asinh" => unary(UnaryOp::Asinh),
        "Acosh" => unary(UnaryOp::Acosh),
        "Atanh" => unary(UnaryOp::Atanh),
        "Cos" => unary(UnaryOp::Cos),
        "Tanh" => unary(UnaryOp::Tanh),
        "Sigmoid" => unary(UnaryOp::Sigmoid),
        "Softplus" => unary(UnaryOp::Softplus),
        "Softsign" => unary(UnaryOp::Softsign),
        "Relu" => unary(UnaryOp::Relu),
        "HardSwish" => unary(UnaryOp::HardSwish),
        "LeakyRelu" => unary(UnaryOp::LeakyRelu { alpha: a.float_or("alpha", 0.01)? }),
        "Elu" => unary(UnaryOp::Elu { alpha: a.float_or("alpha", 1.0)? }),
        "Celu" => unary(UnaryOp::Celu { alpha: a.float_or("alpha", 1.0)? }),
        "ThresholdedRelu" => unary(UnaryOp::ThresholdedRelu { alpha: a.float_or("alpha", 1.0)? }),
        "Selu" => {
            unary(UnaryOp::Selu { alpha: a.float_or("alpha", 1.673_263_2)?, gamma: a.float_or("gamma", 1.050_701)? })
        }
        "HardSigmoid" => {
            unary(UnaryOp::HardSigmoid { alpha: a.float_or("alpha", 0.2)?, beta: a.float_or("beta", 0.5)? })
        }
        "Gelu" => match a.string_or("approximate", "none")?.as_str() {
            "none" => unary(UnaryOp::Gelu { tanh: false }),
            "tanh" => unary(UnaryOp::Gelu { tanh: true }),
            other => Err(invalid(format!("approximate must be 'none' or 'tanh', got '{other}'"))),
        },
        "Clip" => clip(ctx).map(Some),
        "Cast" => cast(ctx).map(Some),
        "CastLike" => {
            let to = ctx.ty(1)?.dtype;
            Ok(Some(ctx.op(Op::Cast { to, saturate: ctx.attrs.int_or("saturate", 1)? != 0 }, &[0])))
        }
        _ => Ok(None),
    }
}

/// Binary ops before opset 7 broadcast only with `broadcast=1`, aligning B at `axis` of A.
/// Later opsets (and B already aligned from the right) use numpy broadcasting directly.
fn legacy_broadcast(ctx: &NodeCtx, op: Op) -> Result<Option<Lowered>, NodeProblem> {
    if ctx.opset >= 7 || ctx.attrs.int_or("broadcast", 0)? == 0 || !ctx.attrs.has("axis") {
        return Ok(Some(ctx.op(op, &[0, 1])));
    }
    let (a_rank, b) = (ctx.ty(0)?.rank(), ctx.ty(1)?);
    let axis = super::axis(ctx.attrs.int_or("axis", 0)?, a_rank)?;
    if axis + b.rank() > a_rank {
        return Err(invalid(format!("B {b} does not fit at axis {axis} of a rank-{a_rank} input")));
    }
    if axis + b.rank() == a_rank {
        return Ok(Some(ctx.op(op, &[0, 1])));
    }
    let Some(bt) = ctx.constant(1)? else {
        return Err(unsupported(format!("legacy broadcast at axis {axis} of a non-constant B")));
    };
    // Trailing unit axes align B at `axis`, after which numpy broadcasting applies.
    let mut shape = b.shape.clone();
    shape.resize(a_rank - axis, 1);
    let aligned = bt.clone().reshaped(shape).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(Lowered::Op { op, inputs: vec![ctx.input(0).map(Operand::Value), Some(Operand::Constant(aligned))] }))
}

fn clip(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let (min, max) = if ctx.opset < 11 {
        let a = &ctx.attrs;
        let min = a.has("min").then(|| a.float_or("min", 0.0)).transpose()?.map(f64::from);
        let max = a.has("max").then(|| a.float_or("max", 0.0)).transpose()?.map(f64::from);
        (min, max)
    } else {
        (ctx.scalar(1)?, ctx.scalar(2)?)
    };
    let dtype = ctx.ty(0)?.dtype;
    if dtype.is_float() || dtype == veltair_ir::DType::Bool {
        return Ok(ctx.op(Op::Unary(UnaryOp::Clip { min, max }), &[0]));
    }
    // Integers: Max with the lower bound, then Min with the upper, both in the input's type
    // (integer arithmetic the generated code has).
    let mut steps = Vec::new();
    let mut current = ctx.input(0).map(Operand::Value);
    for (bound, op) in [(min, BinaryOp::Max), (max, BinaryOp::Min)] {
        let Some(bound) = bound else { continue };
        // As f64, so the cast saturates a bound beyond the type's range instead of wrapping it.
        let t =
            Tensor::new(Vec::new(), veltair_ir::TensorData::F64(vec![bound])).map_err(|e| invalid(e.to_string()))?;
        steps.push((Op::Cast { to: dtype, saturate: false }, vec![Some(Operand::Constant(t))]));
        steps.push((Op::Binary(op), vec![current, Some(Operand::Step(steps.len() - 1))]));
        current = Some(Operand::Step(steps.len() - 1));
    }
    if steps.is_empty() {
        return Ok(Lowered::Values(vec![Produced::Existing(ctx.input(0).ok_or_else(|| invalid("missing input"))?)]));
    }
    Ok(Lowered::chain(steps))
}

fn cast(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let to = if ctx.opset < 6 {
        let name = ctx.attrs.string("to")?.ok_or_else(|| invalid("missing attribute 'to'"))?;
        let code =
            (0..32).find(|&c| onnx_type_name(c) == name).ok_or_else(|| invalid(format!("unknown type '{name}'")))?;
        dtype_of(code)?
    } else {
        let code = ctx.attrs.int("to")?.ok_or_else(|| invalid("missing attribute 'to'"))?;
        dtype_of(i32::try_from(code).map_err(|_| invalid(format!("bad type code {code}")))?)?
    };
    if ctx.input(0).is_some_and(|id| ctx.graph.value(id).ty.dtype == to) {
        return Ok(Lowered::Values(vec![Produced::Existing(ctx.input(0).expect("checked"))]));
    }
    if to == veltair_ir::DType::F8E8M0 && ctx.attrs.string_or("round_mode", "up")? != "up" {
        return Err(unsupported("Cast to FLOAT8E8M0 with a round_mode other than 'up'"));
    }
    Ok(ctx.op(Op::Cast { to, saturate: ctx.attrs.int_or("saturate", 1)? != 0 }, &[0]))
}
