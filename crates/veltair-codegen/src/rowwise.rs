//! Row kernels over a `[rows, len]` view, reducing or normalising along the last axis:
//! softmax and log-softmax, layer normalisation, and reductions. Threads split the rows
//! (`thread_range`); each row is read in f32x4 vectors into two accumulators, with the tail
//! vector padded by a value neutral for the reduction, then reduced across lanes.
//!
//! Sums accumulate in f32 (the reference evaluator uses f64): for a row of `len` elements the
//! difference is about `len/8` ulp of the sum of magnitudes.

use crate::builder::{build_kernel, counted_loop, load_lanes, mem, store_lanes, thread_range};
use crate::math::{self, max_num, select_cmp, splat};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_ir::ReduceOp;
use veltair_load::MachineCode;

/// How two partial results combine.
#[derive(Clone, Copy)]
enum Combine {
    Add,
    Mul,
    /// NaN-propagating maximum and minimum.
    Max,
    Min,
    /// Maximum ignoring NaN elements (the softmax reference's `f64::max` fold).
    MaxNum,
}

fn combine(b: &mut FunctionBuilder, c: Combine, acc: Value, x: Value) -> Value {
    match c {
        Combine::Add => b.ins().fadd(acc, x),
        Combine::Mul => b.ins().fmul(acc, x),
        Combine::Max => b.ins().fmax(acc, x),
        Combine::Min => b.ins().fmin(acc, x),
        Combine::MaxNum => max_num(b, x, acc),
    }
}

/// Loads `lanes` (0..=4) floats at `ptr + off` into `fill`'s first lanes.
fn load_fill(b: &mut FunctionBuilder, ptr: Value, off: i32, lanes: usize, fill: Value) -> Value {
    let mut v = fill;
    for l in 0..lanes {
        let x = b.ins().load(types::F32, mem(), ptr, off + 4 * l as i32);
        v = b.ins().insertlane(v, x, l as u8);
    }
    v
}

/// A reduction along a row: `combine` over `map(x)`, from `init`, the tail vector padded with
/// `fill` (for which `map` must give a neutral element).
struct RowReduce<'a> {
    combine: Combine,
    init: f32,
    fill: Value,
    map: &'a dyn Fn(&mut FunctionBuilder, Value) -> Value,
}

/// Reduces the `len` floats at `src` with `r`, also storing `map(x)` at `dst` when given.
/// Returns the result in all four lanes.
fn reduce_row(b: &mut FunctionBuilder, r: &RowReduce, src: Value, dst: Option<Value>, len: usize) -> Value {
    let accs = [b.declare_var(types::F32X4), b.declare_var(types::F32X4)];
    let init = splat(b, r.init);
    for &acc in &accs {
        b.def_var(acc, init);
    }
    let step = |b: &mut FunctionBuilder, k: usize, off: Value, imm: i32, lanes: usize| {
        let addr = b.ins().iadd(src, off);
        let x = match lanes {
            4 => b.ins().load(types::F32X4, mem(), addr, imm),
            _ => load_fill(b, addr, imm, lanes, r.fill),
        };
        let m = (r.map)(b, x);
        if let Some(dst) = dst {
            let addr = b.ins().iadd(dst, off);
            store_lanes(b, m, addr, imm, lanes);
        }
        let acc = b.use_var(accs[k]);
        let acc = combine(b, r.combine, acc, m);
        b.def_var(accs[k], acc);
    };
    for_vectors(b, len, |b, off, imm, lanes| step(b, (imm != 0 || lanes < 4) as usize, off, imm, lanes));
    let (a0, a1) = (b.use_var(accs[0]), b.use_var(accs[1]));
    let acc = combine(b, r.combine, a0, a1);
    let l: Vec<Value> = (0..4)
        .map(|i| {
            let x = b.ins().extractlane(acc, i);
            b.ins().splat(types::F32X4, x)
        })
        .collect();
    let lo = combine(b, r.combine, l[0], l[1]);
    let hi = combine(b, r.combine, l[2], l[3]);
    combine(b, r.combine, lo, hi)
}

/// Calls `body(off, imm, lanes)` for the f32x4 vectors of a `len`-element row: byte offset
/// `off + imm`, `lanes` valid. Pairs of full vectors run in a loop (`imm` 0 and 16), then a
/// lone full vector and the tail.
fn for_vectors(b: &mut FunctionBuilder, len: usize, mut body: impl FnMut(&mut FunctionBuilder, Value, i32, usize)) {
    let full = len / 4;
    if full >= 2 {
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, (full / 2 * 32) as i64);
        counted_loop(b, zero, end, 32, |b, off| {
            body(b, off, 0, 4);
            body(b, off, 16, 4);
        });
    }
    if full % 2 == 1 {
        let off = b.ins().iconst(types::I64, ((full - 1) * 16) as i64);
        body(b, off, 0, 4);
    }
    if !len.is_multiple_of(4) {
        let off = b.ins().iconst(types::I64, (full * 16) as i64);
        body(b, off, 0, len % 4);
    }
}

