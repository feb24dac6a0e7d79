//! Shape and layout operators. Reshape-like operators (Reshape, Flatten, Squeeze, Unsqueeze)
//! become one static `Reshape`; shape producers (Shape, Size, Constant, ConstantOfShape,
//! Range) become constants; Identity and Dropout forward their input; Trilu selects with a
//! constant triangle mask.

use super::{axis, invalid, unsupported, Lowered, NodeCtx, Operand, Produced};
use crate::NodeProblem;
use veltair_ir::shape::checked_numel;
use veltair_ir::{DType, Op, PadMode, SliceAxis, Tensor, TensorData};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    let a = &ctx.attrs;
    Ok(Some(match op {
        "Identity" => forward(ctx)?,
        "Dropout" => {
            let training = ctx.opset >= 12 && ctx.scalar(2)?.is_some_and(|t| t != 0.0);
            let ratio =
                if ctx.opset >= 12 { ctx.scalar(1)?.unwrap_or(0.5) } else { ctx.attrs.float_or("ratio", 0.5)? as f64 };
            if training && ratio != 0.0 {
                return Err(unsupported("Dropout in training mode (random masks)"));
            }
            let mut out = vec![Produced::Existing(ctx.input(0).ok_or_else(|| invalid("missing input"))?)];
            if ctx.wants_output(1) {
                let ty = ctx.ty(0)?;
                out.push(Produced::Constant(
                    Tensor::new(ty.shape.clone(), TensorData::Bool(vec![true; ty.numel()]))
                        .map_err(|e| invalid(e.to_string()))?,
                ));
            }
            Lowered::Values(out)
        }
        "Reshape" => {
            let target = if ctx.opset < 5 { a.ints("shape")? } else { ctx.int_list(1)? };
            let target = target.ok_or_else(|| invalid("missing target shape"))?;
            reshape(ctx, resolve_reshape(&ctx.ty(0)?.shape, &target, a.int_or("allowzero", 0)? != 0)?)
        }
        "Flatten" => {
            let shape = &ctx.ty(0)?.shape;
            let ax = a.int_or("axis", 1)?;
            let ax = if ax == shape.len() as i64 { shape.len() } else { axis(ax, shape.len())? };
            reshape(ctx, vec![shape[..ax].iter().product(), shape[ax..].iter().product()])
        }
        "Squeeze" => {
            let shape = &ctx.ty(0)?.shape;
            let axes = if ctx.opset < 13 { a.ints("axes")? } else { ctx.int_list(1)? };
            let axes = match axes {
                Some(list) => list.iter().map(|&x| axis(x, shape.len())).collect::<Result<Vec<_>, _>>()?,
                None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
            };
            if let Some(&bad) = axes.iter().find(|&&i| shape[i] != 1) {
                return Err(invalid(format!("cannot squeeze axis {bad} of extent {}", shape[bad])));
            }
            let kept = (0..shape.len()).filter(|i| !axes.contains(i)).map(|i| shape[i]).collect();
            reshape(ctx, kept)
        }
        "Unsqueeze" => {
            let shape = &ctx.ty(0)?.shape;
            let axes = if ctx.opset < 13 { a.ints("axes")? } else { ctx.int_list(1)? };
            let axes = axes.ok_or_else(|| invalid("missing axes"))?;
            let rank = shape.len() + axes.len();
            let mut axes: Vec<usize> = axes.iter().map(|&x| axis(x, rank)).collect::<Result<_, _>>()?;
            axes.sort_unstable();
            if axes.windows(2).any(|w| w[0] == w[1]) {
                return Err(invalid("repeated axis in Unsqueeze"));
            }
            let mut dims = shape.iter();
            let out =
                (0..rank).map(|i| if axes.contains(&i) { 1 } else { *dims.next().expect("rank counted") }).collect();
            reshape(ctx, out)
        }
        "Transpose" => {
            let rank = ctx.ty(0)?.rank();
            let perm = match a.ints("perm")? {
                Some(p) => p
                    .iter()
                    .map(|&x| usize::try_from(x).map_err(|_| invalid(format!("bad perm entry {x}"))))
                    .collect::<Result<_, _>>()?,
                None => (0..rank).rev().collect(),
            };
            ctx.op(Op::Transpose(perm), &[0])
        }
        "Concat" => {
            let ax = match a.int("axis")? {
                Some(x) => x,
                None if ctx.opset < 4 => 1,
                None => return Err(invalid("missing attribute 'axis'")),
            };
            let present: Vec<usize> = (0..ctx.inputs.len()).filter(|&i| ctx.input(i).is_some()).collect();
            let first = present.first().ok_or_else(|| invalid("Concat without inputs"))?;
            ctx.op(Op::Concat { axis: axis(ax, ctx.ty(*first)?.rank())? }, &present)
        }
        "Split" => split(ctx)?,
        "Slice" => slice(ctx)?,
        "Gather" => ctx.op(Op::Gather { axis: axis(a.int_or("axis", 0)?, ctx.ty(0)?.rank())? }, &[0, 1]),
        "Expand" => {
            let shape = ctx.int_list(1)?.ok_or_else(|| invalid("missing shape"))?;
            let shape = to_sizes(&shape, "Expand shape")?;
            ctx.op(Op::Expand(shape), &[0])
        }
        "Trilu" => trilu(ctx, a.int_or("upper", 1)? != 0)?,
        "Tile" => {
            let reps = ctx.int_list(1)?.ok_or_else(|| invalid("missing repeats"))?;
            ctx.op(Op::Tile(to_sizes(&reps, "Tile repeats")?), &[0])
        }
        "Pad" => pad(ctx)?,
        "Shape" => {
            let shape = &ctx.ty(0)?.shape;
            let rank = shape.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
            let start = clampi(a.int_or("start", 0)?);
            let end = clampi(a.int_or("end", rank)?);
            let dims: Vec<i64> = shape[start..end.max(start)].iter().map(|&d| d as i64).collect();
            constant(Tensor::from_i64(vec![dims.len()], dims))?
        }
        "Size" => constant(Tensor::from_i64(vec![], vec![ctx.ty(0)?.numel() as i64]))?,
        "Constant" => constant_node(ctx)?,
        "ConstantOfShape" => {
            let shape = to_sizes(&ctx.int_list(0)?.ok_or_else(|| invalid("missing shape"))?, "ConstantOfShape shape")?;
            let n = checked_numel(&shape).map_err(|e| invalid(e.to_string()))?;
            let value =
                a.tensor("value")?.unwrap_or_else(|| Tensor::from_f32(vec![1], vec![0.0]).expect("one element"));
            if value.numel() != 1 {
                return Err(invalid("'value' must hold one element"));
            }
            constant(Tensor::new(shape, value.data().gather(&vec![0; n])))?
        }
        "Range" => range(ctx)?,
        _ => return Ok(None),
    }))
}

