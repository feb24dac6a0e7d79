//! Depthwise 2-D convolution over NHWC images (each channel convolved with its own `kh × kw`
//! filter, as in MobileNet and EfficientNet). Vectorised over channels (f32x4), taps unrolled,
//! output rows split among threads: thread `t` of `T` computes rows `R·t/T .. R·(t+1)/T` of
//! the `R = N·OH` output rows.
//!
//! Argument table: `[input (N·H·W·C), weights (kh·kw·C₄), bias (C₄, if any), output
//! (N·OH·OW·C), epilogue operands…]`, with `C₄` the channel count rounded up to a multiple of 4.
//! The epilogue sees the output as `[N·OH·OW, C]`.

use crate::builder::{build_kernel, counted_loop, lanes, load_lanes, mem, store_lanes, thread_range};
use crate::epilogue::{Epilogue, Site};
use crate::im2col::{self, ConvGeometry};
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, MachineCode, Target};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

/// A depthwise convolution: geometry (with `c` the channel count), bias, fused epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthwiseSpec {
    pub geometry: ConvGeometry,
    pub bias: bool,
    pub epilogue: Epilogue,
}

impl DepthwiseSpec {
    /// The iteration domain and the (fixed) schedule of the depthwise template.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let g = &self.geometry;
        let iy = format!("oh*{}+kh*{}-{}", g.stride.0, g.dilation.0, g.pad.0);
        let ix = format!("ow*{}+kw*{}-{}", g.stride.1, g.dilation.1, g.pad.1);
        let domain = Domain::new(
            "depthwise2d",
            &[("n", g.batch), ("oh", g.oh), ("ow", g.ow), ("c", g.c)],
            &[("kh", g.kh), ("kw", g.kw)],
        )
        .computing(
            access("out", &["n", "oh", "ow", "c"]),
            vec![access("x", &["n", &iy, &ix, "c"]), access("w", &["kh", "kw", "c"])],
            "+= x * w (zero outside x)",
        );
        let lines = [
            "fuse n oh into r".to_string(),
            format!("parallel r {max_threads}"),
            "pack w [kh kw c] at compile-time".to_string(),
            "reorder r ow c kh kw".to_string(),
            "vectorize c 4".to_string(),
            format!("unroll kh {}", g.kh),
            format!("unroll kw {}", g.kw),
            "cache_write out at c".to_string(),
            "compute_at epilogue c".to_string(),
        ];
        (domain, Schedule::fixed(&lines))
    }

    fn padded_channels(&self) -> usize {
        self.geometry.c.next_multiple_of(4)
    }

    /// Elements of each argument-table entry.
    pub fn arg_elems(&self) -> Vec<usize> {
        let g = &self.geometry;
        let mut v = vec![g.input_elems(), g.kh * g.kw * self.padded_channels()];
        if self.bias {
            v.push(self.padded_channels());
        }
        v.push(g.batch * g.oh * g.ow * g.c);
        v.extend(self.epilogue.arg_elems(g.batch * g.oh * g.ow, g.c));
        v
    }

    /// Packs ONNX depthwise weights `[C, 1, kh, kw]` as `[ky][kx][C₄]` (zero padded).
    pub fn pack_weights(&self, w: &[f32]) -> Vec<f32> {
        let (g, cp) = (&self.geometry, self.padded_channels());
        let mut out = vec![0.0; g.kh * g.kw * cp];
        for c in 0..g.c {
            for t in 0..g.kh * g.kw {
                out[t * cp + c] = w[c * g.kh * g.kw + t];
            }
        }
        out
    }

    /// Pads a bias to `C₄` entries.
    pub fn pack_bias(&self, bias: &[f32]) -> Vec<f32> {
        let mut out = bias.to_vec();
        out.resize(self.padded_channels(), 0.0);
        out
    }
}

