//! Element-wise layers: the IR's unary and binary operators on f32x4 values (also usable by
//! fused epilogues), and the n-ary broadcast kernel that applies a chain of them.
//!
//! The kernel drops size-1 output axes and merges neighbouring axes that every input reads
//! alike (all contiguous, or all broadcast), so a per-channel NHWC bias on `[N, H, W, C]` is a
//! `rows × C` loop. The innermost axis is vectorised (inputs broadcast along it are splatted
//! once per row, the tail uses partial loads and stores); threads split the outer rows.
//!
//! Argument table: `[input 0, input 1, …, output]`. Only the output is written.
//!
//! Differences from the reference evaluator: the transcendental operators use the
//! approximations of [`crate::math`] (`Pow` too, as `e^(y·ln|x|)`); `Celu` of NaN is NaN (the
//! reference gives 0). `Relu`, `Clip`, `ThresholdedRelu` map NaN as the reference does (to 0 or
//! the bound); `Max`/`Min` return NaN when either operand is NaN.

use crate::builder::{build_kernel, counted_loop, load_lanes, mem, store_lanes, thread_range};
use crate::math::{self, max_num, min_num, select_cmp, splat};
use crate::tiling::{access, elementwise, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use std::f32::consts::FRAC_1_SQRT_2;
use veltair_ir::shape::checked_numel;
use veltair_ir::{BinaryOp, UnaryOp};
use veltair_load::MachineCode;

/// Highest output rank the broadcast kernel accepts.
pub const MAX_RANK: usize = 8;

/// Whether [`emit_unary`] can emit `op` (every operator but the trigonometric and hyperbolic
/// ones other than `Tanh`, and `Not`).
pub fn unary_supported(op: &UnaryOp) -> bool {
    !matches!(op, UnaryOp::Not) && !is_trigonometric(op)
}

fn is_trigonometric(op: &UnaryOp) -> bool {
    use UnaryOp::*;
    matches!(op, Sin | Cos | Tan | Asin | Acos | Atan | Sinh | Cosh | Asinh | Acosh | Atanh)
}

/// Emits `op` on the f32x4 `x`. Panics on operators [`unary_supported`] refuses.
pub fn emit_unary(b: &mut FunctionBuilder, op: &UnaryOp, x: Value) -> Value {
    use FloatCC::{GreaterThan, LessThan, LessThanOrEqual};
    match *op {
        UnaryOp::Sqrt => b.ins().sqrt(x),
        UnaryOp::Reciprocal => {
            let one = splat(b, 1.0);
            b.ins().fdiv(one, x)
        }
        UnaryOp::Exp => math::exp(b, x),
        UnaryOp::Log => math::log(b, x),
        UnaryOp::Erf => math::erf(b, x),
        UnaryOp::Neg => b.ins().fneg(x),
        UnaryOp::Abs => b.ins().fabs(x),
        UnaryOp::Sign => {
            let (zero, one, minus_one) = (splat(b, 0.0), splat(b, 1.0), splat(b, -1.0));
            let s = select_cmp(b, LessThan, x, zero, minus_one, x);
            select_cmp(b, GreaterThan, x, zero, one, s)
        }
        UnaryOp::Floor => b.ins().floor(x),
        UnaryOp::Ceil => b.ins().ceil(x),
        UnaryOp::Round => b.ins().nearest(x),
        UnaryOp::Tanh => math::tanh(b, x),
        UnaryOp::Sigmoid => math::sigmoid(b, x),
        UnaryOp::Silu => {
            let s = math::sigmoid(b, x);
            b.ins().fmul(x, s)
        }
        UnaryOp::Softplus => {
            // max(x, 0) + ln(1 + e^−|x|): no overflow, exact limits at both ends.
            let zero = splat(b, 0.0);
            let pos = max_num(b, x, zero);
            let a = b.ins().fabs(x);
            let na = b.ins().fneg(a);
            let e = math::exp(b, na);
            let l = math::log1p(b, e);
            b.ins().fadd(pos, l)
        }
        UnaryOp::Softsign => {
            let a = b.ins().fabs(x);
            let one = splat(b, 1.0);
            let d = b.ins().fadd(one, a);
            b.ins().fdiv(x, d)
        }
        UnaryOp::Relu => {
            let zero = splat(b, 0.0);
            max_num(b, x, zero)
        }
        UnaryOp::HardSwish => {
            // x·clamp(x/6 + ½, 0, 1) with x/6 + ½ as (x + 3)/6: exact near x = −3.
            let (three, sixth) = (splat(b, 3.0), splat(b, 1.0 / 6.0));
            let t = b.ins().fadd(x, three);
            let t = b.ins().fmul(t, sixth);
            let t = math::clamp(b, t, 0.0, 1.0);
            b.ins().fmul(x, t)
        }
        UnaryOp::LeakyRelu { alpha } => {
            let (zero, a) = (splat(b, 0.0), splat(b, alpha));
            let ax = b.ins().fmul(x, a);
            select_cmp(b, LessThan, x, zero, ax, x)
        }
        UnaryOp::Elu { alpha } => {
            let (zero, a) = (splat(b, 0.0), splat(b, alpha));
            let e = math::expm1(b, x);
            let ae = b.ins().fmul(e, a);
            select_cmp(b, LessThan, x, zero, ae, x)
        }
        UnaryOp::Selu { alpha, gamma } => {
            let (zero, a, g) = (splat(b, 0.0), splat(b, alpha), splat(b, gamma));
            let e = math::expm1(b, x);
            let ae = b.ins().fmul(e, a);
            let s = select_cmp(b, LessThanOrEqual, x, zero, ae, x);
            b.ins().fmul(s, g)
        }
        UnaryOp::Celu { alpha } => {
            // max(x, 0) + min(0, α·expm1(x/α)) is x for x ≥ 0 and α·expm1(x/α) below, for
            // either sign of α.
            let (zero, a, inv) = (splat(b, 0.0), splat(b, alpha), splat(b, (1.0 / f64::from(alpha)) as f32));
            let xa = b.ins().fmul(x, inv);
            let e = math::expm1(b, xa);
            let ae = b.ins().fmul(e, a);
            select_cmp(b, LessThan, x, zero, ae, x)
        }
        UnaryOp::ThresholdedRelu { alpha } => {
            let (zero, a) = (splat(b, 0.0), splat(b, alpha));
            select_cmp(b, GreaterThan, x, a, x, zero)
        }
        UnaryOp::HardSigmoid { alpha, beta } => {
            let (a, c) = (splat(b, alpha), splat(b, beta));
            let t = b.ins().fma(x, a, c);
            math::clamp(b, t, 0.0, 1.0)
        }
        UnaryOp::Clip { min, max } => {
            let mut v = x;
            if let Some(lo) = min {
                let lo = splat(b, lo as f32);
                v = max_num(b, v, lo);
            }
            if let Some(hi) = max {
                let hi = splat(b, hi as f32);
                v = min_num(b, v, hi);
            }
            v
        }
        UnaryOp::Gelu { tanh: false } => {
            let (half, k) = (splat(b, 0.5), splat(b, FRAC_1_SQRT_2));
            let h = b.ins().fmul(x, half);
            let s = b.ins().fmul(x, k);
            let e = math::erf(b, s);
            b.ins().fma(h, e, h)
        }
        UnaryOp::Gelu { tanh: true } => {
            // ½x(1 + tanh u) = x·sigmoid(2u), u = √(2/π)·(x + 0.044715x³): no cancellation for
            // negative x.
            let c = 2.0 * (2.0 / std::f64::consts::PI).sqrt();
            let (c1, c3) = (splat(b, c as f32), splat(b, (c * 0.044715) as f32));
            let x2 = b.ins().fmul(x, x);
            let k = b.ins().fma(x2, c3, c1);
            let two_u = b.ins().fmul(x, k);
            let s = math::sigmoid(b, two_u);
            b.ins().fmul(x, s)
        }
        _ => panic!("element-wise {op:?} is not supported (check unary_supported first)"),
    }
}

/// Whether [`emit_binary`] can emit `op`: Add, Sub, Mul, Div, Max, Min (not Pow, Mod or the
/// logical operators).
pub fn binary_supported(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Max | BinaryOp::Min | BinaryOp::Pow
    )
}

