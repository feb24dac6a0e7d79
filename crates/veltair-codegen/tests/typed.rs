//! Typed element-wise kernels against the reference evaluator: comparisons, logical operators,
//! integer arithmetic of every width (wrapping; bitwise operators and shifts too), `Where`,
//! casts between float and integer storage (4- and 2-bit integers too), rounding onto narrower
//! float grids and exact float remainders, over random broadcast shapes, values and thread
//! counts; division by zero never traps.

use proptest::prelude::*;
use veltair_codegen::typed::{compile_typed, IntType, Scalar, TypedOp, TypedSpec};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{BinaryOp, CompareOp, DType, Op, Tensor, TensorData, UnaryOp};
use veltair_load::LoadedKernel;

/// Arena slots of a tensor: floats as f32, integers and booleans as i64 (low half first).
fn slots(t: &Tensor) -> Vec<f32> {
    if t.dtype().is_float() {
        t.data().to_f64_vec().iter().map(|&x| x as f32).collect()
    } else {
        t.data()
            .to_i64_vec()
            .iter()
            .flat_map(|&x| [f32::from_bits(x as u32), f32::from_bits((x >> 32) as u32)])
            .collect()
    }
}

/// Runs `spec` on `inputs` and returns the output as the reference would type it.
fn run(spec: &TypedSpec, inputs: &[Tensor], out: DType, threads: usize) -> Tensor {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let kernel = LoadedKernel::load(&compile_typed(spec, &target).unwrap()).unwrap();
    let mut bufs: Vec<Vec<f32>> = inputs.iter().map(slots).collect();
    let n: usize = spec.out_shape.iter().product();
    bufs.push(vec![f32::NAN; n * if out.is_float() { 1 } else { 2 }]);
    let mut args: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    kernel.run(&mut args, threads).unwrap();
    let raw = bufs.pop().unwrap();
    let data = if out.is_float() {
        TensorData::F32(raw)
    } else {
        let ints = raw.chunks_exact(2).map(|p| (p[0].to_bits() as u64 | (p[1].to_bits() as u64) << 32) as i64);
        let t = Tensor::from_i64(vec![n], ints.collect()).unwrap();
        let cast = veltair_ref::eval_op(&Op::Cast { to: out, saturate: false }, &[Some(&t)]).unwrap();
        cast[0].data().clone()
    };
    Tensor::new(spec.out_shape.clone(), data).unwrap()
}

fn reference(op: &Op, inputs: &[Tensor]) -> Tensor {
    let refs: Vec<Option<&Tensor>> = inputs.iter().map(Some).collect();
    veltair_ref::eval_op(op, &refs).unwrap().remove(0)
}

/// A tensor of `dtype` and `shape` from small integers `seed` spreads (floats get fractions).
fn tensor(dtype: DType, shape: &[usize], seed: u64, nonzero: bool) -> Tensor {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let ints: Vec<i64> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = ((state >> 33) % 61) as i64 - 30;
            if nonzero && v == 0 {
                7
            } else {
                v
            }
        })
        .collect();
    let t = Tensor::from_i64(shape.to_vec(), ints).unwrap();
    let t = if dtype.is_float() {
        let f = Tensor::from_f32(shape.to_vec(), t.data().to_f64_vec().iter().map(|&x| x as f32 * 0.75).collect());
        f.unwrap()
    } else {
        t
    };
    reference(&Op::Cast { to: dtype, saturate: false }, &[t])
}

/// An output shape and two shapes broadcasting to it.
fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec((1usize..5, any::<bool>(), any::<bool>()), 1..4).prop_map(|axes| {
        // `b` has one axis fewer (aligned to the right); the output is what both broadcast to.
        let a: Vec<usize> = axes.iter().map(|&(d, keep, _)| if keep { d } else { 1 }).collect();
        let b: Vec<usize> = axes.iter().skip(1).map(|&(d, _, keep)| if keep { d } else { 1 }).collect();
        let out = a.iter().enumerate().map(|(i, &d)| if i == 0 { d } else { d.max(b[i - 1]) }).collect();
        (out, a, b)
    })
}

