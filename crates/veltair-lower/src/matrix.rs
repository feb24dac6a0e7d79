//! Gemm and MatMul. A constant right operand is packed at compile time (Gemm's `alpha` and
//! `transB` folded into the packing) and multiplied by the scheduled GEMM; a right operand
//! computed at run time, or a batched one, goes to the batched-MatMul kernel, with `transB`
//! as a transposing copy and `alpha` as a scale in the tail. `transA` is a transposing copy
//! (or a constant arranged at compile time). Gemm's `beta·C` is a per-column bias when C is a
//! constant row, otherwise an addend at the head of the tail (scaled at compile time when
//! constant, by an element-wise kernel when computed at run time). One-dimensional MatMul
//! operands are matrices of one row (A) or one column (B).

use crate::builder::Arg;
use crate::elementwise::Source;
use crate::layers::ResultView;
use crate::layout::{align_rank, Layout};
use crate::lowerer::{unsupported, Fail, Lowerer};
use crate::schedule::matrix_kc;
use crate::tail::TailStep;
use veltair_codegen::copy::CopySpec;
use veltair_codegen::gemm::{pack_b, ASource, Bias, GemmSpec};
use veltair_codegen::matmul::{compile_batched_matmul, BatchedMatmulSpec};
use veltair_codegen::pointwise::PointwiseStep;
use veltair_codegen::tiling::describe;
use veltair_ir::{BinaryOp, EpilogueStep, Node, ValueId};

/// Gemm's attributes.
#[derive(Clone, Copy)]
pub(crate) struct GemmAttrs {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// A matrix operand as the product reads it: where it is and its logical shape (at least 2-D).
struct Operand {
    arg: Arg,
    shape: Vec<usize>,
}

impl Lowerer<'_> {
    /// MatMul (numpy semantics: batched, broadcast batch axes, 1-D operands promoted).
    pub(crate) fn matmul(&mut self, node: &Node, steps: &[EpilogueStep]) -> Result<(), Fail> {
        let (a, b) = (self.operand_value(node, 0)?, self.operand_value(node, 1)?);
        let (xs, bs) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let promoted = xs.len() == 1 || bs.len() == 1;
        let xs = if xs.len() == 1 { vec![1, xs[0]] } else { xs };
        let bs = if bs.len() == 1 { vec![bs[0], 1] } else { bs };
        let tail = self.tail(node, steps)?;
        let lhs = Operand { arg: self.get(a, Layout::Plain)?, shape: xs };
        if bs.len() == 2 && !promoted && self.graph.value(b).constant.is_some() {
            let bmat = self.constant_f32(Some(b), "right operand")?;
            return self.constant_product(node, lhs, bmat, None, tail);
        }
        let rhs = Operand { arg: self.get(b, Layout::Plain)?, shape: bs };
        self.batched_product(node, lhs, rhs, tail, !promoted)
    }

    /// Gemm: `alpha · op(A) · op(B) + beta · C`, then the node's epilogue.
    pub(crate) fn gemm(
        &mut self,
        node: &Node,
        main_inputs: usize,
        attrs: GemmAttrs,
        steps: &[EpilogueStep],
    ) -> Result<(), Fail> {
        let (a, b) = (self.operand_value(node, 0)?, self.operand_value(node, 1)?);
        let (xs, bs) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let (m, k) = if attrs.trans_a { (xs[1], xs[0]) } else { (xs[0], xs[1]) };
        let n = if attrs.trans_b { bs[0] } else { bs[1] };
        let lhs = Operand { arg: self.matrix(node, a, attrs.trans_a, "A")?, shape: vec![m, k] };
        let c = node.inputs.get(2).copied().flatten().filter(|_| main_inputs > 2 && attrs.beta != 0.0);
        let mut tail = Vec::new();
        if self.graph.value(b).constant.is_some() {
            let data = self.constant_f32(Some(b), "right operand")?;
            let mut bmat = vec![0f32; k * n];
            for kk in 0..k {
                for nn in 0..n {
                    let x = if attrs.trans_b { data[nn * k + kk] } else { data[kk * n + nn] };
                    bmat[kk * n + nn] = attrs.alpha * x;
                }
            }
            let mut bias = None;
            if let Some(c) = c {
                let cs = align_rank(self.shape(c), 2);
                if self.graph.value(c).constant.is_some() && cs == [1, n] {
                    let mut data = self.constant_f32(Some(c), "C")?;
                    data.iter_mut().for_each(|x| *x *= attrs.beta);
                    bias = Some(data);
                } else {
                    tail.push(self.addend(node, c, attrs.beta)?);
                }
            }
            tail.extend(self.tail(node, steps)?);
            return self.constant_product(node, lhs, bmat, bias, tail);
        }
        let rhs = Operand { arg: self.matrix(node, b, attrs.trans_b, "B")?, shape: vec![k, n] };
        if attrs.alpha != 1.0 {
            let alpha = self.plan.constant(vec![attrs.alpha]);
            let operand = Source::Temp(alpha, Layout::Plain, vec![]);
            tail.push(TailStep::Binary { op: BinaryOp::Mul, operand, operand_first: false });
        }
        if let Some(c) = c {
            tail.push(self.addend(node, c, attrs.beta)?);
        }
        tail.extend(self.tail(node, steps)?);
        self.batched_product(node, lhs, rhs, tail, true)
    }

