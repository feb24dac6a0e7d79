//! Shape and type inference: the output types of an operator given its input types. Every
//! constraint an evaluator relies on (matching channels, in-range axes, sizes that fit) is
//! checked here, so evaluation of a well-typed node cannot index out of bounds.

use crate::shape::{broadcast_shapes, checked_numel, format_dims};
use crate::{DType, IrError, Op, TensorType, UnaryOp};

/// Output types of `op` applied to `inputs` (absent optional inputs are `None`). Returns one
/// type per output the operator can produce; optional trailing outputs are included.
pub fn infer(op: &Op, inputs: &[Option<&TensorType>]) -> Result<Vec<TensorType>, IrError> {
    let out = match op {
        Op::Conv(a) => vec![conv(a, inputs, false, &[])?],
        Op::ConvTranspose { conv: a, output_padding } => {
            vec![conv(a, inputs, true, output_padding)?]
        }
        Op::Gemm { trans_a, trans_b, .. } => vec![gemm(inputs, *trans_a, *trans_b)?],
        Op::MatMul => vec![matmul(f32_input(inputs, 0, "MatMul")?, input(inputs, 1)?)?],
        Op::Binary(b) => vec![elementwise(inputs, *b == crate::BinaryOp::Pow)?],
        Op::Mean => vec![elementwise(inputs, false)?],
        Op::Compare(_) => {
            let t = elementwise(&[Some(input(inputs, 0)?), Some(input(inputs, 1)?)], false)?;
            vec![TensorType::new(DType::Bool, t.shape)]
        }
        Op::Where => vec![where_(inputs)?],
        Op::Unary(u) => vec![unary(*u, input(inputs, 0)?)?],
        Op::Cast { to, .. } => vec![TensorType::new(*to, input(inputs, 0)?.shape.clone())],
        Op::Softmax { axis, .. } => {
            let x = f32_input(inputs, 0, "Softmax")?;
            axis_in(*axis, x.rank(), "Softmax")?;
            vec![x.clone()]
        }
        Op::LayerNorm { axis, .. } => layer_norm(inputs, *axis)?,
        Op::BatchNorm { .. } => vec![channel_norm(inputs, 5, "BatchNormalization")?],
        Op::InstanceNorm { .. } => vec![channel_norm(inputs, 3, "InstanceNormalization")?],
        Op::Lrn { size, .. } => {
            let x = f32_input(inputs, 0, "LRN")?;
            if x.rank() < 3 || *size == 0 {
                return Err(IrError::shape(format!("LRN needs rank >= 3 and size >= 1, got {x}")));
            }
            vec![x.clone()]
        }
        Op::MaxPool(p) => {
            let y = pool(p, f32_input(inputs, 0, "MaxPool")?)?;
            let idx = TensorType::new(DType::I64, y.shape.clone());
            vec![y, idx]
        }
        Op::AveragePool(p) => vec![pool(p, f32_input(inputs, 0, "AveragePool")?)?],
        Op::GlobalAveragePool | Op::GlobalMaxPool => {
            let x = f32_input(inputs, 0, "global pooling")?;
            if x.rank() < 3 {
                return Err(IrError::shape(format!("global pooling needs rank >= 3, got {x}")));
            }
            let mut shape = x.shape.clone();
            shape[2..].iter_mut().for_each(|d| *d = 1);
            vec![TensorType::new(x.dtype, shape)]
        }
        Op::Reshape(shape) => {
            let x = input(inputs, 0)?;
            if checked_numel(shape)? != x.numel() {
                return Err(IrError::shape(format!("cannot reshape {x} to [{}]", format_dims(shape))));
            }
            vec![TensorType::new(x.dtype, shape.clone())]
        }
        Op::Transpose(perm) => vec![transpose(input(inputs, 0)?, perm)?],
        Op::Concat { axis } => vec![concat(inputs, *axis)?],
        Op::Split { axis, sizes } => split(input(inputs, 0)?, *axis, sizes)?,
        Op::Slice(axes) => vec![slice(input(inputs, 0)?, axes)?],
        Op::Gather { axis } => vec![gather(input(inputs, 0)?, input(inputs, 1)?, *axis)?],
        Op::Expand(shape) => {
            let x = input(inputs, 0)?;
            vec![TensorType::new(x.dtype, broadcast_shapes(&[&x.shape, shape])?)]
        }
        Op::Tile(repeats) => vec![tile(input(inputs, 0)?, repeats)?],
        Op::Pad { begin, end, .. } => vec![pad(input(inputs, 0)?, begin, end)?],
        Op::Reduce { op, axes, keepdims } => vec![reduce(*op, input(inputs, 0)?, axes, *keepdims)?],
        Op::Fused { main, main_inputs, epilogue } => fused(main, *main_inputs, epilogue, inputs)?,
        Op::Resize(r) => {
            let x = input(inputs, 0)?;
            if r.out_shape.len() != x.rank() || r.scales.len() != x.rank() {
                return Err(IrError::shape(format!("Resize of {x} needs {} sizes/scales", x.rank())));
            }
            if !x.dtype.is_float() && r.mode != crate::ResizeMode::Nearest {
                return Err(IrError::dtype(x.dtype, "Resize with interpolation"));
            }
            checked_numel(&r.out_shape)?;
            vec![TensorType::new(x.dtype, r.out_shape.clone())]
        }
    };
    Ok(out)
}

