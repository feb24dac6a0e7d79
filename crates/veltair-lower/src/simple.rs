//! Lowering of the layers that are not GEMM-shaped: element-wise chains, pooling, softmax,
//! layer normalisation, reductions over trailing axes, and data movement (reshape views,
//! transpose, concat, slice, expand).

use crate::builder::Arg;
use crate::layout::{align_rank, stored_axis, stored_shape, Layout};
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::copy::CopySpec;
use veltair_codegen::gather::{compile_gather, compile_i64_to_f32, GatherSpec};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::lrn::{compile_lrn, LrnSpec};
use veltair_codegen::pointwise::{compile_pointwise, PointwiseSpec, PointwiseStep};
use veltair_codegen::pool::{compile_global_pool, compile_pool, PoolKind, PoolSpec};
use veltair_codegen::rowwise::{compile_layernorm, compile_reduce_rows, compile_softmax};
use veltair_codegen::tiling::{access, describe, elementwise, row_kernel};
use veltair_ir::{BinaryOp, DType, Node, Op, PoolAttrs, ValueId};

/// An element-wise kernel input: a graph value, or a layer's intermediate result.
pub enum Source {
    Value(ValueId),
    Temp(Arg, Layout, Vec<usize>),
}

impl Lowerer<'_> {
    pub fn simple(&mut self, node: &Node) -> Result<(), Fail> {
        let input = |i: usize| node.inputs.get(i).copied().flatten();
        let x = input(0).expect("every lowered operator has a first input");
        let out = node.outputs[0];
        if node.outputs.len() > 1 && !matches!(node.op, Op::Split { .. }) {
            return unsupported("extra outputs (indices, statistics) are not generated");
        }
        match &node.op {
            Op::Unary(u) => self.pointwise(&node.name, vec![Source::Value(x)], vec![PointwiseStep::Unary(*u)], out),
            Op::Binary(op) => {
                let y = input(1).expect("binary operand");
                let steps = vec![PointwiseStep::Binary { op: *op, input: 1, operand_first: false }];
                self.pointwise(&node.name, vec![Source::Value(x), Source::Value(y)], steps, out)
            }
            Op::BatchNorm { epsilon } => self.batch_norm(node, *epsilon),
            Op::MaxPool(p) => self.pool(node, p, PoolKind::Max),
            Op::AveragePool(p) => self.pool(node, p, PoolKind::Average { count_include_pad: p.count_include_pad }),
            Op::GlobalAveragePool | Op::GlobalMaxPool => {
                let xs = self.shape(x).to_vec();
                if xs.len() != 4 {
                    return unsupported("global pooling over other than 2 spatial axes");
                }
                let max = matches!(node.op, Op::GlobalMaxPool);
                let src = self.get(x, Layout::Nhwc)?;
                let k = self.kernel(format!("global pool {xs:?} {max}"), |t| {
                    compile_global_pool(xs[0], xs[2] * xs[3], xs[1], max, t)
                })?;
                let dst = self.define(out, Layout::Nhwc);
                let work = self.work(node);
                self.plan.step(
                    &node.name,
                    k,
                    vec![src, dst],
                    work,
                    describe(row_kernel(
                        "global_pool",
                        xs[0] * xs[1],
                        xs[2] * xs[3],
                        if max { "= max" } else { "= mean" },
                        self.options.max_threads,
                    )),
                );
                Ok(())
            }
            Op::Softmax { axis, log, coerce_2d } => {
                let xs = self.shape(x).to_vec();
                // The softmax axis (or, pre-opset-13, the flattened tail) moved last if needed.
                let axes: Vec<usize> = if *coerce_2d { (*axis..xs.len()).collect() } else { vec![*axis] };
                let (src, perm) = self.trailing(&node.name, x, &axes)?;
                let len = axes.iter().map(|&a| xs[a]).product::<usize>();
                let rows = xs.iter().product::<usize>() / len.max(1);
                let k = self.kernel(format!("softmax {rows} {len} {log}"), |t| compile_softmax(rows, len, *log, t))?;
                let dst = match &perm {
                    None => self.define(out, Layout::Plain),
                    Some(_) => Arg::Buf(self.plan.buffer(rows * len)),
                };
                let work = self.work(node);
                self.plan.step(
                    &node.name,
                    k,
                    vec![src, dst],
                    work,
                    describe(row_kernel(
                        "softmax",
                        rows,
                        len,
                        if *log { "= log_softmax" } else { "= softmax" },
                        self.options.max_threads,
                    )),
                );
                if let Some(perm) = perm {
                    let moved: Vec<usize> = perm.iter().map(|&a| xs[a]).collect();
                    let mut back = vec![0; perm.len()];
                    for (i, &a) in perm.iter().enumerate() {
                        back[a] = i;
                    }
                    let result = self.define(out, Layout::Plain);
                    self.copy(&format!("{} axis back", node.name), CopySpec::transpose(&moved, &back)?, dst, result)?;
                }
                Ok(())
            }
            Op::LayerNorm { axis, epsilon } => {
                let xs = self.shape(x).to_vec();
                let len = xs[*axis..].iter().product::<usize>();
                let rows = xs.iter().product::<usize>() / len.max(1);
                let mut args = vec![self.get(x, Layout::Plain)?];
                for i in 1..node.inputs.len().min(3) {
                    let Some(v) = input(i) else { continue };
                    if self.graph.value(v).ty.numel() != len {
                        return unsupported("layer-norm scale/bias broadcast over more than the normalised axes");
                    }
                    args.push(self.get(v, Layout::Plain)?);
                }
                let has_bias = args.len() == 3;
                let eps = *epsilon;
                let k = self.kernel(format!("layernorm {rows} {len} {eps} {has_bias}"), |t| {
                    compile_layernorm(rows, len, eps, has_bias, t)
                })?;
                args.push(self.define(out, Layout::Plain));
                let work = self.work(node);
                self.plan.step(
                    &node.name,
                    k,
                    args,
                    work,
                    describe(row_kernel(
                        "layernorm",
                        rows,
                        len,
                        "= (x - mean) / std * scale + bias",
                        self.options.max_threads,
                    )),
                );
                Ok(())
            }
            Op::Reduce { op, axes, .. } => {
                let xs = self.shape(x).to_vec();
                let (src, _) = self.trailing(&node.name, x, axes)?;
                let len = axes.iter().map(|&a| xs[a]).product::<usize>();
                let rows = xs.iter().product::<usize>() / len.max(1);
                let k =
                    self.kernel(format!("reduce {op:?} {rows} {len}"), |t| compile_reduce_rows(rows, len, *op, t))?;
                let dst = self.define(out, Layout::Plain);
                let work = self.work(node);
                self.plan.step(
                    &node.name,
                    k,
                    vec![src, dst],
                    work,
                    describe(row_kernel("reduce", rows, len, &format!("= {op:?}"), self.options.max_threads)),
                );
                Ok(())
            }
            Op::Reshape(_) => {
                let src = self.get(x, Layout::Plain)?;
                if matches!(src, Arg::Const(_)) {
                    return unsupported("reshape of a constant (folded at import)");
                }
                self.alias(out, Layout::Plain, src);
                Ok(())
            }
            Op::Transpose(perm) => {
                let xs = self.shape(x).to_vec();
                let src = self.get(x, Layout::Plain)?;
                let dst = self.define(out, Layout::Plain);
                self.copy(&node.name, CopySpec::transpose(&xs, perm)?, src, dst)
            }
            Op::Concat { axis } => self.concat(node, *axis),
            Op::Slice(axes) => {
                let xs = self.shape(x).to_vec();
                let src = self.get(x, Layout::Plain)?;
                let dst = self.define(out, Layout::Plain);
                self.copy(&node.name, CopySpec::slice(&xs, axes)?, src, dst)
            }
            Op::Gather { axis } => {
                let xs = self.shape(x).to_vec();
                let indices = input(1).expect("gather indices");
                if self.graph.value(indices).ty.dtype != DType::I64 {
                    return unsupported("gather indices that are not i64");
                }
                let spec = GatherSpec {
                    outer: xs[..*axis].iter().product(),
                    axis_len: xs[*axis],
                    inner: xs[axis + 1..].iter().product(),
                    indices: self.graph.value(indices).ty.numel(),
                };
                let (data, idx) = (self.get(x, Layout::Plain)?, self.get(indices, Layout::Plain)?);
                let k = self.kernel(format!("{spec:?}"), |t| compile_gather(&spec, t))?;
                let dst = self.define(out, Layout::Plain);
                let work = self.work(node);
                self.plan.step(
                    &node.name,
                    k,
                    vec![data, idx, dst],
                    work,
                    describe(spec.describe(self.options.max_threads)),
                );
                Ok(())
            }
            Op::Cast { to: DType::F32, .. } => match self.graph.value(x).ty.dtype {
                DType::F32 => {
                    let src = self.get(x, Layout::Plain)?;
                    self.alias(out, Layout::Plain, src);
                    Ok(())
                }
                DType::I64 => {
                    let n = self.graph.value(x).ty.numel();
                    let src = self.get(x, Layout::Plain)?;
                    let k = self.kernel(format!("i64 to f32 {n}"), |t| compile_i64_to_f32(n, t))?;
                    let dst = self.define(out, Layout::Plain);
                    self.plan.step(
                        &node.name,
                        k,
                        vec![src, dst],
                        n as u64,
                        describe(elementwise(
                            "cast_i64_f32",
                            &[n],
                            "= f32(x)",
                            vec![access("x", &["d0"])],
                            self.options.max_threads,
                        )),
                    );
                    Ok(())
                }
                other => unsupported(format!("cast from {other:?}")),
            },
            Op::Resize(r) => {
                let xs = self.shape(x).to_vec();
                let axes = (0..xs.len()).map(|a| veltair_ref::axis_taps(r, a, xs[a], r.out_shape[a])).collect();
                self.resample(node, axes, r.extrapolation_value)
            }
            Op::Pad { begin, mode, value, .. } => {
                let (xs, ys) = (self.shape(x).to_vec(), self.shape(out).to_vec());
                let axes = (0..xs.len())
                    .map(|a| {
                        let source = |j: usize| veltair_ref::pad_source(j as i64 - begin[a], xs[a] as i64, *mode);
                        (0..ys[a]).map(|j| source(j).map(|i| vec![(i as usize, 1.0)])).collect()
                    })
                    .collect();
                self.resample(node, axes, *value as f32)
            }
            Op::Tile(_) => {
                let (xs, ys) = (self.shape(x).to_vec(), self.shape(out).to_vec());
                let axes = (0..xs.len()).map(|a| (0..ys[a]).map(|j| Some(vec![(j % xs[a], 1.0)])).collect()).collect();
                self.resample(node, axes, 0.0)
            }
            Op::Lrn { size, alpha, beta, bias } => {
                let xs = self.shape(x).to_vec();
                let layout = match xs.len() {
                    4 => Layout::Nhwc,
                    2 => Layout::Plain,
                    _ => return unsupported("LRN over other than 2-D or 4-D tensors"),
                };
                let spec = LrnSpec {
                    pixels: xs.iter().product::<usize>() / xs[1],
                    channels: xs[1],
                    size: *size,
                    alpha: *alpha,
                    beta: *beta,
                    bias: *bias,
                };
                let src = self.get(x, layout)?;
                let k = self.kernel(format!("{spec:?}"), |t| compile_lrn(&spec, t))?;
                let dst = self.define(out, layout);
                let work = self.work(node) * *size as u64;
                self.plan.step(&node.name, k, vec![src, dst], work, describe(spec.describe(self.options.max_threads)));
                Ok(())
            }
            Op::Expand(_) => {
                let (xs, ys) = (self.shape(x).to_vec(), self.shape(out).to_vec());
                let src = self.get(x, Layout::Plain)?;
                let dst = self.define(out, Layout::Plain);
                self.copy(&node.name, CopySpec::expand(&xs, &ys)?, src, dst)
            }
            _ => unsupported("no generator for this operator yet"),
        }
    }

    /// `x` (plain layout) with `axes` moved last, in order, the others keeping theirs: `x`
    /// itself when they are the trailing axes already, else a transposed copy and the
    /// permutation used.
    fn trailing(&mut self, label: &str, x: ValueId, axes: &[usize]) -> Result<(Arg, Option<Vec<usize>>), Fail> {
        let xs = self.shape(x).to_vec();
        let mut moved: Vec<usize> = axes.to_vec();
        moved.sort_unstable();
        let mut perm: Vec<usize> = (0..xs.len()).filter(|a| !moved.contains(a)).collect();
        perm.extend(moved);
        let src = self.get(x, Layout::Plain)?;
        // Size-1 axes may stay where they are: the data order is the same.
        let significant: Vec<usize> = perm.iter().copied().filter(|&a| xs[a] != 1).collect();
        if significant.windows(2).all(|w| w[0] < w[1]) {
            return Ok((src, None));
        }
        let tmp = Arg::Buf(self.plan.buffer(xs.iter().product()));
        self.copy(&format!("{label} axes last"), CopySpec::transpose(&xs, &perm)?, src, tmp)?;
        Ok((tmp, Some(perm)))
    }

    /// An element-wise kernel: `steps` over `sources` (the accumulator starts as source 0),
    /// writing `out`. Images stay channels-last when any image operand already is.
    pub fn pointwise(
        &mut self,
        label: &str,
        sources: Vec<Source>,
        steps: Vec<PointwiseStep>,
        out: ValueId,
    ) -> Result<(), Fail> {
        let ys = self.shape(out).to_vec();
        let rank = ys.len();
        let nhwc = rank == 4
            && sources.iter().any(|s| match s {
                Source::Value(v) => self.prefers(*v, Layout::Nhwc),
                Source::Temp(_, layout, _) => *layout == Layout::Nhwc,
            });
        let layout = if nhwc { Layout::Nhwc } else { Layout::Plain };
        let mut args = Vec::new();
        let mut shapes = Vec::new();
        for s in &sources {
            let (arg, shape) = match s {
                Source::Value(v) => {
                    let shape = align_rank(self.shape(*v), rank);
                    let layout = if shape.len() == 4 && nhwc { Layout::Nhwc } else { Layout::Plain };
                    (self.get(*v, layout)?, shape)
                }
                Source::Temp(arg, _, shape) => (*arg, shape.clone()),
            };
            args.push(arg);
            shapes.push(stored_shape(&shape, layout));
        }
        let spec = PointwiseSpec { out_shape: stored_shape(&ys, layout), inputs: shapes, steps };
        let k = self.kernel(format!("{spec:?}"), |t| compile_pointwise(&spec, t))?;
        args.push(self.define(out, layout));
        let work = ys.iter().product::<usize>() as u64;
        self.plan.step(label, k, args, work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }

    /// Inference batch normalisation that was not folded: `x·s + t` per channel.
    fn batch_norm(&mut self, node: &Node, epsilon: f32) -> Result<(), Fail> {
        let x = node.inputs[0].expect("batch-norm input");
        let xs = self.shape(x).to_vec();
        let c = xs.get(1).copied().unwrap_or(1);
        let mut p = Vec::new();
        for i in 1..5 {
            let v = node.inputs[i].expect("batch-norm parameter");
            match &self.graph.value(v).constant {
                Some(t) => {
                    p.push(t.as_f32("batch-norm parameter").map_err(|e| Fail::Unsupported(e.to_string()))?.to_vec())
                }
                None => return unsupported("batch-norm parameters computed at run time"),
            }
        }
        let scale: Vec<f32> = (0..c).map(|i| p[0][i] / (p[3][i] + epsilon).sqrt()).collect();
        let shift: Vec<f32> = (0..c).map(|i| p[1][i] - p[2][i] * scale[i]).collect();
        let mut per_channel = vec![1; xs.len()];
        if xs.len() > 1 {
            per_channel[1] = c;
        }
        let (s, t) = (self.plan.constant(scale), self.plan.constant(shift));
        let layout = if xs.len() == 4 && self.prefers(x, Layout::Nhwc) { Layout::Nhwc } else { Layout::Plain };
        let src = self.get(x, layout)?;
        let param_shape = stored_shape(&per_channel, layout);
        let spec = PointwiseSpec {
            out_shape: stored_shape(&xs, layout),
            inputs: vec![stored_shape(&xs, layout), param_shape.clone(), param_shape],
            steps: vec![
                PointwiseStep::Binary { op: BinaryOp::Mul, input: 1, operand_first: false },
                PointwiseStep::Binary { op: BinaryOp::Add, input: 2, operand_first: false },
            ],
        };
        let k = self.kernel(format!("{spec:?}"), |t| compile_pointwise(&spec, t))?;
        let dst = self.define(node.outputs[0], layout);
        let work = self.work(node);
        self.plan.step(&node.name, k, vec![src, s, t, dst], work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }

    fn pool(&mut self, node: &Node, p: &PoolAttrs, kind: PoolKind) -> Result<(), Fail> {
        let x = node.inputs[0].expect("pool input");
        let (xs, ys) = (self.shape(x).to_vec(), self.shape(node.outputs[0]).to_vec());
        if xs.len() != 4 {
            return unsupported("pooling over other than 2 spatial axes");
        }
        let geometry = ConvGeometry {
            batch: xs[0],
            h: xs[2],
            w: xs[3],
            c: xs[1],
            kh: p.kernel[0],
            kw: p.kernel[1],
            stride: (p.strides[0], p.strides[1]),
            dilation: (p.dilations[0], p.dilations[1]),
            pad: (p.pads_begin[0], p.pads_begin[1]),
            oh: ys[2],
            ow: ys[3],
        };
        let spec = PoolSpec { geometry, pad_end: (p.pads_end[0], p.pads_end[1]), kind };
        let src = self.get(x, Layout::Nhwc)?;
        let k = self.kernel(format!("{spec:?}"), |t| compile_pool(&spec, t))?;
        let dst = self.define(node.outputs[0], Layout::Nhwc);
        let work = self.work(node) * (p.kernel[0] * p.kernel[1]) as u64;
        self.plan.step(&node.name, k, vec![src, dst], work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }

    /// Concat: each input copied into its slot of the output (except those their producer
    /// already wrote there), channels-last when every input already is.
    fn concat(&mut self, node: &Node, axis: usize) -> Result<(), Fail> {
        let out = node.outputs[0];
        let ys = self.shape(out).to_vec();
        let parts: Vec<ValueId> = node.inputs.iter().flatten().copied().collect();
        let in_place = parts.iter().any(|v| self.written_in_place.contains(v));
        let nhwc = ys.len() == 4
            && (in_place
                || parts.iter().all(|&v| self.prefers(v, Layout::Nhwc) || self.graph.value(v).constant.is_some()));
        let layout = if nhwc { Layout::Nhwc } else { Layout::Plain };
        let copied: Vec<ValueId> = parts.iter().copied().filter(|v| !self.written_in_place.contains(v)).collect();
        let srcs = copied.iter().map(|&v| self.get(v, layout)).collect::<Result<Vec<_>, _>>()?;
        let dst = self.get_or_define(out, layout);
        let out_stored = stored_shape(&ys, layout);
        let stored = stored_axis(axis, ys.len(), layout);
        let mut offset = 0;
        let mut srcs = srcs.into_iter();
        for (i, &v) in parts.iter().enumerate() {
            let part = stored_shape(self.shape(v), layout);
            let len = part[stored];
            let src = if self.written_in_place.contains(&v) { None } else { srcs.next() };
            if let Some(src) = src.filter(|_| part.iter().product::<usize>() > 0) {
                let spec = CopySpec::concat_part(&part, &out_stored, stored, offset)?;
                self.copy(&format!("{} part {i}", node.name), spec, src, dst)?;
            }
            offset += len;
        }
        Ok(())
    }
}
