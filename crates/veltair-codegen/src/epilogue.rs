//! Element-wise epilogues fused into a layer kernel (compute_at): applied to each f32x4 of the
//! layer's `[rows, cols]` result in registers, just before it is stored, reading any extra
//! operands (residuals, per-channel scales) through the kernel's argument table.

use crate::builder::{load_lanes, mem};
use crate::pointwise::{binary_supported, emit_binary, emit_unary, unary_supported};
use crate::CodegenError;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_ir::{BinaryOp, UnaryOp};

/// How an extra operand is indexed by the result's `(row, col)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A full `[rows, cols]` tensor (a residual).
    Full,
    /// One value per column (an NHWC per-channel scale).
    PerCol,
    /// One value per row.
    PerRow,
    /// One value.
    Scalar,
}

/// One step on the accumulator `acc`.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Unary(UnaryOp),
    /// `acc = acc op x` (or `x op acc` when `operand_first`) with `x` from operand `operand`.
    Binary {
        op: BinaryOp,
        operand: usize,
        operand_first: bool,
    },
}

/// A fused element-wise chain and the operands it reads, in argument-table order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Epilogue {
    pub operands: Vec<Operand>,
    pub steps: Vec<Step>,
}

/// Where a result vector lies: its row, its first column and how many lanes are valid.
#[derive(Clone, Copy)]
pub struct Site {
    pub row: Value,
    pub col: Value,
    pub lanes: usize,
}

impl Epilogue {
    /// Just `activation` (no operands).
    pub fn unary(op: UnaryOp) -> Epilogue {
        Epilogue { operands: Vec::new(), steps: vec![Step::Unary(op)] }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Refuses operations the generator cannot emit and operand numbers out of range.
    pub fn validate(&self) -> Result<(), CodegenError> {
        for step in &self.steps {
            let ok = match step {
                Step::Unary(u) => unary_supported(u),
                Step::Binary { op, operand, .. } => binary_supported(*op) && *operand < self.operands.len(),
            };
            if !ok {
                return Err(CodegenError::Schedule(format!("epilogue step {step:?} is not supported")));
            }
        }
        Ok(())
    }

    /// Elements each operand must provide for a `[rows, cols]` result.
    pub fn arg_elems(&self, rows: usize, cols: usize) -> Vec<usize> {
        self.operands
            .iter()
            .map(|o| match o {
                Operand::Full => rows * cols,
                Operand::PerCol => cols,
                Operand::PerRow => rows,
                Operand::Scalar => 1,
            })
            .collect()
    }

    /// Emits the chain on `acc`, the result vector at `site` of a result with `cols` columns;
    /// `ptrs` are the operands' base pointers.
    pub fn apply(&self, b: &mut FunctionBuilder, ptrs: &[Value], cols: usize, site: Site, mut acc: Value) -> Value {
        for step in &self.steps {
            acc = match step {
                Step::Unary(u) => emit_unary(b, u, acc),
                Step::Binary { op, operand, operand_first } => {
                    let x = self.load(b, ptrs[*operand], self.operands[*operand], cols, site);
                    match operand_first {
                        true => emit_binary(b, *op, x, acc),
                        false => emit_binary(b, *op, acc, x),
                    }
                }
            };
        }
        acc
    }

    fn load(&self, b: &mut FunctionBuilder, ptr: Value, operand: Operand, cols: usize, site: Site) -> Value {
        let splat_at = |b: &mut FunctionBuilder, index: Option<Value>| {
            let addr = match index {
                Some(i) => {
                    let off = b.ins().ishl_imm_u(i, 2);
                    b.ins().iadd(ptr, off)
                }
                None => ptr,
            };
            let x = b.ins().load(types::F32, mem(), addr, 0);
            b.ins().splat(types::F32X4, x)
        };
        match operand {
            Operand::Scalar => splat_at(b, None),
            Operand::PerRow => splat_at(b, Some(site.row)),
            Operand::PerCol | Operand::Full => {
                let index = match operand {
                    Operand::Full => {
                        let r = b.ins().imul_imm_s(site.row, cols as i64);
                        b.ins().iadd(r, site.col)
                    }
                    _ => site.col,
                };
                let off = b.ins().ishl_imm_u(index, 2);
                let addr = b.ins().iadd(ptr, off);
                load_lanes(b, addr, 0, site.lanes)
            }
        }
    }
}