fn input<'a>(inputs: &[Option<&'a TensorType>], i: usize) -> Result<&'a TensorType, IrError> {
    inputs.get(i).copied().flatten().ok_or_else(|| IrError::shape(format!("required input #{i} is missing")))
}

/// A required input of the compute type, f32 (the kernels of these operators compute only in f32).
fn f32_input<'a>(inputs: &[Option<&'a TensorType>], i: usize, what: &str) -> Result<&'a TensorType, IrError> {
    let t = input(inputs, i)?;
    if t.dtype != DType::F32 {
        return Err(IrError::dtype(t.dtype, what));
    }
    Ok(t)
}

fn axis_in(axis: usize, rank: usize, what: &str) -> Result<(), IrError> {
    if axis >= rank {
        return Err(IrError::attr(format!("{what}: axis {axis} out of range for rank {rank}")));
    }
    Ok(())
}

fn same_dtype(a: &TensorType, b: &TensorType, what: &str) -> Result<(), IrError> {
    if a.dtype != b.dtype {
        return Err(IrError::shape(format!("{what}: element types differ ({a} vs {b})")));
    }
    Ok(())
}

fn conv(
    a: &crate::ConvAttrs,
    inputs: &[Option<&TensorType>],
    transpose: bool,
    output_padding: &[usize],
) -> Result<TensorType, IrError> {
    let what = if transpose { "ConvTranspose" } else { "Conv" };
    let x = f32_input(inputs, 0, what)?;
    let w = input(inputs, 1)?;
    same_dtype(x, w, what)?;
    let nsp = a.kernel.len();
    if x.rank() != nsp + 2 || w.rank() != nsp + 2 {
        return Err(IrError::shape(format!("{what}: input {x} and weight {w} need rank {}", nsp + 2)));
    }
    let lens = [a.strides.len(), a.dilations.len(), a.pads_begin.len(), a.pads_end.len()];
    if lens.iter().any(|&l| l != nsp) || (transpose && output_padding.len() != nsp) {
        return Err(IrError::attr(format!("{what}: attributes must have {nsp} spatial entries")));
    }
    if a.group == 0 || a.strides.contains(&0) || a.dilations.contains(&0) || a.kernel.contains(&0) {
        return Err(IrError::attr(format!("{what}: group, strides, dilations and kernel must be >= 1")));
    }
    if w.shape[2..] != a.kernel[..] {
        return Err(IrError::shape(format!("{what}: weight {w} does not match kernel [{}]", format_dims(&a.kernel))));
    }
    let c = x.shape[1];
    let out_channels = if transpose {
        if w.shape[0] != c || c % a.group != 0 {
            return Err(IrError::shape(format!(
                "{what}: input {x} has {c} channels, weight {w} expects {} (group {})",
                w.shape[0], a.group
            )));
        }
        w.shape[1] * a.group
    } else {
        if w.shape[1] * a.group != c || w.shape[0] % a.group != 0 {
            return Err(IrError::shape(format!(
                "{what}: input {x} has {c} channels, weight {w} with group {} expects {}",
                a.group,
                w.shape[1] * a.group
            )));
        }
        w.shape[0]
    };
    if let Some(b) = inputs.get(2).copied().flatten() {
        if b.shape != [out_channels] {
            return Err(IrError::shape(format!("{what}: bias {b} must have {out_channels} elements")));
        }
    }
    let mut shape = vec![x.shape[0], out_channels];
    for i in 0..nsp {
        let window = (a.kernel[i] - 1) * a.dilations[i] + 1;
        let inp = x.shape[i + 2];
        let d = if transpose {
            let full = a.strides[i] * (inp.max(1) - 1) + output_padding[i] + window;
            let pads = a.pads_begin[i] + a.pads_end[i];
            if output_padding[i] >= a.strides[i].max(a.dilations[i]) || full < pads {
                return Err(IrError::attr(format!("{what}: output_padding/pads do not fit axis {i}")));
            }
            full - pads
        } else {
            let padded = inp + a.pads_begin[i] + a.pads_end[i];
            if padded < window {
                return Err(IrError::shape(format!(
                    "{what}: padded input {padded} smaller than the window {window} on spatial axis {i}"
                )));
            }
            (padded - window) / a.strides[i] + 1
        };
        shape.push(d);
    }
    checked_numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

fn gemm(inputs: &[Option<&TensorType>], ta: bool, tb: bool) -> Result<TensorType, IrError> {
    let a = f32_input(inputs, 0, "Gemm")?;
    let b = input(inputs, 1)?;
    same_dtype(a, b, "Gemm")?;
    if a.rank() != 2 || b.rank() != 2 {
        return Err(IrError::shape(format!("Gemm needs 2-D inputs, got {a} and {b}")));
    }
    let (m, k) = if ta { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let (k2, n) = if tb { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
    if k != k2 {
        return Err(IrError::shape(format!("Gemm: inner dimensions differ ({a} x {b})")));
    }
    if let Some(c) = inputs.get(2).copied().flatten() {
        let bc = broadcast_shapes(&[&c.shape, &[m, n]])?;
        if bc != [m, n] {
            return Err(IrError::shape(format!("Gemm: C {c} does not broadcast to [{m}x{n}]")));
        }
    }
    Ok(TensorType::new(a.dtype, vec![m, n]))
}

/// Output type of numpy `matmul` (1-D operands promoted, batch dims broadcast).
fn matmul(a: &TensorType, b: &TensorType) -> Result<TensorType, IrError> {
    same_dtype(a, b, "MatMul")?;
    if a.rank() == 0 || b.rank() == 0 {
        return Err(IrError::shape(format!("MatMul of scalars ({a}, {b})")));
    }
    let k = a.shape[a.rank() - 1];
    let kb = if b.rank() == 1 { b.shape[0] } else { b.shape[b.rank() - 2] };
    if k != kb {
        return Err(IrError::shape(format!("MatMul: inner dimensions differ ({a} x {b})")));
    }
    let a_batch = &a.shape[..a.rank().saturating_sub(2)];
    let b_batch = &b.shape[..b.rank().saturating_sub(2)];
    let mut shape = broadcast_shapes(&[a_batch, b_batch])?;
    if a.rank() >= 2 {
        shape.push(a.shape[a.rank() - 2]);
    }
    if b.rank() >= 2 {
        shape.push(b.shape[b.rank() - 1]);
    }
    checked_numel(&shape)?;
    Ok(TensorType::new(a.dtype, shape))
}

fn elementwise(inputs: &[Option<&TensorType>], mixed_types: bool) -> Result<TensorType, IrError> {
    let first = input(inputs, 0)?;
    let mut shapes = Vec::new();
    for (i, t) in inputs.iter().enumerate() {
        let t = t.ok_or_else(|| IrError::shape(format!("input #{i} is missing")))?;
        if !mixed_types {
            same_dtype(first, t, "element-wise operator")?;
        }
        shapes.push(t.shape.as_slice());
    }
    Ok(TensorType::new(first.dtype, broadcast_shapes(&shapes)?))
}

fn where_(inputs: &[Option<&TensorType>]) -> Result<TensorType, IrError> {
    let c = input(inputs, 0)?;
    let x = input(inputs, 1)?;
    let y = input(inputs, 2)?;
    if c.dtype != DType::Bool {
        return Err(IrError::dtype(c.dtype, "Where condition"));
    }
    same_dtype(x, y, "Where")?;
    Ok(TensorType::new(x.dtype, broadcast_shapes(&[&c.shape, &x.shape, &y.shape])?))
}

fn unary(u: UnaryOp, x: &TensorType) -> Result<TensorType, IrError> {
    let ok = match u {
        UnaryOp::Not => x.dtype == DType::Bool,
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu | UnaryOp::Clip { .. } => x.dtype != DType::Bool,
        _ => x.dtype.is_float(),
    };
    if !ok {
        return Err(IrError::dtype(x.dtype, format!("{u:?}")));
    }
    Ok(x.clone())
}

fn layer_norm(inputs: &[Option<&TensorType>], axis: usize) -> Result<Vec<TensorType>, IrError> {
    let x = f32_input(inputs, 0, "LayerNormalization")?;
    axis_in(axis, x.rank(), "LayerNormalization")?;
    let norm = &x.shape[axis..];
    input(inputs, 1)?;
    for i in 1..3 {
        if let Some(p) = inputs.get(i).copied().flatten() {
            if broadcast_shapes(&[&p.shape, norm])? != norm {
                return Err(IrError::shape(format!(
                    "LayerNormalization: scale/bias {p} must broadcast to [{}]",
                    format_dims(norm)
                )));
            }
        }
    }
    let mut stat = x.shape.clone();
    stat[axis..].iter_mut().for_each(|d| *d = 1);
    let stat = TensorType::new(x.dtype, stat);
    Ok(vec![x.clone(), stat.clone(), stat])
}

fn channel_norm(inputs: &[Option<&TensorType>], n: usize, what: &str) -> Result<TensorType, IrError> {
    let x = f32_input(inputs, 0, what)?;
    if x.rank() < 2 {
        return Err(IrError::shape(format!("{what} needs rank >= 2, got {x}")));
    }
    for i in 1..n {
        let p = input(inputs, i)?;
        if p.shape != [x.shape[1]] {
            return Err(IrError::shape(format!(
                "{what}: parameter #{i} {p} must have {} elements (channels of {x})",
                x.shape[1]
            )));
        }
    }
    Ok(x.clone())
}

/// Output extent of one pooled axis.
fn pooled_extent(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let window = (kernel - 1) * dilation + 1;
    let padded = input + pad_begin + pad_end;
    if padded < window {
        return None;
    }
    let span = padded - window;
    let mut out = if ceil_mode { span.div_ceil(stride) + 1 } else { span / stride + 1 };
    // A window must start inside the input or its leading padding.
    if ceil_mode && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Some(out)
}

fn pool(p: &crate::PoolAttrs, x: &TensorType) -> Result<TensorType, IrError> {
    let nsp = p.kernel.len();
    if x.rank() != nsp + 2 {
        return Err(IrError::shape(format!("pooling with a {nsp}-D kernel needs rank {}, got {x}", nsp + 2)));
    }
    let lens = [p.strides.len(), p.dilations.len(), p.pads_begin.len(), p.pads_end.len()];
    if lens.iter().any(|&l| l != nsp) {
        return Err(IrError::attr(format!("pooling attributes must have {nsp} spatial entries")));
    }
    if p.strides.contains(&0) || p.dilations.contains(&0) || p.kernel.contains(&0) {
        return Err(IrError::attr("pooling strides, dilations and kernel must be >= 1"));
    }
    let mut shape = x.shape[..2].to_vec();
    for i in 0..nsp {
        let window = (p.kernel[i] - 1) * p.dilations[i] + 1;
        if p.pads_begin[i] >= window || p.pads_end[i] >= window {
            return Err(IrError::attr(format!("pooling pad larger than the window on axis {i}")));
        }
        let d = pooled_extent(
            x.shape[i + 2],
            p.kernel[i],
            p.strides[i],
            p.dilations[i],
            p.pads_begin[i],
            p.pads_end[i],
            p.ceil_mode,
        )
        .ok_or_else(|| IrError::shape(format!("pooling window larger than padded input {x}")))?;
        shape.push(d);
    }
    Ok(TensorType::new(x.dtype, shape))
}

fn transpose(x: &TensorType, perm: &[usize]) -> Result<TensorType, IrError> {
    let mut seen = vec![false; x.rank()];
    if perm.len() != x.rank() || perm.iter().any(|&p| p >= x.rank() || std::mem::replace(&mut seen[p], true)) {
        return Err(IrError::attr(format!("Transpose: {perm:?} is not a permutation for {x}")));
    }
    Ok(TensorType::new(x.dtype, perm.iter().map(|&p| x.shape[p]).collect()))
}

fn concat(inputs: &[Option<&TensorType>], axis: usize) -> Result<TensorType, IrError> {
    let first = input(inputs, 0)?;
    axis_in(axis, first.rank(), "Concat")?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for (i, t) in inputs.iter().enumerate() {
        let t = t.ok_or_else(|| IrError::shape(format!("Concat input #{i} missing")))?;
        same_dtype(first, t, "Concat")?;
        let fits = t.rank() == first.rank() && (0..t.rank()).all(|d| d == axis || t.shape[d] == first.shape[d]);
        if !fits {
            return Err(IrError::shape(format!("Concat on axis {axis}: {t} does not fit {first}")));
        }
        shape[axis] += t.shape[axis];
    }
    checked_numel(&shape)?;
    Ok(TensorType::new(first.dtype, shape))
}

fn split(x: &TensorType, axis: usize, sizes: &[usize]) -> Result<Vec<TensorType>, IrError> {
    axis_in(axis, x.rank(), "Split")?;
    if sizes.iter().sum::<usize>() != x.shape[axis] {
        return Err(IrError::shape(format!(
            "Split sizes {sizes:?} do not add up to {} (axis {axis} of {x})",
            x.shape[axis]
        )));
    }
    Ok(sizes
        .iter()
        .map(|&s| {
            let mut shape = x.shape.clone();
            shape[axis] = s;
            TensorType::new(x.dtype, shape)
        })
        .collect())
}

fn slice(x: &TensorType, axes: &[crate::SliceAxis]) -> Result<TensorType, IrError> {
    let mut shape = x.shape.clone();
    for s in axes {
        axis_in(s.axis, x.rank(), "Slice")?;
        let dim = x.shape[s.axis] as i64;
        let last = s.start as i64 + s.step * (s.len as i64 - 1);
        let fits = s.len == 0 || (s.step != 0 && (s.start as i64) < dim && last >= 0 && last < dim);
        if !fits {
            return Err(IrError::attr(format!("Slice on axis {} leaves the tensor {x}", s.axis)));
        }
        shape[s.axis] = s.len;
    }
    Ok(TensorType::new(x.dtype, shape))
}

fn gather(data: &TensorType, idx: &TensorType, axis: usize) -> Result<TensorType, IrError> {
    axis_in(axis, data.rank(), "Gather")?;
    if !matches!(idx.dtype, DType::I64 | DType::I32) {
        return Err(IrError::dtype(idx.dtype, "Gather indices"));
    }
    let mut shape = data.shape[..axis].to_vec();
    shape.extend_from_slice(&idx.shape);
    shape.extend_from_slice(&data.shape[axis + 1..]);
    checked_numel(&shape)?;
    Ok(TensorType::new(data.dtype, shape))
}

fn tile(x: &TensorType, repeats: &[usize]) -> Result<TensorType, IrError> {
    if repeats.len() != x.rank() {
        return Err(IrError::attr(format!("Tile needs {} repeats, got {}", x.rank(), repeats.len())));
    }
    let shape: Vec<usize> = x.shape.iter().zip(repeats).map(|(d, r)| d.saturating_mul(*r)).collect();
    checked_numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

fn pad(x: &TensorType, begin: &[i64], end: &[i64]) -> Result<TensorType, IrError> {
    if begin.len() != x.rank() || end.len() != x.rank() {
        return Err(IrError::attr(format!("Pad needs {} begin and end pads for {x}", x.rank())));
    }
    let mut shape = Vec::with_capacity(x.rank());
    for i in 0..x.rank() {
        let d = x.shape[i] as i64 + begin[i] + end[i];
        if d < 0 || begin[i].abs() > 1 << 31 || end[i].abs() > 1 << 31 {
            return Err(IrError::attr(format!("Pad leaves a negative extent on axis {i} of {x}")));
        }
        shape.push(d as usize);
    }
    checked_numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

fn reduce(op: crate::ReduceOp, x: &TensorType, axes: &[usize], keepdims: bool) -> Result<TensorType, IrError> {
    let mut shape = Vec::new();
    for &a in axes {
        axis_in(a, x.rank(), "Reduce")?;
    }
    for (i, &d) in x.shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                shape.push(1);
            }
        } else {
            shape.push(d);
        }
    }
    if x.dtype == DType::Bool && !matches!(op, crate::ReduceOp::Max | crate::ReduceOp::Min) {
        return Err(IrError::dtype(x.dtype, "Reduce"));
    }
    Ok(TensorType::new(x.dtype, shape))
}

fn fused(
    main: &Op,
    main_inputs: usize,
    epilogue: &[crate::EpilogueStep],
    inputs: &[Option<&TensorType>],
) -> Result<Vec<TensorType>, IrError> {
    let outs = infer(main, &inputs[..main_inputs.min(inputs.len())])?;
    let out = &outs[0];
    for step in epilogue {
        match step {
            crate::EpilogueStep::Unary(u) => {
                unary(*u, out)?;
            }
            crate::EpilogueStep::Binary { input: i, .. } => {
                let x = input(inputs, *i)?;
                same_dtype(out, x, "fused epilogue")?;
                if broadcast_shapes(&[&out.shape, &x.shape])? != out.shape {
                    return Err(IrError::shape(format!("fused epilogue operand {x} does not broadcast to {out}")));
                }
            }
        }
    }
    Ok(vec![out.clone()])
}
