//! Element-wise layers: broadcasting chains of unary and binary operators (channels-last for
//! images when an operand already is) and unfolded batch normalisation as a per-channel
//! scale and shift.

use crate::builder::Arg;
use crate::layout::{align_rank, stored_shape, Layout};
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::pointwise::{compile_pointwise, PointwiseSpec, PointwiseStep};
use veltair_codegen::tiling::describe;
use veltair_ir::{BinaryOp, Node, ValueId};

/// An element-wise kernel input: a graph value, or a layer's intermediate result.
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
        let k = self.kernel(format!("{spec:?}"), {
            let spec = spec.clone();
            move |t| compile_pointwise(&spec, t)
        })?;
        args.push(self.define(out, layout));
        let work = ys.iter().product::<usize>() as u64;
        self.plan.step(label, k, args, work, describe(spec.describe(self.options.max_threads)));
        Ok(())
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
