//! Typed element-wise kernels: one operator per element over broadcast inputs whose elements
//! are f32 (one arena slot) or i64 (two slots: every integer and boolean type), for what ONNX
//! semantics need beyond float arithmetic: comparisons, logical operators, `Where`, casts
//! between the two storages, rounding onto narrower float grids, float remainders and integer
//! arithmetic. Scalar code, one element at a time, outer
//! rows split among threads (correct first; vectorising is later work).
//!
//! Integer results wrap to their declared width, as ONNX's (numpy's) integers do; casts from
//! floats saturate to the target's range (NaN to 0), as the reference evaluator's do. Division
//! and remainder by zero, undefined in ONNX, give 0 and never trap; `MIN / -1` wraps.
//!
//! Argument table: `[input 0, input 1, …, output]`. Only the output is written.

use crate::builder::{build_kernel, counted_loop, mem, thread_range};
use crate::pointwise::{advance, check_broadcast, nest, odometer, MAX_RANK};
use crate::remainder::emit_mod;
use crate::round::{emit_round, rounds_to};
use crate::tiling::{access, elementwise_lanes, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_ir::shape::checked_numel;
use veltair_ir::{BinaryOp, CompareOp, DType};
use veltair_load::MachineCode;

/// How one element is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    I64,
}

impl Elem {
    fn bytes(self) -> i64 {
        match self {
            Elem::F32 => 4,
            Elem::I64 => 8,
        }
    }

    /// Arena slots (f32-sized) per element.
    pub fn slots(self) -> usize {
        self.bytes() as usize / 4
    }
}

/// An integer or boolean element type: its width and signedness (bool: 1 bit, unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntType {
    pub bits: u8,
    pub signed: bool,
}

impl IntType {
    pub const BOOL: IntType = IntType { bits: 1, signed: false };

    /// The integer type of `dtype` (4- and 2-bit integers included), `None` for floats.
    pub fn of(dtype: DType) -> Option<IntType> {
        let (bits, signed) = match dtype {
            DType::I64 => (64, true),
            DType::I32 => (32, true),
            DType::I16 => (16, true),
            DType::I8 => (8, true),
            DType::U64 => (64, false),
            DType::U32 => (32, false),
            DType::U16 => (16, false),
            DType::U8 => (8, false),
            DType::Bool => (1, false),
            DType::I4 => (4, true),
            DType::U4 => (4, false),
            DType::I2 => (2, true),
            DType::U2 => (2, false),
            _ => return None,
        };
        Some(IntType { bits, signed })
    }
}

/// A value's type as the kernel sees it: a float (stored f32) or an integer (stored i64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Float,
    Int(IntType),
}

impl Scalar {
    /// Floats of every width (8- and 4-bit ones hold their values as f32 too) or integers.
    pub fn of(dtype: DType) -> Option<Scalar> {
        if dtype.is_float() || dtype.is_narrow() && IntType::of(dtype).is_none() {
            Some(Scalar::Float)
        } else {
            IntType::of(dtype).map(Scalar::Int)
        }
    }

    pub fn elem(self) -> Elem {
        match self {
            Scalar::Float => Elem::F32,
            Scalar::Int(_) => Elem::I64,
        }
    }
}

/// The operator of a typed kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypedOp {
    /// Two operands of type `of` → bool.
    Compare {
        op: CompareOp,
        of: Scalar,
    },
    /// `And`, `Or` or `Xor` of two bools.
    Logical(BinaryOp),
    /// Not of one bool.
    Not,
    /// `Add`, `Sub`, `Mul`, `Div`, `Mod`, `Max`, `Min`, bitwise `And`/`Or`/`Xor` or a shift
    /// of two integers of `ty`.
    Arith {
        op: BinaryOp,
        ty: IntType,
    },
    /// Negation or absolute value of an integer of `ty`.
    Neg {
        ty: IntType,
    },
    Abs {
        ty: IntType,
    },
    /// `[condition (bool), x, y]` → x or y, of type `of`.
    Where {
        of: Scalar,
    },
    /// One operand of type `from` → `to` (not both floats). Floats to integers of 8 bits or
    /// more saturate; to 4- and 2-bit integers they truncate and wrap (non-finite to 0), as the
    /// reference evaluator's casts do.
    Cast {
        from: Scalar,
        to: Scalar,
    },
    /// The remainder of two floats (see [`crate::remainder`]); `fmod` is C's convention.
    FloatMod {
        fmod: bool,
    },
    /// A float rounded onto the grid of the float type `to` (see [`crate::round`]).
    Round {
        to: DType,
        saturate: bool,
    },
}