const INTS: [DType; 8] = [DType::I8, DType::I16, DType::I32, DType::I64, DType::U8, DType::U16, DType::U32, DType::U64];

proptest! {
    #[test]
    fn comparisons_match_reference((out, sa, sb) in shapes(), t in 0usize..9, op in 0usize..5, seed in any::<u64>(), threads in 1usize..4) {
        let dtype = if t == 8 { DType::F32 } else { INTS[t] };
        let op = [CompareOp::Equal, CompareOp::Less, CompareOp::LessOrEqual, CompareOp::Greater, CompareOp::GreaterOrEqual][op];
        let (a, b) = (tensor(dtype, &sa, seed, false), tensor(dtype, &sb, seed ^ 1, false));
        let spec = TypedSpec { out_shape: out, inputs: vec![sa, sb], op: TypedOp::Compare { op, of: Scalar::of(dtype).unwrap() } };
        let got = run(&spec, &[a.clone(), b.clone()], DType::Bool, threads);
        prop_assert_eq!(got, reference(&Op::Compare(op), &[a, b]));
    }

    #[test]
    fn integer_arithmetic_wraps_like_reference((out, sa, sb) in shapes(), t in 0usize..8, op in 0usize..13, seed in any::<u64>(), threads in 1usize..4) {
        let dtype = INTS[t];
        // Divisors and shift amounts span -30..=30: negative, in range and past the width.
        let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Mod { fmod: false },
            BinaryOp::Mod { fmod: true }, BinaryOp::Max, BinaryOp::Min, BinaryOp::And, BinaryOp::Or, BinaryOp::Xor,
            BinaryOp::ShiftLeft, BinaryOp::ShiftRight][op];
        // Products of the largest values wrap in the narrow types.
        let scale = reference(&Op::Cast { to: dtype, saturate: false }, &[Tensor::from_i64(vec![], vec![9]).unwrap()]);
        let a = reference(&Op::Binary(BinaryOp::Mul), &[tensor(dtype, &sa, seed, false), scale]);
        let b = tensor(dtype, &sb, seed ^ 1, true);
        let ty = IntType::of(dtype).unwrap();
        let spec = TypedSpec { out_shape: out, inputs: vec![sa, sb], op: TypedOp::Arith { op, ty } };
        let got = run(&spec, &[a.clone(), b.clone()], dtype, threads);
        prop_assert_eq!(got, reference(&Op::Binary(op), &[a, b]));
    }

    #[test]
    fn where_and_logic_match_reference((out, sa, sb) in shapes(), float in any::<bool>(), seed in any::<u64>(), threads in 1usize..4) {
        let dtype = if float { DType::F32 } else { DType::I32 };
        let cond = tensor(DType::Bool, &sa, seed, false);
        let (x, y) = (tensor(dtype, &sb, seed ^ 2, false), tensor(dtype, &out, seed ^ 3, false));
        let spec = TypedSpec {
            out_shape: out.clone(),
            inputs: vec![sa.clone(), sb.clone(), out.clone()],
            op: TypedOp::Where { of: Scalar::of(dtype).unwrap() },
        };
        let got = run(&spec, &[cond.clone(), x.clone(), y.clone()], dtype, threads);
        prop_assert_eq!(got, reference(&Op::Where, &[cond.clone(), x, y]));
        let other = tensor(DType::Bool, &sb, seed ^ 4, false);
        for op in [BinaryOp::And, BinaryOp::Or, BinaryOp::Xor] {
            let spec = TypedSpec { out_shape: out.clone(), inputs: vec![sa.clone(), sb.clone()], op: TypedOp::Logical(op) };
            let got = run(&spec, &[cond.clone(), other.clone()], DType::Bool, threads);
            prop_assert_eq!(got, reference(&Op::Binary(op), &[cond.clone(), other.clone()]));
        }
        let spec = TypedSpec { out_shape: sa.clone(), inputs: vec![sa.clone()], op: TypedOp::Not };
        prop_assert_eq!(run(&spec, std::slice::from_ref(&cond), DType::Bool, threads), reference(&Op::Unary(UnaryOp::Not), &[cond]));
    }

    #[test]
    fn casts_match_reference(shape in prop::collection::vec(1usize..6, 1..3), from in 0usize..14, to in 0usize..14, seed in any::<u64>()) {
        let types = [
            DType::F32, DType::F64, DType::I8, DType::I16, DType::I32, DType::I64, DType::U8, DType::U16, DType::Bool,
            DType::U32, DType::I4, DType::U4, DType::I2, DType::U2,
        ];
        let (from, to) = (types[from], types[to]);
        prop_assume!(!(from.is_float() && to.is_float()));
        let x = tensor(from, &shape, seed, false);
        let op = TypedOp::Cast { from: Scalar::of(from).unwrap(), to: Scalar::of(to).unwrap() };
        let spec = TypedSpec { out_shape: shape.clone(), inputs: vec![shape], op };
        let got = run(&spec, std::slice::from_ref(&x), to, 2);
        let want = reference(&Op::Cast { to, saturate: false }, &[x]);
        // Float results are computed in f32: compare as the values f32 holds.
        let as_f32 = |t: &Tensor| -> Vec<f64> { t.data().to_f64_vec().iter().map(|&x| x as f32 as f64).collect() };
        prop_assert_eq!(as_f32(&got), as_f32(&want));
    }
}

