//! Element-wise operators with numpy broadcasting: arithmetic, comparisons, selection, unary
//! math and type casts.

use veltair_ir::shape::broadcast_index;
use veltair_ir::{bf16, f16, narrow, BinaryOp, CompareOp, DType, IrError, Tensor, TensorData, UnaryOp};

/// Arithmetic that each element type implements for [`BinaryOp`].
trait Arith: Copy {
    fn apply(op: BinaryOp, a: Self, b: Self) -> Result<Self, IrError>;
}

macro_rules! float_arith {
    ($t:ty) => {
        impl Arith for $t {
            fn apply(op: BinaryOp, a: $t, b: $t) -> Result<$t, IrError> {
                Ok(match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Pow => a.powf(b),
                    BinaryOp::Max => {
                        if a.is_nan() || b.is_nan() {
                            <$t>::NAN
                        } else {
                            a.max(b)
                        }
                    }
                    BinaryOp::Min => {
                        if a.is_nan() || b.is_nan() {
                            <$t>::NAN
                        } else {
                            a.min(b)
                        }
                    }
                    BinaryOp::Mod { fmod: true } => a % b,
                    BinaryOp::Mod { fmod: false } => {
                        let r = a % b;
                        if r != 0.0 && (r < 0.0) != (b < 0.0) {
                            r + b
                        } else {
                            r
                        }
                    }
                    BinaryOp::And | BinaryOp::Or | BinaryOp::Xor | BinaryOp::ShiftLeft | BinaryOp::ShiftRight => {
                        return Err(IrError::value("bitwise operator on floats"))
                    }
                })
            }
        }
    };
}
float_arith!(f32);
float_arith!(f64);

macro_rules! int_arith {
    ($t:ty) => {
        impl Arith for $t {
            fn apply(op: BinaryOp, a: $t, b: $t) -> Result<$t, IrError> {
                let nonzero = || {
                    if b == 0 {
                        Err(IrError::value("integer division by zero"))
                    } else {
                        Ok(())
                    }
                };
                Ok(match op {
                    BinaryOp::Add => a.wrapping_add(b),
                    BinaryOp::Sub => a.wrapping_sub(b),
                    BinaryOp::Mul => a.wrapping_mul(b),
                    BinaryOp::Div => {
                        nonzero()?;
                        a.wrapping_div(b)
                    }
                    BinaryOp::Pow => (a as f64).powf(b as f64) as $t,
                    BinaryOp::Max => a.max(b),
                    BinaryOp::Min => a.min(b),
                    BinaryOp::Mod { fmod } => {
                        nonzero()?;
                        let r = a.wrapping_rem(b);
                        #[allow(unused_comparisons)]
                        let fix = !fmod && r != 0 && ((r < 0) != (b < 0));
                        if fix {
                            r.wrapping_add(b)
                        } else {
                            r
                        }
                    }
                    BinaryOp::And => a & b,
                    BinaryOp::Or => a | b,
                    BinaryOp::Xor => a ^ b,
                    // A shift by the width or more (or a negative amount) shifts every bit out:
                    // 0, or for a right shift of a negative number (arithmetic) -1.
                    BinaryOp::ShiftLeft => u32::try_from(b).ok().and_then(|s| a.checked_shl(s)).unwrap_or(0),
                    BinaryOp::ShiftRight => {
                        #[allow(unused_comparisons)]
                        let fill = if a < 0 { !0 } else { 0 };
                        u32::try_from(b).ok().and_then(|s| a.checked_shr(s)).unwrap_or(fill)
                    }
                })
            }
        }
    };
}
int_arith!(i64);
int_arith!(i32);
int_arith!(i16);
int_arith!(i8);
int_arith!(u64);
int_arith!(u32);
int_arith!(u16);
int_arith!(u8);

/// Half-precision arithmetic rounds the f32 result, as numpy does.
macro_rules! half_arith {
    ($t:ty) => {
        impl Arith for $t {
            fn apply(op: BinaryOp, a: $t, b: $t) -> Result<$t, IrError> {
                f32::apply(op, a.to_f32(), b.to_f32()).map(<$t>::from_f32)
            }
        }
    };
}
half_arith!(f16);
half_arith!(bf16);

impl Arith for bool {
    fn apply(op: BinaryOp, a: bool, b: bool) -> Result<bool, IrError> {
        match op {
            BinaryOp::And => Ok(a && b),
            BinaryOp::Or => Ok(a || b),
            BinaryOp::Xor => Ok(a != b),
            _ => Err(IrError::dtype(DType::Bool, format!("{op:?}"))),
        }
    }
}

