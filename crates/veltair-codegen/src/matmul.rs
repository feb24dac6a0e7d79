//! Batched MatMul of two runtime operands (attention scores and context): `C[b] = A[b] · B[b]`
//! with `A[b]` `[M, K]` and `B[b]` `[K, N]`, either operand possibly shared by every batch
//! (batch stride 0). Rows of C (`batch × M`) are split among threads; a row accumulates up to
//! 32 columns in f32x4 registers at a time over the whole K, then applies the epilogue
//! (seeing C as `[batch·M, N]`) and stores.
//!
//! Argument table: `[A, B, C, epilogue operands…]`.

use crate::builder::{build_kernel, counted_loop, lanes, load_lanes, store_lanes, thread_range};
use crate::epilogue::{Epilogue, Site};
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::{types, InstBuilder};
use cranelift_frontend::Variable;
use veltair_load::MachineCode;

/// Column vectors a row keeps in registers at once.
const CHUNK_VECS: usize = 8;

/// A batched MatMul with both operands computed at run time.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchedMatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Elements between consecutive batches of A (0: one A for every batch).
    pub a_batch_stride: usize,
    /// Elements between consecutive batches of B (0: one B for every batch).
    pub b_batch_stride: usize,
    pub epilogue: Epilogue,
}

impl BatchedMatmulSpec {
    /// The iteration domain and the (fixed) schedule of the template.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let domain =
            Domain::new("batched_matmul", &[("b", self.batch), ("m", self.m), ("n", self.n)], &[("k", self.k)])
                .computing(
                    access("C", &["b", "m", "n"]),
                    vec![access("A", &["b", "m", "k"]), access("B", &["b", "k", "n"])],
                    "+= A * B",
                );
        let lines = [
            "fuse b m into r".to_string(),
            format!("parallel r {max_threads}"),
            format!("split n {}", 4 * CHUNK_VECS),
            "reorder r n.0 k n.1".to_string(),
            "cache_write C at n.0".to_string(),
            "vectorize n.1 4".to_string(),
            "compute_at epilogue n.0".to_string(),
        ];
        (domain, Schedule::fixed(&lines))
    }

    /// Elements of each argument-table entry.
    pub fn arg_elems(&self) -> Vec<usize> {
        let last = self.batch.saturating_sub(1);
        let mut v = vec![
            last * self.a_batch_stride + self.m * self.k,
            last * self.b_batch_stride + self.k * self.n,
            self.batch * self.m * self.n,
        ];
        v.extend(self.epilogue.arg_elems(self.batch * self.m, self.n));
        v
    }
}

/// Generates and compiles the batched MatMul kernel.
pub fn compile_batched_matmul(spec: &BatchedMatmulSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    let s = spec;
    let elems = s.arg_elems();
    if [s.batch, s.m, s.k, s.n].contains(&0) || elems.iter().any(|&e| e as u64 * 4 >= 1 << 31) {
        return Err(CodegenError::Schedule(format!("unsupported batched MatMul {s:?}")));
    }
    s.epilogue.validate()?;
    let func = build_kernel(target, |b, params| {
        let (a, bm, c) = (params.arg(b, 0), params.arg(b, 1), params.arg(b, 2));
        let operands: Vec<_> = (0..s.epilogue.operands.len()).map(|i| params.arg(b, 3 + i)).collect();
        let (r0, r1) = thread_range(b, (s.batch * s.m) as i64, params.thread, params.threads);
        counted_loop(b, r0, r1, 1, |b, r| {
            let bi = b.ins().udiv_imm_u(r, s.m as i64);
            let mi = b.ins().urem_imm_u(r, s.m as i64);
            let a_batch = b.ins().imul_imm_s(bi, (s.a_batch_stride * 4) as i64);
            let a_rowoff = b.ins().imul_imm_s(mi, (s.k * 4) as i64);
            let a_off = b.ins().iadd(a_batch, a_rowoff);
            let a_row = b.ins().iadd(a, a_off);
            let b_off = b.ins().imul_imm_s(bi, (s.b_batch_stride * 4) as i64);
            let b_base = b.ins().iadd(bm, b_off);
            let c_off = b.ins().imul_imm_s(r, (s.n * 4) as i64);
            let c_row = b.ins().iadd(c, c_off);
            for j0 in (0..s.n).step_by(4 * CHUNK_VECS) {
                let cols = (s.n - j0).min(4 * CHUNK_VECS);
                let nv = cols.div_ceil(4);
                let zf = b.ins().f32const(0.0);
                let zero_v = b.ins().splat(types::F32X4, zf);
                let accs: Vec<Variable> = (0..nv)
                    .map(|_| {
                        let var = b.declare_var(types::F32X4);
                        b.def_var(var, zero_v);
                        var
                    })
                    .collect();
                let (zero, k_end) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, s.k as i64));
                counted_loop(b, zero, k_end, 1, |b, kk| {
                    let a_k = b.ins().ishl_imm_u(kk, 2);
                    let a_addr = b.ins().iadd(a_row, a_k);
                    let x = b.ins().load(types::F32, crate::builder::mem(), a_addr, 0);
                    let xv = b.ins().splat(types::F32X4, x);
                    let b_k = b.ins().imul_imm_s(kk, (s.n * 4) as i64);
                    let b_row = b.ins().iadd(b_base, b_k);
                    for (v, &var) in accs.iter().enumerate() {
                        let y = load_lanes(b, b_row, ((j0 + 4 * v) * 4) as i32, lanes(cols, v));
                        let acc = b.use_var(var);
                        let acc = b.ins().fma(xv, y, acc);
                        b.def_var(var, acc);
                    }
                });
                for (v, &var) in accs.iter().enumerate() {
                    let ln = lanes(cols, v);
                    let col = b.ins().iconst(types::I64, (j0 + 4 * v) as i64);
                    let acc = b.use_var(var);
                    let out = s.epilogue.apply(b, &operands, s.n, Site { row: r, col, lanes: ln }, acc);
                    store_lanes(b, out, c_row, ((j0 + 4 * v) * 4) as i32, ln);
                }
            }
        });
    });
    compile(func, target, elems)
}