impl TypedOp {
    /// The operand types, in argument order, and the result type.
    pub fn signature(&self) -> (Vec<Scalar>, Scalar) {
        let b = Scalar::Int(IntType::BOOL);
        match *self {
            TypedOp::Compare { of, .. } => (vec![of, of], b),
            TypedOp::Logical(_) => (vec![b, b], b),
            TypedOp::Not => (vec![b], b),
            TypedOp::Arith { ty, .. } => (vec![Scalar::Int(ty); 2], Scalar::Int(ty)),
            TypedOp::Neg { ty } | TypedOp::Abs { ty } => (vec![Scalar::Int(ty)], Scalar::Int(ty)),
            TypedOp::Where { of } => (vec![b, of, of], of),
            TypedOp::Cast { from, to } => (vec![from], to),
            TypedOp::Round { .. } => (vec![Scalar::Float], Scalar::Float),
            TypedOp::FloatMod { .. } => (vec![Scalar::Float; 2], Scalar::Float),
        }
    }

    fn supported(&self) -> bool {
        match *self {
            TypedOp::Logical(op) => matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor),
            TypedOp::Arith { op, .. } => matches!(
                op,
                BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mul
                    | BinaryOp::Div
                    | BinaryOp::Mod { .. }
                    | BinaryOp::Max
                    | BinaryOp::Min
                    | BinaryOp::And
                    | BinaryOp::Or
                    | BinaryOp::Xor
                    | BinaryOp::ShiftLeft
                    | BinaryOp::ShiftRight
            ),
            TypedOp::Cast { from, to } => from != Scalar::Float || to != Scalar::Float,
            TypedOp::Round { to, .. } => rounds_to(to),
            _ => true,
        }
    }
}

/// A typed element-wise layer: the output shape, each input's shape (ONNX-broadcastable to it)
/// and the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedSpec {
    pub out_shape: Vec<usize>,
    pub inputs: Vec<Vec<usize>>,
    pub op: TypedOp,
}

impl TypedSpec {
    /// The iteration domain and schedule: the output's axes, the operator as the body.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let (operands, result) = self.op.signature();
        let inputs = self
            .inputs
            .iter()
            .zip(&operands)
            .enumerate()
            .map(|(i, (shape, t))| access(&format!("in{i}"), &[&format!("{t:?} {shape:?} broadcast")]))
            .collect();
        let body = format!("= {:?} -> {result:?}", self.op);
        elementwise_lanes("typed", &self.out_shape, &body, inputs, max_threads, 1)
    }

    /// Arena slots of each argument-table entry: the inputs, then the output.
    pub fn arg_elems(&self) -> Vec<usize> {
        let (operands, result) = self.op.signature();
        let slots = |shape: &Vec<usize>, t: &Scalar| shape.iter().product::<usize>() * t.elem().slots();
        self.inputs.iter().zip(&operands).map(|(s, t)| slots(s, t)).chain([slots(&self.out_shape, &result)]).collect()
    }

    /// Refuses ranks above [`MAX_RANK`], shapes that do not broadcast to the output, oversized
    /// tensors, unsupported operators and a wrong number of inputs.
    pub fn validate(&self) -> Result<(), CodegenError> {
        let fail = |m: String| Err(CodegenError::Schedule(m));
        let rank = self.out_shape.len();
        if rank > MAX_RANK {
            return fail(format!("typed element-wise output of rank {rank} (at most {MAX_RANK})"));
        }
        if !self.op.supported() {
            return fail(format!("typed element-wise operator {:?} is not supported", self.op));
        }
        let (operands, _) = self.op.signature();
        if operands.len() != self.inputs.len() {
            return fail(format!("{:?} takes {} inputs, {} given", self.op, operands.len(), self.inputs.len()));
        }
        let n = checked_numel(&self.out_shape).map_err(|e| CodegenError::Schedule(e.to_string()))?;
        if n as u64 * 8 >= 1 << 31 {
            return fail(format!("typed element-wise output of {n} elements"));
        }
        check_broadcast(&self.out_shape, &self.inputs)?;
        Ok(())
    }
}

