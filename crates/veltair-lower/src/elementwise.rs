//! Element-wise layers: broadcasting chains of unary and binary operators (channels-last for
//! images when an operand already is) and unfolded batch normalisation as a per-channel
//! scale and shift.

use crate::builder::Arg;
use crate::layout::{align_rank, from_layout_perm, layouts_agree, stored_shape, to_layout_perm, Layout};
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::copy::CopySpec;
use veltair_codegen::pointwise::{compile_pointwise, PointwiseSpec, PointwiseStep};
use veltair_codegen::tiling::describe;
use veltair_ir::{BinaryOp, Node, ValueId};

/// An element-wise kernel input: a graph value, or a buffer or constant the lowering made
/// (stored in the given layout, of the given logical shape).
#[derive(Clone)]
pub enum Source {
    Value(ValueId),
    Temp(Arg, Layout, Vec<usize>),
}

impl Lowerer<'_> {
    /// An element-wise kernel: `steps` over `sources` (the accumulator starts as source 0),
    /// writing `out`. Images stay channels-last when any image operand already is.
    pub(crate) fn pointwise(
        &mut self,
        label: &str,
        sources: Vec<Source>,
        steps: Vec<PointwiseStep>,
        out: ValueId,
    ) -> Result<(), Fail> {
        let ys = self.shape(out).to_vec();
        let nhwc = ys.len() == 4
            && sources.iter().any(|s| match s {
                Source::Value(v) => self.prefers(*v, Layout::Nhwc),
                Source::Temp(_, layout, _) => *layout == Layout::Nhwc,
            });
        let layout = if nhwc { Layout::Nhwc } else { Layout::Plain };
        let dst = self.define(out, layout);
        self.pointwise_into(label, sources, steps, (dst, layout, &ys))
    }

    /// [`Self::pointwise`] into `dst`, a buffer of logical shape `ys` stored in `layout`.
    pub(crate) fn pointwise_into(
        &mut self,
        label: &str,
        sources: Vec<Source>,
        steps: Vec<PointwiseStep>,
        (dst, layout, ys): (Arg, Layout, &[usize]),
    ) -> Result<(), Fail> {
        let rank = ys.len();
        let mut args = Vec::new();
        let mut shapes = Vec::new();
        let mut float_sources = Vec::with_capacity(sources.len());
        for s in sources {
            float_sources.push(match s {
                Source::Value(v) => match self.as_float(label, v)? {
                    Some(tmp) => Source::Temp(tmp, Layout::Plain, self.shape(v).to_vec()),
                    None => Source::Value(v),
                },
                temp => temp,
            });
        }
        for s in &float_sources {
            let shape = align_rank(&self.source_shape(s), rank);
            let want = if shape.len() == 4 { layout } else { Layout::Plain };
            let arg = match s {
                // A value of full rank is fetched in the layout wanted; one of lower rank is
                // stored plain, whatever its aligned shape.
                Source::Value(v) if self.shape(*v).len() == rank => self.get(*v, want)?,
                Source::Value(v) => {
                    let arg = self.get(*v, Layout::Plain)?;
                    self.relayout(label, arg, Layout::Plain, want, &shape)?
                }
                Source::Temp(arg, held, own) => {
                    let held = if own.len() == rank { *held } else { Layout::Plain };
                    self.relayout(label, *arg, held, want, &shape)?
                }
            };
            args.push(arg);
            shapes.push(stored_shape(&shape, layout));
        }
        let spec = PointwiseSpec { out_shape: stored_shape(ys, layout), inputs: shapes, steps };
        let k = self.kernel(format!("{spec:?}"), {
            let spec = spec.clone();
            move |t| compile_pointwise(&spec, t)
        })?;
        args.push(dst);
        let work = ys.iter().product::<usize>() as u64;
        self.plan.step(label, k, args, work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }

    /// The logical shape of an element-wise operand.
    pub(crate) fn source_shape(&self, s: &Source) -> Vec<usize> {
        match s {
            Source::Value(v) => self.shape(*v).to_vec(),
            Source::Temp(_, _, shape) => shape.clone(),
        }
    }

    /// `arg` (logical `shape`, stored in `held`) stored in `want`: itself when the two store it
    /// alike, else a transposing copy.
    fn relayout(&mut self, label: &str, arg: Arg, held: Layout, want: Layout, shape: &[usize]) -> Result<Arg, Fail> {
        if held == want || layouts_agree(shape) {
            return Ok(arg);
        }
        let perm = match want {
            Layout::Nhwc => to_layout_perm(Layout::Nhwc, 4),
            Layout::Plain => from_layout_perm(Layout::Nhwc, 4),
        };
        let dst = Arg::Buf(self.plan.buffer(shape.iter().product()));
        self.copy(
            &format!("{label} operand to {want:?}"),
            CopySpec::transpose(&stored_shape(shape, held), &perm)?,
            arg,
            dst,
        )?;
        Ok(dst)
    }

    /// Inference batch normalisation that was not folded: `x·s + t` per channel.
    pub(crate) fn batch_norm(&mut self, node: &Node, epsilon: f32) -> Result<(), Fail> {
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
        let k = self.kernel(format!("{spec:?}"), {
            let spec = spec.clone();
            move |t| compile_pointwise(&spec, t)
        })?;
        let dst = self.define(node.outputs[0], layout);
        let work = self.work(node);
        self.plan.step(&node.name, k, vec![src, s, t, dst], work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }
}