fn zip_map<A: Copy, B: Copy, R>(
    x: &[A],
    ix: &[usize],
    y: &[B],
    iy: &[usize],
    f: impl Fn(A, B) -> Result<R, IrError>,
) -> Result<Vec<R>, IrError> {
    ix.iter().zip(iy).map(|(&i, &j)| f(x[i], y[j])).collect()
}

/// One broadcast binary operation.
fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor, IrError> {
    let ia = broadcast_index(a.shape(), shape);
    let ib = broadcast_index(b.shape(), shape);
    use TensorData as D;
    macro_rules! same_type {
        ($($var:ident)*) => {
            match (a.data(), b.data()) {
                $((D::$var(x), D::$var(y)) => Some(D::$var(zip_map(x, &ia, y, &ib, |p, q| Arith::apply(op, p, q))?)),)*
                _ => None,
            }
        };
    }
    let same = if op == BinaryOp::Pow && a.dtype() != b.dtype() {
        None
    } else {
        same_type!(F32 F64 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 Bool)
    };
    let data = match (same, b.data()) {
        (Some(d), _) => d,
        (None, other) if op == BinaryOp::Pow => {
            // Pow allows an exponent of another type: compute in f64, keep the base's type.
            let e = cast_data(other, DType::F64);
            let e = Tensor::new(b.shape().to_vec(), e)?;
            let base = Tensor::new(a.shape().to_vec(), cast_data(a.data(), DType::F64))?;
            let r = binary(op, &base, &e, shape)?;
            return Tensor::new(shape.to_vec(), cast_data(r.data(), a.dtype()));
        }
        (None, _) => {
            return Err(IrError::shape(format!("{op:?} of {} and {}", a.dtype(), b.dtype())));
        }
    };
    Tensor::new(shape.to_vec(), data)
}

/// Applies `op` left to right over all inputs (variadic Max/Min/Sum as well as binary ops).
pub fn binary_chain(op: BinaryOp, inputs: &[&Tensor], shape: &[usize]) -> Result<Tensor, IrError> {
    let mut acc = expand_to(inputs[0], shape)?;
    for t in &inputs[1..] {
        acc = binary(op, &acc, t, shape)?;
    }
    Ok(acc)
}

fn expand_to(t: &Tensor, shape: &[usize]) -> Result<Tensor, IrError> {
    Tensor::new(shape.to_vec(), t.data().gather(&broadcast_index(t.shape(), shape)))
}

/// Element-wise mean of all inputs.
pub fn mean(inputs: &[&Tensor], shape: &[usize]) -> Result<Tensor, IrError> {
    let sum = binary_chain(BinaryOp::Add, inputs, shape)?;
    let n = inputs.len() as f64;
    let data = match sum.data() {
        TensorData::F32(v) => TensorData::F32(v.iter().map(|&x| (x as f64 / n) as f32).collect()),
        TensorData::F64(v) => TensorData::F64(v.iter().map(|&x| x / n).collect()),
        other => return Err(IrError::dtype(other.dtype(), "Mean")),
    };
    Tensor::new(shape.to_vec(), data)
}

fn cmp<T: PartialOrd + Copy>(op: CompareOp, x: &[T], ix: &[usize], y: &[T], iy: &[usize]) -> Vec<bool> {
    ix.iter()
        .zip(iy)
        .map(|(&i, &j)| {
            let (a, b) = (x[i], y[j]);
            match op {
                CompareOp::Equal => a == b,
                CompareOp::Less => a < b,
                CompareOp::LessOrEqual => a <= b,
                CompareOp::Greater => a > b,
                CompareOp::GreaterOrEqual => a >= b,
            }
        })
        .collect()
}

