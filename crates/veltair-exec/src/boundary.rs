//! The model boundary: input tensors of any ONNX element type checked against their ports and
//! written into arena storage (floats as f32, integers and booleans as i64), and outputs read
//! back into tensors of the type the model declares (floats rounded, integers wrapped, as a
//! cast to that type would).

use crate::plan::{Port, Storage};
use crate::Plan;
use veltair_ir::{f16, narrow, DType, Tensor, TensorData};

/// Why an input cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("model expects {expected} inputs, {given} given")]
    Count { expected: usize, given: usize },
    #[error("input `{name}` is {expected}, {given} given")]
    Type { name: String, expected: DType, given: DType },
    #[error("input `{name}` has shape {given:?}, the model needs {expected:?}")]
    Shape { name: String, expected: Vec<usize>, given: Vec<usize> },
    #[error(
        "input `{name}` determines shapes and was fixed at compile time to {expected}; \
         recompile with this value in the first --data set to run it with another"
    )]
    Fixed { name: String, expected: String },
    #[error(
        "input `{name}` holds {value:e}, beyond the f32 range generated code computes {dtype} in \
         (|x| <= {max:e})",
        max = f32::MAX
    )]
    Range { name: String, dtype: DType, value: f64 },
    #[error("input `{name}` does not fit the arena")]
    Arena { name: String },
}

/// Checks `inputs` (every model input, in port order) against `plan` and writes them into
/// `arena` (an arena of `plan.arena_elems` floats).
pub fn write_inputs(plan: &Plan, arena: &mut [f32], inputs: &[Tensor]) -> Result<(), InputError> {
    if inputs.len() != plan.inputs.len() {
        return Err(InputError::Count { expected: plan.inputs.len(), given: inputs.len() });
    }
    for (port, t) in plan.inputs.iter().zip(inputs) {
        let name = || port.name.clone();
        if t.dtype() != port.dtype {
            return Err(InputError::Type { name: name(), expected: port.dtype, given: t.dtype() });
        }
        if t.shape() != port.shape {
            return Err(InputError::Shape { name: name(), expected: port.shape.clone(), given: t.shape().to_vec() });
        }
        if let Some(fixed) = &port.fixed {
            if !same_values(t.data(), fixed.data()) {
                return Err(InputError::Fixed { name: name(), expected: show(fixed) });
            }
            continue;
        }
        let slots =
            arena.get_mut(port.offset..port.offset + port.slots()).ok_or_else(|| InputError::Arena { name: name() })?;
        match port.storage() {
            Storage::F32 => {
                let values = t.data().to_f64_vec();
                if let Some(&value) = values.iter().find(|x| x.is_finite() && x.abs() > f32::MAX as f64) {
                    return Err(InputError::Range { name: name(), dtype: port.dtype, value });
                }
                for (s, x) in slots.iter_mut().zip(values) {
                    *s = x as f32;
                }
            }
            Storage::I64 => {
                for (pair, x) in slots.chunks_exact_mut(2).zip(t.data().to_i64_vec()) {
                    pair[0] = f32::from_bits(x as u32);
                    pair[1] = f32::from_bits((x >> 32) as u32);
                }
            }
        }
    }
    Ok(())
}

/// `plan`'s outputs read out of `arena`, each of its port's element type and shape.
pub fn read_outputs(plan: &Plan, arena: &[f32]) -> Vec<Tensor> {
    plan.outputs.iter().map(|port| read_port(port, arena)).collect()
}

fn read_port(port: &Port, arena: &[f32]) -> Tensor {
    let slots = arena.get(port.offset..port.offset + port.slots()).unwrap_or_default();
    let data = match port.storage() {
        Storage::F32 => typed_floats(port.dtype, slots.iter().map(|&x| x as f64)),
        Storage::I64 => {
            let ints = slots.chunks_exact(2).map(|p| (p[0].to_bits() as u64 | (p[1].to_bits() as u64) << 32) as i64);
            typed_ints(port.dtype, ints)
        }
    };
    // The lengths agree unless the arena is shorter than the plan says (a validated plan's is not).
    Tensor::new(port.shape.clone(), data)
        .unwrap_or_else(|_| Tensor::zeros(&veltair_ir::TensorType::new(port.dtype, port.shape.clone())))
}