/// Trilu as `Where(mask, x, 0)` with the constant triangle mask over the last two axes (`k`,
/// which must be constant, shifts the diagonal).
fn trilu(ctx: &NodeCtx, upper: bool) -> Result<Lowered, NodeProblem> {
    let ty = ctx.ty(0)?;
    let rank = ty.shape.len();
    if rank < 2 {
        return Err(invalid(format!("Trilu needs a rank of at least 2, the input has {rank}")));
    }
    let k = ctx.scalar(1)?.unwrap_or(0.0) as i64;
    let (rows, cols) = (ty.shape[rank - 2], ty.shape[rank - 1]);
    let keep = |i: usize, j: usize| if upper { j as i64 - i as i64 >= k } else { j as i64 - i as i64 <= k };
    let mask: Vec<bool> = (0..rows).flat_map(|i| (0..cols).map(move |j| keep(i, j))).collect();
    let mask = Tensor::new(vec![rows, cols], TensorData::Bool(mask)).map_err(|e| invalid(e.to_string()))?;
    let zero = Tensor::zeros(&veltair_ir::TensorType { dtype: ty.dtype, shape: Vec::new() });
    let x = ctx.input(0).map(Operand::Value);
    Ok(Lowered::Op { op: Op::Where, inputs: vec![Some(Operand::Constant(mask)), x, Some(Operand::Constant(zero))] })
}