/// Generates and compiles the typed element-wise kernel of `spec`.
pub fn compile_typed(spec: &TypedSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    spec.validate()?;
    let (operands, result) = spec.op.signature();
    let nest = nest(&spec.out_shape, &spec.inputs);
    let (&len, outer) = nest.dims.split_last().expect("the nest has an axis");
    let rows: usize = outer.iter().product();
    let n = spec.inputs.len();
    let func = build_kernel(target, |b, params| {
        let bases: Vec<Value> = (0..n).map(|i| params.arg(b, i)).collect();
        let out = params.arg(b, n);
        let (r0, r1) = thread_range(b, rows as i64, params.thread, params.threads);
        let coords = odometer(b, r0, outer);
        counted_loop(b, r0, r1, 1, |b, r| {
            let ptrs: Vec<Value> = bases
                .iter()
                .zip(&nest.strides)
                .zip(&operands)
                .map(|((&base, st), t)| {
                    let mut p = base;
                    for (&var, &s) in coords.iter().zip(st) {
                        if s != 0 {
                            let c = b.use_var(var);
                            let off = b.ins().imul_imm_s(c, t.elem().bytes() * s as i64);
                            p = b.ins().iadd(p, off);
                        }
                    }
                    p
                })
                .collect();
            let row_off = b.ins().imul_imm_s(r, result.elem().bytes() * len as i64);
            let out_row = b.ins().iadd(out, row_off);
            let zero = b.ins().iconst(types::I64, 0);
            let end = b.ins().iconst(types::I64, len as i64);
            counted_loop(b, zero, end, 1, |b, i| {
                let xs: Vec<Value> = ptrs
                    .iter()
                    .zip(&nest.strides)
                    .zip(&operands)
                    .map(|((&p, st), t)| {
                        let step = t.elem().bytes() * st[st.len() - 1] as i64;
                        let off = b.ins().imul_imm_s(i, step);
                        let addr = b.ins().iadd(p, off);
                        let ty = match t.elem() {
                            Elem::F32 => types::F32,
                            Elem::I64 => types::I64,
                        };
                        b.ins().load(ty, mem(), addr, 0)
                    })
                    .collect();
                let y = emit(b, &spec.op, &xs);
                let off = b.ins().imul_imm_s(i, result.elem().bytes());
                let addr = b.ins().iadd(out_row, off);
                b.ins().store(mem(), y, addr, 0);
            });
            advance(b, &coords, outer);
        });
    });
    compile(func, target, spec.arg_elems())
}

/// A 0/1 i64 from a comparison result.
fn bool_of(b: &mut FunctionBuilder, c: Value) -> Value {
    b.ins().uextend(types::I64, c)
}

/// `x` wrapped to `ty`'s width (sign- or zero-extended back to 64 bits).
fn wrap(b: &mut FunctionBuilder, ty: IntType, x: Value) -> Value {
    match (ty.bits, ty.signed) {
        (64, _) => x,
        (1, _) => {
            let nz = b.ins().icmp_imm_s(IntCC::NotEqual, x, 0);
            bool_of(b, nz)
        }
        (bits, true) => {
            let shift = 64 - i64::from(bits);
            let up = b.ins().ishl_imm_s(x, shift);
            b.ins().sshr_imm_s(up, shift)
        }
        (bits, false) => b.ins().band_imm_s(x, ((1u64 << bits) - 1) as i64),
    }
}

fn int_cc(op: CompareOp, signed: bool) -> IntCC {
    match (op, signed) {
        (CompareOp::Equal, _) => IntCC::Equal,
        (CompareOp::Less, true) => IntCC::SignedLessThan,
        (CompareOp::LessOrEqual, true) => IntCC::SignedLessThanOrEqual,
        (CompareOp::Greater, true) => IntCC::SignedGreaterThan,
        (CompareOp::GreaterOrEqual, true) => IntCC::SignedGreaterThanOrEqual,
        (CompareOp::Less, false) => IntCC::UnsignedLessThan,
        (CompareOp::LessOrEqual, false) => IntCC::UnsignedLessThanOrEqual,
        (CompareOp::Greater, false) => IntCC::UnsignedGreaterThan,
        (CompareOp::GreaterOrEqual, false) => IntCC::UnsignedGreaterThanOrEqual,
    }
}

