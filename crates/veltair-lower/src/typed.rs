//! Lowering onto the typed element-wise kernel of the operators whose operands or results are
//! integers or booleans, and of those float operators that need scalar code: comparisons,
//! logical operators, `Where`, casts that change storage or round onto a narrower float grid,
//! float remainders, and integer arithmetic (several inputs of `Max`/`Min`/`Sum` chained
//! pairwise).

use crate::builder::Arg;
use crate::layout::Layout;
use crate::lowerer::{unsupported, Fail, Lowerer};
use veltair_codegen::tiling::describe;
use veltair_codegen::typed::{compile_typed, IntType, Scalar, TypedOp, TypedSpec};
use veltair_ir::shape::broadcast_shapes;
use veltair_ir::{BinaryOp, DType, Node, Op, UnaryOp, ValueId};

/// True when a cast from `from` to the float type `to` must round (`to` is narrower than f32
/// and differs from `from`; every float is held as f32).
fn rounds(from: DType, to: DType) -> bool {
    from != to && !matches!(to, DType::F32 | DType::F64)
}

impl Lowerer<'_> {
    /// The typed operator of `node` if it needs the typed kernel (it reads or makes integers or
    /// booleans), else `None`.
    fn typed_op(&self, node: &Node) -> Option<TypedOp> {
        let scalar = |v: ValueId| Scalar::of(self.graph.value(v).ty.dtype);
        let first = node.inputs.first().copied().flatten()?;
        let out = node.outputs[0];
        let int_out = IntType::of(self.graph.value(out).ty.dtype);
        Some(match (&node.op, int_out) {
            (Op::Compare(op), _) => TypedOp::Compare { op: *op, of: scalar(first)? },
            (Op::Where, _) => TypedOp::Where { of: scalar(out)? },
            (Op::Binary(op @ (BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)), Some(IntType::BOOL)) => {
                TypedOp::Logical(*op)
            }
            (Op::Unary(UnaryOp::Not), _) => TypedOp::Not,
            (Op::Binary(BinaryOp::Mod { fmod }), None) => TypedOp::FloatMod { fmod: *fmod },
            (Op::Binary(op), Some(ty)) => TypedOp::Arith { op: *op, ty },
            (Op::Unary(UnaryOp::Neg), Some(ty)) => TypedOp::Neg { ty },
            (Op::Unary(UnaryOp::Abs), Some(ty)) => TypedOp::Abs { ty },
            (Op::Cast { to, saturate }, _) => match (scalar(first)?, scalar(out)?) {
                (Scalar::Float, Scalar::Float) if rounds(self.graph.value(first).ty.dtype, *to) => {
                    TypedOp::Round { to: *to, saturate: *saturate }
                }
                (Scalar::Float, Scalar::Float) => return None,
                (from, to) => TypedOp::Cast { from, to },
            },
            _ => return None,
        })
    }

    /// Lowers `node` onto the typed kernel when it needs it; `Ok(false)` when it does not.
    pub(crate) fn typed(&mut self, node: &Node) -> Result<bool, Fail> {
        let Some(op) = self.typed_op(node) else { return Ok(false) };
        let mut ins = Vec::new();
        for (i, v) in node.inputs.iter().enumerate() {
            match v {
                Some(v) => ins.push(*v),
                None => return unsupported(format!("input #{i} is missing")),
            }
        }
        let (operands, _) = op.signature();
        let out = node.outputs[0];
        let chained = matches!(op, TypedOp::Arith { .. }) && ins.len() > operands.len();
        if ins.len() != operands.len() && !chained {
            return unsupported(format!("{} inputs to {op:?}", ins.len()));
        }
        let mut args = Vec::new();
        for &v in &ins {
            args.push((self.get(v, Layout::Plain)?, self.shape(v).to_vec()));
        }
        // Several inputs: (((a op b) op c) op d), each partial result in a temporary.
        while chained && args.len() > 2 {
            let rest = args.split_off(2);
            let shape = broadcast_shapes(&[&args[0].1, &args[1].1]).map_err(|e| Fail::Unsupported(e.to_string()))?;
            let elems = shape.iter().product::<usize>() * op.signature().1.elem().slots();
            let tmp = Arg::Buf(self.plan.buffer(elems));
            self.typed_step(&node.name, op, std::mem::take(&mut args), (tmp, shape.clone()))?;
            args = [(tmp, shape)].into_iter().chain(rest).collect();
        }
        let out_shape = self.shape(out).to_vec();
        let dst = self.define(out, Layout::Plain);
        match (op, &node.op) {
            // An integer cast to a float narrower than f32: converted, then rounded onto its grid.
            (TypedOp::Cast { from: from @ Scalar::Int(_), to: Scalar::Float }, Op::Cast { to, saturate })
                if rounds(self.graph.value(ins[0]).ty.dtype, *to) =>
            {
                let tmp = Arg::Buf(self.plan.buffer(out_shape.iter().product()));
                let cast = TypedOp::Cast { from, to: Scalar::Float };
                self.typed_step(&node.name, cast, args, (tmp, out_shape.clone()))?;
                let round = TypedOp::Round { to: *to, saturate: *saturate };
                self.typed_step(&node.name, round, vec![(tmp, out_shape.clone())], (dst, out_shape))?;
            }
            _ => self.typed_step(&node.name, op, args, (dst, out_shape))?,
        }
        Ok(true)
    }

    /// `v` converted to f32 in a temporary when it is stored as integers (a float kernel's
    /// operand, like `Pow`'s integer exponent), else `None`.
    pub(crate) fn as_float(&mut self, label: &str, v: ValueId) -> Result<Option<Arg>, Fail> {
        let Some(Scalar::Int(ty)) = Scalar::of(self.graph.value(v).ty.dtype) else { return Ok(None) };
        let shape = self.shape(v).to_vec();
        let src = self.get(v, Layout::Plain)?;
        let tmp = Arg::Buf(self.plan.buffer(shape.iter().product()));
        let op = TypedOp::Cast { from: Scalar::Int(ty), to: Scalar::Float };
        self.typed_step(label, op, vec![(src, shape.clone())], (tmp, shape))?;
        Ok(Some(tmp))
    }

    fn typed_step(
        &mut self,
        label: &str,
        op: TypedOp,
        inputs: Vec<(Arg, Vec<usize>)>,
        (dst, out_shape): (Arg, Vec<usize>),
    ) -> Result<(), Fail> {
        let spec = TypedSpec { out_shape, inputs: inputs.iter().map(|(_, s)| s.clone()).collect(), op };
        spec.validate()?;
        let k = self.kernel(format!("{spec:?}"), {
            let spec = spec.clone();
            move |t| compile_typed(&spec, t)
        })?;
        let mut args: Vec<Arg> = inputs.into_iter().map(|(a, _)| a).collect();
        args.push(dst);
        let work = spec.out_shape.iter().product::<usize>() as u64;
        self.plan.step(label, k, args, work, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }
}