/// Stores `f(off, imm, lanes)` for every vector of the `len`-element row at `dst`.
fn map_row(
    b: &mut FunctionBuilder,
    dst: Value,
    len: usize,
    f: impl Fn(&mut FunctionBuilder, Value, i32, usize) -> Value,
) {
    for_vectors(b, len, |b, off, imm, lanes| {
        let v = f(b, off, imm, lanes);
        let addr = b.ins().iadd(dst, off);
        store_lanes(b, v, addr, imm, lanes);
    });
}

/// `load_lanes` at `ptr + off + imm`.
fn load_at(b: &mut FunctionBuilder, ptr: Value, off: Value, imm: i32, lanes: usize) -> Value {
    let addr = b.ins().iadd(ptr, off);
    load_lanes(b, addr, imm, lanes)
}

fn check(rows: usize, len: usize) -> Result<(), CodegenError> {
    if rows == 0 || len == 0 || rows.checked_mul(len).is_none_or(|n| n > veltair_ir::MAX_ELEMENTS) {
        return Err(CodegenError::Schedule(format!("unsupported row view [{rows}, {len}]")));
    }
    Ok(())
}

/// Emits a kernel whose `body(args, row)` handles one row (of this thread's share); `args`
/// are the argument-table pointers.
fn row_kernel(
    target: &Target,
    rows: usize,
    nargs: usize,
    body: impl Fn(&mut FunctionBuilder, &[Value], Value),
) -> cranelift_codegen::ir::Function {
    build_kernel(target, |b, params| {
        let args: Vec<Value> = (0..nargs).map(|i| params.arg(b, i)).collect();
        let (r0, r1) = thread_range(b, rows as i64, params.thread, params.threads);
        counted_loop(b, r0, r1, 1, |b, r| body(b, &args, r));
    })
}

/// Pointer to row `r` of a `[rows, len]` buffer.
fn row_ptr(b: &mut FunctionBuilder, base: Value, r: Value, len: usize) -> Value {
    let off = b.ins().imul_imm_s(r, 4 * len as i64);
    b.ins().iadd(base, off)
}

/// Softmax (or log-softmax when `log`) of each row of `[rows, len]`, max-subtracted, as
/// `Op::Softmax` on the last axis. Arguments: `[x (rows·len), y (rows·len)]`.
pub fn compile_softmax(rows: usize, len: usize, log: bool, target: &Target) -> Result<MachineCode, CodegenError> {
    check(rows, len)?;
    let func = row_kernel(target, rows, 2, |b, args, r| {
        let src = row_ptr(b, args[0], r, len);
        let dst = row_ptr(b, args[1], r, len);
        let neg_inf = splat(b, f32::NEG_INFINITY);
        let max = RowReduce { combine: Combine::MaxNum, init: f32::NEG_INFINITY, fill: neg_inf, map: &|_, x| x };
        let m = reduce_row(b, &max, src, None, len);
        let exp_shifted = |b: &mut FunctionBuilder, x: Value| {
            let z = b.ins().fsub(x, m);
            math::exp(b, z)
        };
        let sum = RowReduce { combine: Combine::Add, init: 0.0, fill: neg_inf, map: &exp_shifted };
        if log {
            let s = reduce_row(b, &sum, src, None, len);
            let ls = math::log(b, s);
            map_row(b, dst, len, |b, off, imm, lanes| {
                let x = load_at(b, src, off, imm, lanes);
                let z = b.ins().fsub(x, m);
                b.ins().fsub(z, ls)
            });
        } else {
            let s = reduce_row(b, &sum, src, Some(dst), len);
            let one = splat(b, 1.0);
            let inv = b.ins().fdiv(one, s);
            map_row(b, dst, len, |b, off, imm, lanes| {
                let e = load_at(b, dst, off, imm, lanes);
                b.ins().fmul(e, inv)
            });
        }
    });
    compile(func, target, vec![rows * len; 2])
}

