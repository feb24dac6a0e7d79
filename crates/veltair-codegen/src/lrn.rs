//! Local response normalisation across channels (ONNX `LRN`, as in GoogLeNet and AlexNet) over
//! an NHWC tensor viewed as `[pixels, C]`:
//! `y[c] = x[c] / (bias + alpha/size · Σ_{c' ∈ window(c)} x[c']²)^beta`, the window being
//! `c − ⌊(size−1)/2⌋ ..= c + ⌈(size−1)/2⌉` clipped to the channels, as ONNX defines it (for even
//! sizes `veltair_ref`'s window currently stops one channel short of that).
//!
//! Threads split the pixels; each pixel's channels are computed a vector (4 channels) at a time,
//! the `size` window sums as `size` unaligned loads of the row shifted by each window offset,
//! squared and accumulated. The vectors whose windows stick out of the channels (the first and
//! last few) are emitted one by one, their lanes outside the channels set to zero without
//! reading memory there; the others run in a loop.
//!
//! The power: `d^−beta` is `1/√d`, `1/(√d·√√d)` and `1/d` for `beta` = 0.5, 0.75 (GoogLeNet,
//! AlexNet) and 1; any other `beta` uses `exp(−beta·log d)` ([`crate::math`]), relative error
//! about `(2 + |beta·ln d|)·1e-7`. The base `d` is positive when `bias > 0` (and `alpha ≥ 0`), as
//! in every model seen; otherwise `d` may be `≤ 0` and the output is what those functions make of
//! it (NaN or infinities), where ONNX's `pow` may be finite.
//!
//! Argument table: `[x, y]`, both `pixels·C` elements.

use crate::builder::{build_kernel, counted_loop, lanes, mem, store_lanes, thread_range};
use crate::math::{self, splat};
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use std::ops::Range;
use veltair_load::MachineCode;

/// Widest window the generator accepts (the border vectors' code grows with `size²`); models
/// use 3 to 11.
pub const MAX_SIZE: usize = 64;

/// An LRN layer over `pixels` (`N·H·W`) rows of `channels` NHWC values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnSpec {
    pub pixels: usize,
    pub channels: usize,
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

impl LrnSpec {
    /// Window channels before and after the centre: `⌊(size−1)/2⌋` and `⌈(size−1)/2⌉`.
    fn reach(&self) -> (usize, usize) {
        ((self.size - 1) / 2, self.size / 2)
    }

    /// The iteration domain and the (fixed) schedule of the LRN template.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let before = self.reach().0;
        let domain = Domain::new("lrn", &[("p", self.pixels), ("c", self.channels)], &[("k", self.size)]).computing(
            access("out", &["p", "c"]),
            vec![access("x", &["p", &format!("c+k-{before}")])],
            "= x[p, c] / (bias + alpha/size * sum x^2)^beta (zero outside x)",
        );
        let lines = [
            format!("parallel p {max_threads}"),
            "vectorize c 4".to_string(),
            format!("unroll k {}", self.size),
            "cache_write out at c".to_string(),
        ];
        (domain, Schedule::fixed(&lines))
    }

    /// Elements of `[x, y]`.
    pub fn arg_elems(&self) -> Vec<usize> {
        vec![self.pixels * self.channels; 2]
    }
}

