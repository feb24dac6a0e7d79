//! The remainder of two floats, exactly (as C's `fmod` and Rust's `%`): `|x|` reduced by `|y|`
//! times powers of two in f64, where every f32 is normal and each subtraction is exact (the
//! subtrahend lies within a factor of two of the remainder: Sterbenz), one binary digit of the
//! quotient per step (at most about 280 steps for f32 operands). NaN when `y` is 0 or `x`
//! infinite; `x` when `y` is infinite. Python's convention (the sign of the divisor) adds `y` to
//! a nonzero remainder whose sign differs from it, in f32, as the reference evaluator does.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

/// `x mod y` of two f32 values; `fmod` selects C's truncated convention, else Python's.
pub fn emit_mod(b: &mut FunctionBuilder, x: Value, y: Value, fmod: bool) -> Value {
    let a = b.ins().fpromote(types::F64, x);
    let d = b.ins().fpromote(types::F64, y);
    let (ra, rd) = (b.ins().fabs(a), b.ins().fabs(d));
    let zero = b.ins().f64const(0.0);
    let inf = b.ins().f64const(f64::INFINITY);
    // Invalid: a zero divisor, an infinite dividend, or NaN (unordered comparisons are false).
    let divisor_ok = b.ins().fcmp(FloatCC::GreaterThan, rd, zero);
    let dividend_ok = b.ins().fcmp(FloatCC::LessThan, ra, inf);
    let valid = b.ins().band(divisor_ok, dividend_ok);
    // An invalid case starts below any divisor, so the loop does not run.
    let below = b.ins().f64const(-1.0);
    let start = b.ins().select(valid, ra, below);

    let head = b.create_block();
    let step = b.create_block();
    let done = b.create_block();
    b.append_block_param(head, types::F64);
    b.append_block_param(done, types::F64);
    b.ins().jump(head, &[start.into()]);
    b.switch_to_block(head);
    let r = b.block_params(head)[0];
    let more = b.ins().fcmp(FloatCC::GreaterThanOrEqual, r, rd);
    b.ins().brif(more, step, &[], done, &[r.into()]);
    b.switch_to_block(step);
    b.seal_block(step);
    let bits = |b: &mut FunctionBuilder, v: Value| b.ins().bitcast(types::I64, MemFlagsData::new(), v);
    let (r_bits, d_bits) = (bits(b, r), bits(b, rd));
    let (r_exp, d_exp) = (b.ins().ushr_imm_s(r_bits, 52), b.ins().ushr_imm_s(d_bits, 52));
    let k = b.ins().isub(r_exp, d_exp);
    // |y| · 2^k: k added to the exponent field (the result is a normal f64, at most r·2).
    let shift = b.ins().ishl_imm_s(k, 52);
    let t_bits = b.ins().iadd(d_bits, shift);
    let t = b.ins().bitcast(types::F64, MemFlagsData::new(), t_bits);
    let too_big = b.ins().fcmp(FloatCC::GreaterThan, t, r);
    let half = b.ins().f64const(0.5);
    let halved = b.ins().fmul(t, half);
    let t = b.ins().select(too_big, halved, t);
    let next = b.ins().fsub(r, t);
    b.ins().jump(head, &[next.into()]);
    b.seal_block(head);
    b.switch_to_block(done);
    b.seal_block(done);
    let r = b.block_params(done)[0];

    let signed = b.ins().fcopysign(r, a);
    let truncated = b.ins().fdemote(types::F32, signed);
    // y infinite with x finite: the loop never ran and r = |x|, so the result is x itself.
    let nan = b.ins().f32const(f32::NAN);
    let result = b.ins().select(valid, truncated, nan);
    if fmod {
        return result;
    }
    let zero32 = b.ins().f32const(0.0);
    let nonzero = b.ins().fcmp(FloatCC::NotEqual, result, zero32);
    let r_negative = b.ins().fcmp(FloatCC::LessThan, result, zero32);
    let y_negative = b.ins().fcmp(FloatCC::LessThan, y, zero32);
    let differ = b.ins().bxor(r_negative, y_negative);
    let fix = b.ins().band(nonzero, differ);
    let shifted = b.ins().fadd(result, y);
    b.ins().select(fix, shifted, result)
}
