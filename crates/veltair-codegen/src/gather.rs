//! Integer-indexed data movement: Gather of slices along one axis with i64 indices
//! (embedding lookups). An i64 element occupies two f32 slots of a buffer.
//!
//! Indices are wrapped once if negative (ONNX semantics) and then clamped to the axis:
//! generated code cannot report an out-of-range index, and it must never read outside the
//! data (the reference evaluator rejects such indices instead).

use crate::builder::{build_kernel, counted_loop, lanes, load_lanes, mem, store_lanes, thread_range};
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder};
use veltair_load::MachineCode;

/// `out[o, i, :] = data[o, indices[i], :]` for data `[outer, axis_len, inner]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherSpec {
    pub outer: usize,
    pub axis_len: usize,
    pub inner: usize,
    pub indices: usize,
}

impl GatherSpec {
    /// The iteration domain and the (fixed) schedule of the template.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let domain = Domain::new("gather", &[("o", self.outer), ("i", self.indices), ("j", self.inner)], &[])
            .computing(access("out", &["o", "i", "j"]), vec![access("data", &["o", "clamp(idx[i])", "j"])], "= data");
        let lines =
            ["fuse o i into slices".to_string(), format!("parallel slices {max_threads}"), "vectorize j 4".to_string()];
        (domain, Schedule::fixed(&lines))
    }

    /// Elements (f32 slots) of `[data, indices, output]`.
    pub fn arg_elems(&self) -> Vec<usize> {
        vec![self.outer * self.axis_len * self.inner, 2 * self.indices, self.outer * self.indices * self.inner]
    }
}

/// Generates and compiles the Gather kernel (argument table `[data, indices (i64), output]`);
/// threads split the `outer × indices` output slices.
pub fn compile_gather(spec: &GatherSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    let g = *spec;
    let elems = g.arg_elems();
    if [g.outer, g.axis_len, g.inner, g.indices].contains(&0) || elems.iter().any(|&e| e as u64 * 4 >= 1 << 31) {
        return Err(CodegenError::Schedule(format!("unsupported gather {g:?}")));
    }
    let func = build_kernel(target, |b, params| {
        let (data, idx, out) = (params.arg(b, 0), params.arg(b, 1), params.arg(b, 2));
        let (s0, s1) = thread_range(b, (g.outer * g.indices) as i64, params.thread, params.threads);
        counted_loop(b, s0, s1, 1, |b, slice| {
            let o = b.ins().udiv_imm_u(slice, g.indices as i64);
            let i = b.ins().urem_imm_u(slice, g.indices as i64);
            let i_off = b.ins().ishl_imm_u(i, 3);
            let i_addr = b.ins().iadd(idx, i_off);
            let raw = b.ins().load(types::I64, mem(), i_addr, 0);
            let wrapped = b.ins().iadd_imm_s(raw, g.axis_len as i64);
            let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, raw, 0);
            let index = b.ins().select(negative, wrapped, raw);
            let zero = b.ins().iconst(types::I64, 0);
            let last = b.ins().iconst(types::I64, g.axis_len as i64 - 1);
            let index = b.ins().smax(index, zero);
            let index = b.ins().smin(index, last);
            let o_rows = b.ins().imul_imm_s(o, g.axis_len as i64);
            let row = b.ins().iadd(o_rows, index);
            let src_off = b.ins().imul_imm_s(row, (g.inner * 4) as i64);
            let src = b.ins().iadd(data, src_off);
            let dst_off = b.ins().imul_imm_s(slice, (g.inner * 4) as i64);
            let dst = b.ins().iadd(out, dst_off);
            copy_run(b, src, dst, g.inner);
        });
    });
    compile(func, target, elems)
}

/// Copies `len` floats from `src` to `dst`, a vector at a time.
fn copy_run(
    b: &mut cranelift_frontend::FunctionBuilder,
    src: cranelift_codegen::ir::Value,
    dst: cranelift_codegen::ir::Value,
    len: usize,
) {
    let full = len / 4;
    if full > 0 {
        let (zero, end) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, (full * 16) as i64));
        counted_loop(b, zero, end, 16, |b, off| {
            let s = b.ins().iadd(src, off);
            let v = b.ins().load(types::F32X4, mem(), s, 0);
            let d = b.ins().iadd(dst, off);
            b.ins().store(mem(), v, d, 0);
        });
    }
    if !len.is_multiple_of(4) {
        let v = load_lanes(b, src, (full * 16) as i32, lanes(len, full));
        store_lanes(b, v, dst, (full * 16) as i32, lanes(len, full));
    }
}