#[test]
fn division_by_zero_and_min_by_minus_one_do_not_trap() {
    let x = Tensor::from_i64(vec![4], vec![5, i64::MIN, -7, 0]).unwrap();
    let y = Tensor::from_i64(vec![4], vec![0, -1, 0, 0]).unwrap();
    for op in [BinaryOp::Div, BinaryOp::Mod { fmod: false }, BinaryOp::Mod { fmod: true }] {
        for signed in [true, false] {
            let ty = IntType { bits: 64, signed };
            let spec = TypedSpec { out_shape: vec![4], inputs: vec![vec![4], vec![4]], op: TypedOp::Arith { op, ty } };
            let got = run(&spec, &[x.clone(), y.clone()], if signed { DType::I64 } else { DType::U64 }, 1);
            let ints = got.data().to_i64_vec();
            assert_eq!(ints.len(), 4);
            assert_eq!((ints[0], ints[2], ints[3]), (0, 0, 0), "{op:?} signed {signed}: a zero divisor gives 0");
            if signed {
                let want = if op == BinaryOp::Div { i64::MIN } else { 0 };
                assert_eq!(ints[1], want, "{op:?}: MIN by -1 wraps");
            }
        }
    }
}

/// Rounding onto the grid of `to` for `values`: the kernel's f32 results against the reference
/// cast's, bit for bit (any NaN matches any NaN).
fn check_rounding(to: DType, saturate: bool, values: &[f32]) {
    let n = values.len();
    let x = Tensor::from_f32(vec![n], values.to_vec()).unwrap();
    let spec = TypedSpec { out_shape: vec![n], inputs: vec![vec![n]], op: TypedOp::Round { to, saturate } };
    let got = run(&spec, std::slice::from_ref(&x), DType::F32, 2).data().to_f64_vec();
    let want = reference(&Op::Cast { to, saturate }, &[x]).data().to_f64_vec();
    assert_eq!(got.len(), n);
    assert_eq!(want.len(), n);
    for ((&v, &g), &w) in values.iter().zip(&got).zip(&want) {
        let (g, w) = (g as f32, w as f32);
        let same = g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan();
        assert!(same, "{to} saturate {saturate}: {v:e} ({:#x}) rounds to {g:e}, the reference to {w:e}", v.to_bits());
    }
}

const ROUNDED_TYPES: [DType; 9] = [
    DType::F16,
    DType::BF16,
    DType::F8E4M3FN,
    DType::F8E4M3FNUZ,
    DType::F8E5M2,
    DType::F8E5M2FNUZ,
    DType::F8E8M0,
    DType::F4E2M1,
    DType::F32,
];

