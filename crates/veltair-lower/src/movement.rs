//! Data movement that needs more than a view: Concat (skipping inputs written in place) and
//! moving axes to the end for row-wise kernels.

use crate::builder::Arg;
use crate::layout::{stored_axis, stored_shape, Layout};
use crate::lowerer::{Fail, Lowerer};
use veltair_codegen::copy::CopySpec;
use veltair_ir::{Node, ValueId};

impl Lowerer<'_> {
    /// `x` (plain layout) with `axes` moved last, in order, the others keeping theirs: `x`
    /// itself when they are the trailing axes already, else a transposed copy and the
    /// permutation used.
    pub(crate) fn trailing(
        &mut self,
        label: &str,
        x: ValueId,
        axes: &[usize],
    ) -> Result<(Arg, Option<Vec<usize>>), Fail> {
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

    /// Concat: each input copied into its slot of the output (except those their producer
    /// already wrote there), channels-last when every input already is.
    pub(crate) fn concat(&mut self, node: &Node, axis: usize) -> Result<(), Fail> {
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