fn float_cc(op: CompareOp) -> FloatCC {
    match op {
        CompareOp::Equal => FloatCC::Equal,
        CompareOp::Less => FloatCC::LessThan,
        CompareOp::LessOrEqual => FloatCC::LessThanOrEqual,
        CompareOp::Greater => FloatCC::GreaterThan,
        CompareOp::GreaterOrEqual => FloatCC::GreaterThanOrEqual,
    }
}

/// `x / y` or `x % y` (truncated) without a trap: a zero divisor gives 0, `MIN / -1` wraps.
fn divide(b: &mut FunctionBuilder, x: Value, y: Value, signed: bool, remainder: bool) -> Value {
    let zero = b.ins().iconst(types::I64, 0);
    let one = b.ins().iconst(types::I64, 1);
    let by_zero = b.ins().icmp_imm_s(IntCC::Equal, y, 0);
    if !signed {
        let safe = b.ins().select(by_zero, one, y);
        let q = if remainder { b.ins().urem(x, safe) } else { b.ins().udiv(x, safe) };
        return b.ins().select(by_zero, zero, q);
    }
    let by_minus_one = b.ins().icmp_imm_s(IntCC::Equal, y, -1);
    let special = b.ins().bor(by_zero, by_minus_one);
    let safe = b.ins().select(special, one, y);
    let (q, at_minus_one) =
        if remainder { (b.ins().srem(x, safe), zero) } else { (b.ins().sdiv(x, safe), b.ins().ineg(x)) };
    let q = b.ins().select(by_minus_one, at_minus_one, q);
    b.ins().select(by_zero, zero, q)
}

/// `x << y` or `x >> y` (arithmetic for signed types) within `ty`'s width: an amount of the
/// width or more, or a negative one, shifts every bit out (0, or -1 for a right shift of a
/// negative number). Cranelift's shifts take the amount modulo 64, hence the selection.
fn shift(b: &mut FunctionBuilder, x: Value, y: Value, ty: IntType, left: bool) -> Value {
    let in_range = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, y, i64::from(ty.bits));
    let (shifted, out) = match (left, ty.signed) {
        (true, _) => (b.ins().ishl(x, y), b.ins().iconst(types::I64, 0)),
        (false, true) => (b.ins().sshr(x, y), b.ins().sshr_imm_s(x, 63)),
        (false, false) => (b.ins().ushr(x, y), b.ins().iconst(types::I64, 0)),
    };
    b.ins().select(in_range, shifted, out)
}