/// Emits `lhs op rhs` on f32x4 values. Panics on operators [`binary_supported`] refuses.
pub fn emit_binary(b: &mut FunctionBuilder, op: BinaryOp, lhs: Value, rhs: Value) -> Value {
    match op {
        BinaryOp::Add => b.ins().fadd(lhs, rhs),
        BinaryOp::Sub => b.ins().fsub(lhs, rhs),
        BinaryOp::Mul => b.ins().fmul(lhs, rhs),
        BinaryOp::Div => b.ins().fdiv(lhs, rhs),
        BinaryOp::Max => b.ins().fmax(lhs, rhs),
        BinaryOp::Min => b.ins().fmin(lhs, rhs),
        BinaryOp::Pow => math::pow(b, lhs, rhs),
        _ => panic!("element-wise {op:?} is not supported (check binary_supported first)"),
    }
}

/// One step on the accumulator, which starts as input 0 broadcast to the output shape
/// (the semantics of `veltair_ir::EpilogueStep`).
#[derive(Clone, Debug, PartialEq)]
pub enum PointwiseStep {
    Unary(UnaryOp),
    /// `acc = acc op x` (or `x op acc` when `operand_first`), `x` being input `input` broadcast.
    Binary {
        op: BinaryOp,
        input: usize,
        operand_first: bool,
    },
}