fn forward(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    Ok(Lowered::Values(vec![Produced::Existing(ctx.input(0).ok_or_else(|| invalid("missing input"))?)]))
}

fn constant(t: Result<Tensor, veltair_ir::IrError>) -> Result<Lowered, NodeProblem> {
    Ok(Lowered::Values(vec![Produced::Constant(t.map_err(|e| invalid(e.to_string()))?)]))
}

fn reshape(ctx: &NodeCtx, shape: Vec<usize>) -> Lowered {
    if ctx.ty(0).is_ok_and(|t| t.shape == shape) {
        return Lowered::Values(vec![Produced::Existing(ctx.input(0).expect("typed above"))]);
    }
    ctx.op(Op::Reshape(shape), &[0])
}

fn to_sizes(v: &[i64], what: &str) -> Result<Vec<usize>, NodeProblem> {
    v.iter().map(|&x| usize::try_from(x).map_err(|_| invalid(format!("{what} has negative entry {x}")))).collect()
}

/// Applies Reshape's rules: 0 copies the input extent (unless `allowzero`), -1 is inferred.
fn resolve_reshape(input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>, NodeProblem> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(1);
            }
            -1 => return Err(invalid("more than one -1 in the target shape")),
            0 if !allowzero => out
                .push(*input.get(i).ok_or_else(|| invalid(format!("0 at position {i} has no input extent to copy")))?),
            t if t >= 0 => out.push(t as usize),
            t => return Err(invalid(format!("bad target extent {t}"))),
        }
    }
    let total = checked_numel(input).map_err(|e| invalid(e.to_string()))?;
    if let Some(i) = infer_at {
        let known = checked_numel(&out).map_err(|e| invalid(e.to_string()))?;
        if known == 0 || total % known != 0 {
            return Err(invalid(format!("cannot infer -1: {total} elements into {target:?}")));
        }
        out[i] = total / known;
    }
    Ok(out)
}

fn split(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let shape = &ctx.ty(0)?.shape;
    let ax = axis(ctx.attrs.int_or("axis", 0)?, shape.len())?;
    let dim = shape[ax];
    let explicit = if ctx.opset < 13 {
        match ctx.attrs.ints("split")? {
            Some(s) => Some(s),
            None if ctx.opset < 2 => ctx.int_list(1)?,
            None => None,
        }
    } else {
        ctx.int_list(1)?
    };
    let sizes = match explicit {
        Some(s) => to_sizes(&s, "split")?,
        None => {
            let n = match ctx.attrs.int("num_outputs")? {
                Some(n) => {
                    usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| invalid(format!("bad num_outputs {n}")))?
                }
                None => ctx.n_outputs(),
            };
            if n == 0 {
                return Err(invalid("Split without outputs"));
            }
            if ctx.opset < 18 && dim % n != 0 {
                return Err(invalid(format!("extent {dim} does not split evenly into {n}")));
            }
            let chunk = dim.div_ceil(n);
            (0..n).map(|i| chunk.min(dim.saturating_sub(i * chunk))).collect()
        }
    };
    Ok(ctx.op(Op::Split { axis: ax, sizes }, &[0]))
}

fn slice(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let shape = &ctx.ty(0)?.shape;
    let a = &ctx.attrs;
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        (a.ints("starts")?, a.ints("ends")?, a.ints("axes")?, None)
    } else {
        (ctx.int_list(1)?, ctx.int_list(2)?, ctx.int_list(3)?, ctx.int_list(4)?)
    };
    let starts = starts.ok_or_else(|| invalid("missing starts"))?;
    let ends = ends.ok_or_else(|| invalid("missing ends"))?;
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(invalid("starts, ends, axes and steps must have the same length"));
    }
    let mut out: Vec<SliceAxis> = Vec::with_capacity(n);
    for i in 0..n {
        let ax = axis(axes[i], shape.len())?;
        if out.iter().any(|s| s.axis == ax) {
            return Err(invalid(format!("axis {ax} sliced twice")));
        }
        out.push(slice_axis(ax, shape[ax], starts[i], ends[i], steps[i])?);
    }
    Ok(ctx.op(Op::Slice(out), &[0]))
}

