//! Shared helpers of the kernel tests: deterministic test values and layout conversion.

#![allow(dead_code)]

/// `n` deterministic values in [-1, 1].
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// NCHW data (as the reference evaluator holds it) to NHWC (as the kernels read it).
pub fn nchw_to_nhwc(x: &[f32], batch: usize, c: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for n in 0..batch {
        for ci in 0..c {
            for p in 0..pixels {
                out[(n * pixels + p) * c + ci] = x[(n * c + ci) * pixels + p];
            }
        }
    }
    out
}

/// Epilogues the layer tests draw from: none, activations, a residual add, and per-column and
/// scalar operands with either operand order.
pub fn epilogue_case(i: usize) -> veltair_codegen::epilogue::Epilogue {
    use veltair_codegen::epilogue::{Epilogue, Operand, Step};
    use veltair_ir::{BinaryOp, UnaryOp};
    match i % 5 {
        0 => Epilogue::default(),
        1 => Epilogue::unary(UnaryOp::Relu),
        2 => Epilogue::unary(UnaryOp::Clip { min: Some(-0.3), max: Some(0.5) }),
        3 => Epilogue {
            operands: vec![Operand::Full],
            steps: vec![
                Step::Binary { op: BinaryOp::Add, operand: 0, operand_first: false },
                Step::Unary(UnaryOp::Relu),
            ],
        },
        _ => Epilogue {
            operands: vec![Operand::PerCol, Operand::Scalar, Operand::PerRow],
            steps: vec![
                Step::Binary { op: BinaryOp::Mul, operand: 0, operand_first: false },
                Step::Binary { op: BinaryOp::Sub, operand: 1, operand_first: true },
                Step::Binary { op: BinaryOp::Max, operand: 2, operand_first: false },
            ],
        },
    }
}

/// Deterministic data for each operand of `e` over a `[rows, cols]` result.
pub fn epilogue_operands(e: &veltair_codegen::epilogue::Epilogue, rows: usize, cols: usize) -> Vec<Vec<f32>> {
    e.arg_elems(rows, cols).iter().enumerate().map(|(i, &n)| values(n, 10 + i as u32)).collect()
}

/// What `e` makes of value `v` at `(row, col)` of a `[rows, cols]` result (the test cases use
/// only Relu, Clip, Add, Sub, Mul and Max).
pub fn apply_epilogue(
    e: &veltair_codegen::epilogue::Epilogue,
    operands: &[Vec<f32>],
    cols: usize,
    (row, col): (usize, usize),
    mut v: f32,
) -> f32 {
    use veltair_codegen::epilogue::{Operand, Step};
    use veltair_ir::{BinaryOp, UnaryOp};
    for step in &e.steps {
        v = match step {
            Step::Unary(UnaryOp::Relu) => v.max(0.0),
            Step::Unary(UnaryOp::Clip { min, max }) => v.max(min.unwrap() as f32).min(max.unwrap() as f32),
            Step::Binary { op, operand, operand_first } => {
                let data = &operands[*operand];
                let x = match e.operands[*operand] {
                    Operand::Full => data[row * cols + col],
                    Operand::PerCol => data[col],
                    Operand::PerRow => data[row],
                    Operand::Scalar => data[0],
                };
                let (l, r) = if *operand_first { (x, v) } else { (v, x) };
                match op {
                    BinaryOp::Add => l + r,
                    BinaryOp::Sub => l - r,
                    BinaryOp::Mul => l * r,
                    BinaryOp::Max => l.max(r),
                    other => panic!("no test reference for {other:?}"),
                }
            }
            other => panic!("no test reference for {other:?}"),
        };
    }
    v
}
