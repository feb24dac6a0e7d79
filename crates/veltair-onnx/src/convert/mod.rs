//! Per-operator conversion of ONNX nodes into IR operators. Operands that fix shapes are
//! resolved here from constants (or from attributes in older opsets) into static attributes.

mod arg;
mod attention;
mod elementwise;
mod functions;
mod layout;
mod loss;
mod nn;
mod reduce_resize;

use crate::attrs::Attrs;
use crate::NodeProblem;
use onnx_protobuf::NodeProto;
use veltair_ir::{BinaryOp, DType, Graph, Op, Tensor, TensorType, UnaryOp, ValueId};

/// Every ONNX operator (default domain) the importer converts.
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "Attention",
    "AveragePool",
    "BatchNormalization",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DepthToSpace",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GroupNormalization",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "LpPool",
    "LpNormalization",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "NegativeLogLikelihoodLoss",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "RMSNormalization",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "Round",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "SoftmaxCrossEntropyLoss",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// What a node becomes.
pub enum Lowered {
    /// An IR operator over these inputs.
    Op { op: Op, inputs: Vec<Option<Operand>> },
    /// Several IR operators (the operator's function body, inlined): each over operands and
    /// earlier steps' first results ([`Operand::Step`]); output `i` of the node is `outputs[i]`
    /// (a step's first result or an existing value).
    Steps { steps: Vec<(Op, Vec<Option<Operand>>)>, outputs: Vec<Operand> },
    /// Outputs known without an operator: existing values (Identity) or constants (Shape).
    Values(Vec<Produced>),
}

/// A function body under construction: steps whose results later steps read by index, with
/// constants made in the element type `dtype`.
pub struct Body {
    pub steps: Vec<(Op, Vec<Option<Operand>>)>,
    pub dtype: DType,
}

impl Body {
    pub fn new(dtype: DType) -> Body {
        Body { steps: Vec::new(), dtype }
    }

    /// Appends a step; returns its first result.
    pub fn push(&mut self, op: Op, inputs: Vec<Operand>) -> Operand {
        self.steps.push((op, inputs.into_iter().map(Some).collect()));
        Operand::Step(self.steps.len() - 1)
    }

    pub fn binary(&mut self, op: BinaryOp, a: Operand, b: Operand) -> Operand {
        self.push(Op::Binary(op), vec![a, b])
    }

    pub fn unary(&mut self, op: UnaryOp, a: Operand) -> Operand {
        self.push(Op::Unary(op), vec![a])
    }

    /// `t` converted to `to` (folded at import).
    pub fn constant_as(&mut self, t: Tensor, to: DType) -> Operand {
        self.push(Op::Cast { to, saturate: false }, vec![Operand::Constant(t)])
    }

    /// `t` in the body's element type.
    pub fn constant(&mut self, t: Tensor) -> Operand {
        self.constant_as(t, self.dtype)
    }

    /// The scalar `v` in the body's element type.
    pub fn scalar(&mut self, v: f32) -> Result<Operand, NodeProblem> {
        Ok(self.constant(Tensor::from_f32(Vec::new(), vec![v]).map_err(|e| invalid(e.to_string()))?))
    }

    /// The node, with output `i` being `outputs[i]`.
    pub fn finish(self, outputs: Vec<Operand>) -> Lowered {
        Lowered::Steps { steps: self.steps, outputs }
    }
}

impl Lowered {
    /// Steps whose last step's first result is the node's one output.
    pub fn chain(steps: Vec<(Op, Vec<Option<Operand>>)>) -> Lowered {
        let last = steps.len().saturating_sub(1);
        Lowered::Steps { steps, outputs: vec![Operand::Step(last)] }
    }
}

/// An operator input: an existing value, a constant made during conversion, or (in
/// [`Lowered::Steps`]) the first result of an earlier step.
#[derive(Clone)]
pub enum Operand {
    Value(ValueId),
    Constant(Tensor),
    Step(usize),
}

