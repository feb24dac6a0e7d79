//! Lowering of convolution layers (implicit-im2col GEMM, 1x1 as plain GEMM, Winograd,
//! depthwise, grouped), each with its fused element-wise tail applied in registers when the
//! generator supports every step, else by a following element-wise kernel; the dispatch of
//! every layer kind (Gemm and MatMul are in `matrix`, ConvTranspose in `conv_transpose`).

use crate::builder::Arg;
use crate::layout::Layout;
use crate::lowerer::{unsupported, Fail, Lowerer};
use crate::matrix::GemmAttrs;
use crate::schedule::{conv_kc, matrix_kc};
use veltair_codegen::copy::CopySpec;
use veltair_codegen::depthwise::{compile_depthwise, DepthwiseSpec};
use veltair_codegen::epilogue::Epilogue;
use veltair_codegen::gemm::{pack_b, ASource, Bias, GemmBatch, GemmSpec, OutView};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::tiling::{describe, elementwise};
use veltair_codegen::winograd::{
    compile_input_transform, compile_output_transform, transform_weights, WinogradSpec, WinogradTile,
};
use veltair_ir::{ConvAttrs, EpilogueStep, Node, Op, SliceAxis, ValueId};

/// Channels (in and out) from which 3x3 stride-1 convolutions use Winograd: below, the
/// per-position GEMMs are too thin to gain.
const WINOGRAD_MIN_CHANNELS: usize = 8;

/// A convolution's runtime operands and fused tail, as every lowering of it needs them.
pub(crate) struct ConvParts {
    pub input: Arg,
    pub dst: Arg,
    pub bias: Option<Vec<f32>>,
    pub epilogue: Epilogue,
    pub operand_args: Vec<Arg>,
}

/// The layer's result (logical shape and stored layout) for epilogue operand classification.
pub(crate) struct ResultView {
    pub shape: Vec<usize>,
    pub layout: Layout,
}

