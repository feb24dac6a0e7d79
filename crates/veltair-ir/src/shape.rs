//! Shape arithmetic shared by shape inference and the evaluators: element counts with overflow
//! checks, strides, axis normalisation and numpy-style broadcasting.

use crate::{IrError, MAX_ELEMENTS};

/// `1x3x224x224` style text for a shape (`scalar` for rank 0).
pub fn format_dims(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".to_string();
    }
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Element count of a shape, refusing overflow and anything above [`MAX_ELEMENTS`].
pub fn checked_numel(shape: &[usize]) -> Result<usize, IrError> {
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).filter(|&n| n <= MAX_ELEMENTS).ok_or_else(|| {
            IrError::TooLarge(format!("shape [{}] exceeds the limit of {} elements", format_dims(shape), MAX_ELEMENTS))
        })?;
    }
    Ok(n)
}

/// Row-major strides (in elements) of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Maps a possibly negative axis into `0..rank`.
pub fn normalize_axis(axis: i64, rank: usize, what: &str) -> Result<usize, IrError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(IrError::attr(format!("{what}: axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// The numpy broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>, IrError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                let all: Vec<String> = shapes.iter().map(|s| format!("[{}]", format_dims(s))).collect();
                return Err(IrError::shape(format!("cannot broadcast shapes {}", all.join(", "))));
            }
        }
    }
    checked_numel(&out)?;
    Ok(out)
}

/// For each element of `out_shape` (row-major), the flat index of the element of a tensor of
/// shape `in_shape` that numpy broadcasting reads for it. `in_shape` must broadcast to
/// `out_shape`.
pub fn broadcast_index(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let rank = out_shape.len();
    let off = rank - in_shape.len();
    let in_strides = strides(in_shape);
    let mut eff = vec![0usize; rank];
    for i in 0..in_shape.len() {
        if in_shape[i] != 1 {
            eff[off + i] = in_strides[i];
        }
    }
    strided_index(out_shape, &eff, 0)
}

/// For each element of `shape` (row-major), `base + sum(coord[i] * strides[i])`.
pub fn strided_index(shape: &[usize], strides: &[usize], base: usize) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut coord = vec![0usize; shape.len()];
    let mut pos = base;
    for _ in 0..n {
        out.push(pos);
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            pos += strides[d];
            if coord[d] < shape[d] {
                break;
            }
            pos -= strides[d] * shape[d];
            coord[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shapes(&[&[2, 1, 4], &[3, 1]]).unwrap(), vec![2, 3, 4]);
        assert_eq!(broadcast_shapes(&[&[], &[5]]).unwrap(), vec![5]);
        assert!(broadcast_shapes(&[&[2, 3], &[4, 3]]).is_err());
    }

    #[test]
    fn broadcast_index_repeats_rows_and_columns() {
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn numel_limits() {
        assert!(checked_numel(&[usize::MAX, 2]).is_err());
        assert!(checked_numel(&[1 << 20, 1 << 20]).is_err());
        assert_eq!(checked_numel(&[]).unwrap(), 1);
    }

    #[test]
    fn axes() {
        assert_eq!(normalize_axis(-1, 4, "t").unwrap(), 3);
        assert!(normalize_axis(4, 4, "t").is_err());
        assert!(normalize_axis(-5, 4, "t").is_err());
    }
}