    /// Input `i` of `node`, which the product needs.
    fn operand_value(&self, node: &Node, i: usize) -> Result<ValueId, Fail> {
        match node.inputs.get(i).copied().flatten() {
            Some(v) => Ok(v),
            None => unsupported(format!("operand #{i} is missing")),
        }
    }

    /// Gemm operand `v` (2-D), transposed when `trans`: a constant arranged at compile time or
    /// a transposing copy.
    fn matrix(&mut self, node: &Node, v: ValueId, trans: bool, what: &str) -> Result<Arg, Fail> {
        if !trans {
            return self.get(v, Layout::Plain);
        }
        let shape = self.shape(v).to_vec();
        if self.graph.value(v).constant.is_some() {
            let data = self.constant_f32(Some(v), what)?;
            let (rows, cols) = (shape[0], shape[1]);
            let t = (0..rows * cols).map(|i| data[(i % rows) * cols + i / rows]).collect();
            return Ok(self.plan.constant(t));
        }
        let src = self.get(v, Layout::Plain)?;
        let dst = Arg::Buf(self.plan.buffer(shape.iter().product()));
        self.copy(&format!("{} {what} transposed", node.name), CopySpec::transpose(&shape, &[1, 0])?, src, dst)?;
        Ok(dst)
    }

    /// The tail step adding `beta · C`.
    fn addend(&mut self, node: &Node, c: ValueId, beta: f32) -> Result<TailStep, Fail> {
        let add = |operand| TailStep::Binary { op: BinaryOp::Add, operand, operand_first: false };
        let shape = self.shape(c).to_vec();
        if beta == 1.0 {
            return Ok(add(Source::Value(c)));
        }
        if self.graph.value(c).constant.is_some() {
            let mut data = self.constant_f32(Some(c), "C")?;
            data.iter_mut().for_each(|x| *x *= beta);
            return Ok(add(Source::Temp(self.plan.constant(data), Layout::Plain, shape)));
        }
        let scaled = Arg::Buf(self.plan.buffer(shape.iter().product()));
        let factor = self.plan.constant(vec![beta]);
        let sources = vec![Source::Value(c), Source::Temp(factor, Layout::Plain, vec![])];
        let steps = vec![PointwiseStep::Binary { op: BinaryOp::Mul, input: 1, operand_first: false }];
        self.pointwise_into(&format!("{} beta C", node.name), sources, steps, (scaled, Layout::Plain, &shape))?;
        Ok(add(Source::Temp(scaled, Layout::Plain, shape)))
    }

