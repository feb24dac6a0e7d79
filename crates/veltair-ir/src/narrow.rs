//! Narrow storage types (8-, 4- and 2-bit floats and integers). veltair never computes in them;
//! they appear at model boundaries and in casts. Values are held as the f32 numbers they
//! encode; this module decodes their packed bytes and rounds numbers onto their grids.

use crate::DType;

/// Layout of a float type narrower than f32: exponent/mantissa widths, bias, and how it encodes
/// specials. Generated code rounds onto the same grids (`veltair_codegen`'s rounding casts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatFormat {
    pub exp_bits: u32,
    pub mant_bits: u32,
    pub bias: i32,
    pub specials: Specials,
    /// Largest finite value.
    pub max: f64,
}

impl FloatFormat {
    /// Exponent of the smallest normal value (below it the spacing is fixed: subnormals).
    pub fn min_exp(&self) -> i32 {
        1 - self.bias
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Specials {
    /// IEEE-like: all-ones exponent is inf (zero mantissa) or NaN.
    Ieee,
    /// Only the all-ones pattern (both signs) is NaN; no inf.
    FiniteNan,
    /// "Unsigned zero": the negative-zero pattern is the only NaN; no inf, no -0.
    Fnuz,
    /// No inf and no NaN.
    None,
}

/// The format of f16, bf16 and the 8- and 4-bit float types (not E8M0, a bare exponent).
pub fn float_format(dtype: DType) -> Option<FloatFormat> {
    let f = |exp_bits, mant_bits, bias, specials, max| Some(FloatFormat { exp_bits, mant_bits, bias, specials, max });
    match dtype {
        DType::F16 => f(5, 10, 15, Specials::Ieee, 65504.0),
        DType::BF16 => f(8, 7, 127, Specials::Ieee, 3.389_531_389_251_535_5e38),
        DType::F8E4M3FN => f(4, 3, 7, Specials::FiniteNan, 448.0),
        DType::F8E4M3FNUZ => f(4, 3, 8, Specials::Fnuz, 240.0),
        DType::F8E5M2 => f(5, 2, 15, Specials::Ieee, 57344.0),
        DType::F8E5M2FNUZ => f(5, 2, 16, Specials::Fnuz, 57344.0),
        DType::F4E2M1 => f(2, 1, 1, Specials::None, 6.0),
        _ => None,
    }
}

/// Bits per element of a narrow type.
pub fn bits(dtype: DType) -> usize {
    match dtype {
        DType::I4 | DType::U4 | DType::F4E2M1 => 4,
        DType::I2 | DType::U2 => 2,
        _ => 8,
    }
}

/// The number one element code of `dtype` stands for.
fn decode(dtype: DType, code: u8) -> f32 {
    let width = bits(dtype) as u32;
    match dtype {
        DType::U4 | DType::U2 => code as f32,
        DType::I4 | DType::I2 => {
            let shift = 8 - width;
            (((code << shift) as i8) >> shift) as f32
        }
        DType::F8E8M0 => {
            if code == 0xff {
                f32::NAN
            } else {
                (2.0f64).powi(code as i32 - 127) as f32
            }
        }
        _ => {
            let m = float_format(dtype).expect("a narrow float type");
            let sign_bit = 1u8 << (m.exp_bits + m.mant_bits);
            let exp = ((code >> m.mant_bits) & ((1 << m.exp_bits) - 1)) as i32;
            let mant = (code & ((1 << m.mant_bits) - 1)) as f64;
            let all_exp = (1 << m.exp_bits) - 1;
            match m.specials {
                Specials::Fnuz if code == sign_bit => return f32::NAN,
                Specials::FiniteNan if code & !sign_bit == !sign_bit & ((sign_bit << 1).wrapping_sub(1)) => {
                    return f32::NAN
                }
                Specials::Ieee if exp == all_exp => {
                    let inf = if mant == 0.0 { f32::INFINITY } else { f32::NAN };
                    return if code & sign_bit != 0 { -inf } else { inf };
                }
                _ => {}
            }
            let scale = 2f64.powi(-(m.mant_bits as i32));
            let v = if exp == 0 {
                mant * scale * 2f64.powi(1 - m.bias)
            } else {
                (1.0 + mant * scale) * 2f64.powi(exp - m.bias)
            };
            (if code & sign_bit != 0 { -v } else { v }) as f32
        }
    }
}

/// Unpacks `numel` elements from packed bytes (low bits first for 4- and 2-bit types).
pub fn unpack(dtype: DType, bytes: &[u8], numel: usize) -> Option<Vec<f32>> {
    let width = bits(dtype);
    let per_byte = 8 / width;
    if bytes.len() != numel.div_ceil(per_byte) {
        return None;
    }
    let mask = ((1u16 << width) - 1) as u8;
    Some((0..numel).map(|i| decode(dtype, (bytes[i / per_byte] >> ((i % per_byte) * width)) & mask)).collect())
}

/// Round to nearest even onto a float grid with `mant_bits` mantissa bits whose smallest normal
/// exponent is `min_exp` (below it the spacing stays fixed: subnormals).
fn round_to_grid(x: f64, mant_bits: u32, min_exp: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let exp = (x.abs().log2().floor() as i32).max(min_exp);
    let quantum = 2f64.powi(exp - mant_bits as i32);
    (x / quantum).round_ties_even() * quantum
}

/// The value a `Cast` to narrow type `dtype` produces from `x`, following the ONNX reference:
/// floats round to nearest even, with `saturate` clamping to the finite range (8-bit floats;
/// 4-bit floats always saturate); integers truncate toward zero and wrap; E8M0 rounds the
/// exponent up.
pub fn cast(dtype: DType, x: f64, saturate: bool) -> f32 {
    match dtype {
        DType::I4 | DType::U4 | DType::I2 | DType::U2 => {
            let t = if x.is_finite() { x.trunc() as i64 } else { 0 };
            decode(dtype, (t & ((1 << bits(dtype)) - 1)) as u8)
        }
        DType::F8E8M0 => e8m0_round_up(x as f32, saturate),
        _ => {
            let m = float_format(dtype).expect("a narrow float type");
            let unsigned_zero = m.specials == Specials::Fnuz;
            if x.is_nan() {
                return if m.specials == Specials::None { -0.0 } else { f32::NAN };
            }
            let x = if saturate || m.specials == Specials::None { x.clamp(-m.max, m.max) } else { x };
            let r = round_to_grid(x, m.mant_bits, m.min_exp());
            if r.abs() > m.max {
                return match m.specials {
                    Specials::Ieee => r.signum() as f32 * f32::INFINITY,
                    _ => f32::NAN,
                };
            }
            if r == 0.0 && unsigned_zero {
                return 0.0;
            }
            r as f32
        }
    }
}

/// `x` rounded to the nearest bf16 (ties to even). `half`'s own conversion from f64 drops the
/// low 32 bits before rounding, which can round the wrong way.
pub fn bf16_of(x: f64) -> crate::bf16 {
    crate::bf16::from_f32(cast(DType::BF16, x, false))
}

/// E8M0 (a bare power-of-two exponent): the f32 exponent, plus one when the mantissa is
/// nonzero, saturating at the largest exponent; inf and NaN become NaN.
fn e8m0_round_up(x: f32, saturate: bool) -> f32 {
    let b = x.to_bits();
    let exp = (b >> 23) & 0xff;
    if exp == 0xff {
        return f32::NAN;
    }
    let up = (b & 0x7f_ffff) != 0 && !(saturate && exp == 0xfe);
    decode(DType::F8E8M0, (exp + up as u32) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float8_codes_decode() {
        assert_eq!(decode(DType::F8E4M3FN, 0x7e), 448.0);
        assert!(decode(DType::F8E4M3FN, 0x7f).is_nan());
        assert_eq!(decode(DType::F8E4M3FN, 0x01), 2f32.powi(-9));
        assert!(decode(DType::F8E4M3FNUZ, 0x80).is_nan());
        assert_eq!(decode(DType::F8E5M2, 0x7c), f32::INFINITY);
        assert_eq!(decode(DType::F4E2M1, 0x7), 6.0);
        assert_eq!(decode(DType::I4, 0x8), -8.0);
        assert_eq!(decode(DType::I2, 0x3), -1.0);
    }

    #[test]
    fn f16_format_rounds_as_half_does() {
        for i in 0..20_000 {
            let x = (i as f64 - 10_000.0) * 7.3;
            let x = x * 2f64.powi(i % 40 - 30);
            assert_eq!(cast(DType::F16, x, false) as f64, crate::f16::from_f64(x).to_f64(), "{x:e}");
        }
    }

    #[test]
    fn bf16_rounds_on_every_bit() {
        // 0x42b28004: above the halfway point only in bits f64-to-bf16 truncation drops.
        let x = f32::from_bits(0x42b2_8004) as f64;
        assert_eq!(bf16_of(x).to_f32(), 89.5);
        assert_eq!(bf16_of(1.0 + 2f64.powi(-8)).to_f32(), 1.0, "a tie goes to even");
        assert_eq!(bf16_of(3.4e38).to_f32(), f32::INFINITY);
    }

    #[test]
    fn casts_round_saturate_and_wrap() {
        assert_eq!(cast(DType::F8E4M3FN, 300.0, false), 288.0);
        assert_eq!(cast(DType::F8E4M3FN, 464.0, false), 448.0);
        assert!(cast(DType::F8E4M3FN, 470.0, false).is_nan());
        assert_eq!(cast(DType::F8E4M3FN, 470.0, true), 448.0);
        assert_eq!(cast(DType::F8E5M2, 480.0, false), 512.0);
        assert_eq!(cast(DType::F8E5M2, f64::INFINITY, false), f32::INFINITY);
        assert_eq!(cast(DType::F4E2M1, 2.5, false), 2.0);
        assert_eq!(cast(DType::F4E2M1, 7.6, false), 6.0);
        assert_eq!(cast(DType::I4, -10.5, false), 6.0);
        assert_eq!(cast(DType::U4, -1.5, false), 15.0);
        assert_eq!(cast(DType::I2, 2.5, false), -2.0);
    }
}
