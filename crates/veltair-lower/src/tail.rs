//! A layer's element-wise tail: the steps after its main operator (the node's fused epilogue,
//! and steps the lowering adds itself, such as Gemm's `alpha` scale and `beta·C` addend),
//! whose operands are graph values or buffers and constants the lowering made. The tail is
//! fused into the layer's kernel when the generator can apply every step in registers, else
//! it runs as a following element-wise kernel.

use crate::builder::Arg;
use crate::elementwise::Source;
use crate::layers::ResultView;
use crate::layout::{align_rank, layouts_agree, Layout};
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::epilogue::{Epilogue, Operand, Step};
use veltair_codegen::pointwise::PointwiseStep;
use veltair_ir::{BinaryOp, EpilogueStep, Node, UnaryOp, ValueId};

/// One step of a tail on the accumulator.
#[derive(Clone)]
pub(crate) enum TailStep {
    Unary(UnaryOp),
    /// `acc = acc op x` (or `x op acc` when `operand_first`), `x` broadcast to the result.
    Binary {
        op: BinaryOp,
        operand: Source,
        operand_first: bool,
    },
}

impl Lowerer<'_> {
    /// The node's fused epilogue steps as a tail.
    pub(crate) fn tail(&self, node: &Node, steps: &[EpilogueStep]) -> Result<Vec<TailStep>, Fail> {
        steps
            .iter()
            .map(|step| match step {
                EpilogueStep::Unary(u) => Ok(TailStep::Unary(*u)),
                EpilogueStep::Binary { op, input, operand_first } => match node.inputs.get(*input).copied().flatten() {
                    Some(v) => {
                        Ok(TailStep::Binary { op: *op, operand: Source::Value(v), operand_first: *operand_first })
                    }
                    None => unsupported(format!("epilogue operand #{input} is missing")),
                },
            })
            .collect()
    }

    /// Classifies the tail's operands against the result; `None` when some operand or step
    /// cannot be fused (the caller then runs the tail as a separate element-wise kernel).
    pub(crate) fn epilogue(
        &mut self,
        tail: &[TailStep],
        view: &ResultView,
    ) -> Result<Option<(Epilogue, Vec<Arg>)>, Fail> {
        let mut e = Epilogue::default();
        let mut args = Vec::new();
        let rank = view.shape.len();
        for step in tail {
            match step {
                TailStep::Unary(u) => e.steps.push(Step::Unary(*u)),
                TailStep::Binary { op, operand: source, operand_first } => {
                    let shape = align_rank(&self.source_shape(source), rank);
                    let numel: usize = shape.iter().product();
                    let ones = |axes: &[usize]| axes.iter().all(|&d| d == 1);
                    let per_col = ones(&shape[..rank - 1]) && shape[rank - 1] == view.shape[rank - 1];
                    let per_row = shape[rank - 1] == 1 && shape[..rank - 1] == view.shape[..rank - 1];
                    let per_channel = rank == 4 && shape == [1, view.shape[1], 1, 1];
                    let (operand, layout) = if numel == 1 {
                        (Operand::Scalar, Layout::Plain)
                    } else if shape == view.shape {
                        (Operand::Full, view.layout)
                    } else if view.layout == Layout::Nhwc && per_channel || view.layout == Layout::Plain && per_col {
                        (Operand::PerCol, Layout::Plain)
                    } else if view.layout == Layout::Plain && per_row {
                        (Operand::PerRow, Layout::Plain)
                    } else {
                        return Ok(None);
                    };
                    // An operand of lower rank is stored plain, whatever its aligned shape.
                    let own = self.source_shape(source);
                    let plain_only = own.len() < rank && !layouts_agree(&shape);
                    let arg = match source {
                        _ if plain_only && layout != Layout::Plain => return Ok(None),
                        Source::Value(v) => self.get(*v, layout)?,
                        Source::Temp(arg, held, _) if *held == layout || layouts_agree(&shape) => *arg,
                        Source::Temp(..) => return Ok(None),
                    };
                    e.operands.push(operand);
                    args.push(arg);
                    e.steps.push(Step::Binary {
                        op: *op,
                        operand: e.operands.len() - 1,
                        operand_first: *operand_first,
                    });
                }
            }
        }
        Ok(e.validate().is_ok().then_some((e, args)))
    }

    /// Runs `tail` into `out` after a layer whose result `tmp` (stored in `layout`) could not
    /// take it.
    pub(crate) fn unfused(
        &mut self,
        label: &str,
        out: ValueId,
        tail: &[TailStep],
        tmp: Arg,
        layout: Layout,
    ) -> Result<(), Fail> {
        let mut sources = vec![Source::Temp(tmp, layout, self.shape(out).to_vec())];
        let mut pw = Vec::new();
        for step in tail {
            pw.push(match step {
                TailStep::Unary(u) => PointwiseStep::Unary(*u),
                TailStep::Binary { op, operand, operand_first } => {
                    sources.push(operand.clone());
                    PointwiseStep::Binary { op: *op, input: sources.len() - 1, operand_first: *operand_first }
                }
            });
        }
        self.pointwise(&format!("{label} epilogue"), sources, pw, out)
    }
}