/// Layer normalisation of each row of `[rows, len]` (mean and variance over the row, as
/// `Op::LayerNorm` with the last axis), `y = (x − mean)/√(var + ε) · scale (+ bias)`.
/// Arguments: `[x (rows·len), scale (len), bias (len, if has_bias), y (rows·len)]`.
pub fn compile_layernorm(
    rows: usize,
    len: usize,
    epsilon: f32,
    has_bias: bool,
    target: &Target,
) -> Result<MachineCode, CodegenError> {
    check(rows, len)?;
    let nargs = 3 + has_bias as usize;
    let func = row_kernel(target, rows, nargs, |b, args, r| {
        let src = row_ptr(b, args[0], r, len);
        let dst = row_ptr(b, args[nargs - 1], r, len);
        let (zero, n) = (splat(b, 0.0), splat(b, len as f32));
        let sum = RowReduce { combine: Combine::Add, init: 0.0, fill: zero, map: &|_, x| x };
        let s = reduce_row(b, &sum, src, None, len);
        let mean = b.ins().fdiv(s, n);
        let square_dev = |b: &mut FunctionBuilder, x: Value| {
            let d = b.ins().fsub(x, mean);
            b.ins().fmul(d, d)
        };
        let dev = RowReduce { combine: Combine::Add, init: 0.0, fill: mean, map: &square_dev };
        let ss = reduce_row(b, &dev, src, None, len);
        let var = b.ins().fdiv(ss, n);
        let eps = splat(b, epsilon);
        let ve = b.ins().fadd(var, eps);
        let sd = b.ins().sqrt(ve);
        let one = splat(b, 1.0);
        let inv = b.ins().fdiv(one, sd);
        map_row(b, dst, len, |b, off, imm, lanes| {
            let x = load_at(b, src, off, imm, lanes);
            let d = b.ins().fsub(x, mean);
            let d = b.ins().fmul(d, inv);
            let scale = load_at(b, args[1], off, imm, lanes);
            match has_bias {
                true => {
                    let bias = load_at(b, args[2], off, imm, lanes);
                    b.ins().fma(d, scale, bias)
                }
                false => b.ins().fmul(d, scale),
            }
        });
    });
    let mut elems = vec![rows * len, len];
    if has_bias {
        elems.push(len);
    }
    elems.push(rows * len);
    compile(func, target, elems)
}

/// Reduces each row of `[rows, len]` to one value with `op` (any reduction), as `Op::Reduce`
/// over the last axis. Max and Min return NaN for rows holding a NaN (the reference's result
/// depends on where the NaN is); LogSumExp subtracts the row maximum first. Arguments:
/// `[x (rows·len), y (rows)]`.
pub fn compile_reduce_rows(
    rows: usize,
    len: usize,
    op: ReduceOp,
    target: &Target,
) -> Result<MachineCode, CodegenError> {
    check(rows, len)?;
    let func = row_kernel(target, rows, 2, |b, args, r| {
        let src = row_ptr(b, args[0], r, len);
        let zero = splat(b, 0.0);
        let sum_of = |b: &mut FunctionBuilder, map: &dyn Fn(&mut FunctionBuilder, Value) -> Value| {
            let r = RowReduce { combine: Combine::Add, init: 0.0, fill: zero, map };
            reduce_row(b, &r, src, None, len)
        };
        let square = |b: &mut FunctionBuilder, x: Value| b.ins().fmul(x, x);
        let y = match op {
            ReduceOp::Sum => sum_of(b, &|_, x| x),
            ReduceOp::Mean => {
                let s = sum_of(b, &|_, x| x);
                let n = splat(b, len as f32);
                b.ins().fdiv(s, n)
            }
            ReduceOp::Max | ReduceOp::Min => {
                let (combine, init) = match op {
                    ReduceOp::Max => (Combine::Max, f32::NEG_INFINITY),
                    _ => (Combine::Min, f32::INFINITY),
                };
                let fill = splat(b, init);
                reduce_row(b, &RowReduce { combine, init, fill, map: &|_, x| x }, src, None, len)
            }
            ReduceOp::Prod => {
                let fill = splat(b, 1.0);
                reduce_row(b, &RowReduce { combine: Combine::Mul, init: 1.0, fill, map: &|_, x| x }, src, None, len)
            }
            ReduceOp::L1 => sum_of(b, &|b, x| b.ins().fabs(x)),
            ReduceOp::L2 => {
                let s = sum_of(b, &square);
                b.ins().sqrt(s)
            }
            ReduceOp::SumSquare => sum_of(b, &square),
            ReduceOp::LogSum => {
                let s = sum_of(b, &|_, x| x);
                math::log(b, s)
            }
            ReduceOp::LogSumExp => {
                let neg_inf = splat(b, f32::NEG_INFINITY);
                let max =
                    RowReduce { combine: Combine::MaxNum, init: f32::NEG_INFINITY, fill: neg_inf, map: &|_, x| x };
                let m = reduce_row(b, &max, src, None, len);
                let exp_shifted = |b: &mut FunctionBuilder, x: Value| {
                    let z = b.ins().fsub(x, m);
                    math::exp(b, z)
                };
                let sum = RowReduce { combine: Combine::Add, init: 0.0, fill: neg_inf, map: &exp_shifted };
                let s = reduce_row(b, &sum, src, None, len);
                let ls = math::log(b, s);
                let lse = b.ins().fadd(ls, m);
                // An infinite maximum is the result itself (e^(x − m) would be NaN).
                let am = b.ins().fabs(m);
                let inf = splat(b, f32::INFINITY);
                select_cmp(b, FloatCC::Equal, am, inf, m, lse)
            }
        };
        let y = b.ins().extractlane(y, 0);
        let off = b.ins().imul_imm_s(r, 4);
        let addr = b.ins().iadd(args[1], off);
        b.ins().store(mem(), y, addr, 0);
    });
    compile(func, target, vec![rows * len, rows])
}
