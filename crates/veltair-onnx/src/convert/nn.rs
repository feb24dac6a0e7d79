//! Neural-network operators: convolutions (auto_pad resolved against the input shape), Gemm,
//! MatMul, pooling (LpPool as steps around an average), normalisations and Softmax (2-D
//! coercion before opset 13).

use super::{axis, invalid, unsupported, Body, Lowered, NodeCtx, Operand};
use crate::NodeProblem;
use veltair_ir::{BinaryOp, ConvAttrs, Op, PoolAttrs, UnaryOp};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    let a = &ctx.attrs;
    Ok(Some(match op {
        "Conv" => ctx.op(Op::Conv(conv_attrs(ctx)?), &[0, 1, 2]),
        "ConvTranspose" => conv_transpose(ctx)?,
        "Gemm" => ctx.op(
            Op::Gemm {
                alpha: a.float_or("alpha", 1.0)?,
                beta: a.float_or("beta", 1.0)?,
                trans_a: a.int_or("transA", 0)? != 0,
                trans_b: a.int_or("transB", 0)? != 0,
            },
            &[0, 1, 2],
        ),
        "MatMul" => ctx.op(Op::MatMul, &[0, 1]),
        "MaxPool" => {
            if ctx.opset < 8 && ctx.wants_output(1) {
                return Err(invalid("MaxPool has one output before opset 8"));
            }
            ctx.op(Op::MaxPool(pool_attrs(ctx)?), &[0])
        }
        "AveragePool" => ctx.op(Op::AveragePool(pool_attrs(ctx)?), &[0]),
        "LpPool" => lp_pool(ctx)?,
        "GlobalAveragePool" => ctx.op(Op::GlobalAveragePool, &[0]),
        "GlobalMaxPool" => ctx.op(Op::GlobalMaxPool, &[0]),
        "BatchNormalization" => {
            let training = a.int_or("training_mode", 0)? != 0 || (1..ctx.n_outputs()).any(|i| ctx.wants_output(i));
            if training {
                return Err(unsupported("BatchNormalization in training mode (running statistics outputs)"));
            }
            ctx.op(Op::BatchNorm { epsilon: a.float_or("epsilon", 1e-5)? }, &[0, 1, 2, 3, 4])
        }
        "InstanceNormalization" => ctx.op(Op::InstanceNorm { epsilon: a.float_or("epsilon", 1e-5)? }, &[0, 1, 2]),
        "LayerNormalization" => {
            let rank = ctx.ty(0)?.rank();
            let op = Op::LayerNorm { axis: axis(a.int_or("axis", -1)?, rank)?, epsilon: a.float_or("epsilon", 1e-5)? };
            ctx.op(op, &[0, 1, 2])
        }
        "LRN" => {
            let size = a.int("size")?.ok_or_else(|| invalid("missing attribute 'size'"))?;
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| invalid(format!("size must be >= 1, got {size}")))?;
            let op = Op::Lrn {
                size,
                alpha: a.float_or("alpha", 1e-4)?,
                beta: a.float_or("beta", 0.75)?,
                bias: a.float_or("bias", 1.0)?,
            };
            ctx.op(op, &[0])
        }
        "Softmax" | "LogSoftmax" => {
            let legacy = ctx.opset < 13;
            let rank = ctx.ty(0)?.rank();
            let default_axis = if legacy { 1 } else { -1 };
            let op = Op::Softmax {
                axis: axis(a.int_or("axis", default_axis)?, rank)?,
                log: op == "LogSoftmax",
                coerce_2d: legacy,
            };
            ctx.op(op, &[0])
        }
        _ => return Ok(None),
    }))
}

/// Spatial attributes shared by convolution and pooling.
struct Spatial {
    strides: Vec<usize>,
    dilations: Vec<usize>,
}