/// A deterministic input for `port`: its fixed value, pseudo-random values in [-1, 1] for
/// float types, or zeros (valid indices, false) for integers and booleans.
pub fn synthetic_input(port: &Port) -> Tensor {
    if let Some(t) = &port.fixed {
        return t.clone();
    }
    let n = port.elems();
    let data = match port.storage() {
        Storage::F32 => typed_floats(
            port.dtype,
            (0..n).map(|i| ((i as u32).wrapping_mul(2654435761) >> 8) as f64 / (1u32 << 24) as f64 * 2.0 - 1.0),
        ),
        Storage::I64 => typed_ints(port.dtype, std::iter::repeat_n(0, n)),
    };
    Tensor::new(port.shape.clone(), data).expect("the data has the port's element count")
}

/// Floats as elements of `dtype` (a float type), rounded as a cast to it would (without
/// saturation: values already on the grid, as generated code leaves them, pass unchanged).
pub(crate) fn typed_floats(dtype: DType, v: impl Iterator<Item = f64>) -> TensorData {
    match dtype {
        DType::F64 => TensorData::F64(v.collect()),
        DType::F16 => TensorData::F16(v.map(f16::from_f64).collect()),
        DType::BF16 => TensorData::BF16(v.map(narrow::bf16_of).collect()),
        d if d.is_narrow() => TensorData::Narrow(d, v.map(|x| narrow::cast(d, x, false)).collect()),
        _ => TensorData::F32(v.map(|x| x as f32).collect()),
    }
}

/// Integers as elements of `dtype` (an integer type or bool), wrapped as a cast to it would.
pub(crate) fn typed_ints(dtype: DType, v: impl Iterator<Item = i64>) -> TensorData {
    match dtype {
        DType::I32 => TensorData::I32(v.map(|x| x as i32).collect()),
        DType::I16 => TensorData::I16(v.map(|x| x as i16).collect()),
        DType::I8 => TensorData::I8(v.map(|x| x as i8).collect()),
        DType::U64 => TensorData::U64(v.map(|x| x as u64).collect()),
        DType::U32 => TensorData::U32(v.map(|x| x as u32).collect()),
        DType::U16 => TensorData::U16(v.map(|x| x as u16).collect()),
        DType::U8 => TensorData::U8(v.map(|x| x as u8).collect()),
        DType::Bool => TensorData::Bool(v.map(|x| x != 0).collect()),
        d if d.is_narrow() => TensorData::Narrow(d, v.map(|x| narrow::cast(d, x as f64, false)).collect()),
        _ => TensorData::I64(v.collect()),
    }
}

/// Equal element by element (NaN equal to NaN).
fn same_values(a: &TensorData, b: &TensorData) -> bool {
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || x.is_nan() && y.is_nan())
}

