//! Judging computed tensors against expected ones: numpy `allclose` semantics
//! (`|a - e| <= atol + rtol * |e|`, NaN matching NaN), with the worst errors reported.

use crate::Tensor;

/// Result of comparing one computed tensor with its expected value.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Largest difference relative to the expected magnitude (over elements with nonzero expected).
    pub max_rel: f64,
    /// Type and shape agree and every element is within tolerance.
    pub ok: bool,
    /// Why it failed when type or shape differ.
    pub mismatch: Option<String>,
}

/// Compares `actual` with `expected` under the given tolerances.
pub fn compare(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> Comparison {
    if actual.dtype() != expected.dtype() || actual.shape() != expected.shape() {
        return Comparison {
            max_abs: f64::INFINITY,
            max_rel: f64::INFINITY,
            ok: false,
            mismatch: Some(format!("computed {}, expected {}", actual.ty(), expected.ty())),
        };
    }
    let (a, e) = (actual.data().to_f64_vec(), expected.data().to_f64_vec());
    let (mut max_abs, mut max_rel, mut ok) = (0.0f64, 0.0f64, true);
    for (&x, &y) in a.iter().zip(&e) {
        if x.is_nan() && y.is_nan() || x == y {
            continue;
        }
        if !x.is_finite() || !y.is_finite() {
            // One side is NaN or infinite and they are not the same special value.
            max_abs = f64::INFINITY;
            ok = false;
            continue;
        }
        let diff = (x - y).abs();
        max_abs = max_abs.max(diff);
        if y != 0.0 {
            max_rel = max_rel.max(diff / y.abs());
        }
        if diff > atol + rtol * y.abs() {
            ok = false;
        }
    }
    Comparison { max_abs, max_rel, ok, mismatch: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_and_nan_rules() {
        let e = Tensor::from_f32(vec![3], vec![1.0, f32::NAN, 100.0]).unwrap();
        let close = Tensor::from_f32(vec![3], vec![1.00005, f32::NAN, 100.05]).unwrap();
        assert!(compare(&close, &e, 1e-3, 1e-4).ok);
        let far = Tensor::from_f32(vec![3], vec![1.1, f32::NAN, 100.0]).unwrap();
        let c = compare(&far, &e, 1e-3, 1e-4);
        assert!(!c.ok);
        assert!((c.max_abs - 0.1).abs() < 1e-6);
        let nan = Tensor::from_f32(vec![3], vec![1.0, 0.0, 100.0]).unwrap();
        assert!(!compare(&nan, &e, 1e-3, 1e-4).ok);
        let inf = Tensor::from_f32(vec![2], vec![f32::INFINITY, 1.0]).unwrap();
        let finite = Tensor::from_f32(vec![2], vec![5.0, 1.0]).unwrap();
        assert!(!compare(&finite, &inf, 1e-3, 1e-4).ok);
        assert!(!compare(&inf, &finite, 1e-3, 1e-4).ok);
        assert!(compare(&inf, &inf, 1e-3, 1e-4).ok);
        let reshaped = Tensor::from_f32(vec![1, 3], vec![1.0, f32::NAN, 100.0]).unwrap();
        assert!(compare(&reshaped, &e, 1e-3, 1e-4).mismatch.is_some());
    }
}
