//! Operators ONNX defines as functions of other operators, inlined as IR steps so the
//! reference evaluator and the lowering see only operators they have: DepthToSpace and
//! SpaceToDepth (a reshape, a transpose, a reshape), RMSNormalization (`x / sqrt(mean(x²) + ε)
//! · scale` over the trailing axes from `axis`), GroupNormalization, LpNormalization, IsNaN,
//! IsInf, PRelu, Shrink, Swish and Mish, CumSum (a product with a triangle of ones), EyeLike, OneHot (a comparison with the class indices),
//! GatherElements (a gather from the flattened data at
//! computed flat indices). Constants take the input's element type through a
//! `Cast` step (folded at import).

use super::{axis, invalid, unsupported, Lowered, NodeCtx, Operand};
use crate::NodeProblem;
use veltair_ir::{BinaryOp, CompareOp, DType, Op, ReduceOp, Tensor, UnaryOp};

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
        "GroupNormalization" => group_norm(ctx, a.int("num_groups")?, a.float_or("epsilon", 1e-5)?)?,
        "LpNormalization" => {
            let op = match a.int_or("p", 2)? {
                1 => ReduceOp::L1,
                2 => ReduceOp::L2,
                p => return Err(invalid(format!("LpNormalization's p must be 1 or 2, is {p}"))),
            };
            let ax = axis(a.int_or("axis", -1)?, ctx.ty(0)?.shape.len())?;
            // A zero norm (an all-zero slice) gives zeros, not 0/0.
            Lowered::chain(vec![
                (Op::Reduce { op, axes: vec![ax], keepdims: true }, vec![x(ctx)]),
                (Op::Binary(BinaryOp::Div), vec![x(ctx), step(0)]),
                constant(ctx, 0.0)?,
                (Op::Compare(CompareOp::Equal), vec![step(0), step(2)]),
                (Op::Where, vec![step(3), step(2), step(1)]),
            ])
        }
        "IsNaN" => Lowered::chain(vec![
            (Op::Compare(CompareOp::Equal), vec![x(ctx), x(ctx)]),
            (Op::Unary(UnaryOp::Not), vec![step(0)]),
        ]),
        "IsInf" => {
            let (negative, positive) = (a.int_or("detect_negative", 1)? != 0, a.int_or("detect_positive", 1)? != 0);
            let (operand, target) = match (negative, positive) {
                (true, true) => (Some((Op::Unary(UnaryOp::Abs), vec![x(ctx)])), f32::INFINITY),
                (false, true) => (None, f32::INFINITY),
                (true, false) => (None, f32::NEG_INFINITY),
                // Detecting neither: nothing equals NaN.
                (false, false) => (None, f32::NAN),
            };
            let mut steps = vec![constant(ctx, target)?];
            let compared = match operand {
                Some(abs) => {
                    steps.push(abs);
                    step(1)
                }
                None => x(ctx),
            };
            steps.push((Op::Compare(CompareOp::Equal), vec![compared, step(0)]));
            Lowered::chain(steps)
        }
        "PRelu" => {
            // Before opset 7 the slope runs along the channel axis; since, it broadcasts.
            let shape = &ctx.ty(0)?.shape;
            let mut channel_view = vec![1; shape.len().saturating_sub(1)];
            if let Some(c) = channel_view.first_mut() {
                *c = ctx.ty(1)?.numel();
            }
            let legacy = ctx.opset < 7 && shape.len() > 2 && ctx.ty(1)?.shape.len() == 1;
            let slope = ctx.input(1).map(Operand::Value);
            let view = if legacy { channel_view } else { ctx.ty(1)?.shape.clone() };
            let slope_view = (Op::Reshape(view), vec![slope]);
            Lowered::chain(vec![
                slope_view,
                constant(ctx, 0.0)?,
                (Op::Compare(CompareOp::Less), vec![x(ctx), step(1)]),
                (Op::Binary(BinaryOp::Mul), vec![x(ctx), step(0)]),
                (Op::Where, vec![step(2), step(3), x(ctx)]),
            ])
        }
        "Shrink" => {
            let (bias, lambd) = (a.float_or("bias", 0.0)?, a.float_or("lambd", 0.5)?);
            Lowered::chain(vec![
                constant(ctx, -lambd)?,
                constant(ctx, lambd)?,
                constant(ctx, bias)?,
                constant(ctx, 0.0)?,
                (Op::Compare(CompareOp::Less), vec![x(ctx), step(0)]),
                (Op::Compare(CompareOp::Greater), vec![x(ctx), step(1)]),
                (Op::Binary(BinaryOp::Add), vec![x(ctx), step(2)]),
                (Op::Binary(BinaryOp::Sub), vec![x(ctx), step(2)]),
                (Op::Where, vec![step(5), step(7), step(3)]),
                (Op::Where, vec![step(4), step(6), step(8)]),
            ])
        }
        "Swish" => Lowered::chain(vec![
            constant(ctx, a.float_or("alpha", 1.0)?)?,
            (Op::Binary(BinaryOp::Mul), vec![x(ctx), step(0)]),
            (Op::Unary(UnaryOp::Sigmoid), vec![step(1)]),
            (Op::Binary(BinaryOp::Mul), vec![x(ctx), step(2)]),
        ]),
        "EyeLike" => {
            let shape = ctx.ty(0)?.shape.clone();
            let [rows, cols] = shape[..] else {
                return Err(invalid(format!("EyeLike needs a 2-D input, has {shape:?}")));
            };
            let k = a.int_or("k", 0)?;
            let to = match a.int("dtype")? {
                Some(code) => DType::from_onnx_code(code as i32)
                    .ok_or_else(|| invalid(format!("element type code {code} is not supported")))?,
                None => ctx.ty(0)?.dtype,
            };
            let eye = (0..rows).flat_map(|i| (0..cols).map(move |j| if j as i64 - i as i64 == k { 1.0 } else { 0.0 }));
            let eye = Tensor::from_f32(shape.clone(), eye.collect()).map_err(|e| invalid(e.to_string()))?;
            Lowered::chain(vec![(Op::Cast { to, saturate: false }, vec![Some(Operand::Constant(eye))])])
        }
        "OneHot" => one_hot(ctx, a.int_or("axis", -1)?)?,
        "CumSum" => cum_sum(ctx, a.int_or("exclusive", 0)? != 0, a.int_or("reverse", 0)? != 0)?,
        "GatherElements" => gather_elements(ctx, a.int_or("axis", 0)?)?,
        "Mish" => Lowered::chain(vec![
            (Op::Unary(UnaryOp::Softplus), vec![x(ctx)]),
            (Op::Unary(UnaryOp::Tanh), vec![step(0)]),
            (Op::Binary(BinaryOp::Mul), vec![x(ctx), step(1)]),
        ]),
        _ => return Ok(None),
    }))
}

