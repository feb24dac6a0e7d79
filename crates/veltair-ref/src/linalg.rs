//! Matrix products: `Gemm` (optionally transposed operands, scaled, plus broadcast C) and numpy
//! `MatMul` (batched with broadcast batch axes, 1-D operands promoted).

use veltair_ir::shape::broadcast_index;
use veltair_ir::{IrError, Tensor, TensorType};

/// `c[m, n] += sum_k a[m, k] * b[k, n]` for row-major blocks with explicit strides.
#[allow(clippy::too_many_arguments)]
fn matmul_block(
    a: &[f32],
    (a_row, a_col): (usize, usize),
    b: &[f32],
    (b_row, b_col): (usize, usize),
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    for i in 0..m {
        let crow = &mut c[i * n..][..n];
        for p in 0..k {
            let av = a[i * a_row + p * a_col];
            for (j, cv) in crow.iter_mut().enumerate() {
                *cv += av * b[p * b_row + j * b_col];
            }
        }
    }
}

/// `Gemm`: alpha * op(A) * op(B) + beta * C.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
    out: TensorType,
) -> Result<Tensor, IrError> {
    let (av, bv) = (a.as_f32("Gemm A")?, b.as_f32("Gemm B")?);
    let (m, n) = (out.shape[0], out.shape[1]);
    let k = if trans_a { a.shape()[0] } else { a.shape()[1] };
    let a_strides = if trans_a { (1, m) } else { (k, 1) };
    let b_strides = if trans_b { (1, k) } else { (n, 1) };
    let mut y = vec![0f32; m * n];
    matmul_block(av, a_strides, bv, b_strides, &mut y, m, k, n);
    y.iter_mut().for_each(|v| *v *= alpha);
    if let Some(c) = c {
        let cv = c.as_f32("Gemm C")?;
        for (v, i) in y.iter_mut().zip(broadcast_index(c.shape(), &out.shape)) {
            *v += beta * cv[i];
        }
    }
    Tensor::from_f32(out.shape, y)
}

/// numpy `matmul`.
pub fn matmul(a: &Tensor, b: &Tensor, out: TensorType) -> Result<Tensor, IrError> {
    let (av, bv) = (a.as_f32("MatMul A")?, b.as_f32("MatMul B")?);
    // Promote 1-D operands to matrices: [k] -> [1, k] for A, [k] -> [k, 1] for B.
    let a_shape: Vec<usize> = if a.shape().len() == 1 { vec![1, a.shape()[0]] } else { a.shape().to_vec() };
    let b_shape: Vec<usize> = if b.shape().len() == 1 { vec![b.shape()[0], 1] } else { b.shape().to_vec() };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let n = b_shape[b_shape.len() - 1];
    let a_batch = &a_shape[..a_shape.len() - 2];
    let b_batch = &b_shape[..b_shape.len() - 2];
    let batch = veltair_ir::shape::broadcast_shapes(&[a_batch, b_batch])?;
    let ia = broadcast_index(a_batch, &batch);
    let ib = broadcast_index(b_batch, &batch);
    let mut y = vec![0f32; ia.len() * m * n];
    for (bi, (&pa, &pb)) in ia.iter().zip(&ib).enumerate() {
        matmul_block(
            &av[pa * m * k..][..m * k],
            (k, 1),
            &bv[pb * k * n..][..k * n],
            (n, 1),
            &mut y[bi * m * n..][..m * n],
            m,
            k,
            n,
        );
    }
    Tensor::from_f32(out.shape, y)
}
