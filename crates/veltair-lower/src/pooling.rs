//! Windowed pooling over NHWC images.

use crate::layout::Layout;
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::pool::{compile_pool, PoolKind, PoolSpec};
use veltair_codegen::tiling::describe;
use veltair_ir::{Node, PoolAttrs};

impl Lowerer<'_> {
    pub(crate) fn pool(&mut self, node: &Node, p: &PoolAttrs, kind: PoolKind) -> Result<(), Fail> {
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
        let k = self.kernel(format!("{spec:?}"), move |t| compile_pool(&spec, t))?;
        let dst = self.define(node.outputs[0], Layout::Nhwc);
        let work = self.work(node) * (p.kernel[0] * p.kernel[1]) as u64;
        self.plan.step(&node.name, k, vec![src, dst], work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }
}
