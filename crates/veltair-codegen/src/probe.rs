//! Machine probes: a generated kernel that runs nothing but independent f32x4 FMAs, to measure
//! the per-core 128-bit FMA peak the generated code can reach on this host.

use crate::builder::{build_kernel, counted_loop, mem};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::{types, InstBuilder};
use veltair_load::MachineCode;

/// Independent accumulator chains: enough to cover FMA latency × ports (4 × 2 on Zen 3).
pub const CHAINS: usize = 12;

/// Floating-point operations one call of the peak kernel performs.
pub fn peak_flops(iters: usize) -> f64 {
    (iters * CHAINS * 4 * 2) as f64
}

/// A kernel doing `iters` rounds of `CHAINS` independent `acc = acc * x + y` f32x4 FMAs, then
/// storing the accumulators to its one argument (`CHAINS * 4` floats) so nothing is elided.
pub fn fma_peak_kernel(iters: usize, target: &Target) -> Result<MachineCode, CodegenError> {
    let func = build_kernel(target, |b, params| {
        let out = params.arg(b, 0);
        let one = b.ins().f32const(1.0);
        let x = b.ins().splat(types::F32X4, one);
        let tiny = b.ins().f32const(1e-7);
        let y = b.ins().splat(types::F32X4, tiny);
        let accs: Vec<_> = (0..CHAINS).map(|_| b.declare_var(types::F32X4)).collect();
        for &a in &accs {
            b.def_var(a, x);
        }
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, iters as i64);
        counted_loop(b, zero, end, 1, |b, _| {
            for &a in &accs {
                let v = b.use_var(a);
                let r = b.ins().fma(v, x, y);
                b.def_var(a, r);
            }
        });
        for (i, &a) in accs.iter().enumerate() {
            let v = b.use_var(a);
            b.ins().store(mem(), v, out, (i * 16) as i32);
        }
    });
    compile(func, target, vec![CHAINS * 4])
}
