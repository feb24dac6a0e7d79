//! Max and average pooling over NHWC images, windowed (2-D) and global. Vectorised over
//! channels (f32x4, groups of up to 16 channels kept in registers), with each window clipped
//! to the input at run time so padding is never read. Windowed pooling splits the `N·OH`
//! output rows among threads; global pooling splits (image, channel group) pairs.
//!
//! Argument table: `[input (N·H·W·C), output (N·OH·OW·C)]` for windowed pooling and
//! `[input (N·pixels·C), output (N·C)]` for global pooling.
//!
//! Results match the reference evaluator bit for bit for max pooling (the first of equal
//! maxima wins, NaN inputs are skipped, a window with no tap inside the input yields NaN) and
//! up to rounding for averages (summed in f32, divided once).

use crate::builder::{build_kernel, counted_loop, lanes, load_lanes, store_lanes, thread_range};
use crate::im2col::ConvGeometry;
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use veltair_load::MachineCode;

/// Channels one pass over a window keeps in registers (four f32x4 accumulators).
const GROUP: usize = 16;

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// The mean over the taps inside the input, or, with `count_include_pad`, the sum divided
    /// by the number of taps inside the explicitly padded input (ONNX semantics: window parts
    /// beyond the end padding, as `ceil_mode` can produce, never count).
    Average {
        count_include_pad: bool,
    },
}

/// A 2-D pooling layer over NHWC images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// `c` is the channel count, `kh × kw` the window, `pad` the top/left padding and
    /// `oh × ow` the output size (callers compute it, `ceil_mode` included).
    pub geometry: ConvGeometry,
    /// Bottom/right padding: only the `count_include_pad` divisor depends on it.
    pub pad_end: (usize, usize),
    pub kind: PoolKind,
}

impl PoolSpec {
    /// The iteration domain and the (fixed) schedule of the pooling template.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let g = &self.geometry;
        let iy = format!("oh*{}+kh*{}-{}", g.stride.0, g.dilation.0, g.pad.0);
        let ix = format!("ow*{}+kw*{}-{}", g.stride.1, g.dilation.1, g.pad.1);
        let body = match self.kind {
            PoolKind::Max => "= max (over taps inside x)",
            PoolKind::Average { count_include_pad: true } => "= mean (padding counted)",
            PoolKind::Average { count_include_pad: false } => "= mean (over taps inside x)",
        };
        let domain = Domain::new(
            "pool2d",
            &[("n", g.batch), ("oh", g.oh), ("ow", g.ow), ("c", g.c)],
            &[("kh", g.kh), ("kw", g.kw)],
        )
        .computing(access("out", &["n", "oh", "ow", "c"]), vec![access("x", &["n", &iy, &ix, "c"])], body);
        let lines = [
            "fuse n oh into r".to_string(),
            format!("parallel r {max_threads}"),
            format!("split c {GROUP}"),
            "vectorize c.1 4".to_string(),
            "cache_write out at c.0".to_string(),
        ];
        (domain, Schedule::fixed(&lines))
    }

    /// Elements of each argument-table entry.
    pub fn arg_elems(&self) -> Vec<usize> {
        let g = &self.geometry;
        vec![g.input_elems(), g.batch * g.oh * g.ow * g.c]
    }
}

/// How vectors of a window are combined.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Max,
    Sum,
}

impl Reduce {
    fn identity(self, b: &mut FunctionBuilder) -> Value {
        let x = b.ins().f32const(if self == Reduce::Max { f32::NEG_INFINITY } else { 0.0 });
        b.ins().splat(types::F32X4, x)
    }

    /// `acc` combined with `x`; for max, lanes of `x` replace `acc` only when strictly
    /// greater (so NaN inputs never win and the first of equal values stays).
    fn combine(self, b: &mut FunctionBuilder, acc: Value, x: Value) -> Value {
        match self {
            Reduce::Sum => b.ins().fadd(acc, x),
            Reduce::Max => {
                let gt = b.ins().fcmp(FloatCC::GreaterThan, x, acc);
                let mask = b.ins().bitcast(types::F32X4, MemFlagsData::new(), gt);
                b.ins().bitselect(mask, x, acc)
            }
        }
    }
}

