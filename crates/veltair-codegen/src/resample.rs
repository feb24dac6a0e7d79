//! Resampling along one axis (Resize runs one per resized axis): for a `[outer, in_len,
//! inner]` view, `out[o, j, :] = Σ_t w[j][t] · in[o, idx[j][t], :] + extra[j]`. Every output
//! position's taps (input index and weight, padded to the same count) and its constant term
//! (the extrapolation value, for positions outside the input) live in a table computed at
//! compile time, so any coordinate mode and filter resamples alike. Threads split the
//! `outer × out_len` output rows; each row is vectorised over `inner`.
//!
//! Argument table: `[input, table (out_len · (2·taps + 1)), output]`.

use crate::builder::{build_kernel, counted_loop, lanes, load_lanes, mem, store_lanes, thread_range};
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_load::MachineCode;

/// One output position's taps, `None` for the extrapolation value (as
/// `veltair_ref::axis_taps` gives them).
pub type PositionTaps = Option<Vec<(usize, f64)>>;

/// A resampling of one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResampleSpec {
    pub outer: usize,
    pub in_len: usize,
    pub out_len: usize,
    pub inner: usize,
    /// Taps per output position (1 nearest, 2 linear, 4 cubic, more with antialiasing).
    pub taps: usize,
}

impl ResampleSpec {
    /// Elements of each argument-table entry.
    pub fn arg_elems(&self) -> Vec<usize> {
        vec![
            self.outer * self.in_len * self.inner,
            self.out_len * (2 * self.taps + 1),
            self.outer * self.out_len * self.inner,
        ]
    }

    /// The table for `positions` (one entry per output position): per position, the tap
    /// indices (as floats), their weights, then the constant term.
    pub fn table(&self, positions: &[PositionTaps], extrapolation: f32) -> Result<Vec<f32>, CodegenError> {
        if positions.len() != self.out_len {
            return Err(CodegenError::Schedule(format!("{} positions for {} outputs", positions.len(), self.out_len)));
        }
        let mut table = Vec::with_capacity(self.arg_elems()[1]);
        for p in positions {
            let taps = p.as_deref().unwrap_or(&[]);
            if taps.len() > self.taps || taps.iter().any(|&(i, _)| i >= self.in_len) {
                return Err(CodegenError::Schedule(format!("taps {taps:?} do not fit {self:?}")));
            }
            let padded = (0..self.taps).map(|t| taps.get(t).copied().unwrap_or((0, 0.0)));
            table.extend(padded.clone().map(|(i, _)| i as f32));
            table.extend(padded.map(|(_, w)| w as f32));
            table.push(if p.is_none() { extrapolation } else { 0.0 });
        }
        Ok(table)
    }

    /// The iteration domain and the (fixed) schedule of the template.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let domain =
            Domain::new("resample", &[("o", self.outer), ("j", self.out_len), ("i", self.inner)], &[("t", self.taps)])
                .computing(
                    access("out", &["o", "j", "i"]),
                    vec![access("x", &["o", "idx[j][t]", "i"]), access("w", &["j", "t"])],
                    "+= w * x (+ extra[j])",
                );
        let lines = [
            "fuse o j into rows".to_string(),
            format!("parallel rows {max_threads}"),
            format!("unroll t {}", self.taps),
            "vectorize i 4".to_string(),
        ];
        (domain, Schedule::fixed(&lines))
    }
}

/// Generates and compiles the resampling kernel.
pub fn compile_resample(spec: &ResampleSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    let s = *spec;
    let elems = s.arg_elems();
    if [s.outer, s.in_len, s.out_len, s.inner, s.taps].contains(&0) || elems.iter().any(|&e| e as u64 * 4 >= 1 << 31) {
        return Err(CodegenError::Schedule(format!("unsupported resampling {s:?}")));
    }
    let func = build_kernel(target, |b, params| {
        let (input, table, output) = (params.arg(b, 0), params.arg(b, 1), params.arg(b, 2));
        let (r0, r1) = thread_range(b, (s.outer * s.out_len) as i64, params.thread, params.threads);
        counted_loop(b, r0, r1, 1, |b, row| {
            let o = b.ins().udiv_imm_u(row, s.out_len as i64);
            let j = b.ins().urem_imm_u(row, s.out_len as i64);
            let entry_off = b.ins().imul_imm_s(j, ((2 * s.taps + 1) * 4) as i64);
            let entry = b.ins().iadd(table, entry_off);
            let plane = b.ins().imul_imm_s(o, (s.in_len * s.inner * 4) as i64);
            let plane = b.ins().iadd(input, plane);
            let taps: Vec<(Value, Value)> = (0..s.taps)
                .map(|t| {
                    let index = b.ins().load(types::F32, mem(), entry, (4 * t) as i32);
                    let index = b.ins().fcvt_to_sint_sat(types::I64, index);
                    let off = b.ins().imul_imm_s(index, (s.inner * 4) as i64);
                    let src = b.ins().iadd(plane, off);
                    let w = b.ins().load(types::F32, mem(), entry, (4 * (s.taps + t)) as i32);
                    (src, b.ins().splat(types::F32X4, w))
                })
                .collect();
            let extra = b.ins().load(types::F32, mem(), entry, (8 * s.taps) as i32);
            let extra = b.ins().splat(types::F32X4, extra);
            let dst_off = b.ins().imul_imm_s(row, (s.inner * 4) as i64);
            let dst = b.ins().iadd(output, dst_off);
            let vector = |b: &mut FunctionBuilder, byte: Value, ln: usize| {
                let mut acc = extra;
                for &(src, w) in &taps {
                    let addr = b.ins().iadd(src, byte);
                    let x = load_lanes(b, addr, 0, ln);
                    acc = b.ins().fma(x, w, acc);
                }
                let addr = b.ins().iadd(dst, byte);
                store_lanes(b, acc, addr, 0, ln);
            };
            let full = s.inner / 4;
            if full > 0 {
                let (zero, end) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, (full * 16) as i64));
                counted_loop(b, zero, end, 16, |b, byte| vector(b, byte, 4));
            }
            if !s.inner.is_multiple_of(4) {
                let byte = b.ins().iconst(types::I64, (full * 16) as i64);
                vector(b, byte, lanes(s.inner, full));
            }
        });
    });
    compile(func, target, elems)
}