#[test]
fn rounding_specials_and_boundaries_match_reference() {
    let mut values = vec![0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN_POSITIVE, 1e-45];
    for m in [6.0f32, 240.0, 448.0, 464.0, 470.0, 480.0, 57344.0, 61440.0, 61441.0, 65504.0, 65519.0, 65520.0, 1e6] {
        values.extend([m, -m, m * 1.0001, m * 0.9999]);
    }
    for e in -140..-100 {
        values.push(2f32.powi(e) * 1.5);
    }
    for to in &ROUNDED_TYPES[..8] {
        for saturate in [false, true] {
            check_rounding(*to, saturate, &values);
        }
    }
}

proptest! {
    #[test]
    fn rounding_random_bit_patterns_matches_reference(bits in prop::collection::vec(any::<u32>(), 1..64), to in 0usize..8, saturate in any::<bool>()) {
        let values: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        check_rounding(ROUNDED_TYPES[to], saturate, &values);
    }

    #[test]
    fn rounding_values_near_one_matches_reference(xs in prop::collection::vec(-8.0f32..8.0, 1..64), to in 0usize..8) {
        check_rounding(ROUNDED_TYPES[to], false, &xs);
    }
}

/// Float remainders of `pairs` against the reference's, bit for bit (any NaN matches any NaN).
fn check_remainders(pairs: &[(f32, f32)], fmod: bool) {
    let n = pairs.len();
    let x = Tensor::from_f32(vec![n], pairs.iter().map(|p| p.0).collect()).unwrap();
    let y = Tensor::from_f32(vec![n], pairs.iter().map(|p| p.1).collect()).unwrap();
    let spec = TypedSpec { out_shape: vec![n], inputs: vec![vec![n]; 2], op: TypedOp::FloatMod { fmod } };
    let got = run(&spec, &[x.clone(), y.clone()], DType::F32, 2).data().to_f64_vec();
    let want = reference(&Op::Binary(BinaryOp::Mod { fmod }), &[x, y]).data().to_f64_vec();
    assert_eq!(got.len(), n);
    assert_eq!(want.len(), n);
    for ((&(a, b), &g), &w) in pairs.iter().zip(&got).zip(&want) {
        let (g, w) = (g as f32, w as f32);
        let same = g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan();
        assert!(same, "fmod {fmod}: {a:e} mod {b:e} gives {g:e}, the reference {w:e}");
    }
}

#[test]
fn float_remainders_of_edge_cases_match_reference() {
    let specials =
        [0.0, -0.0, 1.0, -1.5, 3.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, 1e-45, -2e-40, 7e30];
    let pairs: Vec<(f32, f32)> = specials.iter().flat_map(|&a| specials.iter().map(move |&b| (a, b))).collect();
    for fmod in [false, true] {
        check_remainders(&pairs, fmod);
    }
}

proptest! {
    #[test]
    fn float_remainders_of_random_bit_patterns_match_reference(bits in prop::collection::vec((any::<u32>(), any::<u32>()), 1..48), fmod in any::<bool>()) {
        let pairs: Vec<(f32, f32)> = bits.iter().map(|&(a, b)| (f32::from_bits(a), f32::from_bits(b))).collect();
        check_remainders(&pairs, fmod);
    }
}

/// An empty output (an axis of 0) runs no row at all: empty buffers are never touched.
#[test]
fn empty_typed_outputs_touch_no_memory() {
    for shape in [vec![2, 0, 4], vec![0]] {
        let x = Tensor::from_i64(shape.clone(), Vec::new()).unwrap();
        let op = TypedOp::Cast { from: Scalar::Int(IntType { bits: 64, signed: true }), to: Scalar::Float };
        let spec = TypedSpec { out_shape: shape.clone(), inputs: vec![shape.clone()], op };
        let got = run(&spec, std::slice::from_ref(&x), DType::F32, 2);
        assert_eq!(got.numel(), 0, "{shape:?}");
    }
}