/// A broadcast comparison producing bool.
pub fn compare(op: CompareOp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor, IrError> {
    let ia = broadcast_index(a.shape(), shape);
    let ib = broadcast_index(b.shape(), shape);
    use TensorData as D;
    macro_rules! same_type {
        ($($var:ident)*) => {
            match (a.data(), b.data()) {
                $((D::$var(x), D::$var(y)) => cmp(op, x, &ia, y, &ib),)*
                (x, y) => return Err(IrError::shape(format!("compare {} with {}", x.dtype(), y.dtype()))),
            }
        };
    }
    let v = same_type!(F32 F64 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 Bool);
    Tensor::new(shape.to_vec(), D::Bool(v))
}

/// `Where`: elements of `x` where `cond` holds, else of `y`.
pub fn select(cond: &Tensor, x: &Tensor, y: &Tensor, shape: &[usize]) -> Result<Tensor, IrError> {
    let TensorData::Bool(c) = cond.data() else {
        return Err(IrError::dtype(cond.dtype(), "Where condition"));
    };
    let ic = broadcast_index(cond.shape(), shape);
    let ix = broadcast_index(x.shape(), shape);
    let iy = broadcast_index(y.shape(), shape);
    // Concatenate x and y, then pick from the right half where the condition is false.
    let n = x.numel();
    let both = crate::movement::concat_data(&[x.data(), y.data()])?;
    let index: Vec<usize> = (0..ic.len()).map(|k| if c[ic[k]] { ix[k] } else { n + iy[k] }).collect();
    Tensor::new(shape.to_vec(), both.gather(&index))
}

fn float_fn(u: UnaryOp) -> impl Fn(f64) -> f64 {
    move |x: f64| match u {
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Reciprocal => 1.0 / x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Erf => erf(x),
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Round => x.round_ties_even(),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Tan => x.tan(),
        UnaryOp::Asin => x.asin(),
        UnaryOp::Acos => x.acos(),
        UnaryOp::Atan => x.atan(),
        UnaryOp::Sinh => x.sinh(),
        UnaryOp::Cosh => x.cosh(),
        UnaryOp::Asinh => x.asinh(),
        UnaryOp::Acosh => x.acosh(),
        UnaryOp::Atanh => x.atanh(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Silu => x / (1.0 + (-x).exp()),
        UnaryOp::Softplus => {
            if x > 30.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
        UnaryOp::Softsign => x / (1.0 + x.abs()),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        UnaryOp::Not => x,
        UnaryOp::LeakyRelu { alpha } => {
            if x < 0.0 {
                alpha as f64 * x
            } else {
                x
            }
        }
        UnaryOp::Elu { alpha } => {
            if x < 0.0 {
                alpha as f64 * x.exp_m1()
            } else {
                x
            }
        }
        UnaryOp::Selu { alpha, gamma } => gamma as f64 * if x <= 0.0 { alpha as f64 * x.exp_m1() } else { x },
        UnaryOp::Celu { alpha } => {
            let a = alpha as f64;
            x.max(0.0) + (a * (x / a).exp_m1()).min(0.0)
        }
        UnaryOp::ThresholdedRelu { alpha } => {
            if x > alpha as f64 {
                x
            } else {
                0.0
            }
        }
        UnaryOp::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
        UnaryOp::Clip { min, max } => {
            let lo = min.map_or(x, |m| x.max(m));
            max.map_or(lo, |m| lo.min(m))
        }
        UnaryOp::Gelu { tanh: false } => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        UnaryOp::Gelu { tanh: true } => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
    }
}

/// The error function: `1 - erfc(x)` with erfc from a Chebyshev fit accurate to about 1e-16,
/// far below f32 resolution.
fn erf(x: f64) -> f64 {
    if x < 0.0 {
        return -erf(-x);
    }
    1.0 - erfc_positive(x)
}

fn erfc_positive(z: f64) -> f64 {
    const COF: [f64; 28] = [
        -1.3026537197817094,
        6.419_697_923_564_903e-1,
        1.9476473204185836e-2,
        -9.561_514_786_808_63e-3,
        -9.46595344482036e-4,
        3.66839497852761e-4,
        4.2523324806907e-5,
        -2.0278578112534e-5,
        -1.624290004647e-6,
        1.303655835580e-6,
        1.5626441722e-8,
        -8.5238095915e-8,
        6.529054439e-9,
        5.059343495e-9,
        -9.91364156e-10,
        -2.27365122e-10,
        9.6467911e-11,
        2.394038e-12,
        -6.886027e-12,
        8.94487e-13,
        3.13092e-13,
        -1.12708e-13,
        3.81e-16,
        7.106e-15,
        -1.523e-15,
        -9.4e-17,
        1.21e-16,
        -2.8e-17,
    ];
    let t = 2.0 / (2.0 + z);
    let ty = 4.0 * t - 2.0;
    let (mut d, mut dd) = (0.0, 0.0);
    for &c in COF[1..].iter().rev() {
        let tmp = d;
        d = ty * d - dd + c;
        dd = tmp;
    }
    t * (-z * z + 0.5 * (COF[0] + ty * d) - dd).exp()
}

/// One-input element-wise operators.
pub fn unary(u: UnaryOp, x: &Tensor) -> Result<Tensor, IrError> {
    let data = match (x.data(), u) {
        (TensorData::F32(v), _) => {
            let f = float_fn(u);
            TensorData::F32(v.iter().map(|&a| f(a as f64) as f32).collect())
        }
        (TensorData::F64(v), _) => TensorData::F64(v.iter().map(|&a| float_fn(u)(a)).collect()),
        (TensorData::F16(_) | TensorData::BF16(_), _) => {
            let r: Vec<f64> = x.data().to_f64_vec().into_iter().map(float_fn(u)).collect();
            cast_data(&TensorData::F64(r), x.dtype())
        }
        (TensorData::Bool(v), UnaryOp::Not) => TensorData::Bool(v.iter().map(|&a| !a).collect()),
        (other, _) => {
            let ints = other.to_i64_vec();
            let r: Vec<i64> = ints.iter().map(|&a| int_unary(u, a)).collect();
            cast_data(&TensorData::I64(r), other.dtype())
        }
    };
    Tensor::new(x.shape().to_vec(), data)
}

fn int_unary(u: UnaryOp, a: i64) -> i64 {
    match u {
        UnaryOp::Neg => a.wrapping_neg(),
        UnaryOp::Abs => a.wrapping_abs(),
        UnaryOp::Sign => a.signum(),
        UnaryOp::Relu => a.max(0),
        UnaryOp::Clip { min, max } => {
            let lo = min.map_or(a, |m| a.max(m as i64));
            max.map_or(lo, |m| lo.min(m as i64))
        }
        _ => a,
    }
}

/// Converts data to another element type: floats to integers truncate toward zero and
/// saturate, integers wrap as in C, any nonzero becomes `true`.
pub fn cast_data(d: &TensorData, to: DType) -> TensorData {
    if d.dtype() == to {
        return d.clone();
    }
    if to.is_narrow() {
        return TensorData::Narrow(to, d.to_f64_vec().into_iter().map(|v| narrow::cast(to, v, true)).collect());
    }
    if to.is_float() || to == DType::Bool {
        let f = d.to_f64_vec();
        return match to {
            DType::F32 => TensorData::F32(f.iter().map(|&x| x as f32).collect()),
            DType::F64 => TensorData::F64(f),
            DType::F16 => TensorData::F16(f.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BF16 => TensorData::BF16(f.iter().map(|&x| narrow::bf16_of(x)).collect()),
            _ => TensorData::Bool(f.iter().map(|&x| x != 0.0).collect()),
        };
    }
    macro_rules! to_int {
        ($conv:expr) => {
            match to {
                DType::I64 => TensorData::I64($conv),
                DType::I32 => TensorData::I32($conv),
                DType::I16 => TensorData::I16($conv),
                DType::I8 => TensorData::I8($conv),
                DType::U64 => TensorData::U64($conv),
                DType::U32 => TensorData::U32($conv),
                DType::U16 => TensorData::U16($conv),
                _ => TensorData::U8($conv),
            }
        };
    }
    match d {
        // `as` from f64 saturates (NaN to 0); from integers it wraps.
        _ if d.dtype().is_float() => to_int!(d.to_f64_vec().iter().map(|&x| x as _).collect()),
        TensorData::U64(u) => to_int!(u.iter().map(|&x| x as _).collect()),
        _ => to_int!(d.to_i64_vec().iter().map(|&x| x as _).collect()),
    }
}

/// `Cast` of a whole tensor; `saturate` applies to 8-bit float targets.
pub fn cast(x: &Tensor, to: DType, saturate: bool) -> Tensor {
    let data = if to.is_narrow() && x.dtype() != to {
        TensorData::Narrow(to, x.data().to_f64_vec().into_iter().map(|v| narrow::cast(to, v, saturate)).collect())
    } else {
        cast_data(x.data(), to)
    };
    Tensor::new(x.shape().to_vec(), data).expect("same element count")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (-2.0, -0.9953222650189527),
            (3.5, 0.9999992569016276),
        ] {
            assert!((erf(x) - want).abs() < 1e-12, "erf({x}) = {} want {want}", erf(x));
        }
    }

    #[test]
    fn python_and_c_remainders() {
        assert_eq!(i64::apply(BinaryOp::Mod { fmod: false }, -7, 3).unwrap(), 2);
        assert_eq!(i64::apply(BinaryOp::Mod { fmod: true }, -7, 3).unwrap(), -1);
        assert!((f32::apply(BinaryOp::Mod { fmod: false }, -7.0, 3.0).unwrap() - 2.0).abs() < 1e-6);
        assert!(i32::apply(BinaryOp::Div, 1, 0).is_err());
    }

    #[test]
    fn broadcast_add() {
        let a = Tensor::from_f32(vec![2, 1], vec![1.0, 2.0]).unwrap();
        let b = Tensor::from_f32(vec![3], vec![10.0, 20.0, 30.0]).unwrap();
        let r = binary_chain(BinaryOp::Add, &[&a, &b], &[2, 3]).unwrap();
        assert_eq!(r.as_f32("t").unwrap(), &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    }
}
