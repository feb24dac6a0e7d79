//! Operators that gather along each axis independently (Resize, Pad, Tile): one resampling
//! kernel per axis that is not the identity, last axis first, each output position reading
//! weighted input positions or a fill value. Images stay NHWC when batch and channels keep
//! their sizes.

use crate::builder::Arg;
use crate::layout::{stored_axis, stored_shape, Layout};
use crate::lowerer::{Fail, Lowerer};
use veltair_codegen::resample::{compile_resample, PositionTaps, ResampleSpec};
use veltair_codegen::tiling::describe;
use veltair_ir::Node;

impl Lowerer<'_> {
    /// Lowers `node` (input 0 to output 0) given, per axis, the taps of every output position
    /// (`None` positions take `fill`).
    pub fn resample(&mut self, node: &Node, axes: Vec<Vec<PositionTaps>>, fill: f32) -> Result<(), Fail> {
        let (x, out) = (node.inputs[0].expect("resampled input"), node.outputs[0]);
        let (xs, ys) = (self.shape(x).to_vec(), self.shape(out).to_vec());
        let nhwc = xs.len() == 4 && ys[0] == xs[0] && ys[1] == xs[1];
        let layout = if nhwc { Layout::Nhwc } else { Layout::Plain };
        let plans: Vec<(usize, Vec<PositionTaps>)> = axes
            .into_iter()
            .enumerate()
            .rev()
            .filter(|(a, taps)| {
                xs[*a] != ys[*a] || taps.iter().enumerate().any(|(j, t)| t.as_deref() != Some(&[(j, 1.0)]))
            })
            .collect();
        let mut src = self.get(x, layout)?;
        if plans.is_empty() {
            self.alias(out, layout, src);
            return Ok(());
        }
        let mut shape = xs;
        let last = plans.len() - 1;
        for (n, (axis, taps)) in plans.into_iter().enumerate() {
            let input = shape[axis];
            shape[axis] = ys[axis];
            let stored = stored_shape(&shape, layout);
            let at = stored_axis(axis, shape.len(), layout);
            let spec = ResampleSpec {
                outer: stored[..at].iter().product(),
                in_len: input,
                out_len: ys[axis],
                inner: stored[at + 1..].iter().product(),
                taps: taps.iter().flatten().map(Vec::len).max().unwrap_or(1).max(1),
            };
            let table = self.plan.constant(spec.table(&taps, fill)?);
            let k = self.kernel(format!("{spec:?}"), move |t| compile_resample(&spec, t))?;
            let dst =
                if n == last { self.define(out, layout) } else { Arg::Buf(self.plan.buffer(shape.iter().product())) };
            let work = (spec.outer * spec.out_len * spec.inner * spec.taps) as u64;
            let label = format!("{} axis {axis}", node.name);
            self.plan.step(label, k, vec![src, table, dst], work, describe(spec.describe(self.options.max_threads)));
            src = dst;
        }
        Ok(())
    }
}