/// Reduces `nchan` (1..=16) channels over a set of taps: `taps` emits the loops over the taps
/// and calls its callback with each tap's address of channel 0 of the group; `finish` turns
/// each accumulator into the stored result.
fn reduce_group(
    b: &mut FunctionBuilder,
    op: Reduce,
    nchan: usize,
    out: Value,
    taps: impl FnOnce(&mut FunctionBuilder, &mut dyn FnMut(&mut FunctionBuilder, Value)),
    finish: impl Fn(&mut FunctionBuilder, Value) -> Value,
) {
    let nv = nchan.div_ceil(4);
    let accs: Vec<Variable> = (0..nv)
        .map(|_| {
            let var = b.declare_var(types::F32X4);
            let init = op.identity(b);
            b.def_var(var, init);
            var
        })
        .collect();
    taps(b, &mut |b, ptr| {
        for (j, &var) in accs.iter().enumerate() {
            let x = load_lanes(b, ptr, 16 * j as i32, lanes(nchan, j));
            let acc = b.use_var(var);
            let acc = op.combine(b, acc, x);
            b.def_var(var, acc);
        }
    });
    for (j, &var) in accs.iter().enumerate() {
        let acc = b.use_var(var);
        let v = finish(b, acc);
        store_lanes(b, v, out, 16 * j as i32, lanes(nchan, j));
    }
}

/// Emits `group(c_bytes, nchan)` for every channel group of `c` channels: a loop over the
/// full groups of 16, then the remainder.
fn channel_groups(b: &mut FunctionBuilder, c: usize, mut group: impl FnMut(&mut FunctionBuilder, Value, usize)) {
    let full = c / GROUP;
    if full > 0 {
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, full as i64);
        counted_loop(b, zero, end, 1, |b, g| {
            let c_bytes = b.ins().imul_imm_s(g, (GROUP * 4) as i64);
            group(b, c_bytes, GROUP);
        });
    }
    if !c.is_multiple_of(GROUP) {
        let c_bytes = b.ins().iconst(types::I64, (full * GROUP * 4) as i64);
        group(b, c_bytes, c % GROUP);
    }
}

/// The taps of one window along one axis that fall inside the input: `lo..hi`, and how many
/// fall inside the padded input (the `count_include_pad` divisor factor).
struct AxisTaps {
    lo: Value,
    hi: Value,
    padded: Value,
}

/// Taps `t` in `0..k` at coordinate `start + t·dilation` with `start < size` (validated).
fn axis_taps(
    b: &mut FunctionBuilder,
    start: Value,
    k: usize,
    dilation: usize,
    size: usize,
    pad_end: usize,
) -> AxisTaps {
    let d = dilation as i64;
    let div = |b: &mut FunctionBuilder, v: Value| if d == 1 { v } else { b.ins().udiv_imm_u(v, d) };
    let k_v = b.ins().iconst(types::I64, k as i64);
    let zero = b.ins().iconst(types::I64, 0);
    // First tap at or after coordinate 0: ceil(max(-start, 0) / d).
    let neg = b.ins().isub(zero, start);
    let neg = b.ins().smax(neg, zero);
    let neg = b.ins().iadd_imm_s(neg, d - 1);
    let lo = div(b, neg);
    // One past the last tap before `size` (start < size, so the numerator is non-negative).
    let edge = b.ins().iconst(types::I64, size as i64 - 1);
    let room = b.ins().isub(edge, start);
    let last = div(b, room);
    let hi = b.ins().iadd_imm_s(last, 1);
    let hi = b.ins().smin(hi, k_v);
    let hi = b.ins().smax(hi, lo);
    // Taps before `size + pad_end`; the window never starts before the top padding.
    let edge = b.ins().iconst(types::I64, (size + pad_end) as i64 - 1);
    let room = b.ins().isub(edge, start);
    let last = div(b, room);
    let padded = b.ins().iadd_imm_s(last, 1);
    let padded = b.ins().smin(padded, k_v);
    AxisTaps { lo, hi, padded }
}

fn check_sizes(what: &str, dims: &[usize], elems: &[usize]) -> Result<(), CodegenError> {
    if dims.contains(&0) || elems.iter().any(|&e| e as u64 * 4 >= 1 << 31) {
        return Err(CodegenError::Schedule(format!("unsupported {what}")));
    }
    Ok(())
}