/// A short rendering of a fixed value for messages.
fn show(t: &Tensor) -> String {
    let v = t.data().to_f64_vec();
    let head: Vec<String> = v.iter().take(8).map(|x| x.to_string()).collect();
    let more = if v.len() > 8 { ", ..." } else { "" };
    format!("{} {:?} [{}{more}]", t.dtype(), t.shape(), head.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Constants;
    use veltair_ir::bf16;

    fn plan(inputs: Vec<Port>, outputs: Vec<Port>, arena_elems: usize) -> Plan {
        Plan {
            name: "ports".into(),
            kernels: Vec::new(),
            constants: Constants::Owned(Vec::new()),
            arena_elems,
            inputs,
            outputs,
            steps: Vec::new(),
            max_threads: 1,
            calibration: None,
        }
    }

    fn port(name: &str, dtype: DType, shape: &[usize], offset: usize) -> Port {
        Port { name: name.into(), shape: shape.to_vec(), dtype, offset, fixed: None }
    }

    #[test]
    fn every_type_round_trips_through_its_storage() {
        let cases = [
            // f64 is computed in f32: values f32 holds exactly round-trip.
            Tensor::new(vec![3], TensorData::F64(vec![1.5, -2.25, 2f64.powi(100)])).unwrap(),
            Tensor::new(vec![2], TensorData::F16(vec![f16::from_f32(0.5), f16::from_f32(-3.0)])).unwrap(),
            Tensor::new(vec![2], TensorData::BF16(vec![bf16::from_f32(7.0), bf16::from_f32(-0.125)])).unwrap(),
            Tensor::new(vec![3], TensorData::I32(vec![i32::MIN, -1, i32::MAX])).unwrap(),
            Tensor::new(vec![2], TensorData::U64(vec![u64::MAX, 3])).unwrap(),
            Tensor::new(vec![2], TensorData::U8(vec![0, 255])).unwrap(),
            Tensor::new(vec![2], TensorData::I8(vec![-128, 127])).unwrap(),
            Tensor::new(vec![3], TensorData::Bool(vec![true, false, true])).unwrap(),
            Tensor::from_i64(vec![2], vec![i64::MIN, i64::MAX]).unwrap(),
        ];
        for t in cases {
            let p = port("x", t.dtype(), t.shape(), 0);
            let slots = p.slots();
            let plan = plan(vec![p.clone()], vec![p], slots);
            let mut arena = vec![0f32; slots];
            write_inputs(&plan, &mut arena, std::slice::from_ref(&t)).unwrap();
            assert_eq!(read_outputs(&plan, &arena), vec![t]);
        }
    }

    #[test]
    fn outputs_take_the_declared_type() {
        // An f32 result declared f16 rounds; an i64 result declared u8 wraps.
        let plan = plan(vec![], vec![port("h", DType::F16, &[1], 0), port("b", DType::U8, &[1], 1)], 3);
        let arena = [1.0f32 + 1.0 / 4096.0, f32::from_bits(300), 0.0];
        let out = read_outputs(&plan, &arena);
        assert_eq!(out[0].data(), &TensorData::F16(vec![f16::from_f32(1.0)]));
        assert_eq!(out[1].data(), &TensorData::U8(vec![44]));
    }

    #[test]
    fn wrong_types_shapes_and_fixed_values_are_refused() {
        let mut fixed = port("axes", DType::I64, &[2], 0);
        fixed.fixed = Some(Tensor::from_i64(vec![2], vec![0, 1]).unwrap());
        let plan = plan(vec![port("x", DType::F32, &[2], 0), fixed], vec![], 2);
        let mut arena = vec![0f32; 2];
        let x = Tensor::from_f32(vec![2], vec![1.0, 2.0]).unwrap();
        let ok = [x.clone(), Tensor::from_i64(vec![2], vec![0, 1]).unwrap()];
        write_inputs(&plan, &mut arena, &ok).unwrap();
        assert_eq!(arena, [1.0, 2.0], "the fixed input is not written");
        let other = [x.clone(), Tensor::from_i64(vec![2], vec![1, 0]).unwrap()];
        let e = write_inputs(&plan, &mut arena, &other).unwrap_err().to_string();
        assert!(e.contains("`axes` determines shapes") && e.contains("[0, 1]"), "{e}");
        let wrong_type = [Tensor::from_i64(vec![2], vec![1, 2]).unwrap(), ok[1].clone()];
        assert!(matches!(write_inputs(&plan, &mut arena, &wrong_type), Err(InputError::Type { .. })));
        let wrong_shape = [Tensor::from_f32(vec![1, 2], vec![1.0, 2.0]).unwrap(), ok[1].clone()];
        assert!(matches!(write_inputs(&plan, &mut arena, &wrong_shape), Err(InputError::Shape { .. })));
        assert!(matches!(write_inputs(&plan, &mut arena, &[x]), Err(InputError::Count { .. })));
        let wide = plan_of_f64();
        let beyond = Tensor::new(vec![2], TensorData::F64(vec![1.0, 1e300])).unwrap();
        let e = write_inputs(&wide, &mut arena, &[beyond]).unwrap_err();
        assert!(matches!(e, InputError::Range { value, .. } if value == 1e300), "{e}");
        let inf = Tensor::new(vec![2], TensorData::F64(vec![f64::INFINITY, f64::NAN])).unwrap();
        write_inputs(&wide, &mut arena, &[inf]).expect("infinities and NaN are f32 values");
        assert!(arena[0].is_infinite() && arena[1].is_nan());
    }

    fn plan_of_f64() -> Plan {
        plan(vec![port("x", DType::F64, &[2], 0)], vec![], 2)
    }
}