/// An element-wise layer: the output shape, each input's shape (ONNX-broadcastable to it) and
/// the steps applied to input 0.
#[derive(Clone, Debug, PartialEq)]
pub struct PointwiseSpec {
    pub out_shape: Vec<usize>,
    pub inputs: Vec<Vec<usize>>,
    pub steps: Vec<PointwiseStep>,
}

impl PointwiseSpec {
    /// The iteration domain and schedule: the output's axes, the steps as the body.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, shape)| access(&format!("in{i}"), &[&format!("{shape:?} broadcast")]))
            .collect();
        let body: Vec<String> = self
            .steps
            .iter()
            .map(|s| match s {
                PointwiseStep::Unary(u) => format!("{u:?}"),
                PointwiseStep::Binary { op, input, operand_first: false } => format!("{op:?} in{input}"),
                PointwiseStep::Binary { op, input, operand_first: true } => format!("in{input} {op:?}"),
            })
            .collect();
        elementwise("pointwise", &self.out_shape, &format!("= in0 | {}", body.join(" | ")), inputs, max_threads)
    }

    /// Elements of each argument-table entry: the inputs, then the output.
    pub fn arg_elems(&self) -> Vec<usize> {
        self.inputs.iter().chain([&self.out_shape]).map(|s| s.iter().product()).collect()
    }

    /// Refuses ranks above [`MAX_RANK`], shapes that do not broadcast to the output, oversized
    /// tensors, unsupported operators and input numbers out of range.
    pub fn validate(&self) -> Result<(), CodegenError> {
        let fail = |m: String| Err(CodegenError::Schedule(m));
        let rank = self.out_shape.len();
        if rank > MAX_RANK {
            return fail(format!("element-wise output of rank {rank} (at most {MAX_RANK})"));
        }
        if self.inputs.is_empty() {
            return fail("element-wise layer without inputs".into());
        }
        checked_numel(&self.out_shape).map_err(|e| CodegenError::Schedule(e.to_string()))?;
        check_broadcast(&self.out_shape, &self.inputs)?;
        for step in &self.steps {
            let ok = match step {
                PointwiseStep::Unary(u) => unary_supported(u),
                PointwiseStep::Binary { op, input, .. } => binary_supported(*op) && *input < self.inputs.len(),
            };
            if !ok {
                return fail(format!("element-wise step {step:?} is not supported"));
            }
        }
        Ok(())
    }

    fn uses(&self, input: usize) -> bool {
        input == 0 || self.steps.iter().any(|s| matches!(s, PointwiseStep::Binary { input: i, .. } if *i == input))
    }
}

