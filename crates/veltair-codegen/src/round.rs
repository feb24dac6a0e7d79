//! Rounding an f32 onto the grid of a narrower float type (f16, bf16, the 8- and 4-bit floats,
//! E8M0), the value staying stored as f32: what a `Cast` to such a type computes inside a graph.
//! The grids are `veltair_ir::narrow`'s formats; the rules (nearest even, saturation, what NaN
//! and overflow become) are the reference evaluator's.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_ir::narrow::{float_format, FloatFormat, Specials};
use veltair_ir::DType;

/// True when [`emit_round`] can round onto `to`'s grid.
pub fn rounds_to(to: DType) -> bool {
    matches!(to, DType::BF16 | DType::F8E8M0) || float_format(to).is_some()
}

/// `x` rounded onto `to`'s grid; `saturate` clamps to the finite range first (ONNX applies it
/// to the 8-bit floats only).
pub fn emit_round(b: &mut FunctionBuilder, to: DType, saturate: bool, x: Value) -> Value {
    let saturate = saturate && to.is_narrow();
    match to {
        DType::BF16 => bf16(b, x),
        DType::F8E8M0 => e8m0(b, saturate, x),
        _ => grid(b, &float_format(to).expect("a type `rounds_to` accepts"), saturate, x),
    }
}

fn bits_of(b: &mut FunctionBuilder, x: Value) -> Value {
    b.ins().bitcast(types::I32, MemFlagsData::new(), x)
}

fn float_of(b: &mut FunctionBuilder, bits: Value) -> Value {
    b.ins().bitcast(types::F32, MemFlagsData::new(), bits)
}

/// Nearest even on the grid whose spacing is `2^(max(exponent(x), min_exp) - mant_bits)`:
/// `nearest(x / q) * q` with `q` that power of two (both steps exact). Out-of-range results
/// become infinity (IEEE-like formats) or NaN; NaN stays NaN (the 4-bit float, which has none,
/// gives -0, as the reference does).
fn grid(b: &mut FunctionBuilder, f: &FloatFormat, saturate: bool, x: Value) -> Value {
    let max = f.max as f32;
    let clamp = saturate || f.specials == Specials::None;
    let v = if clamp {
        let (lo, hi) = (b.ins().f32const(-max), b.ins().f32const(max));
        let v = b.ins().fmax(x, lo);
        b.ins().fmin(v, hi)
    } else {
        x
    };
    let bits = bits_of(b, v);
    let biased = b.ins().ushr_imm_s(bits, 23);
    let biased = b.ins().band_imm_s(biased, 0xff);
    let exp = b.ins().iadd_imm_s(biased, -127);
    let min_exp = b.ins().iconst(types::I32, i64::from(f.min_exp()));
    let exp = b.ins().smax(exp, min_exp);
    // q's biased exponent: at least min_exp - mant_bits + 127 > 0 for every format here.
    let q_exp = b.ins().iadd_imm_s(exp, 127 - i64::from(f.mant_bits));
    let q_bits = b.ins().ishl_imm_s(q_exp, 23);
    let q = float_of(b, q_bits);
    let scaled = b.ins().fdiv(v, q);
    let whole = b.ins().nearest(scaled);
    let r = b.ins().fmul(whole, q);
    let magnitude = b.ins().fabs(r);
    let limit = b.ins().f32const(max);
    let over = b.ins().fcmp(FloatCC::GreaterThan, magnitude, limit);
    let overflow = match f.specials {
        Specials::Ieee => {
            let inf = b.ins().f32const(f32::INFINITY);
            b.ins().fcopysign(inf, r)
        }
        _ => b.ins().f32const(f32::NAN),
    };
    let r = b.ins().select(over, overflow, r);
    let r = if f.specials == Specials::Fnuz {
        let zero = b.ins().f32const(0.0);
        let is_zero = b.ins().fcmp(FloatCC::Equal, r, zero);
        b.ins().select(is_zero, zero, r)
    } else {
        r
    };
    let nan = b.ins().fcmp(FloatCC::Unordered, x, x);
    let nan_result = b.ins().f32const(if f.specials == Specials::None { -0.0 } else { f32::NAN });
    b.ins().select(nan, nan_result, r)
}

/// bf16: nearest even on the top 16 bits of the f32 pattern (a carry into the exponent is the
/// next binade or infinity); NaN stays NaN.
fn bf16(b: &mut FunctionBuilder, x: Value) -> Value {
    let bits = bits_of(b, x);
    let odd = b.ins().ushr_imm_s(bits, 16);
    let odd = b.ins().band_imm_s(odd, 1);
    let up = b.ins().iadd_imm_s(odd, 0x7fff);
    let rounded = b.ins().iadd(bits, up);
    let kept = b.ins().band_imm_s(rounded, 0xffff_0000u32 as i32 as i64);
    let r = float_of(b, kept);
    let nan = b.ins().fcmp(FloatCC::Unordered, x, x);
    b.ins().select(nan, x, r)
}

/// E8M0 (a bare power of two): the f32 exponent, one up when the mantissa is nonzero unless
/// `saturate` holds it at the largest; infinity and NaN (and the all-ones code) become NaN.
fn e8m0(b: &mut FunctionBuilder, saturate: bool, x: Value) -> Value {
    let bits = bits_of(b, x);
    let exp = b.ins().ushr_imm_s(bits, 23);
    let exp = b.ins().band_imm_s(exp, 0xff);
    let mantissa = b.ins().band_imm_s(bits, 0x7f_ffff);
    let inexact = b.ins().icmp_imm_s(IntCC::NotEqual, mantissa, 0);
    let up = if saturate {
        let at_top = b.ins().icmp_imm_s(IntCC::Equal, exp, 0xfe);
        let held = b.ins().bxor_imm_s(at_top, 1);
        b.ins().band(inexact, held)
    } else {
        inexact
    };
    let up = b.ins().uextend(types::I32, up);
    let code = b.ins().iadd(exp, up);
    // Code 0 is 2^-127, an f32 subnormal; every other code is the f32 exponent field.
    let normal = b.ins().ishl_imm_s(code, 23);
    let subnormal = b.ins().iconst(types::I32, 0x40_0000);
    let is_zero_code = b.ins().icmp_imm_s(IntCC::Equal, code, 0);
    let pattern = b.ins().select(is_zero_code, subnormal, normal);
    let r = float_of(b, pattern);
    let nan = b.ins().f32const(f32::NAN);
    let special = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, code, 0xff);
    b.ins().select(special, nan, r)
}