/// Generates and compiles the LRN kernel.
pub fn compile_lrn(spec: &LrnSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    if spec.channels == 0 || !(1..=MAX_SIZE).contains(&spec.size) {
        return Err(CodegenError::Schedule(format!(
            "unsupported LRN: {} channels, window of {} (1 to {MAX_SIZE})",
            spec.channels, spec.size
        )));
    }
    if (spec.pixels * spec.channels) as u64 * 4 >= 1 << 31 {
        return Err(CodegenError::Schedule(format!("LRN over {} pixels is too large", spec.pixels)));
    }
    let c = spec.channels;
    let (before, after) = spec.reach();
    let vectors = c.div_ceil(4);
    // Vectors whose windows lie inside the channels: `4j ≥ before` and `4j + 3 + after < C`.
    let inner = before.div_ceil(4)..(c + 1).saturating_sub(4 + after).div_ceil(4);
    let func = build_kernel(target, |b, params| {
        let x = params.arg(b, 0);
        let y = params.arg(b, 1);
        let (p0, p1) = thread_range(b, spec.pixels as i64, params.thread, params.threads);
        counted_loop(b, p0, p1, 1, |b, p| {
            let off = b.ins().imul_imm_s(p, (c * 4) as i64);
            let (xr, yr) = (b.ins().iadd(x, off), b.ins().iadd(y, off));
            let fixed = |b: &mut FunctionBuilder, j: usize| vector(b, spec, (xr, yr), Some(j));
            if inner.len() >= 2 {
                (0..inner.start).for_each(|j| fixed(b, j));
                let start = b.ins().iconst(types::I64, (inner.start * 16) as i64);
                let end = b.ins().iconst(types::I64, (inner.end * 16) as i64);
                counted_loop(b, start, end, 16, |b, off| {
                    let (xv, yv) = (b.ins().iadd(xr, off), b.ins().iadd(yr, off));
                    vector(b, spec, (xv, yv), None);
                });
                (inner.end..vectors).for_each(|j| fixed(b, j));
            } else {
                (0..vectors).for_each(|j| fixed(b, j));
            }
        });
    });
    compile(func, target, spec.arg_elems())
}

/// Channel vector `j` (channels `4j..4j+4`) of the row whose `x` and `y` start at `xr`, `yr`;
/// `None` for a vector whose window lies inside the channels, `xr` and `yr` pointing at it.
fn vector(b: &mut FunctionBuilder, spec: &LrnSpec, (xr, yr): (Value, Value), j: Option<usize>) {
    let c = spec.channels;
    let (before, after) = spec.reach();
    let mut sum: Option<Value> = None;
    let mut centre = None;
    for d in -(before as i64)..=after as i64 {
        // Lanes whose channel `4j + d + lane` is inside the row.
        let (first, inside) = match j {
            Some(j) => {
                let first = 4 * j as i64 + d;
                (first, (-first).clamp(0, 4) as usize..(c as i64 - first).clamp(0, 4) as usize)
            }
            None => (d, 0..4),
        };
        let v = match inside.len() {
            0 => continue,
            _ => load_inside(b, xr, first, inside),
        };
        sum = Some(match sum {
            Some(s) => b.ins().fma(v, v, s),
            None => b.ins().fmul(v, v),
        });
        if d == 0 {
            centre = Some(v);
        }
    }
    let (sum, x) = (sum.expect("the centre is in the window"), centre.expect("the centre is in the window"));
    let scale = splat(b, (f64::from(spec.alpha) / spec.size as f64) as f32);
    let bias = splat(b, spec.bias);
    let d = b.ins().fma(sum, scale, bias);
    let out = match spec.beta {
        0.5 => {
            let r = b.ins().sqrt(d);
            b.ins().fdiv(x, r)
        }
        0.75 => {
            let r = b.ins().sqrt(d);
            let rr = b.ins().sqrt(r);
            let p = b.ins().fmul(r, rr);
            b.ins().fdiv(x, p)
        }
        1.0 => b.ins().fdiv(x, d),
        beta => {
            let l = math::log(b, d);
            let nb = splat(b, -beta);
            let e = b.ins().fmul(l, nb);
            let r = math::exp(b, e);
            b.ins().fmul(x, r)
        }
    };
    match j {
        Some(j) => store_lanes(b, out, yr, 16 * j as i32, lanes(c, j)),
        None => store_lanes(b, out, yr, 0, 4),
    }
}

/// The 4 floats from element `first` of `row` with only lanes `inside` read (the others 0).
fn load_inside(b: &mut FunctionBuilder, row: Value, first: i64, inside: Range<usize>) -> Value {
    let off = (4 * first) as i32;
    if inside == (0..4) {
        return b.ins().load(types::F32X4, mem(), row, off);
    }
    let mut v = splat(b, 0.0);
    for l in inside {
        let s = b.ins().load(types::F32, mem(), row, off + 4 * l as i32);
        v = b.ins().insertlane(v, s, l as u8);
    }
    v
}