fn emit(b: &mut FunctionBuilder, op: &TypedOp, xs: &[Value]) -> Value {
    match *op {
        TypedOp::Compare { op, of: Scalar::Float } => {
            let c = b.ins().fcmp(float_cc(op), xs[0], xs[1]);
            bool_of(b, c)
        }
        TypedOp::Compare { op, of: Scalar::Int(ty) } => {
            let c = b.ins().icmp(int_cc(op, ty.signed), xs[0], xs[1]);
            bool_of(b, c)
        }
        TypedOp::Logical(BinaryOp::And) => b.ins().band(xs[0], xs[1]),
        TypedOp::Logical(BinaryOp::Or) => b.ins().bor(xs[0], xs[1]),
        TypedOp::Logical(_) => b.ins().bxor(xs[0], xs[1]),
        TypedOp::Not => b.ins().bxor_imm_s(xs[0], 1),
        TypedOp::Arith { op, ty } => {
            let (x, y) = (xs[0], xs[1]);
            let r = match op {
                BinaryOp::Add => b.ins().iadd(x, y),
                BinaryOp::Sub => b.ins().isub(x, y),
                BinaryOp::Mul => b.ins().imul(x, y),
                BinaryOp::Div => divide(b, x, y, ty.signed, false),
                BinaryOp::Mod { fmod } => {
                    let r = divide(b, x, y, ty.signed, true);
                    if fmod || !ty.signed {
                        r
                    } else {
                        // Python's convention: a nonzero remainder takes the divisor's sign.
                        let sum = b.ins().iadd(r, y);
                        let signs = b.ins().bxor(r, y);
                        let differ = b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
                        let nonzero = b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
                        let fix = b.ins().band(differ, nonzero);
                        b.ins().select(fix, sum, r)
                    }
                }
                BinaryOp::And => b.ins().band(x, y),
                BinaryOp::Or => b.ins().bor(x, y),
                BinaryOp::Xor => b.ins().bxor(x, y),
                BinaryOp::ShiftLeft | BinaryOp::ShiftRight => shift(b, x, y, ty, op == BinaryOp::ShiftLeft),
                BinaryOp::Max if ty.signed => b.ins().smax(x, y),
                BinaryOp::Max => b.ins().umax(x, y),
                BinaryOp::Min if ty.signed => b.ins().smin(x, y),
                _ => b.ins().umin(x, y),
            };
            wrap(b, ty, r)
        }
        TypedOp::Neg { ty } => {
            let r = b.ins().ineg(xs[0]);
            wrap(b, ty, r)
        }
        TypedOp::Abs { ty } if ty.signed => {
            let r = b.ins().iabs(xs[0]);
            wrap(b, ty, r)
        }
        TypedOp::Abs { .. } => xs[0],
        TypedOp::Where { .. } => {
            let c = b.ins().icmp_imm_s(IntCC::NotEqual, xs[0], 0);
            b.ins().select(c, xs[1], xs[2])
        }
        TypedOp::Cast { from, to } => match (from, to) {
            (Scalar::Float, Scalar::Int(t)) if t.bits == 1 => {
                // NaN is nonzero: true, as numpy casts it.
                let zero = b.ins().f32const(0.0);
                let c = b.ins().fcmp(FloatCC::NotEqual, xs[0], zero);
                bool_of(b, c)
            }
            (Scalar::Float, Scalar::Int(t)) if t.bits == 64 && !t.signed => b.ins().fcvt_to_uint_sat(types::I64, xs[0]),
            (Scalar::Float, Scalar::Int(t)) if t.bits < 8 => {
                // Truncated and wrapped; infinities (like NaN) give 0.
                let i = b.ins().fcvt_to_sint_sat(types::I64, xs[0]);
                let magnitude = b.ins().fabs(xs[0]);
                let inf = b.ins().f32const(f32::INFINITY);
                let finite = b.ins().fcmp(FloatCC::LessThan, magnitude, inf);
                let zero = b.ins().iconst(types::I64, 0);
                let i = b.ins().select(finite, i, zero);
                wrap(b, t, i)
            }
            (Scalar::Float, Scalar::Int(t)) => {
                // Saturating to the target's range, NaN to 0 (as the reference's `as` casts).
                let i = b.ins().fcvt_to_sint_sat(types::I64, xs[0]);
                if t.bits == 64 {
                    return i;
                }
                let (lo, hi) = match t.signed {
                    true => (-(1i64 << (t.bits - 1)), (1i64 << (t.bits - 1)) - 1),
                    false => (0, (1i64 << t.bits) - 1),
                };
                let (lo, hi) = (b.ins().iconst(types::I64, lo), b.ins().iconst(types::I64, hi));
                let i = b.ins().smax(i, lo);
                b.ins().smin(i, hi)
            }
            (Scalar::Int(f), Scalar::Float) if f.bits == 64 && !f.signed => b.ins().fcvt_from_uint(types::F32, xs[0]),
            (Scalar::Int(_), Scalar::Float) => b.ins().fcvt_from_sint(types::F32, xs[0]),
            (Scalar::Int(_), Scalar::Int(t)) => wrap(b, t, xs[0]),
            (Scalar::Float, Scalar::Float) => xs[0],
        },
        TypedOp::Round { to, saturate } => emit_round(b, to, saturate, xs[0]),
        TypedOp::FloatMod { fmod } => emit_mod(b, xs[0], xs[1], fmod),
    }
}
