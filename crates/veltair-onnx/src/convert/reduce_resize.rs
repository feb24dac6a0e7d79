//! Reductions (axes as an attribute or, from opset 13 for ReduceSum and 18 for the others, an
//! input) and Resize (opset 10 scales-only form; opset 11+ roi/scales/sizes; opset 18 axes and
//! aspect-ratio policy).

use super::{axis, invalid, unsupported, Lowered, NodeCtx, Produced};
use crate::NodeProblem;
use veltair_ir::{CoordMode, NearestMode, Op, ReduceOp, ResizeAttrs, ResizeMode};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    let r = match op {
        "ReduceSum" => ReduceOp::Sum,
        "ReduceMean" => ReduceOp::Mean,
        "ReduceMax" => ReduceOp::Max,
        "ReduceMin" => ReduceOp::Min,
        "ReduceProd" => ReduceOp::Prod,
        "ReduceL1" => ReduceOp::L1,
        "ReduceL2" => ReduceOp::L2,
        "ReduceLogSum" => ReduceOp::LogSum,
        "ReduceLogSumExp" => ReduceOp::LogSumExp,
        "ReduceSumSquare" => ReduceOp::SumSquare,
        "Resize" => return resize(ctx).map(Some),
        _ => return Ok(None),
    };
    reduce(ctx, r).map(Some)
}

fn reduce(ctx: &NodeCtx, r: ReduceOp) -> Result<Lowered, NodeProblem> {
    let rank = ctx.ty(0)?.rank();
    let axes_from_input = ctx.opset >= 18 || (r == ReduceOp::Sum && ctx.opset >= 13);
    let axes = if axes_from_input { ctx.int_list(1)? } else { ctx.attrs.ints("axes")? };
    let axes = axes.unwrap_or_default();
    let keepdims = ctx.attrs.int_or("keepdims", 1)? != 0;
    if axes.is_empty() && ctx.attrs.int_or("noop_with_empty_axes", 0)? != 0 {
        return Ok(Lowered::Values(vec![Produced::Existing(ctx.input(0).ok_or_else(|| invalid("missing input"))?)]));
    }
    let mut axes: Vec<usize> = if axes.is_empty() {
        (0..rank).collect()
    } else {
        axes.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?
    };
    axes.sort_unstable();
    axes.dedup();
    Ok(ctx.op(Op::Reduce { op: r, axes, keepdims }, &[0]))
}

fn resize(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let a = &ctx.attrs;
    let shape = ctx.ty(0)?.shape.clone();
    let rank = shape.len();
    let mode = match a.string_or("mode", "nearest")?.as_str() {
        "nearest" => ResizeMode::Nearest,
        "linear" | "bilinear" => ResizeMode::Linear,
        "cubic" | "bicubic" => ResizeMode::Cubic,
        other => return Err(invalid(format!("unknown mode '{other}'"))),
    };
    let legacy = ctx.opset < 11;
    let coord = if legacy {
        CoordMode::Asymmetric
    } else {
        match a.string_or("coordinate_transformation_mode", "half_pixel")?.as_str() {
            "half_pixel" => CoordMode::HalfPixel,
            "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
            "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
            "align_corners" => CoordMode::AlignCorners,
            "asymmetric" => CoordMode::Asymmetric,
            "tf_crop_and_resize" => CoordMode::TfCropAndResize,
            other => return Err(unsupported(format!("coordinate_transformation_mode '{other}'"))),
        }
    };
    let nearest = if legacy {
        NearestMode::Floor
    } else {
        match a.string_or("nearest_mode", "round_prefer_floor")?.as_str() {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            other => return Err(invalid(format!("unknown nearest_mode '{other}'"))),
        }
    };
    // Operands: opset 10 is (X, scales); later (X, roi, scales, sizes), possibly on `axes` only.
    let axes: Vec<usize> = match a.ints("axes")? {
        Some(ax) => ax.iter().map(|&x| axis(x, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let floats = |i: usize| -> Result<Option<Vec<f32>>, NodeProblem> {
        Ok(ctx
            .constant(i)?
            .map(|t| t.data().to_f64_vec().into_iter().map(|v| v as f32).collect::<Vec<_>>())
            .filter(|v| !v.is_empty()))
    };
    let (roi_in, scales_in, sizes_in) = if legacy {
        (None, floats(1)?, None)
    } else {
        let sizes = ctx.int_list(3)?.filter(|v| !v.is_empty());
        (floats(1)?, floats(2)?, sizes)
    };
    let mut scales = vec![1.0f32; rank];
    let mut out_shape = shape.clone();
    match (scales_in, sizes_in) {
        (Some(s), None) => {
            if s.len() != axes.len() {
                return Err(invalid(format!("{} scales for {} axes", s.len(), axes.len())));
            }
            for (&ax, &sc) in axes.iter().zip(&s) {
                if !(sc > 0.0 && sc.is_finite()) {
                    return Err(invalid(format!("scale {sc} must be positive")));
                }
                scales[ax] = sc;
                out_shape[ax] = (shape[ax] as f64 * sc as f64).floor() as usize;
            }
        }
        (None, Some(sizes)) => {
            if sizes.len() != axes.len() {
                return Err(invalid(format!("{} sizes for {} axes", sizes.len(), axes.len())));
            }
            let sizes: Vec<usize> = sizes
                .iter()
                .map(|&v| usize::try_from(v).map_err(|_| invalid(format!("bad size {v}"))))
                .collect::<Result<_, _>>()?;
            let policy = a.string_or("keep_aspect_ratio_policy", "stretch")?;
            let ratios: Vec<f64> =
                axes.iter().zip(&sizes).map(|(&ax, &s)| s as f64 / shape[ax].max(1) as f64).collect();
            let common = match policy.as_str() {
                "stretch" => None,
                "not_larger" => Some(ratios.iter().copied().fold(f64::INFINITY, f64::min)),
                "not_smaller" => Some(ratios.iter().copied().fold(0.0, f64::max)),
                other => return Err(invalid(format!("unknown keep_aspect_ratio_policy '{other}'"))),
            };
            for (i, &ax) in axes.iter().enumerate() {
                let (scale, size) = match common {
                    None => (ratios[i], sizes[i]),
                    Some(c) => (c, (shape[ax] as f64 * c).round() as usize),
                };
                scales[ax] = scale as f32;
                out_shape[ax] = size;
            }
        }
        (Some(_), Some(_)) => return Err(invalid("Resize takes scales or sizes, not both")),
        (None, None) => return Err(invalid("Resize needs scales or sizes")),
    }
    let mut roi = vec![0.0f32; rank];
    roi.extend(vec![1.0f32; rank]);
    if coord == CoordMode::TfCropAndResize {
        let given = roi_in.ok_or_else(|| invalid("tf_crop_and_resize needs roi"))?;
        if given.len() != 2 * axes.len() {
            return Err(invalid(format!("roi has {} entries, expected {}", given.len(), 2 * axes.len())));
        }
        for (i, &ax) in axes.iter().enumerate() {
            roi[ax] = given[i];
            roi[ax + rank] = given[i + axes.len()];
        }
    }
    let attrs = ResizeAttrs {
        mode,
        coord,
        nearest,
        out_shape,
        scales,
        roi,
        cubic_coeff_a: a.float_or("cubic_coeff_a", -0.75)?,
        antialias: a.int_or("antialias", 0)? != 0,
        exclude_outside: a.int_or("exclude_outside", 0)? != 0,
        extrapolation_value: a.float_or("extrapolation_value", 0.0)?,
    };
    Ok(ctx.op(Op::Resize(attrs), &[0]))
}