/// Generates and compiles a windowed pooling kernel.
pub fn compile_pool(spec: &PoolSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    let g = spec.geometry;
    let dims = [g.batch, g.h, g.w, g.c, g.kh, g.kw, g.oh, g.ow, g.stride.0, g.stride.1, g.dilation.0, g.dilation.1];
    check_sizes(&format!("pooling geometry {g:?}"), &dims, &spec.arg_elems())?;
    // Every window must start inside the input or its leading padding (as shape inference
    // guarantees); the run-time clipping relies on it.
    if (g.oh - 1) * g.stride.0 >= g.h + g.pad.0 || (g.ow - 1) * g.stride.1 >= g.w + g.pad.1 {
        return Err(CodegenError::Schedule(format!("pooling windows start past the input: {g:?}")));
    }
    let op = if spec.kind == PoolKind::Max { Reduce::Max } else { Reduce::Sum };
    let (c4, row4) = ((g.c * 4) as i64, (g.w * g.c * 4) as i64);
    let func = build_kernel(target, |b, params| {
        let input = params.arg(b, 0);
        let output = params.arg(b, 1);
        let (r0, r1) = thread_range(b, (g.batch * g.oh) as i64, params.thread, params.threads);
        counted_loop(b, r0, r1, 1, |b, r| {
            let n = b.ins().udiv_imm_u(r, g.oh as i64);
            let oy = b.ins().urem_imm_u(r, g.oh as i64);
            let y0 = b.ins().imul_imm_s(oy, g.stride.0 as i64);
            let y0 = b.ins().iadd_imm_s(y0, -(g.pad.0 as i64));
            let ty = axis_taps(b, y0, g.kh, g.dilation.0, g.h, spec.pad_end.0);
            let image = b.ins().imul_imm_s(n, (g.h * g.w * g.c * 4) as i64);
            let image = b.ins().iadd(input, image);
            // Row of tap 0 (possibly outside the image: only in-range taps are addressed).
            let row0 = b.ins().imul_imm_s(y0, row4);
            let row0 = b.ins().iadd(image, row0);
            let out_row = b.ins().imul_imm_s(r, g.ow as i64 * c4);
            let out_row = b.ins().iadd(output, out_row);
            let zero = b.ins().iconst(types::I64, 0);
            let ow = b.ins().iconst(types::I64, g.ow as i64);
            counted_loop(b, zero, ow, 1, |b, ox| {
                let x0 = b.ins().imul_imm_s(ox, g.stride.1 as i64);
                let x0 = b.ins().iadd_imm_s(x0, -(g.pad.1 as i64));
                let tx = axis_taps(b, x0, g.kw, g.dilation.1, g.w, spec.pad_end.1);
                let col0 = b.ins().imul_imm_s(x0, c4);
                let pix0 = b.ins().iadd(row0, col0);
                let out_off = b.ins().imul_imm_s(ox, c4);
                let out_pix = b.ins().iadd(out_row, out_off);
                let finish = finisher(b, spec.kind, &ty, &tx);
                channel_groups(b, g.c, |b, c_bytes, nchan| {
                    let base = b.ins().iadd(pix0, c_bytes);
                    let out = b.ins().iadd(out_pix, c_bytes);
                    let taps = |b: &mut FunctionBuilder, tap: &mut dyn FnMut(&mut FunctionBuilder, Value)| {
                        counted_loop(b, ty.lo, ty.hi, 1, |b, ky| {
                            let dy = b.ins().imul_imm_s(ky, g.dilation.0 as i64 * row4);
                            let row = b.ins().iadd(base, dy);
                            counted_loop(b, tx.lo, tx.hi, 1, |b, kx| {
                                let dx = b.ins().imul_imm_s(kx, g.dilation.1 as i64 * c4);
                                let ptr = b.ins().iadd(row, dx);
                                tap(b, ptr);
                            });
                        });
                    };
                    reduce_group(b, op, nchan, out, taps, |b, acc| finish.apply(b, acc));
                });
            });
        });
    });
    compile(func, target, spec.arg_elems())
}

/// Turns a window's accumulator into its result.
enum Finish {
    /// Max: NaN where the window has no tap inside the input.
    Max { empty: Value, nan: Value },
    /// Average: the sum divided by this (splat) count.
    Divide(Value),
}