fn spatial(ctx: &NodeCtx, n: usize) -> Result<Spatial, NodeProblem> {
    let get = |name: &str| -> Result<Vec<usize>, NodeProblem> {
        let v = ctx.attrs.sizes(name)?.unwrap_or_else(|| vec![1; n]);
        if v.len() != n || v.contains(&0) {
            return Err(invalid(format!("'{name}' must have {n} entries >= 1, got {v:?}")));
        }
        Ok(v)
    };
    Ok(Spatial { strides: get("strides")?, dilations: get("dilations")? })
}

/// Begin and end pads per spatial axis from `pads` or `auto_pad`.
fn pads(
    ctx: &NodeCtx,
    input: &[usize],
    kernel: &[usize],
    s: &Spatial,
) -> Result<(Vec<usize>, Vec<usize>), NodeProblem> {
    let n = kernel.len();
    let mode = ctx.attrs.string_or("auto_pad", "NOTSET")?;
    match mode.as_str() {
        "NOTSET" | "" => {
            let p = ctx.attrs.sizes("pads")?.unwrap_or_else(|| vec![0; 2 * n]);
            if p.len() != 2 * n {
                return Err(invalid(format!("'pads' must have {} entries, got {}", 2 * n, p.len())));
            }
            Ok((p[..n].to_vec(), p[n..].to_vec()))
        }
        "VALID" => Ok((vec![0; n], vec![0; n])),
        "SAME_UPPER" | "SAME_LOWER" => {
            let (mut begin, mut end) = (Vec::new(), Vec::new());
            for i in 0..n {
                let out = input[i].div_ceil(s.strides[i]);
                let window = (kernel[i] - 1) * s.dilations[i] + 1;
                let total = ((out.max(1) - 1) * s.strides[i] + window).saturating_sub(input[i]);
                let (small, large) = (total / 2, total - total / 2);
                if mode == "SAME_UPPER" {
                    begin.push(small);
                    end.push(large);
                } else {
                    begin.push(large);
                    end.push(small);
                }
            }
            Ok((begin, end))
        }
        other => Err(invalid(format!("unknown auto_pad '{other}'"))),
    }
}

fn kernel_from_weight(ctx: &NodeCtx) -> Result<Vec<usize>, NodeProblem> {
    let w = ctx.ty(1)?;
    if w.rank() < 3 {
        return Err(invalid(format!("weight {w} must have rank >= 3")));
    }
    let from_weight = w.shape[2..].to_vec();
    match ctx.attrs.sizes("kernel_shape")? {
        Some(k) if k != from_weight => Err(invalid(format!("kernel_shape {k:?} does not match weight {w}"))),
        _ => Ok(from_weight),
    }
}

fn conv_attrs(ctx: &NodeCtx) -> Result<ConvAttrs, NodeProblem> {
    let kernel = kernel_from_weight(ctx)?;
    let x = ctx.ty(0)?;
    if x.rank() != kernel.len() + 2 {
        return Err(invalid(format!("input {x} must have rank {}", kernel.len() + 2)));
    }
    let s = spatial(ctx, kernel.len())?;
    let (pads_begin, pads_end) = pads(ctx, &x.shape[2..], &kernel, &s)?;
    let group = ctx.attrs.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| invalid(format!("group must be >= 1, got {group}")))?;
    Ok(ConvAttrs { kernel, strides: s.strides, dilations: s.dilations, pads_begin, pads_end, group })
}