    /// `lhs [.., M, K]` times the constant `bmat [K, N]` (row-major) by the scheduled GEMM,
    /// with an optional per-column bias, then `tail`.
    fn constant_product(
        &mut self,
        node: &Node,
        lhs: Operand,
        bmat: Vec<f32>,
        bias: Option<Vec<f32>>,
        tail: Vec<TailStep>,
    ) -> Result<(), Fail> {
        let out = node.outputs[0];
        let ys = self.shape(out).to_vec();
        let k = lhs.shape[lhs.shape.len() - 1];
        let m = lhs.shape.iter().product::<usize>() / k.max(1);
        let n = bmat.len() / k.max(1);
        let view = ResultView { shape: ys.clone(), layout: Layout::Plain };
        let fused = self.epilogue(&tail, &view)?;
        let (epilogue, operand_args) = fused.clone().unwrap_or_default();
        let complete = fused.is_some() || tail.is_empty();
        let dst = if complete { self.define(out, Layout::Plain) } else { Arg::Buf(self.plan.buffer(m * n)) };
        let spec = GemmSpec {
            m,
            n,
            k,
            a: ASource::Matrix,
            bias: if bias.is_some() { Bias::PerCol } else { Bias::None },
            epilogue,
            out: None,
        };
        let candidates = self.gemm_schedules(&spec, |cap| matrix_kc(k, cap));
        let mut args = vec![lhs.arg, self.plan.constant(pack_b(&spec, &candidates[0].schedule, &bmat))];
        if let Some(bias) = bias {
            args.push(self.plan.constant(bias));
        }
        args.push(dst);
        args.extend(operand_args);
        let work = self.work(node);
        self.gemm_step(node.name.clone(), work, &spec, &candidates, None, args)?;
        if !complete {
            self.unfused(&node.name, out, &tail, dst, Layout::Plain)?;
        }
        Ok(())
    }

    /// `lhs [.., M, K]` times `rhs [.., K, N]` by the batched-MatMul kernel: an operand whose
    /// batch axes are all 1 is shared by every batch; one that broadcasts partially is expanded. The tail is fused only when
    /// `fusable` (the result's logical shape is the product's, no promoted axis).
    fn batched_product(
        &mut self,
        node: &Node,
        lhs: Operand,
        rhs: Operand,
        tail: Vec<TailStep>,
        fusable: bool,
    ) -> Result<(), Fail> {
        let out = node.outputs[0];
        let (xs, bs) = (&lhs.shape, &rhs.shape);
        let r = xs.len().max(bs.len());
        let (xa, ba) = (align_rank(xs, r), align_rank(bs, r));
        let batch_dims: Vec<usize> = (0..r - 2).map(|i| xa[i].max(ba[i])).collect();
        let (m, k, n) = (xa[r - 2], xa[r - 1], ba[r - 1]);
        // An operand whose batch axes are neither the result's nor all 1 is expanded first.
        let mut operand = |own: Vec<usize>, arg: Arg, what: &str| -> Result<(Arg, usize), Fail> {
            let mat = own[r - 2] * own[r - 1];
            if own[..r - 2] == *batch_dims {
                return Ok((arg, mat));
            }
            if own[..r - 2].iter().all(|&d| d == 1) {
                return Ok((arg, 0));
            }
            let mut full = batch_dims.clone();
            full.extend_from_slice(&own[r - 2..]);
            let dst = Arg::Buf(self.plan.buffer(full.iter().product()));
            self.copy(&format!("{} {what} broadcast", node.name), CopySpec::expand(&own, &full)?, arg, dst)?;
            Ok((dst, mat))
        };
        let (a_arg, a_stride) = operand(xa, lhs.arg, "A")?;
        let (b_arg, b_stride) = operand(ba, rhs.arg, "B")?;
        let ys = self.shape(out).to_vec();
        let view = ResultView { shape: ys.clone(), layout: Layout::Plain };
        let fused = if fusable { self.epilogue(&tail, &view)? } else { None };
        let (epilogue, operand_args) = fused.clone().unwrap_or_default();
        let complete = fused.is_some() || tail.is_empty();
        let batch: usize = batch_dims.iter().product();
        let dst = if complete { self.define(out, Layout::Plain) } else { Arg::Buf(self.plan.buffer(batch * m * n)) };
        let spec = BatchedMatmulSpec { batch, m, k, n, a_batch_stride: a_stride, b_batch_stride: b_stride, epilogue };
        let kernel = self.kernel(format!("{spec:?}"), {
            let spec = spec.clone();
            move |t| compile_batched_matmul(&spec, t)
        })?;
        let mut args = vec![a_arg, b_arg, dst];
        args.extend(operand_args);
        let work = self.work(node);
        self.plan.step(&node.name, kernel, args, work, describe(spec.describe(self.options.max_threads)));
        if !complete {
            self.unfused(&node.name, out, &tail, dst, Layout::Plain)?;
        }
        Ok(())
    }
}
