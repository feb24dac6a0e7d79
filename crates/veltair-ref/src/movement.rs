//! Data movement: every operator here computes, for each output element, the flat index of the
//! input element it copies, then gathers. One mechanism serves all element types.

use veltair_ir::shape::{broadcast_index, strided_index, strides};
use veltair_ir::{bf16, f16, map_data, IrError, PadMode, SliceAxis, Tensor, TensorData, TensorType};

fn gathered(x: &Tensor, index: &[usize], out: TensorType) -> Result<Tensor, IrError> {
    Tensor::new(out.shape, x.data().gather(index))
}

/// `Transpose`: output axis i is input axis perm[i].
pub fn transpose(x: &Tensor, perm: &[usize], out: TensorType) -> Result<Tensor, IrError> {
    let s = strides(x.shape());
    let permuted: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    gathered(x, &strided_index(&out.shape, &permuted, 0), out)
}

/// All elements of several same-typed data vectors, one after another.
pub fn concat_data(parts: &[&TensorData]) -> Result<TensorData, IrError> {
    let mut all = parts[0].clone();
    for p in &parts[1..] {
        macro_rules! append {
            ($($var:ident)*) => {
                match (&mut all, p) {
                    $((TensorData::$var(a), TensorData::$var(b)) => a.extend_from_slice(b),)*
                    (a, b) => return Err(IrError::shape(format!("cannot join {} with {}", a.dtype(), b.dtype()))),
                }
            };
        }
        append!(F32 F64 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 Bool);
    }
    Ok(all)
}

/// `Concat` along `axis`.
pub fn concat(inputs: &[&Tensor], axis: usize, out: TensorType) -> Result<Tensor, IrError> {
    let all = concat_data(&inputs.iter().map(|t| t.data()).collect::<Vec<_>>())?;
    let outer: usize = out.shape[..axis].iter().product();
    let inner: usize = out.shape[axis + 1..].iter().product();
    let mut index = Vec::with_capacity(out.numel());
    for o in 0..outer {
        let mut base = 0;
        for t in inputs {
            let chunk = t.shape()[axis] * inner;
            index.extend(base + o * chunk..base + (o + 1) * chunk);
            base += t.numel();
        }
    }
    Tensor::new(out.shape, all.gather(&index))
}

/// `Split` along `axis` into pieces of the given sizes.
pub fn split(x: &Tensor, axis: usize, sizes: &[usize], outs: &[TensorType]) -> Result<Vec<Tensor>, IrError> {
    let mut start = 0;
    let mut pieces = Vec::with_capacity(sizes.len());
    for (&len, ty) in sizes.iter().zip(outs) {
        let s = SliceAxis { axis, start, step: 1, len };
        pieces.push(slice(x, &[s], ty.clone())?);
        start += len;
    }
    Ok(pieces)
}

/// `Slice`: each listed axis keeps `len` elements from `start` in steps of `step`.
pub fn slice(x: &Tensor, axes: &[SliceAxis], out: TensorType) -> Result<Tensor, IrError> {
    let s = strides(x.shape());
    let mut st: Vec<isize> = s.iter().map(|&v| v as isize).collect();
    let mut base = 0isize;
    for a in axes {
        base += a.start as isize * s[a.axis] as isize;
        st[a.axis] = s[a.axis] as isize * a.step as isize;
    }
    let index = signed_strided_index(&out.shape, &st, base);
    gathered(x, &index, out)
}

fn signed_strided_index(shape: &[usize], strides: &[isize], base: isize) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut coord = vec![0usize; shape.len()];
    let mut pos = base;
    for _ in 0..n {
        out.push(pos as usize);
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            pos += strides[d];
            if coord[d] < shape[d] {
                break;
            }
            pos -= strides[d] * shape[d] as isize;
            coord[d] = 0;
        }
    }
    out
}

