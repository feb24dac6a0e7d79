//! Winograd convolution `F(m×m, 3×3)` for 3x3, stride-1, dilation-1 convolutions over NHWC
//! images (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), in three
//! phases whose middle one is the GEMM kernel:
//!
//! 1. [`compile_input_transform`]: the image is cut into `T` overlapping `α × α` tiles `d`
//!    (`α = m + 2`, origin `(oy₀ − pad_top, ox₀ − pad_left)` for the output tile at `(oy₀, ox₀)`,
//!    zeros outside the image), and each becomes `V = Bᵀ d B`, stored as `V[ξ][t][c]`: for each of
//!    the `α²` transform positions `ξ = row·α + col` a row-major `[T, C]` matrix, starting at
//!    element `ξ·`[`WinogradSpec::v_stride`].
//! 2. The caller computes `M[ξ] = V[ξ] · U[ξ]` (`[T, C] · [C, Cout]`) for each `ξ` with the GEMM
//!    kernel of [`WinogradSpec::gemm_spec`], `U[ξ]` being the transformed filters
//!    `U = G g Gᵀ` of [`transform_weights`] packed by [`crate::gemm::pack_b`].
//! 3. [`compile_output_transform`]: `Y = Aᵀ M A` (an `m × m` output tile) per tile and output
//!    channel, plus the bias and the fused epilogue, stored to the tile's pixels inside the
//!    output (the last tile row and column may be ragged).
//!
//! Both transforms are vectorised over channels (f32x4, partial vectors for channel tails) and
//! parallel over tiles: thread `i` of `n` takes tiles `T·i/n .. T·(i+1)/n`. Tiles wholly inside
//! the image (input) or the output (output transform) take a path without bounds checks; the
//! others read, outside the image, a zero row the input transform keeps on its stack.
//! The transforms are straight-line code generated from the matrices below, sharing the work of
//! rows (or columns) whose coefficients agree up to sign, as the points `±p` give.
//!
//! Tiles and interpolation points:
//! - [`WinogradTile::F4x4`] (`α = 6`, 36 GEMMs, 2.25 multiplications per output instead of 9)
//!   uses Lavin's points 0, ±1, ±2, ∞. In a float32 simulation (64 channels, data and weights
//!   uniform in `[-1, 1]`) its RMS error is 1.7e-6 of the output's RMS; the points 0, ±1, ±½, ∞
//!   are no better (1.7e-6, and a fractional `Bᵀ`), and the mixed set 0, ±1, ½, −2 (1.1e-6)
//!   has no `±p` pairs, so its input transform needs 24 instead of 13 vector operations per
//!   6-vector. The worst error seen in the tests is 7e-6 of `Σ|x·w|` over the window.
//! - [`WinogradTile::F2x2`] (`α = 4`, 16 GEMMs, 4 multiplications per output) uses 0, ±1, ∞,
//!   with about 7x smaller rounding error (RMS 2.5e-7 of the output's; worst seen in the tests
//!   5e-7 of `Σ|x·w|`).
//!
//! The position matrices of `V` and `M` are a few elements more than `T·C` (`T·Cout`) apart: a
//! whole number of 64-byte lines, odd, so that the `α²` streams of a transform fall in different
//! cache sets. With the power-of-two strides that `T·C` often is (16 tiles of 256 channels),
//! they collide and the transforms run up to 4x slower.
//!
//! Argument tables: input transform `[input (N·H·W·C), V (α²·v_stride)]`; output transform
//! `[M (α²·m_stride), bias (Cout, if any), output (N·OH·OW·Cout), epilogue operands…]`, the
//! epilogue seeing the output as `[N·OH·OW, Cout]`.

use crate::builder::{build_kernel, counted_loop, if_then, load_lanes, mem, store_lanes, thread_range};
use crate::epilogue::{Epilogue, Site};
use crate::gemm::{ASource, Bias, GemmSpec};
use crate::im2col::ConvGeometry;
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_load::MachineCode;

/// The output tile of a Winograd convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradTile {
    /// `F(2x2, 3x3)`: 4x4 input tiles, 16 transform positions.
    F2x2,
    /// `F(4x4, 3x3)`: 6x6 input tiles, 36 transform positions.
    F4x4,
}

