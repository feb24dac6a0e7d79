//! Lowering of the layers that are not GEMM-shaped, by operator: element-wise chains, pooling
//! and LRN, softmax, layer normalisation and reductions (over any axes), and data movement
//! (reshape views, transpose, concat, slice, expand, gather, casts, resize/pad/tile).

use crate::builder::Arg;
use crate::elementwise::Source;
use crate::layout::Layout;
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::copy::CopySpec;
use veltair_codegen::gather::{compile_gather, GatherSpec};
use veltair_codegen::lrn::{compile_lrn, LrnSpec};
use veltair_codegen::pointwise::PointwiseStep;
use veltair_codegen::pool::{compile_global_pool, PoolKind};
use veltair_codegen::rowwise::{compile_layernorm, compile_reduce_rows, compile_softmax};
use veltair_codegen::tiling::{describe, row_kernel};
use veltair_exec::Storage;
use veltair_ir::{BinaryOp, Node, Op, SliceAxis};

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
            Op::Binary(op) => self.variadic(node, *op, None),
            Op::Mean => self.variadic(node, BinaryOp::Add, Some(node.inputs.len())),
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
                let (batch, pixels, channels) = (xs[0], xs[2] * xs[3], xs[1]);
                let k = self.kernel(format!("global pool {xs:?} {max}"), move |t| {
                    compile_global_pool(batch, pixels, channels, max, t)
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
                let k = self.kernel(format!("softmax {rows} {len} {log}"), {
                    let log = *log;
                    move |t| compile_softmax(rows, len, log, t)
                })?;
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
                let k = self.kernel(format!("layernorm {rows} {len} {eps} {has_bias}"), move |t| {
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
                let k = self.kernel(format!("reduce {op:?} {rows} {len}"), {
                    let op = *op;
                    move |t| compile_reduce_rows(rows, len, op, t)
                })?;
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
            Op::Split { axis, sizes } => {
                if sizes.len() != node.outputs.len() {
                    return unsupported(format!("{} split sizes for {} outputs", sizes.len(), node.outputs.len()));
                }
                let xs = self.shape(x).to_vec();
                let src = self.get(x, Layout::Plain)?;
                let mut start = 0;
                for (&part, &len) in node.outputs.iter().zip(sizes) {
                    let slice = [SliceAxis { axis: *axis, start, step: 1, len }];
                    let dst = self.define(part, Layout::Plain);
                    self.copy(&node.name, CopySpec::slice(&xs, &slice)?, src, dst)?;
                    start += len;
                }
                Ok(())
            }
            Op::Gather { axis } => {
                let xs = self.shape(x).to_vec();
                let indices = input(1).expect("gather indices");
                if Storage::of(self.graph.value(indices).ty.dtype) != Storage::I64 {
                    return unsupported("gather indices that are not integers");
                }
                let spec = GatherSpec {
                    outer: xs[..*axis].iter().product(),
                    axis_len: xs[*axis],
                    inner: xs[axis + 1..].iter().product(),
                    indices: self.graph.value(indices).ty.numel(),
                };
                let (data, idx) = (self.get(x, Layout::Plain)?, self.get(indices, Layout::Plain)?);
                let k = self.kernel(format!("{spec:?}"), move |t| compile_gather(&spec, t))?;
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
            Op::Cast { to, .. } => match (Storage::of(self.graph.value(x).ty.dtype), Storage::of(*to)) {
                (Storage::F32, Storage::F32) => {
                    let src = self.get(x, Layout::Plain)?;
                    self.alias(out, Layout::Plain, src);
                    Ok(())
                }
                _ => unsupported(format!("cast to {to}")),
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
                let k = self.kernel(format!("{spec:?}"), move |t| compile_lrn(&spec, t))?;
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
}

impl Lowerer<'_> {
    /// `op` folded left to right over every input (Max/Min/Sum take one or more), then divided
    /// by `mean_of` when given (Mean).
    fn variadic(&mut self, node: &Node, op: BinaryOp, mean_of: Option<usize>) -> Result<(), Fail> {
        let mut sources = Vec::new();
        for (i, v) in node.inputs.iter().enumerate() {
            match v {
                Some(v) => sources.push(Source::Value(*v)),
                None => return unsupported(format!("input #{i} is missing")),
            }
        }
        let mut steps: Vec<PointwiseStep> =
            (1..sources.len()).map(|input| PointwiseStep::Binary { op, input, operand_first: false }).collect();
        if let Some(n) = mean_of.filter(|&n| n > 1) {
            let scale = self.plan.constant(vec![1.0 / n as f32]);
            sources.push(Source::Temp(scale, Layout::Plain, vec![]));
            steps.push(PointwiseStep::Binary { op: BinaryOp::Mul, input: sources.len() - 1, operand_first: false });
        }
        self.pointwise(&node.name, sources, steps, node.outputs[0])
    }
}