/// The loop nest: output dims (outermost first, at least one) after dropping size-1 axes and
/// merging neighbours read alike, and each input's element stride per dim (0 = broadcast).
pub(crate) struct Nest {
    pub dims: Vec<usize>,
    pub strides: Vec<Vec<usize>>,
}

/// Refuses an input that does not broadcast (numpy rules, aligned right) to `out_shape`.
pub(crate) fn check_broadcast(out_shape: &[usize], inputs: &[Vec<usize>]) -> Result<(), CodegenError> {
    for (i, s) in inputs.iter().enumerate() {
        let off = out_shape.len().checked_sub(s.len());
        let fits = off.is_some_and(|off| s.iter().enumerate().all(|(a, &d)| d == 1 || d == out_shape[off + a]));
        if !fits {
            return Err(CodegenError::Schedule(format!(
                "input #{i} of shape {s:?} does not broadcast to {out_shape:?}"
            )));
        }
    }
    Ok(())
}

/// The loop nest of an output of `out_shape` over `inputs` broadcast to it.
pub(crate) fn nest(out_shape: &[usize], inputs: &[Vec<usize>]) -> Nest {
    let rank = out_shape.len();
    let n = inputs.len();
    if out_shape.contains(&0) {
        // No rows at all (not one row of no elements: row code may touch its first element).
        return Nest { dims: vec![0, 0], strides: vec![vec![0, 0]; n] };
    }
    let (mut dims, mut strides) = (Vec::new(), vec![Vec::new(); n]);
    let mut last: Option<Vec<bool>> = None;
    for (a, &d) in out_shape.iter().enumerate() {
        if d == 1 {
            continue;
        }
        // Per input: its own row-major stride on this axis, or None when it broadcasts here.
        let own: Vec<Option<usize>> = inputs
            .iter()
            .map(|s| {
                let off = rank - s.len();
                (a >= off && s[a - off] == d).then(|| s[a - off + 1..].iter().product())
            })
            .collect();
        let pattern: Vec<bool> = own.iter().map(Option::is_some).collect();
        let merge = last.as_ref() == Some(&pattern);
        if merge {
            *dims.last_mut().expect("merging into a previous axis") *= d;
        } else {
            dims.push(d);
        }
        for (st, o) in strides.iter_mut().zip(&own) {
            let s = o.unwrap_or(0);
            match merge {
                true => *st.last_mut().expect("merging into a previous axis") = s,
                false => st.push(s),
            }
        }
        last = Some(pattern);
    }
    if dims.is_empty() {
        dims.push(1);
        strides.iter_mut().for_each(|s| s.push(0));
    }
    Nest { dims, strides }
}

/// Generates and compiles the broadcast element-wise kernel of `spec`.
pub fn compile_pointwise(spec: &PointwiseSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    spec.validate()?;
    let nest = nest(&spec.out_shape, &spec.inputs);
    let (&len, outer) = nest.dims.split_last().expect("the nest has an axis");
    let rows: usize = outer.iter().product();
    let n = spec.inputs.len();
    let func = build_kernel(target, |b, params| {
        let bases: Vec<Option<Value>> = (0..n).map(|i| spec.uses(i).then(|| params.arg(b, i))).collect();
        let out = params.arg(b, n);
        let (r0, r1) = thread_range(b, rows as i64, params.thread, params.threads);
        let coords = odometer(b, r0, outer);
        counted_loop(b, r0, r1, 1, |b, r| {
            let ptrs: Vec<Option<Value>> = bases
                .iter()
                .zip(&nest.strides)
                .map(|(base, st)| {
                    base.map(|mut p| {
                        for (&var, &s) in coords.iter().zip(st) {
                            if s != 0 {
                                let c = b.use_var(var);
                                let off = b.ins().imul_imm_s(c, 4 * s as i64);
                                p = b.ins().iadd(p, off);
                            }
                        }
                        p
                    })
                })
                .collect();
            let row_off = b.ins().imul_imm_s(r, 4 * len as i64);
            let out_row = b.ins().iadd(out, row_off);
            let inner: Vec<bool> = nest.strides.iter().map(|st| st[st.len() - 1] != 0).collect();
            row(b, spec, &ptrs, &inner, out_row, len);
            advance(b, &coords, outer);
        });
    });
    compile(func, target, spec.arg_elems())
}