impl Lowerer<'_> {
    pub fn layer(&mut self, node: &Node, main: &Op, main_inputs: usize, steps: &[EpilogueStep]) -> Result<(), Fail> {
        match main {
            Op::Conv(attrs) => self.conv(node, attrs, main_inputs, steps),
            &Op::Gemm { alpha, beta, trans_a, trans_b } => {
                self.gemm(node, main_inputs, GemmAttrs { alpha, beta, trans_a, trans_b }, steps)
            }
            Op::MatMul => self.matmul(node, steps),
            Op::ConvTranspose { conv, output_padding } => {
                self.conv_transpose(node, conv, output_padding, main_inputs, steps)
            }
            other => unsupported(format!("fused layer around {other:?}")),
        }
    }

    pub(crate) fn constant_f32(&self, v: Option<ValueId>, what: &str) -> Result<Vec<f32>, Fail> {
        let Some(v) = v else { return unsupported(format!("missing {what}")) };
        let value = self.graph.value(v);
        match &value.constant {
            Some(t) => Ok(t.as_f32(&value.name).map_err(|e| Fail::Unsupported(e.to_string()))?.to_vec()),
            None => unsupported(format!(
                "{what} `{}` is computed at run time (only constant weights are packed)",
                value.name
            )),
        }
    }

    fn conv(&mut self, node: &Node, attrs: &ConvAttrs, main_inputs: usize, steps: &[EpilogueStep]) -> Result<(), Fail> {
        let x = node.inputs[0].expect("conv input");
        let (xs, ws) = (self.shape(x).to_vec(), self.shape(node.inputs[1].expect("conv weight")).to_vec());
        let out = node.outputs[0];
        let ys = self.shape(out).to_vec();
        if xs.len() != 4 {
            return unsupported(format!("{}-D convolution (only 2-D is generated)", xs.len() - 2));
        }
        let w = self.constant_f32(node.inputs[1], "convolution weight")?;
        let bias = match node.inputs.get(2).copied().flatten().filter(|_| main_inputs > 2) {
            Some(b) => Some(self.constant_f32(Some(b), "convolution bias")?),
            None => None,
        };
        let (cin, cout, kh, kw) = (xs[1], ws[0], ws[2], ws[3]);
        let g = ConvGeometry {
            batch: xs[0],
            h: xs[2],
            w: xs[3],
            c: cin,
            kh,
            kw,
            stride: (attrs.strides[0], attrs.strides[1]),
            dilation: (attrs.dilations[0], attrs.dilations[1]),
            pad: (attrs.pads_begin[0], attrs.pads_begin[1]),
            oh: ys[2],
            ow: ys[3],
        };
        let depthwise = attrs.group == cin && cout == cin && ws[1] == 1 && cin > 1;
        if attrs.group > 1 && !depthwise {
            if !cin.is_multiple_of(attrs.group) || !cout.is_multiple_of(attrs.group) {
                return unsupported(format!("group {} does not divide the channels", attrs.group));
            }
            return self.grouped_conv(node, g, (cout, attrs.group), &w, bias, steps);
        }
        let view = ResultView { shape: ys.clone(), layout: Layout::Nhwc };
        let tail = self.tail(node, steps)?;
        let fused = self.epilogue(&tail, &view)?;
        let (epilogue, operand_args) = fused.clone().unwrap_or_default();
        let input = self.get(x, Layout::Nhwc)?;
        let complete = fused.is_some() || steps.is_empty();
        let winograd = WinogradSpec { geometry: g, cout, tile: WinogradTile::F4x4 };
        let use_winograd = attrs.group == 1
            && (kh, kw, g.stride, g.dilation) == (3, 3, (1, 1), (1, 1))
            && cin >= WINOGRAD_MIN_CHANNELS
            && cout >= WINOGRAD_MIN_CHANNELS
            && winograd.validate().is_ok();
        // A dense convolution feeding only a channel Concat writes into its slice of the output.
        let slot = self.concat_slots.get(&out).copied().filter(|_| complete && attrs.group == 1 && !use_winograd);
        let dst = match slot {
            Some(slot) => {
                self.written_in_place.insert(out);
                self.get_or_define(slot.concat, Layout::Nhwc)
            }
            None if complete => self.define(out, Layout::Nhwc),
            None => Arg::Buf(self.plan.buffer(ys.iter().product())),
        };
        let work = self.work(node);
        if use_winograd {
            let parts = ConvParts { input, dst, bias, epilogue, operand_args };
            self.winograd(node, &winograd, &w, parts, work)?;
        } else if depthwise {
            let spec = DepthwiseSpec { geometry: g, bias: bias.is_some(), epilogue };
            let k = self.kernel(format!("{spec:?}"), {
                let spec = spec.clone();
                move |t| compile_depthwise(&spec, t)
            })?;
            let mut args = vec![input, self.plan.constant(spec.pack_weights(&w))];
            if let Some(b) = &bias {
                args.push(self.plan.constant(spec.pack_bias(b)));
            }
            args.push(dst);
            args.extend(operand_args);
            self.plan.step(&node.name, k, args, work, describe(spec.describe(self.options.max_threads)));
        } else {
            let view = slot.map(|s| OutView { row_stride: s.channels, col_offset: s.offset });
            let parts = ConvParts { input, dst, bias, epilogue, operand_args };
            self.gemm_conv(&node.name, g, (cout, &w), parts, view, work)?;
        }
        if !complete {
            self.unfused(&node.name, out, &tail, dst, Layout::Nhwc)?;
        }
        Ok(())
    }

    /// A dense convolution as a GEMM over the implicit im2col matrix (a plain GEMM for 1x1
    /// stride-1 unpadded ones), writing `cout` columns of `parts.dst` (through `view`).
    pub(crate) fn gemm_conv(
        &mut self,
        label: &str,
        g: ConvGeometry,
        (cout, w): (usize, &[f32]),
        parts: ConvParts,
        view: Option<OutView>,
        work: u64,
    ) -> Result<(), Fail> {
        let (cin, kh, kw) = (g.c, g.kh, g.kw);
        let pointwise = kh == 1 && kw == 1 && g.stride == (1, 1) && g.pad == (0, 0) && (g.oh, g.ow) == (g.h, g.w);
        let a = if pointwise { ASource::Matrix } else { ASource::Conv2d(g) };
        let has_bias = parts.bias.is_some();
        let spec = GemmSpec {
            m: g.m(),
            n: cout,
            k: g.k(),
            a,
            bias: if has_bias { Bias::PerCol } else { Bias::None },
            epilogue: parts.epilogue,
            out: view,
        };
        let k = spec.k;
        let candidates =
            self.gemm_schedules(&spec, |cap| if pointwise { matrix_kc(k, cap) } else { conv_kc(cin, k, cap) });
        // B[(ky·kw + kx)·cin + ci][co] = W[co][ci][ky][kx].
        let mut bmat = vec![0f32; g.k() * cout];
        for co in 0..cout {
            for ci in 0..cin {
                for t in 0..kh * kw {
                    bmat[(t * cin + ci) * cout + co] = w[(co * cin + ci) * kh * kw + t];
                }
            }
        }
        let mut args = vec![parts.input, self.plan.constant(pack_b(&spec, &candidates[0].schedule, &bmat))];
        if let Some(b) = parts.bias {
            args.push(self.plan.constant(b));
        }
        args.push(parts.dst);
        args.extend(parts.operand_args);
        self.gemm_step(label.into(), work, &spec, &candidates, None, args)
    }

    /// A grouped (not depthwise) convolution: per group, its input channels copied out and a
    /// dense convolution writing its output channels' columns; then the epilogue.
    fn grouped_conv(
        &mut self,
        node: &Node,
        g: ConvGeometry,
        (cout, groups): (usize, usize),
        w: &[f32],
        bias: Option<Vec<f32>>,
        steps: &[EpilogueStep],
    ) -> Result<(), Fail> {
        let (cin, out) = (g.c, node.outputs[0]);
        let (cg, og) = (cin / groups, cout / groups);
        let input = self.get(node.inputs[0].expect("conv input"), Layout::Nhwc)?;
        let result =
            if steps.is_empty() { self.define(out, Layout::Nhwc) } else { Arg::Buf(self.plan.buffer(g.m() * cout)) };
        let stored = [g.batch, g.h, g.w, cin];
        let work = self.work(node) / groups as u64;
        let per_group = og * cg * g.kh * g.kw;
        for gi in 0..groups {
            let part = Arg::Buf(self.plan.buffer(g.batch * g.h * g.w * cg));
            let slice = [SliceAxis { axis: 3, start: gi * cg, step: 1, len: cg }];
            self.copy(&format!("{} group {gi} input", node.name), CopySpec::slice(&stored, &slice)?, input, part)?;
            let parts = ConvParts {
                input: part,
                dst: result,
                bias: bias.as_ref().map(|b| b[gi * og..(gi + 1) * og].to_vec()),
                epilogue: Epilogue::default(),
                operand_args: Vec::new(),
            };
            let geometry = ConvGeometry { c: cg, ..g };
            let view = Some(OutView { row_stride: cout, col_offset: gi * og });
            let label = format!("{} group {gi}", node.name);
            self.gemm_conv(&label, geometry, (og, &w[gi * per_group..(gi + 1) * per_group]), parts, view, work)?;
        }
        if !steps.is_empty() {
            let tail = self.tail(node, steps)?;
            self.unfused(&node.name, out, &tail, result, Layout::Nhwc)?;
        }
        Ok(())
    }

    /// A 3x3 stride-1 convolution as Winograd F(4x4, 3x3): the input transform, the batch of
    /// one GEMM per transform position (one kernel call), and the output transform with bias
    /// and epilogue.
    fn winograd(
        &mut self,
        node: &Node,
        spec: &WinogradSpec,
        w: &[f32],
        parts: ConvParts,
        work: u64,
    ) -> Result<(), Fail> {
        let threads = self.options.max_threads;
        let positions = spec.tile.positions();
        let v = self.plan.buffer(spec.v_elems());
        let k_in = self.kernel(format!("winograd input {spec:?}"), {
            let spec = *spec;
            move |t| compile_input_transform(&spec, t)
        })?;
        let (tiles, c) = (spec.tiles(), spec.geometry.c);
        let shape = [positions, tiles, c];
        let describe_transform =
            |what: &str| describe(elementwise(what, &shape, "= Bᵀ d B (per 6x6 tile)", vec![], threads));
        self.plan.step(
            format!("{} winograd input", node.name),
            k_in,
            vec![parts.input, Arg::Buf(v)],
            0,
            describe_transform("winograd_input"),
        );
        let m = self.plan.buffer(spec.m_elems());
        let gspec = spec.gemm_spec();
        let gk = gspec.k;
        let candidates = self.gemm_schedules(&gspec, |cap| matrix_kc(gk, cap));
        let packed: Vec<Vec<f32>> =
            transform_weights(spec, w).iter().map(|u| pack_b(&gspec, &candidates[0].schedule, u)).collect();
        let batch = GemmBatch {
            count: positions,
            a_stride: spec.v_stride(),
            b_stride: packed[0].len(),
            c_stride: spec.m_stride(),
        };
        let weights = self.plan.constant(packed.concat());
        let args = vec![Arg::Buf(v), weights, Arg::Buf(m)];
        self.gemm_step(format!("{} winograd gemms", node.name), work, &gspec, &candidates, Some(&batch), args)?;
        let has_bias = parts.bias.is_some();
        let epilogue = parts.epilogue;
        let k_out = self.kernel(format!("winograd output {spec:?} {has_bias} {epilogue:?}"), {
            let (spec, epilogue) = (*spec, epilogue.clone());
            move |t| compile_output_transform(&spec, has_bias, &epilogue, t)
        })?;
        let mut args = vec![Arg::Buf(m)];
        if let Some(b) = parts.bias {
            args.push(self.plan.constant(b));
        }
        args.push(parts.dst);
        args.extend(parts.operand_args);
        self.plan.step(format!("{} winograd output", node.name), k_out, args, 0, describe_transform("winograd_output"));
        Ok(())
    }
}