impl Finish {
    fn apply(&self, b: &mut FunctionBuilder, acc: Value) -> Value {
        match *self {
            Finish::Max { empty, nan } => b.ins().select(empty, nan, acc),
            Finish::Divide(count) => b.ins().fdiv(acc, count),
        }
    }
}

/// The per-pixel values that finish every channel group of a window.
fn finisher(b: &mut FunctionBuilder, kind: PoolKind, ty: &AxisTaps, tx: &AxisTaps) -> Finish {
    let inside = |b: &mut FunctionBuilder| {
        let ny = b.ins().isub(ty.hi, ty.lo);
        let nx = b.ins().isub(tx.hi, tx.lo);
        b.ins().imul(ny, nx)
    };
    let count = match kind {
        PoolKind::Max => {
            let n = inside(b);
            let empty = b.ins().icmp_imm_u(IntCC::Equal, n, 0);
            let nan = b.ins().f32const(f32::NAN);
            let nan = b.ins().splat(types::F32X4, nan);
            return Finish::Max { empty, nan };
        }
        PoolKind::Average { count_include_pad: false } => inside(b),
        PoolKind::Average { count_include_pad: true } => b.ins().imul(ty.padded, tx.padded),
    };
    let count = b.ins().fcvt_from_sint(types::F32, count);
    Finish::Divide(b.ins().splat(types::F32X4, count))
}

/// Generates and compiles a global pooling kernel: `[N, pixels, C]` reduced over the pixels
/// to `[N, C]`, the maximum (`max`) or the mean.
pub fn compile_global_pool(
    batch: usize,
    pixels: usize,
    channels: usize,
    max: bool,
    target: &Target,
) -> Result<MachineCode, CodegenError> {
    let arg_elems = vec![batch * pixels * channels, batch * channels];
    let what = format!("global pooling of {batch}×{pixels}×{channels}");
    check_sizes(&what, &[batch, pixels, channels], &arg_elems)?;
    let op = if max { Reduce::Max } else { Reduce::Sum };
    let (full, rest) = (channels / GROUP, channels % GROUP);
    let func = build_kernel(target, |b, params| {
        let input = params.arg(b, 0);
        let output = params.arg(b, 1);
        let image4 = (pixels * channels * 4) as i64;
        let reduce = |b: &mut FunctionBuilder, n: Value, c_bytes: Value, nchan: usize| {
            let image = b.ins().imul_imm_s(n, image4);
            let base = b.ins().iadd(input, image);
            let base = b.ins().iadd(base, c_bytes);
            let out = b.ins().imul_imm_s(n, (channels * 4) as i64);
            let out = b.ins().iadd(output, out);
            let out = b.ins().iadd(out, c_bytes);
            let taps = |b: &mut FunctionBuilder, tap: &mut dyn FnMut(&mut FunctionBuilder, Value)| {
                let zero = b.ins().iconst(types::I64, 0);
                let end = b.ins().iconst(types::I64, pixels as i64);
                counted_loop(b, zero, end, 1, |b, p| {
                    let off = b.ins().imul_imm_s(p, (channels * 4) as i64);
                    let ptr = b.ins().iadd(base, off);
                    tap(b, ptr);
                });
            };
            let count = b.ins().f32const(pixels as f32);
            let count = b.ins().splat(types::F32X4, count);
            let finish = |b: &mut FunctionBuilder, acc: Value| if max { acc } else { b.ins().fdiv(acc, count) };
            reduce_group(b, op, nchan, out, taps, finish);
        };
        if full > 0 {
            let (u0, u1) = thread_range(b, (batch * full) as i64, params.thread, params.threads);
            counted_loop(b, u0, u1, 1, |b, u| {
                let n = b.ins().udiv_imm_u(u, full as i64);
                let group = b.ins().urem_imm_u(u, full as i64);
                let c_bytes = b.ins().imul_imm_s(group, (GROUP * 4) as i64);
                reduce(b, n, c_bytes, GROUP);
            });
        }
        if rest > 0 {
            let (n0, n1) = thread_range(b, batch as i64, params.thread, params.threads);
            counted_loop(b, n0, n1, 1, |b, n| {
                let c_bytes = b.ins().iconst(types::I64, (full * GROUP * 4) as i64);
                reduce(b, n, c_bytes, rest);
            });
        }
    });
    compile(func, target, arg_elems)
}