/// The transform matrices of one tile: `Bᵀ` (`α × α`), `G` (`α × 3`) and `Aᵀ` (`m × α`).
struct Matrices {
    bt: &'static [&'static [f64]],
    g: &'static [&'static [f64]],
    at: &'static [&'static [f64]],
}

/// `F(2x2, 3x3)` at the points 0, 1, −1, ∞.
const F2X2: Matrices = Matrices {
    bt: &[&[1.0, 0.0, -1.0, 0.0], &[0.0, 1.0, 1.0, 0.0], &[0.0, -1.0, 1.0, 0.0], &[0.0, -1.0, 0.0, 1.0]],
    g: &[&[1.0, 0.0, 0.0], &[0.5, 0.5, 0.5], &[0.5, -0.5, 0.5], &[0.0, 0.0, 1.0]],
    at: &[&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, -1.0, 1.0]],
};

/// `F(4x4, 3x3)` at the points 0, 1, −1, 2, −2, ∞.
const F4X4: Matrices = Matrices {
    bt: &[
        &[4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        &[0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        &[0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        &[0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        &[0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        &[0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ],
    g: &[
        &[1.0 / 4.0, 0.0, 0.0],
        &[-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        &[-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        &[1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        &[1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        &[0.0, 0.0, 1.0],
    ],
    at: &[
        &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        &[0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        &[0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        &[0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ],
};

impl WinogradTile {
    /// Output pixels per tile side (`m`).
    pub fn m(self) -> usize {
        match self {
            WinogradTile::F2x2 => 2,
            WinogradTile::F4x4 => 4,
        }
    }

    /// Input tile side `α = m + 2`.
    pub fn alpha(self) -> usize {
        self.m() + 2
    }

    /// Transform positions `α²`: the number of GEMMs.
    pub fn positions(self) -> usize {
        self.alpha() * self.alpha()
    }

    fn matrices(self) -> &'static Matrices {
        match self {
            WinogradTile::F2x2 => &F2X2,
            WinogradTile::F4x4 => &F4X4,
        }
    }
}

/// Most input channels: the input transform keeps a zero row of `C` floats on the stack.
pub const MAX_CHANNELS: usize = 8192;

/// A Winograd convolution: geometry (`kh = kw = 3`, stride and dilation 1, any padding), output
/// channels and tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinogradSpec {
    pub geometry: ConvGeometry,
    pub cout: usize,
    pub tile: WinogradTile,
}

impl WinogradSpec {
    /// Refuses geometries Winograd does not cover and buffers beyond 32-bit byte offsets.
    pub fn validate(&self) -> Result<(), CodegenError> {
        let g = &self.geometry;
        let largest = [g.input_elems(), self.v_elems(), self.m_elems(), self.output_elems()].into_iter().max();
        let problems = [
            ((g.kh, g.kw) != (3, 3), "Winograd needs a 3x3 kernel"),
            (g.stride != (1, 1) || g.dilation != (1, 1), "Winograd needs stride 1 and dilation 1"),
            ([g.batch, g.h, g.w, g.c, g.oh, g.ow, self.cout].contains(&0), "empty convolution"),
            (largest.unwrap_or(0) as u64 * 4 >= 1 << 31, "Winograd buffers too large for 32-bit offsets"),
            (g.c > MAX_CHANNELS, "too many input channels for the input transform's zero row"),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err(CodegenError::Schedule(format!("{why}: {self:?}"))),
            None => Ok(()),
        }
    }

    /// Tiles per image along the height and the width.
    pub fn tile_grid(&self) -> (usize, usize) {
        let m = self.tile.m();
        (self.geometry.oh.div_ceil(m), self.geometry.ow.div_ceil(m))
    }

    /// Tiles `T` over the batch: the rows of each GEMM.
    pub fn tiles(&self) -> usize {
        let (ty, tx) = self.tile_grid();
        self.geometry.batch * ty * tx
    }

    /// Elements from one position's `[T, C]` matrix of `V` to the next.
    pub fn v_stride(&self) -> usize {
        position_stride(self.tiles() * self.geometry.c)
    }

    /// Elements from one position's `[T, Cout]` matrix of `M` to the next.
    pub fn m_stride(&self) -> usize {
        position_stride(self.tiles() * self.cout)
    }

    /// Elements of the transformed input `V` (`α²` strides).
    pub fn v_elems(&self) -> usize {
        self.tile.positions() * self.v_stride()
    }

    /// Elements of the transformed output `M` (`α²` strides).
    pub fn m_elems(&self) -> usize {
        self.tile.positions() * self.m_stride()
    }

    /// Elements of the NHWC output.
    pub fn output_elems(&self) -> usize {
        self.geometry.m() * self.cout
    }

    /// The GEMM of one transform position: `M[ξ] (T×Cout) = V[ξ] (T×C) · U[ξ] (C×Cout)`.
    pub fn gemm_spec(&self) -> GemmSpec {
        GemmSpec {
            m: self.tiles(),
            n: self.cout,
            k: self.geometry.c,
            a: ASource::Matrix,
            bias: Bias::None,
            epilogue: Epilogue::default(),
            out: None,
        }
    }

    /// Elements of each argument of the input transform: `[input, V]`.
    pub fn input_arg_elems(&self) -> Vec<usize> {
        vec![self.geometry.input_elems(), self.v_elems()]
    }

    /// Elements of each argument of the output transform: `[M, bias?, output, operands…]`.
    pub fn output_arg_elems(&self, bias: bool, epilogue: &Epilogue) -> Vec<usize> {
        let mut v = vec![self.m_elems()];
        if bias {
            v.push(self.cout);
        }
        v.push(self.output_elems());
        v.extend(epilogue.arg_elems(self.geometry.m(), self.cout));
        v
    }
}

/// A position stride for `[T, C]` matrices of `elems` elements: whole 64-byte lines, an odd
/// number of them.
fn position_stride(elems: usize) -> usize {
    (elems.div_ceil(16) | 1) * 16
}

/// The transformed filters `U[ξ] = (G g Gᵀ)[ξ]` of ONNX weights `[Cout, C, 3, 3]`, as `α²`
/// row-major `[C, Cout]` matrices (computed in f64). Panics if `w_oihw` has the wrong length.
pub fn transform_weights(spec: &WinogradSpec, w_oihw: &[f32]) -> Vec<Vec<f32>> {
    let (c, cout, a) = (spec.geometry.c, spec.cout, spec.tile.alpha());
    assert_eq!(w_oihw.len(), cout * c * 9, "weights must be [Cout, C, 3, 3]");
    let g = spec.tile.matrices().g;
    let mut u = vec![vec![0f32; c * cout]; a * a];
    for co in 0..cout {
        for ci in 0..c {
            let w = &w_oihw[(co * c + ci) * 9..][..9];
            // gw = G · w (α × 3), then U = gw · Gᵀ.
            let gw: Vec<[f64; 3]> =
                g.iter().map(|gr| std::array::from_fn(|x| (0..3).map(|k| gr[k] * w[k * 3 + x] as f64).sum())).collect();
            for (r, gwr) in gw.iter().enumerate() {
                for (col, gr) in g.iter().enumerate() {
                    let v: f64 = (0..3).map(|x| gwr[x] * gr[x]).sum();
                    u[r * a + col][ci * cout + co] = v as f32;
                }
            }
        }
    }
    u
}

/// Generates and compiles the input transform (NHWC input → `V[ξ][t][c]`).
pub fn compile_input_transform(spec: &WinogradSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    spec.validate()?;
    let (g, a, m, tiles) = (spec.geometry, spec.tile.alpha(), spec.tile.m(), spec.tiles());
    let (grid_y, grid_x) = spec.tile_grid();
    // For each tile row (column): whether it lies wholly inside the image along that axis.
    let inside = |grid: usize, pad: usize, size: usize| {
        (0..grid).map(move |i| (i * m).checked_sub(pad).is_some_and(|o| o + a <= size))
    };
    let some_inside = inside(grid_y, g.pad.0, g.h).any(|y| y) && inside(grid_x, g.pad.1, g.w).any(|x| x);
    let some_outside = inside(grid_y, g.pad.0, g.h).any(|y| !y) || inside(grid_x, g.pad.1, g.w).any(|x| !x);
    let func = build_kernel(target, |b, params| {
        let input = params.arg(b, 0);
        let v = params.arg(b, 1);
        let zeros = some_outside.then(|| zero_row(b, g.c));
        let (t0, t1) = thread_range(b, tiles as i64, params.thread, params.threads);
        counted_loop(b, t0, t1, 1, |b, t| {
            let origin = TileOrigin::new(b, spec, t);
            let y0 = b.ins().iadd_imm_s(origin.oy0, -(g.pad.0 as i64));
            let x0 = b.ins().iadd_imm_s(origin.ox0, -(g.pad.1 as i64));
            let image = b.ins().imul_imm_s(origin.n, (g.h * g.w) as i64);
            let v_off = b.ins().imul_imm_s(t, (g.c * 4) as i64);
            let tile = InputTile { input, v: b.ins().iadd(v, v_off), image, y0, x0 };
            match zeros {
                None => input_tile(b, spec, &tile, None),
                Some(zeros) if some_inside => {
                    // Unsigned comparisons reject negative origins too.
                    let in_y = b.ins().icmp_imm_u(IntCC::UnsignedLessThanOrEqual, y0, (g.h - a) as i64);
                    let in_x = b.ins().icmp_imm_u(IntCC::UnsignedLessThanOrEqual, x0, (g.w - a) as i64);
                    let inside = b.ins().band(in_y, in_x);
                    if_else(
                        b,
                        inside,
                        |b| input_tile(b, spec, &tile, None),
                        |b| input_tile(b, spec, &tile, Some(zeros)),
                    );
                }
                Some(zeros) => input_tile(b, spec, &tile, Some(zeros)),
            }
        });
    });
    compile(func, target, spec.input_arg_elems())
}

/// Generates and compiles the output transform (`M[ξ][t][co]` → NHWC output, with the bias if
/// `bias` and `epilogue` fused).
pub fn compile_output_transform(
    spec: &WinogradSpec,
    bias: bool,
    epilogue: &Epilogue,
    target: &Target,
) -> Result<MachineCode, CodegenError> {
    spec.validate()?;
    epilogue.validate()?;
    let (g, m, tiles) = (spec.geometry, spec.tile.m(), spec.tiles());
    let func = build_kernel(target, |b, params| {
        let m_buf = params.arg(b, 0);
        let bias = bias.then(|| params.arg(b, 1));
        let output = params.arg(b, 1 + bias.is_some() as usize);
        let operands: Vec<Value> =
            (0..epilogue.operands.len()).map(|i| params.arg(b, 2 + bias.is_some() as usize + i)).collect();
        let (t0, t1) = thread_range(b, tiles as i64, params.thread, params.threads);
        counted_loop(b, t0, t1, 1, |b, t| {
            let origin = TileOrigin::new(b, spec, t);
            let row = b.ins().imul_imm_s(origin.n, g.oh as i64);
            let row = b.ins().iadd(row, origin.oy0);
            let first = b.ins().imul_imm_s(row, g.ow as i64);
            let first = b.ins().iadd(first, origin.ox0);
            let m_off = b.ins().imul_imm_s(t, (spec.cout * 4) as i64);
            let out_off = b.ins().imul_imm_s(first, (spec.cout * 4) as i64);
            let oh = b.ins().iconst(types::I64, g.oh as i64);
            let ow = b.ins().iconst(types::I64, g.ow as i64);
            let tile = OutputTile {
                m: b.ins().iadd(m_buf, m_off),
                bias,
                output: b.ins().iadd(output, out_off),
                operands: &operands,
                epilogue,
                first,
                rows_left: b.ins().isub(oh, origin.oy0),
                cols_left: b.ins().isub(ow, origin.ox0),
            };
            let ragged = !g.oh.is_multiple_of(m) || !g.ow.is_multiple_of(m);
            if !ragged {
                output_tile(b, spec, &tile, Bounds::Unchecked);
            } else if g.oh >= m && g.ow >= m {
                let full_y = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, tile.rows_left, m as i64);
                let full_x = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, tile.cols_left, m as i64);
                let full = b.ins().band(full_y, full_x);
                if_else(
                    b,
                    full,
                    |b| output_tile(b, spec, &tile, Bounds::Unchecked),
                    |b| output_tile(b, spec, &tile, Bounds::Checked),
                );
            } else {
                output_tile(b, spec, &tile, Bounds::Checked);
            }
        });
    });
    compile(func, target, spec.output_arg_elems(bias, epilogue))
}

/// Whether an output tile may reach past the output's edge (only the last tile row and column).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bounds {
    Unchecked,
    Checked,
}

/// Emits `if cond { then } else { otherwise }`.
fn if_else(
    b: &mut FunctionBuilder,
    cond: Value,
    then: impl FnOnce(&mut FunctionBuilder),
    otherwise: impl FnOnce(&mut FunctionBuilder),
) {
    let (then_block, else_block, done) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().brif(cond, then_block, &[], else_block, &[]);
    b.switch_to_block(then_block);
    b.seal_block(then_block);
    then(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(else_block);
    b.seal_block(else_block);
    otherwise(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(done);
    b.seal_block(done);
}

/// Tile `t`'s image `n` and the output coordinates `(oy₀, ox₀)` of its top-left pixel.
struct TileOrigin {
    n: Value,
    oy0: Value,
    ox0: Value,
}

impl TileOrigin {
    fn new(b: &mut FunctionBuilder, spec: &WinogradSpec, t: Value) -> TileOrigin {
        let (ty, tx) = spec.tile_grid();
        let n = b.ins().udiv_imm_u(t, (ty * tx) as i64);
        let rest = b.ins().urem_imm_u(t, (ty * tx) as i64);
        let row = b.ins().udiv_imm_u(rest, tx as i64);
        let col = b.ins().urem_imm_u(rest, tx as i64);
        let m = spec.tile.m() as i64;
        TileOrigin { n, oy0: b.ins().imul_imm_s(row, m), ox0: b.ins().imul_imm_s(col, m) }
    }
}

/// Runs `body(channel byte offset, valid lanes)` over the f32x4 vectors of `channels` channels.
fn for_each_channel_vector(
    b: &mut FunctionBuilder,
    channels: usize,
    mut body: impl FnMut(&mut FunctionBuilder, Value, usize),
) {
    let full = channels / 4;
    if full > 0 {
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, (full * 16) as i64);
        counted_loop(b, zero, end, 16, |b, c_bytes| body(b, c_bytes, 4));
    }
    if !channels.is_multiple_of(4) {
        let c_bytes = b.ins().iconst(types::I64, (full * 16) as i64);
        body(b, c_bytes, channels % 4);
    }
}

/// A zeroed stack buffer of `channels` floats (rounded up to whole vectors): what tiles read
/// outside the image.
fn zero_row(b: &mut FunctionBuilder, channels: usize) -> Value {
    let bytes = channels.next_multiple_of(4) * 4;
    let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes as u32, 4));
    let base = b.ins().stack_addr(types::I64, slot, 0);
    let zero_f = b.ins().f32const(0.0);
    let zero = b.ins().splat(types::F32X4, zero_f);
    let start = b.ins().iconst(types::I64, 0);
    let end = b.ins().iconst(types::I64, bytes as i64);
    counted_loop(b, start, end, 16, |b, off| {
        let addr = b.ins().iadd(base, off);
        b.ins().store(mem(), zero, addr, 0);
    });
    base
}

/// One input tile: where it reads and writes.
struct InputTile {
    input: Value,
    /// `V[0][t][0]`.
    v: Value,
    /// Pixel index of the tile's image (`n·H·W`).
    image: Value,
    /// Image coordinates of the tile's top-left element (negative in the padding).
    y0: Value,
    x0: Value,
}

/// Where an input tile's elements are.
enum Reads {
    /// At fixed offsets from the top-left pixel (the tile is inside the image).
    Corner(Value),
    /// At their own pointers, `α²` of them, row by row.
    Elements(Vec<Value>),
}

/// Every channel of one input tile: loads `d`, stores `V = Bᵀ d B`. A tile wholly inside the
/// image reads at fixed offsets from its top-left pixel; otherwise (`zeros` given) each element
/// has its own pointer, to its pixel or, outside the image, to the zero row.
fn input_tile(b: &mut FunctionBuilder, spec: &WinogradSpec, tile: &InputTile, zeros: Option<Value>) {
    let (g, a, bt) = (spec.geometry, spec.tile.alpha(), spec.tile.matrices().bt);
    let pixel_bytes = (g.c * 4) as i64;
    let position_bytes = spec.v_stride() * 4;
    let pixel_ptr = |b: &mut FunctionBuilder, y: Value, x: Value| {
        let row = b.ins().imul_imm_s(y, g.w as i64);
        let row = b.ins().iadd(tile.image, row);
        let pixel = b.ins().iadd(row, x);
        let off = b.ins().imul_imm_s(pixel, pixel_bytes);
        b.ins().iadd(tile.input, off)
    };
    let reads = match zeros {
        None => Reads::Corner(pixel_ptr(b, tile.y0, tile.x0)),
        Some(zeros) => {
            let coords = |b: &mut FunctionBuilder, origin: Value, size: usize| -> Vec<(Value, Value)> {
                (0..a)
                    .map(|i| {
                        let p = b.ins().iadd_imm_s(origin, i as i64);
                        (p, b.ins().icmp_imm_u(IntCC::UnsignedLessThan, p, size as i64))
                    })
                    .collect()
            };
            let (ys, xs) = (coords(b, tile.y0, g.h), coords(b, tile.x0, g.w));
            let mut ptrs = Vec::with_capacity(a * a);
            for &(y, in_y) in &ys {
                for &(x, in_x) in &xs {
                    let inside = b.ins().band(in_y, in_x);
                    let ptr = pixel_ptr(b, y, x);
                    ptrs.push(b.ins().select(inside, ptr, zeros));
                }
            }
            Reads::Elements(ptrs)
        }
    };
    for_each_channel_vector(b, g.c, |b, c_bytes, lanes| {
        let v_base = b.ins().iadd(tile.v, c_bytes);
        let store = |b: &mut FunctionBuilder, r: usize, c: usize, x: Value| {
            store_lanes(b, x, v_base, ((r * a + c) * position_bytes) as i32, lanes);
        };
        match &reads {
            &Reads::Corner(corner) => {
                let base = b.ins().iadd(corner, c_bytes);
                let load = |b: &mut FunctionBuilder, i: usize, j: usize| {
                    load_lanes(b, base, ((i * g.w + j) as i64 * pixel_bytes) as i32, lanes)
                };
                transform_2d(b, bt, load, store);
            }
            Reads::Elements(ptrs) => {
                let load = |b: &mut FunctionBuilder, i: usize, j: usize| {
                    let addr = b.ins().iadd(ptrs[i * a + j], c_bytes);
                    load_lanes(b, addr, 0, lanes)
                };
                transform_2d(b, bt, load, store);
            }
        }
    });
}

/// One output tile: where it reads and writes, and what finishes its values.
struct OutputTile<'a> {
    /// `M[0][t][0]`.
    m: Value,
    bias: Option<Value>,
    /// The output's top-left pixel `(n, oy₀, ox₀)`, channel 0.
    output: Value,
    operands: &'a [Value],
    epilogue: &'a Epilogue,
    /// Pixel index (epilogue row) of the top-left pixel.
    first: Value,
    /// Output rows and columns from the tile's origin to the output's edge.
    rows_left: Value,
    cols_left: Value,
}

/// Every channel of one output tile: loads `M`, stores `Y = Aᵀ M A` plus bias and epilogue.
fn output_tile(b: &mut FunctionBuilder, spec: &WinogradSpec, tile: &OutputTile, bounds: Bounds) {
    let (g, a, cout, at) = (spec.geometry, spec.tile.alpha(), spec.cout, spec.tile.matrices().at);
    let position_bytes = spec.m_stride() * 4;
    for_each_channel_vector(b, cout, |b, c_bytes, lanes| {
        let m_base = b.ins().iadd(tile.m, c_bytes);
        let out_base = b.ins().iadd(tile.output, c_bytes);
        let col = b.ins().ushr_imm_u(c_bytes, 2);
        let bias = tile.bias.map(|bias| {
            let addr = b.ins().iadd(bias, c_bytes);
            load_lanes(b, addr, 0, lanes)
        });
        let load = |b: &mut FunctionBuilder, i: usize, j: usize| {
            load_lanes(b, m_base, ((i * a + j) * position_bytes) as i32, lanes)
        };
        let store = |b: &mut FunctionBuilder, r: usize, c: usize, y: Value| {
            let y = match bias {
                Some(bias) => b.ins().fadd(y, bias),
                None => y,
            };
            let finish = |b: &mut FunctionBuilder| {
                let row = b.ins().iadd_imm_s(tile.first, (r * g.ow + c) as i64);
                let y = tile.epilogue.apply(b, tile.operands, cout, Site { row, col, lanes }, y);
                store_lanes(b, y, out_base, ((r * g.ow + c) * cout * 4) as i32, lanes);
            };
            match bounds {
                Bounds::Unchecked => finish(b),
                Bounds::Checked => {
                    let in_y = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, tile.rows_left, r as i64);
                    let in_x = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, tile.cols_left, c as i64);
                    let inside = b.ins().band(in_y, in_x);
                    if_then(b, inside, finish);
                }
            }
        };
        transform_2d(b, at, load, store);
    });
}

/// Splatted coefficients, each created once per transform.
#[derive(Default)]
struct Consts(Vec<(u32, Value)>);

impl Consts {
    fn get(&mut self, b: &mut FunctionBuilder, c: f32) -> Value {
        if let Some(&(_, v)) = self.0.iter().find(|(bits, _)| *bits == c.to_bits()) {
            return v;
        }
        let s = b.ins().f32const(c);
        let v = b.ins().splat(types::F32X4, s);
        self.0.push((c.to_bits(), v));
        v
    }
}

/// `L · X · Lᵀ` with `X[i][j] = load(i, j)` (`L` is `rows × n`, `X` is `n × n`): `X` is loaded
/// and transformed a column at a time, then each row of results is handed to `store(r, c, y)`
/// as soon as it is done.
fn transform_2d(
    b: &mut FunctionBuilder,
    l: &[&[f64]],
    mut load: impl FnMut(&mut FunctionBuilder, usize, usize) -> Value,
    mut store: impl FnMut(&mut FunctionBuilder, usize, usize, Value),
) {
    let n = l[0].len();
    let mut consts = Consts::default();
    let cols: Vec<Vec<Value>> = (0..n)
        .map(|j| {
            let x: Vec<Value> = (0..n).map(|i| load(b, i, j)).collect();
            mat_vec(b, &mut consts, l, &x)
        })
        .collect();
    for r in 0..l.len() {
        let row: Vec<Value> = cols.iter().map(|col| col[r]).collect();
        for (c, y) in mat_vec(b, &mut consts, l, &row).into_iter().enumerate() {
            store(b, r, c, y);
        }
    }
}

/// `L · x` for a matrix of small constants. Columns `k, k'` whose coefficients agree up to sign
/// in every row share `x_k + x_k'` and `x_k − x_k'`; then rows `r, r'` with the same terms up to
/// sign are computed as `E ± O` (`E` the terms they agree on, `O` the rest of row `r`).
fn mat_vec(b: &mut FunctionBuilder, consts: &mut Consts, l: &[&[f64]], x: &[Value]) -> Vec<Value> {
    let mut rows: Vec<Vec<(f32, Value)>> = vec![Vec::new(); l.len()];
    let mut paired = vec![false; x.len()];
    for k in 0..x.len() {
        if paired[k] {
            continue;
        }
        let partner = (k + 1..x.len())
            .find(|&k2| !paired[k2] && l.iter().any(|r| r[k] != 0.0) && l.iter().all(|r| r[k].abs() == r[k2].abs()));
        let (mut sum, mut diff) = (None, None);
        for (terms, r) in rows.iter_mut().zip(l).filter(|(_, r)| r[k] != 0.0) {
            let v = match partner {
                None => x[k],
                Some(k2) if r[k2] == r[k] => *sum.get_or_insert_with(|| b.ins().fadd(x[k], x[k2])),
                Some(k2) => *diff.get_or_insert_with(|| b.ins().fsub(x[k], x[k2])),
            };
            terms.push((r[k] as f32, v));
        }
        if let Some(k2) = partner {
            paired[k2] = true;
        }
    }
    let mut out: Vec<Option<Value>> = vec![None; l.len()];
    for r in 0..rows.len() {
        if out[r].is_some() {
            continue;
        }
        // Row r2 pairs with r when it has the same terms up to sign, some equal and some negated.
        let pairing = |r2: usize| {
            if out[r2].is_some() || rows[r2].len() != rows[r].len() {
                return None;
            }
            let (mut agree, mut differ) = (Vec::new(), Vec::new());
            for (&t, t2) in rows[r].iter().zip(&rows[r2]) {
                if t.1 != t2.1 || t.0.abs() != t2.0.abs() {
                    return None;
                }
                match t.0 == t2.0 {
                    true => agree.push(t),
                    false => differ.push(t),
                }
            }
            (!agree.is_empty() && !differ.is_empty()).then_some((agree, differ))
        };
        match (r + 1..rows.len()).find_map(|r2| pairing(r2).map(|p| (r2, p))) {
            Some((r2, (agree, differ))) => {
                let e = sum_terms(b, consts, &agree);
                let o = sum_terms(b, consts, &differ);
                out[r] = Some(b.ins().fadd(e, o));
                out[r2] = Some(b.ins().fsub(e, o));
            }
            None => out[r] = Some(sum_terms(b, consts, &rows[r])),
        }
    }
    out.into_iter().map(|v| v.expect("every row is computed")).collect()
}

/// `Σ c·x` over `terms` (not empty: no transform matrix has a zero row): starting from a term
/// with coefficient 1 when there is one, unit coefficients as adds and subtracts, the others as
/// fused multiply-adds.
fn sum_terms(b: &mut FunctionBuilder, consts: &mut Consts, terms: &[(f32, Value)]) -> Value {
    let first = terms.iter().position(|t| t.0 == 1.0).unwrap_or(0);
    let (c0, x0) = terms[first];
    let mut acc = if c0 == 1.0 {
        x0
    } else {
        let c = consts.get(b, c0);
        b.ins().fmul(c, x0)
    };
    for (_, &(c, x)) in terms.iter().enumerate().filter(|(i, _)| *i != first) {
        acc = if c == 1.0 {
            b.ins().fadd(acc, x)
        } else if c == -1.0 {
            b.ins().fsub(acc, x)
        } else {
            let cv = consts.get(b, c);
            b.ins().fma(cv, x, acc)
        };
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `y = Aᵀ((G g) ⊙ (Bᵀ d))` is the 1-D correlation `y_i = Σ_k d_{i+k} g_k` for every tile.
    #[test]
    fn matrices_compute_the_correlation() {
        for tile in [WinogradTile::F2x2, WinogradTile::F4x4] {
            let (m, a, mats) = (tile.m(), tile.alpha(), tile.matrices());
            let d: Vec<f64> = (0..a).map(|i| (i as f64 * 0.37).sin()).collect();
            let g = [0.3, -1.1, 0.7];
            let gg: Vec<f64> = mats.g.iter().map(|r| (0..3).map(|k| r[k] * g[k]).sum()).collect();
            let bd: Vec<f64> = mats.bt.iter().map(|r| (0..a).map(|k| r[k] * d[k]).sum()).collect();
            for i in 0..m {
                let y: f64 = (0..a).map(|j| mats.at[i][j] * gg[j] * bd[j]).sum();
                let want: f64 = (0..3).map(|k| d[i + k] * g[k]).sum();
                assert!((y - want).abs() < 1e-12, "{tile:?} output {i}: {y} vs {want}");
            }
        }
    }
}