/// ONNX Slice clamping for one axis of extent `dim` (computed in i128: ends may be ±i64::MAX).
fn slice_axis(axis: usize, dim: usize, start: i64, end: i64, step: i64) -> Result<SliceAxis, NodeProblem> {
    if step == 0 {
        return Err(invalid("slice step 0"));
    }
    let d = dim as i128;
    let wrap = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
    let (s, e) = if step > 0 {
        (wrap(start).clamp(0, d), wrap(end).clamp(0, d))
    } else {
        (wrap(start).clamp(0, d - 1), wrap(end).clamp(-1, d - 1))
    };
    let st = step as i128;
    let len = if step > 0 { (e - s + st - 1).div_euclid(st) } else { (s - e - st - 1).div_euclid(-st) };
    let len = len.max(0) as usize;
    Ok(SliceAxis { axis, start: if len == 0 { 0 } else { s as usize }, step, len })
}

fn pad(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let a = &ctx.attrs;
    let rank = ctx.ty(0)?.rank();
    let (pads, value, axes) = if ctx.opset < 11 {
        let name = if ctx.opset < 2 { "paddings" } else { "pads" };
        (a.ints(name)?, a.float_or("value", 0.0)? as f64, None)
    } else {
        (ctx.int_list(1)?, ctx.scalar(2)?.unwrap_or(0.0), ctx.int_list(3)?)
    };
    let pads = pads.ok_or_else(|| invalid("missing pads"))?;
    let axes: Vec<usize> = match axes {
        Some(ax) => ax.iter().map(|&x| axis(x, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(invalid(format!("pads has {} entries, expected {}", pads.len(), 2 * axes.len())));
    }
    let (mut begin, mut end) = (vec![0; rank], vec![0; rank]);
    for (i, &ax) in axes.iter().enumerate() {
        begin[ax] = pads[i];
        end[ax] = pads[i + axes.len()];
    }
    let mode = match a.string_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        other => return Err(unsupported(format!("pad mode '{other}'"))),
    };
    Ok(ctx.op(Op::Pad { begin, end, mode, value }, &[0]))
}

fn constant_node(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let a = &ctx.attrs;
    if let Some(t) = a.tensor("value")? {
        return constant(Ok(t));
    }
    if a.has("value_float") {
        return constant(Tensor::from_f32(vec![], vec![a.float_or("value_float", 0.0)?]));
    }
    if let Some(v) = a.floats("value_floats")? {
        return constant(Tensor::from_f32(vec![v.len()], v));
    }
    if let Some(v) = a.int("value_int")? {
        return constant(Tensor::from_i64(vec![], vec![v]));
    }
    if let Some(v) = a.ints("value_ints")? {
        return constant(Tensor::from_i64(vec![v.len()], v));
    }
    Err(unsupported("Constant without a tensor, float(s) or int(s) value"))
}

fn range(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let dtype = ctx.ty(0)?.dtype;
    let get = |i: usize| ctx.scalar(i).and_then(|v| v.ok_or_else(|| invalid(format!("missing input #{i}"))));
    let (start, limit, delta) = (get(0)?, get(1)?, get(2)?);
    if delta == 0.0 {
        return Err(invalid("Range delta 0"));
    }
    let n = ((limit - start) / delta).ceil().max(0.0);
    if n > veltair_ir::MAX_ELEMENTS as f64 {
        return Err(invalid(format!("Range of {n} elements is too large")));
    }
    let n = n as usize;
    let data = match dtype {
        DType::F32 => TensorData::F32((0..n).map(|i| start as f32 + i as f32 * delta as f32).collect()),
        DType::F64 => TensorData::F64((0..n).map(|i| start + i as f64 * delta).collect()),
        DType::I64 => TensorData::I64((0..n).map(|i| start as i64 + i as i64 * delta as i64).collect()),
        DType::I32 => TensorData::I32((0..n).map(|i| start as i32 + i as i32 * delta as i32).collect()),
        other => return Err(unsupported(format!("Range over {other}"))),
    };
    constant(Tensor::new(vec![n], data))
}