fn conv_transpose(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let mut a = conv_attrs(ctx)?;
    let n = a.kernel.len();
    let input = &ctx.ty(0)?.shape[2..];
    let mut output_padding = ctx.attrs.sizes("output_padding")?.unwrap_or_else(|| vec![0; n]);
    if output_padding.len() != n {
        return Err(invalid(format!("'output_padding' must have {n} entries")));
    }
    let auto_pad = ctx.attrs.string_or("auto_pad", "NOTSET")?;
    let target = match ctx.attrs.sizes("output_shape")? {
        Some(shape) if shape.len() >= n => Some(shape[shape.len() - n..].to_vec()),
        Some(shape) => return Err(invalid(format!("output_shape {shape:?} needs {n} spatial entries"))),
        None if auto_pad.starts_with("SAME") => Some(input.iter().zip(&a.strides).map(|(i, s)| i * s).collect()),
        None => None,
    };
    if auto_pad == "VALID" {
        a.pads_begin = vec![0; n];
        a.pads_end = vec![0; n];
    }
    if let Some(target) = target {
        // Pads that make the output exactly `target`; SAME_UPPER puts the odd pad at the end.
        for i in 0..n {
            let full =
                a.strides[i] * (input[i].max(1) - 1) + output_padding[i] + (a.kernel[i] - 1) * a.dilations[i] + 1;
            if full >= target[i] {
                let total = full - target[i];
                let (small, large) = (total / 2, total - total / 2);
                (a.pads_begin[i], a.pads_end[i]) =
                    if auto_pad == "SAME_UPPER" { (small, large) } else { (large, small) };
            } else {
                a.pads_begin[i] = 0;
                a.pads_end[i] = 0;
                output_padding[i] += target[i] - full;
            }
        }
    }
    Ok(ctx.op(Op::ConvTranspose { conv: a, output_padding }, &[0, 1, 2]))
}

/// `(Σ_window |x|^p)^(1/p)` over zero-padded windows, as steps: the window sum is an average
/// that counts padding, times the window size (so windows past the padding, from `ceil_mode`,
/// are refused).
fn lp_pool(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let attrs = PoolAttrs { count_include_pad: true, ..pool_attrs(ctx)? };
    if attrs.ceil_mode {
        return Err(unsupported("LpPool with ceil_mode"));
    }
    let p = ctx.attrs.int_or("p", 2)?;
    if p < 1 {
        return Err(invalid(format!("p must be positive, is {p}")));
    }
    let window = attrs.kernel.iter().product::<usize>() as f32;
    let mut body = Body::new(ctx.ty(0)?.dtype);
    let x = Operand::Value(ctx.input(0).ok_or_else(|| invalid("the input is missing"))?);
    let magnitude = body.unary(UnaryOp::Abs, x);
    let power = body.scalar(p as f32)?;
    let powered = body.binary(BinaryOp::Pow, magnitude, power);
    let mean = body.push(Op::AveragePool(attrs), vec![powered]);
    let size = body.scalar(window)?;
    let sum = body.binary(BinaryOp::Mul, mean, size);
    let root = body.scalar(1.0 / p as f32)?;
    let y = body.binary(BinaryOp::Pow, sum, root);
    Ok(body.finish(vec![y]))
}

fn pool_attrs(ctx: &NodeCtx) -> Result<PoolAttrs, NodeProblem> {
    let kernel = ctx.attrs.sizes("kernel_shape")?.ok_or_else(|| invalid("missing attribute 'kernel_shape'"))?;
    if kernel.is_empty() || kernel.contains(&0) {
        return Err(invalid(format!("kernel_shape {kernel:?} must be non-empty with entries >= 1")));
    }
    let x = ctx.ty(0)?;
    if x.rank() != kernel.len() + 2 {
        return Err(invalid(format!("input {x} must have rank {}", kernel.len() + 2)));
    }
    let s = spatial(ctx, kernel.len())?;
    let (pads_begin, pads_end) = pads(ctx, &x.shape[2..], &kernel, &s)?;
    Ok(PoolAttrs {
        kernel,
        strides: s.strides,
        dilations: s.dilations,
        pads_begin,
        pads_end,
        ceil_mode: ctx.attrs.int_or("ceil_mode", 0)? != 0,
        count_include_pad: ctx.attrs.int_or("count_include_pad", 0)? != 0,
        column_major_indices: ctx.attrs.int_or("storage_order", 0)? != 0,
    })
}
