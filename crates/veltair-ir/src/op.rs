//! Operators of the graph IR. Every operand that fixes a shape (axes, pads, target shapes,
//! slice bounds, resize sizes…) is resolved by the importer into a static attribute here, so an
//! operator's inputs are only the tensors it computes on.

use crate::DType;

/// Convolution geometry over the spatial axes (1, 2 or 3 of them), with padding resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    pub group: usize,
}

impl ConvAttrs {
    /// The attributes with every per-axis list rewritten by `f(list, neutral)`, `neutral` being
    /// the value of an axis that does nothing (1 for kernel, strides and dilations; 0 for pads).
    pub fn map_axes(&self, f: impl Fn(&[usize], usize) -> Vec<usize>) -> ConvAttrs {
        ConvAttrs {
            kernel: f(&self.kernel, 1),
            strides: f(&self.strides, 1),
            dilations: f(&self.dilations, 1),
            pads_begin: f(&self.pads_begin, 0),
            pads_end: f(&self.pads_end, 0),
            group: self.group,
        }
    }
}

/// Pooling geometry, with padding resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolAttrs {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    pub ceil_mode: bool,
    /// AveragePool: divide by the full window including padding.
    pub count_include_pad: bool,
    /// MaxPool indices output: `true` for column-major (storage_order = 1).
    pub column_major_indices: bool,
}

impl PoolAttrs {
    /// Like [`ConvAttrs::map_axes`].
    pub fn map_axes(&self, f: impl Fn(&[usize], usize) -> Vec<usize>) -> PoolAttrs {
        PoolAttrs {
            kernel: f(&self.kernel, 1),
            strides: f(&self.strides, 1),
            dilations: f(&self.dilations, 1),
            pads_begin: f(&self.pads_begin, 0),
            pads_end: f(&self.pads_end, 0),
            ..self.clone()
        }
    }
}

/// Element-wise operations of one or more broadcast inputs, applied left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    /// Integer or float remainder; `fmod` selects the C (truncated) convention.
    Mod {
        fmod: bool,
    },
    /// Logical on bools, bitwise on integers.
    And,
    Or,
    Xor,
    /// Integer shifts; a shift by the width or more gives 0.
    ShiftLeft,
    ShiftRight,
}

/// Comparisons producing bool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// Element-wise operations of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Sqrt,
    Reciprocal,
    Exp,
    Log,
    Erf,
    Neg,
    Abs,
    Sign,
    Floor,
    Ceil,
    Round,
    Sin,
    Cos,
    /// Trigonometric and hyperbolic functions the reference evaluator computes; generated code
    /// does not have them yet.
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Tanh,
    Sigmoid,
    /// `x · sigmoid(x)` (SiLU / Swish), formed by a graph pass from Mul(x, Sigmoid(x)).
    Silu,
    Softplus,
    Softsign,
    Relu,
    HardSwish,
    Not,
    LeakyRelu {
        alpha: f32,
    },
    Elu {
        alpha: f32,
    },
    Selu {
        alpha: f32,
        gamma: f32,
    },
    Celu {
        alpha: f32,
    },
    ThresholdedRelu {
        alpha: f32,
    },
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// Bounds are absent when the model gives none (no clipping on that side).
    Clip {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// `tanh` selects the tanh approximation; otherwise the exact erf form.
    Gelu {
        tanh: bool,
    },
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

/// How Pad fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

/// One sliced axis: elements `start, start+step, …` (`len` of them); `start` is in range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    pub axis: usize,
    pub start: usize,
    pub step: i64,
    pub len: usize,
}

/// Resize interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    Nearest,
    Linear,
    Cubic,
}

/// How an output coordinate maps back to an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

/// Rounding of the input coordinate in nearest mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Resize with all sizes and scales resolved (one entry per axis).
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeAttrs {
    pub mode: ResizeMode,
    pub coord: CoordMode,
    pub nearest: NearestMode,
    pub out_shape: Vec<usize>,
    pub scales: Vec<f32>,
    /// Region of interest for `TfCropAndResize`: starts then ends, one per axis.
    pub roi: Vec<f32>,
    pub cubic_coeff_a: f32,
    /// Widen the linear/cubic filter by 1/scale when downsampling.
    pub antialias: bool,
    pub exclude_outside: bool,
    pub extrapolation_value: f32,
}

/// A graph operator with its static attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Inputs: x, weight, optional bias.
    Conv(ConvAttrs),
    /// Inputs: x, weight, optional bias. `output_padding` adds to the trailing end.
    ConvTranspose {
        conv: ConvAttrs,
        output_padding: Vec<usize>,
    },
    /// Inputs: a, b, optional c.
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    Binary(BinaryOp),
    Mean,
    Compare(CompareOp),
    /// Inputs: condition, x, y.
    Where,
    Unary(UnaryOp),
    /// `saturate` clamps out-of-range values when casting to 8-bit floats.
    Cast {
        to: DType,
        saturate: bool,
    },
    /// `log` gives LogSoftmax; `coerce_2d` is the pre-opset-13 rule (flatten from `axis`).
    Softmax {
        axis: usize,
        log: bool,
        coerce_2d: bool,
    },
    /// Inputs: x, scale, optional bias. Outputs: y, optional mean, optional inverse std-dev.
    LayerNorm {
        axis: usize,
        epsilon: f32,
    },
    /// Inference form. Inputs: x, scale, bias, mean, variance.
    BatchNorm {
        epsilon: f32,
    },
    /// Inputs: x, scale, bias.
    InstanceNorm {
        epsilon: f32,
    },
    Lrn {
        size: usize,
        alpha: f32,
        beta: f32,
        bias: f32,
    },
    /// Outputs: y, optional indices.
    MaxPool(PoolAttrs),
    AveragePool(PoolAttrs),
    GlobalAveragePool,
    GlobalMaxPool,
    /// The target shape, fully resolved (views such as Flatten/Squeeze/Unsqueeze too).
    Reshape(Vec<usize>),
    Transpose(Vec<usize>),
    Concat {
        axis: usize,
    },
    Split {
        axis: usize,
        sizes: Vec<usize>,
    },
    Slice(Vec<SliceAxis>),
    /// Inputs: data, indices.
    Gather {
        axis: usize,
    },
    Expand(Vec<usize>),
    Tile(Vec<usize>),
    Pad {
        begin: Vec<i64>,
        end: Vec<i64>,
        mode: PadMode,
        value: f64,
    },
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
        keepdims: bool,
    },
    Resize(ResizeAttrs),
    /// A layer: `main` over the first `main_inputs` inputs, then element-wise `epilogue` steps
    /// on its (first) output; binary steps read the node's later inputs.
    Fused {
        main: Box<Op>,
        main_inputs: usize,
        epilogue: Vec<EpilogueStep>,
    },
}

/// One element-wise step fused after a layer's main operator.
#[derive(Clone, Debug, PartialEq)]
pub enum EpilogueStep {
    Unary(UnaryOp),
    /// `acc = acc op x` (or `x op acc` when `operand_first`), with `x` the node's input number
    /// `input`, broadcast to the output's shape.
    Binary {
        op: BinaryOp,
        input: usize,
        operand_first: bool,
    },
}