/// Input 0 as an operand.
fn x(ctx: &NodeCtx) -> Option<Operand> {
    ctx.input(0).map(Operand::Value)
}

/// The first result of step `k`.
fn step(k: usize) -> Option<Operand> {
    Some(Operand::Step(k))
}

/// A step making the scalar `v` in input 0's element type.
fn constant(ctx: &NodeCtx, v: f32) -> Result<(Op, Vec<Option<Operand>>), NodeProblem> {
    let t = Tensor::from_f32(Vec::new(), vec![v]).map_err(|e| invalid(e.to_string()))?;
    Ok((Op::Cast { to: ctx.ty(0)?.dtype, saturate: false }, vec![Some(Operand::Constant(t))]))
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
    Lowered::chain(vec![
        (Op::Reshape(split), vec![x(ctx)]),
        (Op::Transpose(perm), vec![step(0)]),
        (Op::Reshape(merged), vec![step(1)]),
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
    let rank = ctx.ty(0)?.shape.len();
    let first = axis(ax, rank)?;
    Ok(Lowered::chain(vec![
        (Op::Binary(BinaryOp::Mul), vec![x(ctx), x(ctx)]),
        (Op::Reduce { op: ReduceOp::Mean, axes: (first..rank).collect(), keepdims: true }, vec![step(0)]),
        constant(ctx, epsilon)?,
        (Op::Binary(BinaryOp::Add), vec![step(1), step(2)]),
        (Op::Unary(UnaryOp::Sqrt), vec![step(3)]),
        (Op::Unary(UnaryOp::Reciprocal), vec![step(4)]),
        (Op::Binary(BinaryOp::Mul), vec![x(ctx), step(5)]),
        (Op::Binary(BinaryOp::Mul), vec![step(6), ctx.input(1).map(Operand::Value)]),
    ]))
}

/// Mean and variance over each group of channels (with the spatial axes), then the scale and
/// bias per channel (opset 21) or per group (opset 18, whose parameters have `G` elements).
fn group_norm(ctx: &NodeCtx, groups: Option<i64>, epsilon: f32) -> Result<Lowered, NodeProblem> {
    let shape = ctx.ty(0)?.shape.clone();
    let g = groups.filter(|&g| g >= 1).ok_or_else(|| invalid("num_groups must be a positive integer"))? as usize;
    if shape.len() < 2 || !shape[1].is_multiple_of(g) {
        return Err(invalid(format!("{g} groups do not divide the channels of {shape:?}")));
    }
    let (n, c) = (shape[0], shape[1]);
    let per_group: usize = shape[1..].iter().product::<usize>() / g;
    let param = |i: usize| ctx.input(i).map(Operand::Value);
    let numel = |i: usize| ctx.ty(i).map(|t| t.numel());
    let (param_shape, grouped) = if numel(1)? == c && numel(2)? == c {
        let mut s = vec![1; shape.len() - 1];
        s[0] = c;
        (s, false)
    } else if numel(1)? == g && numel(2)? == g {
        (vec![g, 1], true)
    } else {
        return Err(invalid(format!("scale and bias must have {c} (or {g}) elements")));
    };
    let reduce = Op::Reduce { op: ReduceOp::Mean, axes: vec![2], keepdims: true };
    let mut steps = vec![
        (Op::Reshape(vec![n, g, per_group]), vec![x(ctx)]),
        (reduce.clone(), vec![step(0)]),
        (Op::Binary(BinaryOp::Sub), vec![step(0), step(1)]),
        (Op::Binary(BinaryOp::Mul), vec![step(2), step(2)]),
        (reduce, vec![step(3)]),
        constant(ctx, epsilon)?,
        (Op::Binary(BinaryOp::Add), vec![step(4), step(5)]),
        (Op::Unary(UnaryOp::Sqrt), vec![step(6)]),
        (Op::Unary(UnaryOp::Reciprocal), vec![step(7)]),
        (Op::Binary(BinaryOp::Mul), vec![step(2), step(8)]),
        (Op::Reshape(param_shape.clone()), vec![param(1)]),
        (Op::Reshape(param_shape), vec![param(2)]),
    ];
    // Steps 10 and 11 are the scale and bias; 9 the normalised groups.
    if grouped {
        steps.push((Op::Binary(BinaryOp::Mul), vec![step(9), step(10)]));
        steps.push((Op::Binary(BinaryOp::Add), vec![step(12), step(11)]));
        steps.push((Op::Reshape(shape), vec![step(13)]));
    } else {
        steps.push((Op::Reshape(shape), vec![step(9)]));
        steps.push((Op::Binary(BinaryOp::Mul), vec![step(12), step(10)]));
        steps.push((Op::Binary(BinaryOp::Add), vec![step(13), step(11)]));
    }
    Ok(Lowered::chain(steps))
}

/// Running sums along the axis (input 1, constant) as `x · T` with the axis moved last and
/// `T[i, j] = 1` where `i` counts into `j`'s sum (`i ≤ j`; `<` when exclusive; reversed
/// with `reverse`), computed in f32. Integer inputs are refused (f32 sums are not exact).
fn cum_sum(ctx: &NodeCtx, exclusive: bool, reverse: bool) -> Result<Lowered, NodeProblem> {
    let xt = ctx.ty(0)?.clone();
    if !xt.dtype.is_float() {
        return Err(unsupported(format!("CumSum over {} (it is computed in f32)", xt.dtype)));
    }
    let rank = xt.shape.len();
    let ax = axis(ctx.scalar(1)?.ok_or_else(|| invalid("the axis is missing"))? as i64, rank)?;
    let n = xt.shape[ax];
    let counts = |i: usize, j: usize| match (exclusive, reverse) {
        (false, false) => i <= j,
        (true, false) => i < j,
        (false, true) => i >= j,
        (true, true) => i > j,
    };
    let tri = (0..n).flat_map(|i| (0..n).map(move |j| if counts(i, j) { 1.0 } else { 0.0 }));
    let tri = Tensor::from_f32(vec![n, n], tri.collect()).map_err(|e| invalid(e.to_string()))?;
    let to_last: Vec<usize> = (0..rank).filter(|&r| r != ax).chain([ax]).collect();
    let mut back = vec![0; rank];
    for (position, &r) in to_last.iter().enumerate() {
        back[r] = position;
    }
    Ok(Lowered::chain(vec![
        (Op::Cast { to: DType::F32, saturate: false }, vec![x(ctx)]),
        (Op::Transpose(to_last), vec![step(0)]),
        (Op::MatMul, vec![step(1), Some(Operand::Constant(tri))]),
        (Op::Transpose(back), vec![step(2)]),
        (Op::Cast { to: xt.dtype, saturate: false }, vec![step(3)]),
    ]))
}

/// `out[…, j, …] = values[1]` where `j` (on `axis`) is the index (negative ones counted from the
/// end of `depth`), else `values[0]`; indices outside `[-depth, depth)` select nothing.
fn one_hot(ctx: &NodeCtx, ax: i64) -> Result<Lowered, NodeProblem> {
    let it = ctx.ty(0)?.clone();
    let depth = ctx.scalar(1)?.ok_or_else(|| invalid("depth is missing"))?;
    if !(depth >= 1.0 && depth.fract() == 0.0) {
        return Err(invalid(format!("depth must be a positive integer, is {depth}")));
    }
    let depth = depth as usize;
    let ax = axis(ax, it.shape.len() + 1)?;
    let mut viewed = it.shape.clone();
    viewed.insert(ax, 1);
    let mut iota_shape = vec![1; viewed.len()];
    iota_shape[ax] = depth;
    let fail = |e: veltair_ir::IrError| invalid(e.to_string());
    let int = |v: i64, shape: Vec<usize>, n: usize| -> Result<Option<Operand>, NodeProblem> {
        let t = if n == 1 && shape.is_empty() {
            Tensor::from_i64(shape, vec![v])
        } else {
            Tensor::from_i64(shape, (0..n as i64).collect())
        };
        Ok(Some(Operand::Constant(t.map_err(fail)?)))
    };
    let values = ctx.input(2).map(Operand::Value);
    Ok(Lowered::chain(vec![
        (Op::Cast { to: DType::I64, saturate: false }, vec![x(ctx)]),
        (Op::Compare(CompareOp::Less), vec![step(0), int(0, Vec::new(), 1)?]),
        (Op::Binary(BinaryOp::Add), vec![step(0), int(depth as i64, Vec::new(), 1)?]),
        (Op::Where, vec![step(1), step(2), step(0)]),
        (Op::Reshape(viewed), vec![step(3)]),
        (Op::Compare(CompareOp::Equal), vec![step(4), int(0, iota_shape, depth)?]),
        (Op::Gather { axis: 0 }, vec![values.clone(), int(0, Vec::new(), 1)?]),
        (Op::Gather { axis: 0 }, vec![values, int(1, Vec::new(), 1)?]),
        (Op::Where, vec![step(5), step(7), step(6)]),
    ]))
}

/// `out[p] = data[p with axis `ax` replaced by idx[p]]` as a gather from the flattened data at
/// `idx' · stride + base[p]`, where `idx'` is the index made non-negative (ONNX counts negative
/// indices from the end) and `base[p]` the flat offset of `p`'s other coordinates.
fn gather_elements(ctx: &NodeCtx, ax: i64) -> Result<Lowered, NodeProblem> {
    let (dt, it) = (ctx.ty(0)?.clone(), ctx.ty(1)?.clone());
    let rank = dt.shape.len();
    let ax = axis(ax, rank)?;
    if it.shape.len() != rank || it.dtype.is_float() {
        return Err(invalid(format!("indices {it} do not fit data {dt}")));
    }
    if it.shape.iter().zip(&dt.shape).enumerate().any(|(r, (&i, &d))| r != ax && i > d) {
        return Err(invalid(format!("indices {:?} exceed the data {:?} off the axis", it.shape, dt.shape)));
    }
    let mut strides = vec![1usize; rank];
    for r in (0..rank.saturating_sub(1)).rev() {
        strides[r] = strides[r + 1] * dt.shape[r + 1];
    }
    let n: usize = it.shape.iter().product();
    let base: Vec<i64> = (0..n)
        .map(|flat| {
            let mut rest = flat;
            let mut offset = 0;
            for r in (0..rank).rev() {
                let c = rest % it.shape[r];
                rest /= it.shape[r];
                if r != ax {
                    offset += c * strides[r];
                }
            }
            offset as i64
        })
        .collect();
    let fail = |e: veltair_ir::IrError| invalid(e.to_string());
    let scalar = |v: usize| Tensor::from_i64(Vec::new(), vec![v as i64]).map_err(fail);
    let idx = ctx.input(1).map(Operand::Value);
    let constant = |t: Tensor| Some(Operand::Constant(t));
    Ok(Lowered::chain(vec![
        (Op::Cast { to: DType::I64, saturate: false }, vec![idx]),
        (Op::Compare(CompareOp::Less), vec![step(0), constant(scalar(0)?)]),
        (Op::Binary(BinaryOp::Add), vec![step(0), constant(scalar(dt.shape[ax])?)]),
        (Op::Where, vec![step(1), step(2), step(0)]),
        (Op::Binary(BinaryOp::Mul), vec![step(3), constant(scalar(strides[ax])?)]),
        (Op::Binary(BinaryOp::Add), vec![step(4), constant(Tensor::from_i64(it.shape.clone(), base).map_err(fail)?)]),
        (Op::Reshape(vec![dt.numel()]), vec![x(ctx)]),
        (Op::Gather { axis: 0 }, vec![step(6), step(5)]),
    ]))
}