/// Generates and compiles the depthwise kernel.
pub fn compile_depthwise(spec: &DepthwiseSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    let g = &spec.geometry;
    let degenerate =
        [g.batch, g.h, g.w, g.c, g.kh, g.kw, g.oh, g.ow, g.stride.0, g.stride.1, g.dilation.0, g.dilation.1];
    if degenerate.contains(&0) || g.input_elems().max(g.batch * g.oh * g.ow * g.c) as u64 * 4 >= 1 << 31 {
        return Err(CodegenError::Schedule(format!("unsupported depthwise geometry {g:?}")));
    }
    spec.epilogue.validate()?;
    let func = build_kernel(target, |b, params| {
        let input = params.arg(b, 0);
        let weights = params.arg(b, 1);
        let bias = spec.bias.then(|| params.arg(b, 2));
        let output = params.arg(b, 2 + spec.bias as usize);
        let operands: Vec<Value> =
            (0..spec.epilogue.operands.len()).map(|i| params.arg(b, 3 + spec.bias as usize + i)).collect();
        let (r0, r1) = thread_range(b, (g.batch * g.oh) as i64, params.thread, params.threads);
        counted_loop(b, r0, r1, 1, |b, r| {
            let zero = b.ins().iconst(types::I64, 0);
            let ow = b.ins().iconst(types::I64, g.ow as i64);
            let ptrs = Ptrs { input, weights, bias, output, operands: &operands };
            counted_loop(b, zero, ow, 1, |b, ox| pixel(b, spec, &ptrs, r, ox));
        });
    });
    compile(func, target, spec.arg_elems())
}

struct Ptrs<'a> {
    input: Value,
    weights: Value,
    bias: Option<Value>,
    output: Value,
    operands: &'a [Value],
}

/// A tap's byte offset into the input (its pixel's first channel) and whether it is inside.
struct TapSite {
    offset: Value,
    inside: Value,
}

/// All channels of output pixel `(row r = n·OH + oy, ox)`.
fn pixel(b: &mut FunctionBuilder, spec: &DepthwiseSpec, p: &Ptrs, r: Value, ox: Value) {
    let g = &spec.geometry;
    let first = b.ins().imul_imm_s(r, g.ow as i64);
    let m = b.ins().iadd(first, ox);
    let row = im2col::pixel_row(b, g, m);
    let sites: Vec<TapSite> = (0..g.kh * g.kw)
        .map(|t| {
            let dy = b.ins().iconst(types::I64, ((t / g.kw) * g.dilation.0) as i64);
            let dx = b.ins().iconst(types::I64, ((t % g.kw) * g.dilation.1) as i64);
            let (inside, offset) = im2col::tap_pixel(b, g, &row, dy, dx);
            TapSite { offset, inside }
        })
        .collect();
    let zero = b.ins().iconst(types::I64, 0);
    let out_off = b.ins().imul_imm_s(m, (g.c * 4) as i64);
    let out_ptr = b.ins().iadd(p.output, out_off);
    let full = g.c / 4;
    if full > 0 {
        let end = b.ins().iconst(types::I64, full as i64);
        counted_loop(b, zero, end, 1, |b, cv| {
            let c_bytes = b.ins().imul_imm_s(cv, 16);
            channels(b, spec, p, &sites, (m, out_ptr), c_bytes, 4);
        });
    }
    if !g.c.is_multiple_of(4) {
        let c_bytes = b.ins().iconst(types::I64, (full * 16) as i64);
        channels(b, spec, p, &sites, (m, out_ptr), c_bytes, g.c % 4);
    }
}

/// One vector of `valid` channels starting at byte `c_bytes` of output pixel `m` (stored at
/// `out_ptr`).
fn channels(
    b: &mut FunctionBuilder,
    spec: &DepthwiseSpec,
    p: &Ptrs,
    sites: &[TapSite],
    (m, out_ptr): (Value, Value),
    c_bytes: Value,
    valid: usize,
) {
    let cp4 = (spec.padded_channels() * 4) as i32;
    let mut acc = match p.bias {
        Some(bias) => {
            let addr = b.ins().iadd(bias, c_bytes);
            b.ins().load(types::F32X4, mem(), addr, 0)
        }
        None => {
            let z = b.ins().f32const(0.0);
            b.ins().splat(types::F32X4, z)
        }
    };
    let zf = b.ins().f32const(0.0);
    let zero_v = b.ins().splat(types::F32X4, zf);
    let w_base = b.ins().iadd(p.weights, c_bytes);
    let in_base = b.ins().iadd(p.input, c_bytes);
    for (t, site) in sites.iter().enumerate() {
        let addr = b.ins().iadd(in_base, site.offset);
        let x = load_lanes(b, addr, 0, lanes(valid, 0));
        let x = b.ins().select(site.inside, x, zero_v);
        let w = b.ins().load(types::F32X4, mem(), w_base, t as i32 * cp4);
        acc = b.ins().fma(x, w, acc);
    }
    let col = b.ins().ushr_imm_u(c_bytes, 2);
    let site = Site { row: m, col, lanes: valid };
    let acc = spec.epilogue.apply(b, p.operands, spec.geometry.c, site, acc);
    let addr = b.ins().iadd(out_ptr, c_bytes);
    store_lanes(b, acc, addr, 0, valid);
}
