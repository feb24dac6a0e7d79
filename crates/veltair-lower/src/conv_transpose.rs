//! ConvTranspose as a stride-1 convolution: the input is spread out with `stride − 1` zeros
//! between pixels inside a zeroed, padded buffer (a broadcast copy then a strided copy), and a
//! dense convolution with the kernel flipped and its channel axes swapped runs over it.

use crate::builder::Arg;
use crate::layers::{ConvParts, ResultView};
use crate::layout::Layout;
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::copy::CopySpec;
use veltair_codegen::im2col::ConvGeometry;
use veltair_ir::{ConvAttrs, EpilogueStep, Node};

impl Lowerer<'_> {
    pub fn conv_transpose(
        &mut self,
        node: &Node,
        attrs: &ConvAttrs,
        output_padding: &[usize],
        main_inputs: usize,
        steps: &[EpilogueStep],
    ) -> Result<(), Fail> {
        let x = node.inputs[0].expect("conv-transpose input");
        let (xs, ws) = (self.shape(x).to_vec(), self.shape(node.inputs[1].expect("conv-transpose weight")).to_vec());
        let out = node.outputs[0];
        let ys = self.shape(out).to_vec();
        if xs.len() != 4 || attrs.group != 1 {
            return unsupported("ConvTranspose other than 2-D with group 1");
        }
        let (n, cin, h, w) = (xs[0], xs[1], xs[2], xs[3]);
        let (cout, kh, kw) = (ws[1], ws[2], ws[3]);
        let (s, d) = ((attrs.strides[0], attrs.strides[1]), (attrs.dilations[0], attrs.dilations[1]));
        // Zeros around the spread-out input: (k − 1)·d − pad before, plus output padding after.
        let side = |k: usize, d: usize, pad: usize, extra: usize| ((k - 1) * d + extra).checked_sub(pad);
        let op = |i: usize| output_padding.get(i).copied().unwrap_or(0);
        let (Some(top), Some(left), Some(bottom), Some(right)) = (
            side(kh, d.0, attrs.pads_begin[0], 0),
            side(kw, d.1, attrs.pads_begin[1], 0),
            side(kh, d.0, attrs.pads_end[0], op(0)),
            side(kw, d.1, attrs.pads_end[1], op(1)),
        ) else {
            return unsupported("ConvTranspose padding wider than its kernel");
        };
        let (hp, wp) = (top + (h - 1) * s.0 + 1 + bottom, left + (w - 1) * s.1 + 1 + right);
        let weight = self.constant_f32(node.inputs[1], "conv-transpose weight")?;
        let bias = match node.inputs.get(2).copied().flatten().filter(|_| main_inputs > 2) {
            Some(b) => Some(self.constant_f32(Some(b), "conv-transpose bias")?),
            None => None,
        };
        // W'[co][ci][y][x] = W[ci][co][kh − 1 − y][kw − 1 − x].
        let mut flipped = vec![0f32; weight.len()];
        for ci in 0..cin {
            for co in 0..cout {
                for y in 0..kh {
                    for xx in 0..kw {
                        flipped[((co * cin + ci) * kh + y) * kw + xx] =
                            weight[((ci * cout + co) * kh + kh - 1 - y) * kw + kw - 1 - xx];
                    }
                }
            }
        }
        let input = self.get(x, Layout::Nhwc)?;
        let spread = Arg::Buf(self.plan.buffer(n * hp * wp * cin));
        let zero = self.plan.constant(vec![0.0]);
        self.copy(&format!("{} zeros", node.name), CopySpec::expand(&[1], &[n * hp * wp * cin])?, zero, spread)?;
        let spec = CopySpec {
            extents: vec![n, h, w, cin],
            src_offset: 0,
            src_strides: vec![(h * w * cin) as isize, (w * cin) as isize, cin as isize, 1],
            dst_offset: (top * wp + left) * cin,
            dst_strides: vec![(hp * wp * cin) as isize, (s.0 * wp * cin) as isize, (s.1 * cin) as isize, 1],
            src_elems: n * h * w * cin,
            dst_elems: n * hp * wp * cin,
        };
        self.copy(&format!("{} spread", node.name), spec, input, spread)?;
        let g = ConvGeometry {
            batch: n,
            h: hp,
            w: wp,
            c: cin,
            kh,
            kw,
            stride: (1, 1),
            dilation: d,
            pad: (0, 0),
            oh: ys[2],
            ow: ys[3],
        };
        let view = ResultView { shape: ys.clone(), layout: Layout::Nhwc };
        let tail = self.tail(node, steps)?;
        let fused = self.epilogue(&tail, &view)?;
        let complete = fused.is_some() || steps.is_empty();
        let (epilogue, operand_args) = fused.unwrap_or_default();
        let dst =
            if complete { self.define(out, Layout::Nhwc) } else { Arg::Buf(self.plan.buffer(ys.iter().product())) };
        let work = self.work(node);
        let parts = ConvParts { input: spread, dst, bias, epilogue, operand_args };
        self.gemm_conv(&node.name, g, (cout, &flipped), parts, None, work)?;
        if !complete {
            self.unfused(&node.name, out, &tail, dst, Layout::Nhwc)?;
        }
        Ok(())
    }
}