/// One output of a node that needs no operator.
pub enum Produced {
    Existing(ValueId),
    Constant(Tensor),
}

/// A node under conversion, with its inputs resolved to graph values.
pub struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    pub attrs: Attrs<'a>,
    pub opset: i64,
    pub graph: &'a Graph,
    pub inputs: Vec<Option<ValueId>>,
}

pub fn invalid(m: impl Into<String>) -> NodeProblem {
    NodeProblem::Invalid(m.into())
}

pub fn unsupported(m: impl Into<String>) -> NodeProblem {
    NodeProblem::Unsupported(m.into())
}

impl<'a> NodeCtx<'a> {
    pub fn input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }

    /// Type of a required input.
    pub fn ty(&self, i: usize) -> Result<&'a TensorType, NodeProblem> {
        let id = self.input(i).ok_or_else(|| invalid(format!("required input #{i} is missing")))?;
        Ok(&self.graph.value(id).ty)
    }

    /// The value of input `i` when present; an error when present but not constant.
    pub fn constant(&self, i: usize) -> Result<Option<&'a Tensor>, NodeProblem> {
        let Some(id) = self.input(i) else {
            return Ok(None);
        };
        let v = self.graph.value(id);
        v.constant.as_ref().map(Some).ok_or_else(|| {
            let from_inputs =
                self.graph.input_ancestors(id).into_iter().map(|a| self.graph.value(a).name.clone()).collect();
            NodeProblem::NeedsConstant { input: v.name.clone(), from_inputs }
        })
    }

    /// A constant integer operand (shape, axes, pads…) as a list.
    pub fn int_list(&self, i: usize) -> Result<Option<Vec<i64>>, NodeProblem> {
        self.constant(i)?.map(|t| t.as_i64_vec(&format!("input #{i}")).map_err(|e| invalid(e.to_string()))).transpose()
    }

    /// A constant scalar-or-one-element operand as f64.
    pub fn scalar(&self, i: usize) -> Result<Option<f64>, NodeProblem> {
        match self.constant(i)? {
            None => Ok(None),
            Some(t) if t.numel() == 1 => Ok(Some(t.data().to_f64_vec()[0])),
            Some(t) => Err(invalid(format!("input #{i} must hold one value, has shape {:?}", t.shape()))),
        }
    }

    /// Number of outputs the node declares.
    pub fn n_outputs(&self) -> usize {
        self.node.output.len()
    }

    /// True when output `i` is declared and used by name.
    pub fn wants_output(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|n| !n.is_empty())
    }

    /// The node as an IR operator over the given input positions.
    pub fn op(&self, op: Op, positions: &[usize]) -> Lowered {
        Lowered::Op { op, inputs: positions.iter().map(|&i| self.input(i).map(Operand::Value)).collect() }
    }

    /// The node as an IR operator over all of its inputs.
    pub fn op_all(&self, op: Op) -> Lowered {
        Lowered::Op { op, inputs: self.inputs.iter().map(|i| i.map(Operand::Value)).collect() }
    }
}

/// A family's converter: `None` when the operator is not one of its own.
type Converter = fn(&str, &NodeCtx) -> Result<Option<Lowered>, NodeProblem>;

/// Every operator family, asked in turn.
const FAMILIES: [Converter; 8] = [
    elementwise::convert,
    arg::convert,
    attention::convert,
    loss::convert,
    functions::convert,
    nn::convert,
    layout::convert,
    reduce_resize::convert,
];

/// Converts one node.
pub fn convert(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let op = ctx.node.op_type.as_str();
    for family in FAMILIES {
        if let Some(l) = family(op, ctx)? {
            return Ok(l);
        }
    }
    Err(unsupported(format!("operator {op}")))
}

/// Normalises a possibly negative axis against `rank`.
pub fn axis(a: i64, rank: usize) -> Result<usize, NodeProblem> {
    veltair_ir::shape::normalize_axis(a, rank, "axis").map_err(|e| invalid(e.to_string()))
}