/// The coordinates of row `r0` over the outer `dims` (an odometer that [`advance`] steps).
pub(crate) fn odometer(b: &mut FunctionBuilder, r0: Value, dims: &[usize]) -> Vec<Variable> {
    let coords: Vec<Variable> = dims.iter().map(|_| b.declare_var(types::I64)).collect();
    let mut rest = r0;
    for (a, &var) in coords.iter().enumerate().rev() {
        if a == 0 {
            b.def_var(var, rest);
        } else {
            let d = b.ins().iconst(types::I64, dims[a] as i64);
            let c = b.ins().urem(rest, d);
            b.def_var(var, c);
            rest = b.ins().udiv(rest, d);
        }
    }
    coords
}

/// Steps the odometer `coords` over `dims` to the next row (the outermost never wraps: the
/// row loop ends first).
pub(crate) fn advance(b: &mut FunctionBuilder, coords: &[Variable], dims: &[usize]) {
    let mut carry: Option<Value> = None;
    for (a, &var) in coords.iter().enumerate().rev() {
        let c = b.use_var(var);
        let next = match carry {
            None => b.ins().iadd_imm_s(c, 1),
            Some(k) => b.ins().iadd(c, k),
        };
        if a == 0 {
            b.def_var(var, next);
            break;
        }
        let wrap = b.ins().icmp_imm_s(IntCC::Equal, next, dims[a] as i64);
        let zero = b.ins().iconst(types::I64, 0);
        let next = b.ins().select(wrap, zero, next);
        b.def_var(var, next);
        carry = Some(b.ins().uextend(types::I64, wrap));
    }
}

/// One output row of `len` elements: `ptrs` point at each used input's first element of the
/// row; `inner[i]` tells whether input `i` runs along the row (else it is splatted).
fn row(b: &mut FunctionBuilder, spec: &PointwiseSpec, ptrs: &[Option<Value>], inner: &[bool], out: Value, len: usize) {
    let splats: Vec<Option<Value>> = ptrs
        .iter()
        .zip(inner)
        .map(|(p, &along)| {
            let p = (*p)?;
            (!along).then(|| {
                let x = b.ins().load(types::F32, mem(), p, 0);
                b.ins().splat(types::F32X4, x)
            })
        })
        .collect();
    let at = |b: &mut FunctionBuilder, off: Value, imm: i32, lanes: usize| {
        let xs: Vec<Option<Value>> = ptrs
            .iter()
            .zip(&splats)
            .map(|(p, s)| {
                s.or_else(|| {
                    p.map(|p| {
                        let addr = b.ins().iadd(p, off);
                        load_lanes(b, addr, imm, lanes)
                    })
                })
            })
            .collect();
        let mut acc = xs[0].expect("input 0 is used");
        for step in &spec.steps {
            acc = match step {
                PointwiseStep::Unary(u) => emit_unary(b, u, acc),
                PointwiseStep::Binary { op, input, operand_first } => {
                    let x = xs[*input].expect("inputs of steps are used");
                    match operand_first {
                        true => emit_binary(b, *op, x, acc),
                        false => emit_binary(b, *op, acc, x),
                    }
                }
            };
        }
        let addr = b.ins().iadd(out, off);
        store_lanes(b, acc, addr, imm, lanes);
    };
    let full = len / 4;
    if full >= 2 {
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, (full / 2 * 32) as i64);
        counted_loop(b, zero, end, 32, |b, off| {
            at(b, off, 0, 4);
            at(b, off, 16, 4);
        });
    }
    if full % 2 == 1 {
        let off = b.ins().iconst(types::I64, ((full - 1) * 16) as i64);
        at(b, off, 0, 4);
    }
    if !len.is_multiple_of(4) {
        let off = b.ins().iconst(types::I64, (full * 16) as i64);
        at(b, off, 0, len % 4);
    }
}
