//! Reductions over a set of axes (Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp,
//! SumSquare), accumulated in f64 and converted back to the input's element type.

use crate::elementwise::cast_data;
use veltair_ir::shape::strides;
use veltair_ir::{DType, IrError, ReduceOp, Tensor, TensorData, TensorType};

/// Reduces `x` over `axes` into the (already inferred) output type.
pub fn reduce(op: ReduceOp, x: &Tensor, axes: &[usize], out: TensorType) -> Result<Tensor, IrError> {
    let v = x.data().to_f64_vec();
    let shape = x.shape();
    // Output strides over the kept axes (reduced axes contribute 0).
    let kept_shape: Vec<usize> = (0..shape.len()).map(|a| if axes.contains(&a) { 1 } else { shape[a] }).collect();
    let ks = strides(&kept_shape);
    let n_out = out.numel();
    let count = v.len().checked_div(n_out).unwrap_or(0);
    let init = match op {
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
        ReduceOp::Prod => 1.0,
        _ => 0.0,
    };
    let mut acc = vec![init; n_out];
    let mut coord = vec![0usize; shape.len()];
    for &val in &v {
        let o: usize = (0..shape.len()).map(|a| if axes.contains(&a) { 0 } else { coord[a] * ks[a] }).sum();
        let a = &mut acc[o];
        *a = match op {
            ReduceOp::Sum | ReduceOp::Mean | ReduceOp::LogSum => *a + val,
            ReduceOp::Max => {
                if val.is_nan() || *a > val {
                    if val.is_nan() {
                        val
                    } else {
                        *a
                    }
                } else {
                    val
                }
            }
            ReduceOp::Min => {
                if val.is_nan() || *a < val {
                    if val.is_nan() {
                        val
                    } else {
                        *a
                    }
                } else {
                    val
                }
            }
            ReduceOp::Prod => *a * val,
            ReduceOp::L1 => *a + val.abs(),
            ReduceOp::L2 | ReduceOp::SumSquare => *a + val * val,
            ReduceOp::LogSumExp => *a + val.exp(),
        };
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    for a in &mut acc {
        *a = match op {
            ReduceOp::Mean => *a / count as f64,
            ReduceOp::L2 => a.sqrt(),
            ReduceOp::LogSum | ReduceOp::LogSumExp => a.ln(),
            _ => *a,
        };
    }
    let data = match x.dtype() {
        // Empty Max/Min over bool leave ∓inf: the identities false and true.
        DType::Bool => TensorData::Bool(acc.iter().map(|&v| v > 0.5).collect()),
        dtype => cast_data(&TensorData::F64(acc), dtype),
    };
    Tensor::new(out.shape, data)
}