/// `Gather` along `axis`; negative indices count from the end.
pub fn gather(x: &Tensor, indices: &Tensor, axis: usize, out: TensorType) -> Result<Tensor, IrError> {
    let dim = x.shape()[axis];
    let idx = indices.as_i64_vec("Gather indices")?;
    let outer: usize = x.shape()[..axis].iter().product();
    let inner: usize = x.shape()[axis + 1..].iter().product();
    let mut index = Vec::with_capacity(out.numel());
    for o in 0..outer {
        for &i in &idx {
            let j = if i < 0 { i + dim as i64 } else { i };
            if j < 0 || j >= dim as i64 {
                return Err(IrError::value(format!("Gather index {i} out of range for axis of size {dim}")));
            }
            let start = (o * dim + j as usize) * inner;
            index.extend(start..start + inner);
        }
    }
    gathered(x, &index, out)
}

/// `Expand`: numpy broadcast to the output shape.
pub fn expand(x: &Tensor, out: TensorType) -> Result<Tensor, IrError> {
    gathered(x, &broadcast_index(x.shape(), &out.shape), out)
}

/// `Tile`: the input repeated along each axis.
pub fn tile(x: &Tensor, out: TensorType) -> Result<Tensor, IrError> {
    let s = strides(x.shape());
    let index = out_coords(&out.shape, |c| c.iter().enumerate().map(|(d, &v)| (v % x.shape()[d]) * s[d]).sum());
    gathered(x, &index, out)
}

/// Calls `f` with every output coordinate in row-major order.
fn out_coords(shape: &[usize], mut f: impl FnMut(&[usize]) -> usize) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut coord = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(f(&coord));
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    out
}

/// Source coordinate for a padded coordinate `p` (input extent `n`), or `None` for fill.
/// The input index that output index `p` of a padded axis of length `n` reads (`p` counted
/// from the start of the input), or `None` for the constant fill.
pub fn pad_source(p: i64, n: i64, mode: PadMode) -> Option<i64> {
    if (0..n).contains(&p) {
        return Some(p);
    }
    match mode {
        PadMode::Constant => None,
        PadMode::Edge => Some(p.clamp(0, n - 1)),
        PadMode::Wrap => Some(p.rem_euclid(n)),
        PadMode::Reflect => {
            if n == 1 {
                return Some(0);
            }
            let period = 2 * (n - 1);
            let r = p.rem_euclid(period);
            Some(if r < n { r } else { period - r })
        }
    }
}

/// `Pad` (negative pads crop).
pub fn pad(x: &Tensor, begin: &[i64], mode: PadMode, value: f64, out: TensorType) -> Result<Tensor, IrError> {
    if mode != PadMode::Constant && x.shape().contains(&0) && out.numel() > 0 {
        return Err(IrError::value(format!("{mode:?} padding of an empty tensor")));
    }
    let s = strides(x.shape());
    let fill = x.numel();
    let index = out_coords(&out.shape, |c| {
        let mut flat = 0;
        for d in 0..c.len() {
            match pad_source(c[d] as i64 - begin[d], x.shape()[d] as i64, mode) {
                Some(v) => flat += v as usize * s[d],
                None => return fill,
            }
        }
        flat
    });
    // Append the fill value as one extra element so fill positions can be gathered too.
    let with_fill = map_data!(x.data(), v => {
        let mut v = v.clone();
        v.push(fill_value(value));
        v
    });
    Tensor::new(out.shape, with_fill.gather(&index))
}

/// Conversion of the pad constant into each element type.
trait FromPad {
    fn from_pad(v: f64) -> Self;
}
macro_rules! from_pad {
    ($($t:ty),*) => { $(impl FromPad for $t { fn from_pad(v: f64) -> Self { v as $t } })* };
}
from_pad!(f32, f64, i64, i32, i16, i8, u64, u32, u16, u8);
impl FromPad for f16 {
    fn from_pad(v: f64) -> Self {
        f16::from_f64(v)
    }
}
impl FromPad for bf16 {
    fn from_pad(v: f64) -> Self {
        veltair_ir::narrow::bf16_of(v)
    }
}
impl FromPad for bool {
    fn from_pad(v: f64) -> Self {
        v != 0.0
    }
}
fn fill_value<T: FromPad>(v: f64) -> T {
    T::from_pad(v)
}
