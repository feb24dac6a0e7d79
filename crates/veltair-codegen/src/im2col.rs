//! Implicit im2col: a 2-D convolution over an NHWC image as the GEMM operand A, with row `m` an
//! output pixel `(batch, oy, ox)` and column `k` a tap `(ky, kx, ci)`. The GEMM kernel's A
//! packing reads the image through this mapping (zeros in the padding), so no im2col buffer is
//! ever materialised.

use crate::builder::mem;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

/// Geometry of a 2-D convolution over an NHWC input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    /// Top and left padding (bottom/right padding is implied by the output size).
    pub pad: (usize, usize),
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeometry {
    /// GEMM rows: output pixels.
    pub fn m(&self) -> usize {
        self.batch * self.oh * self.ow
    }

    /// GEMM depth: taps times input channels.
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Elements of the NHWC input.
    pub fn input_elems(&self) -> usize {
        self.batch * self.h * self.w * self.c
    }
}

/// Per-row values of one packed row (an output pixel), computed once per k-block.
pub struct PixelRow {
    /// Top-left input coordinate of the pixel's window (may be negative: padding).
    y0: Value,
    x0: Value,
    /// Element offset of the pixel's image in the batch.
    image: Value,
}

/// The row values for output pixel `m`.
pub fn pixel_row(b: &mut FunctionBuilder, g: &ConvGeometry, m: Value) -> PixelRow {
    let per_image = (g.oh * g.ow) as i64;
    let n = b.ins().udiv_imm_u(m, per_image);
    let pix = b.ins().urem_imm_u(m, per_image);
    let oy = b.ins().udiv_imm_u(pix, g.ow as i64);
    let ox = b.ins().urem_imm_u(pix, g.ow as i64);
    let y = b.ins().imul_imm_s(oy, g.stride.0 as i64);
    let y0 = b.ins().iadd_imm_s(y, -(g.pad.0 as i64));
    let x = b.ins().imul_imm_s(ox, g.stride.1 as i64);
    let x0 = b.ins().iadd_imm_s(x, -(g.pad.1 as i64));
    let image = b.ins().imul_imm_s(n, (g.h * g.w * g.c) as i64);
    PixelRow { y0, x0, image }
}

/// The decomposition of a GEMM column `k` into `(ky·dilation, kx·dilation, ci)`.
pub struct Tap {
    dy: Value,
    dx: Value,
    ci: Value,
}

/// The tap of GEMM column `k`.
pub fn tap(b: &mut FunctionBuilder, g: &ConvGeometry, k: Value) -> Tap {
    let window = b.ins().udiv_imm_u(k, g.c as i64);
    let ci = b.ins().urem_imm_u(k, g.c as i64);
    let (dy, dx) = window_offset(b, g, window);
    Tap { dy, dx, ci }
}

/// The input offset `(ky·dilation, kx·dilation)` of window position `ky·kw + kx`.
pub fn window_offset(b: &mut FunctionBuilder, g: &ConvGeometry, window: Value) -> (Value, Value) {
    let ky = b.ins().udiv_imm_u(window, g.kw as i64);
    let kx = b.ins().urem_imm_u(window, g.kw as i64);
    let dy = b.ins().imul_imm_s(ky, g.dilation.0 as i64);
    let dx = b.ins().imul_imm_s(kx, g.dilation.1 as i64);
    (dy, dx)
}

/// Whether the input pixel under offset `(dy, dx)` of `row`'s window is inside the image, and
/// the byte offset of its first channel (0, a valid pixel, when it is in the padding).
pub fn tap_pixel(b: &mut FunctionBuilder, g: &ConvGeometry, row: &PixelRow, dy: Value, dx: Value) -> (Value, Value) {
    let iy = b.ins().iadd(row.y0, dy);
    let ix = b.ins().iadd(row.x0, dx);
    // Unsigned comparisons reject negative coordinates too.
    let in_y = b.ins().icmp_imm_u(IntCC::UnsignedLessThan, iy, g.h as i64);
    let in_x = b.ins().icmp_imm_u(IntCC::UnsignedLessThan, ix, g.w as i64);
    let inside = b.ins().band(in_y, in_x);
    let row_off = b.ins().imul_imm_s(iy, g.w as i64);
    let pix = b.ins().iadd(row_off, ix);
    let pix = b.ins().imul_imm_s(pix, g.c as i64);
    let elem = b.ins().iadd(pix, row.image);
    let bytes = b.ins().ishl_imm_u(elem, 2);
    let zero = b.ins().iconst(types::I64, 0);
    (inside, b.ins().select(inside, bytes, zero))
}

/// Loads `A[pixel, tap]`: the input element under the tap, or 0 in the padding.
pub fn load(b: &mut FunctionBuilder, g: &ConvGeometry, input: Value, row: &PixelRow, t: &Tap) -> Value {
    let (inside, pixel) = tap_pixel(b, g, row, t.dy, t.dx);
    let channel = b.ins().ishl_imm_u(t.ci, 2);
    let off = b.ins().iadd(pixel, channel);
    let addr = b.ins().iadd(input, off);
    let x = b.ins().load(types::F32, mem(), addr, 0);
    let fzero = b.ins().f32const(0.0);
    b.ins().select(inside, x, fzero)
}
