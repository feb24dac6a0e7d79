//! Depthwise 2-D convolution over NHWC images (each channel convolved with its own `kh × kw`
//! filter, as in MobileNet and EfficientNet). Vectorised over channels (f32x4), output rows split
//! among threads: thread `t` of `T` computes rows `R·t/T .. R·(t+1)/T` of the `R = N·OH` output
//! rows.
//!
//! No bounds are checked at run time: at compile time the output rows are split into runs whose
//! windows have the same taps inside the input (top border rows, interior rows, bottom border
//! rows), each run getting its own code, and every output column gets the taps of its window
//! inside the input (left border, interior, right border), so only those taps are loaded.
//!
//! A row is computed in register blocks of up to `P = 8` neighbouring output pixels times one
//! channel vector: each weight vector loaded serves the block's `P` accumulators, and each input
//! vector loaded serves every pixel of the block whose window row covers it (windows overlap for
//! stride 1, and for stride 2 with `kw ≥ 3`). The interior of a wide row is a loop over blocks of
//! `P` pixels (all taps inside), each looping over the channel vectors, so the `kh` input row
//! segments a block reads stay in L1 from one channel vector to the next; the borders, and whole
//! rows narrower than two blocks, are blocks at fixed columns under one channel loop. The
//! epilogue is applied to each accumulator just before its store.
//!
//! Argument table: `[input (N·H·W·C), weights (kh·kw·C₄), bias (C₄, if any), output
//! (N·OH·OW·C), epilogue operands…]`, with `C₄` the channel count rounded up to a multiple of 4.
//! The epilogue sees the output as `[N·OH·OW, C]`.

use crate::builder::{build_kernel, counted_loop, load_lanes, mem, store_lanes, thread_range};
use crate::epilogue::{Epilogue, Site};
use crate::im2col::ConvGeometry;
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use std::ops::Range;
use veltair_load::MachineCode;

/// A depthwise convolution: geometry (with `c` the channel count), bias, fused epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthwiseSpec {
    pub geometry: ConvGeometry,
    pub bias: bool,
    pub epilogue: Epilogue,
}

impl DepthwiseSpec {
    /// The iteration domain and the (fixed) schedule of the depthwise template. The steps do not
    /// show that border rows and columns (windows partly outside `x`) are peeled at compile time
    /// with their outside taps skipped.
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
        let s = row_plan(g);
        let order = match s.pieces.iter().any(|p| matches!(p, Piece::Tiles { .. })) {
            true => "reorder r ow.0 c ow.1 kh kw",
            false => "reorder r c ow.0 ow.1 kh kw",
        };
        let lines = [
            "fuse n oh into r".to_string(),
            format!("parallel r {max_threads}"),
            "pack w [kh kw c] at compile-time".to_string(),
            format!("split ow {}", s.pixels),
            order.to_string(),
            "vectorize c 4".to_string(),
            format!("unroll ow.1 {}", s.pixels),
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

/// Consecutive output coordinates along one axis whose windows have the same taps inside the
/// input.
struct Run {
    out: Range<usize>,
    taps: Range<usize>,
}

/// The taps of output coordinate `o`'s window inside an axis of `size` inputs (contiguous: the
/// tap coordinates grow with the tap). Empty ranges are normalised to `0..0`.
fn inside_taps(o: usize, stride: usize, pad: usize, dilation: usize, k: usize, size: usize) -> Range<usize> {
    let at = |t: usize| (o * stride + t * dilation).checked_sub(pad).is_some_and(|i| i < size);
    match (0..k).find(|&t| at(t)) {
        Some(lo) => lo..(lo..k).find(|&t| !at(t)).unwrap_or(k),
        None => 0..0,
    }
}

/// The runs of `0..out` (at most `2k + 1`: both ends of the tap range only ever decrease).
fn runs(out: usize, stride: usize, pad: usize, dilation: usize, k: usize, size: usize) -> Vec<Run> {
    let mut v: Vec<Run> = Vec::new();
    for o in 0..out {
        let taps = inside_taps(o, stride, pad, dilation, k, size);
        match v.last_mut() {
            Some(last) if last.taps == taps => last.out.end = o + 1,
            _ => v.push(Run { out: o..o + 1, taps }),
        }
    }
    v
}

/// Consecutive output columns of a row handled under one channel loop.
enum Piece {
    /// Register blocks at fixed columns.
    Blocks(Vec<Range<usize>>),
    /// `count` blocks of `P` pixels from column `start`, all of whose windows lie inside the
    /// input horizontally: a loop over the blocks, each a channel loop.
    Tiles { start: usize, count: usize },
}

/// The compile-time plan of a row: the pixels of a full register block (`P`), the pieces of
/// the row, and the taps inside the input of each output column's window.
struct RowPlan {
    pixels: usize,
    pieces: Vec<Piece>,
    col_taps: Vec<Range<usize>>,
}

/// `range` cut into the fewest blocks of at most `p` pixels, of nearly equal widths.
fn chunks(range: Range<usize>, p: usize) -> Vec<Range<usize>> {
    let (s, len) = (range.start, range.len());
    let n = len.div_ceil(p);
    (0..n).map(|i| s + len * i / n..s + len * (i + 1) / n).collect()
}

/// The plan of `g`'s rows: blocks of up to 8 pixels; a loop over full blocks in the widest run
/// of columns whose windows lie inside the input if it holds at least two, the columns left of it
/// and right of it as fixed blocks; otherwise the whole row as fixed blocks.
fn row_plan(g: &ConvGeometry) -> RowPlan {
    // A block holds `P` accumulators, the `kw` weight vectors of one window row and an input
    // vector in the 16 vector registers.
    let pixels = 15usize.saturating_sub(g.kw).clamp(4, 8);
    let col_taps: Vec<Range<usize>> =
        (0..g.ow).map(|o| inside_taps(o, g.stride.1, g.pad.1, g.dilation.1, g.kw, g.w)).collect();
    let interior = runs(g.ow, g.stride.1, g.pad.1, g.dilation.1, g.kw, g.w)
        .into_iter()
        .filter(|r| r.taps.len() == g.kw)
        .map(|r| r.out)
        .max_by_key(|r| r.len())
        .unwrap_or(0..0);
    let count = interior.len() / pixels;
    let pieces = if count >= 2 {
        let start = interior.end - count * pixels;
        let sides = [chunks(0..start, pixels), chunks(interior.end..g.ow, pixels)];
        let [left, right] = sides.map(|b| (!b.is_empty()).then_some(Piece::Blocks(b)));
        left.into_iter().chain([Piece::Tiles { start, count }]).chain(right).collect()
    } else {
        vec![Piece::Blocks(chunks(0..g.ow, pixels))]
    };
    RowPlan { pixels, pieces, col_taps }
}

/// Generates and compiles the depthwise kernel.
pub fn compile_depthwise(spec: &DepthwiseSpec, target: &Target) -> Result<MachineCode, CodegenError> {
    let g = &spec.geometry;
    let degenerate =
        [g.batch, g.h, g.w, g.c, g.kh, g.kw, g.oh, g.ow, g.stride.0, g.stride.1, g.dilation.0, g.dilation.1];
    // Byte offsets into every buffer must fit the i32 displacements of loads and stores.
    if degenerate.contains(&0) || spec.arg_elems().iter().any(|&n| n as u64 * 4 >= 1 << 31) {
        return Err(CodegenError::Schedule(format!("unsupported depthwise geometry {g:?}")));
    }
    spec.epilogue.validate()?;
    let rows = runs(g.oh, g.stride.0, g.pad.0, g.dilation.0, g.kh, g.h);
    let plan = row_plan(g);
    let func = build_kernel(target, |b, params| {
        let bias_at = 2 + spec.bias as usize;
        let k = Kernel {
            spec,
            input: params.arg(b, 0),
            weights: params.arg(b, 1),
            bias: spec.bias.then(|| params.arg(b, 2)),
            output: params.arg(b, bias_at),
            operands: (0..spec.epilogue.operands.len()).map(|i| params.arg(b, bias_at + 1 + i)).collect(),
            plan: &plan,
        };
        let (r0, r1) = thread_range(b, (g.batch * g.oh) as i64, params.thread, params.threads);
        counted_loop(b, r0, r1, 1, |b, r| k.row(b, r, &rows));
    });
    compile(func, target, spec.arg_elems())
}

/// The kernel's argument pointers and its row plan.
struct Kernel<'a> {
    spec: &'a DepthwiseSpec,
    input: Value,
    weights: Value,
    bias: Option<Value>,
    output: Value,
    operands: Vec<Value>,
    plan: &'a RowPlan,
}

/// Per-row values: the input address of the row's window origin (input row `oy·sy − pad`,
/// column 0), the output address of its first pixel, and that pixel's number.
#[derive(Clone, Copy)]
struct RowAt {
    input: Value,
    output: Value,
    pixel: Value,
}

/// One channel vector of a row: its first channel, its addresses in the row's input and output,
/// in the weights and in the bias, how many of its lanes are channels, and the number of the
/// row's first output pixel.
struct Channels {
    first: Value,
    input: Value,
    output: Value,
    weights: Value,
    bias: Option<Value>,
    lanes: usize,
    pixel: Value,
}

/// The first output column of a block: a run-time part (if any) plus a constant.
#[derive(Clone, Copy)]
struct BlockAt {
    column: Option<Value>,
    offset: usize,
}

impl Kernel<'_> {
    fn geometry(&self) -> &ConvGeometry {
        &self.spec.geometry
    }

    /// Output row `r = n·OH + oy`: dispatches to the code of the row run holding `oy`.
    fn row(&self, b: &mut FunctionBuilder, r: Value, rows: &[Run]) {
        let g = self.geometry();
        let row_bytes = (g.w * g.c * 4) as i64;
        let (image, oy) = match g.batch {
            1 => (None, r),
            _ => {
                let n = b.ins().udiv_imm_u(r, g.oh as i64);
                let first = b.ins().imul_imm_s(n, g.oh as i64);
                (Some(n), b.ins().isub(r, first))
            }
        };
        let y = b.ins().imul_imm_s(oy, g.stride.0 as i64 * row_bytes);
        let mut input = b.ins().iadd(self.input, y);
        if let Some(n) = image {
            let off = b.ins().imul_imm_s(n, g.h as i64 * row_bytes);
            input = b.ins().iadd(input, off);
        }
        let input = b.ins().iadd_imm_s(input, -(g.pad.0 as i64) * row_bytes);
        let out_off = b.ins().imul_imm_s(r, (g.ow * g.c * 4) as i64);
        let output = b.ins().iadd(self.output, out_off);
        let pixel = b.ins().imul_imm_s(r, g.ow as i64);
        let at = RowAt { input, output, pixel };
        let done = b.create_block();
        for (i, run) in rows.iter().enumerate() {
            if i + 1 < rows.len() {
                let here = b.create_block();
                let next = b.create_block();
                let inside = b.ins().icmp_imm_u(IntCC::UnsignedLessThan, oy, run.out.end as i64);
                b.ins().brif(inside, here, &[], next, &[]);
                b.switch_to_block(here);
                b.seal_block(here);
                self.row_run(b, at, &run.taps);
                b.ins().jump(done, &[]);
                b.switch_to_block(next);
                b.seal_block(next);
            } else {
                self.row_run(b, at, &run.taps);
                b.ins().jump(done, &[]);
            }
        }
        b.switch_to_block(done);
        b.seal_block(done);
    }

    /// One output row whose windows have taps `ys` inside the input vertically, piece by piece.
    fn row_run(&self, b: &mut FunctionBuilder, at: RowAt, ys: &Range<usize>) {
        let s = self.plan;
        for piece in &s.pieces {
            match *piece {
                Piece::Blocks(ref blocks) => self.channels(b, at, |b, ch| {
                    for cols in blocks {
                        let first = BlockAt { column: None, offset: cols.start };
                        self.block(b, ch, ys, first, &s.col_taps[cols.clone()]);
                    }
                }),
                Piece::Tiles { start, count } => {
                    let full = &s.col_taps[start..start + s.pixels];
                    let begin = b.ins().iconst(types::I64, start as i64);
                    let end = b.ins().iconst(types::I64, (start + s.pixels * count) as i64);
                    counted_loop(b, begin, end, s.pixels as i64, |b, ox| {
                        let first = BlockAt { column: Some(ox), offset: 0 };
                        self.channels(b, at, |b, ch| self.block(b, ch, ys, first, full));
                    });
                }
            }
        }
    }

    /// Emits `body` for each channel vector of a row: a loop over the full vectors, then the
    /// partial one.
    fn channels(&self, b: &mut FunctionBuilder, at: RowAt, body: impl Fn(&mut FunctionBuilder, &Channels)) {
        let c = self.geometry().c;
        let full = c / 4;
        if full > 0 {
            let zero = b.ins().iconst(types::I64, 0);
            let end = b.ins().iconst(types::I64, (full * 4) as i64);
            counted_loop(b, zero, end, 4, |b, first| {
                let ch = self.vector(b, at, first, 4);
                body(b, &ch);
            });
        }
        if !c.is_multiple_of(4) {
            let first = b.ins().iconst(types::I64, (full * 4) as i64);
            let ch = self.vector(b, at, first, c % 4);
            body(b, &ch);
        }
    }

    /// The channel vector of `lanes` channels from channel `first` of a row.
    fn vector(&self, b: &mut FunctionBuilder, at: RowAt, first: Value, lanes: usize) -> Channels {
        let bytes = b.ins().ishl_imm_u(first, 2);
        Channels {
            first,
            input: b.ins().iadd(at.input, bytes),
            output: b.ins().iadd(at.output, bytes),
            weights: b.ins().iadd(self.weights, bytes),
            bias: self.bias.map(|p| b.ins().iadd(p, bytes)),
            lanes,
            pixel: at.pixel,
        }
    }

    /// One register block: output pixels from column `first` on of channel vector `ch`,
    /// `taps[p]` being the taps of pixel `p`'s window inside the input horizontally and `ys`
    /// vertically.
    fn block(&self, b: &mut FunctionBuilder, ch: &Channels, ys: &Range<usize>, first: BlockAt, taps: &[Range<usize>]) {
        let g = self.geometry();
        let pixel_bytes = (g.c * 4) as i64;
        let row_bytes = g.w as i64 * pixel_bytes;
        let weight_bytes = 4 * g.c.next_multiple_of(4) as i64;
        let (input, output, column) = match first.column {
            Some(ox) => {
                let i = b.ins().imul_imm_s(ox, g.stride.1 as i64 * pixel_bytes);
                let o = b.ins().imul_imm_s(ox, pixel_bytes);
                (b.ins().iadd(ch.input, i), b.ins().iadd(ch.output, o), Some(ox))
            }
            None => (ch.input, ch.output, None),
        };
        let init = ch.bias.map(|p| b.ins().load(types::F32X4, mem(), p, 0));
        let mut acc: Vec<Option<Value>> = vec![init; taps.len()];
        // The input columns a window row reads, relative to the block's first window, each with
        // the (pixel, tap) pairs reading it; and the last read of each tap.
        let mut reads: Vec<(usize, usize, usize)> = taps
            .iter()
            .enumerate()
            .flat_map(|(p, t)| t.clone().map(move |kx| (p * g.stride.1 + kx * g.dilation.1, p, kx)))
            .collect();
        reads.sort_unstable();
        let mut last_read = vec![0; g.kw];
        for (i, &(_, _, kx)) in reads.iter().enumerate() {
            last_read[kx] = i;
        }
        let x0 = (first.offset * g.stride.1) as i64 - g.pad.1 as i64;
        for ky in ys.clone() {
            let mut w: Vec<Option<Value>> = vec![None; g.kw];
            for &(_, _, kx) in &reads {
                if w[kx].is_none() {
                    let off = (ky * g.kw + kx) as i64 * weight_bytes;
                    w[kx] = Some(b.ins().load(types::F32X4, mem(), ch.weights, off as i32));
                }
            }
            let row_off = (ky * g.dilation.0) as i64 * row_bytes;
            let mut i = 0;
            for same in reads.chunk_by(|a, c| a.0 == c.0) {
                let off = row_off + (x0 + same[0].0 as i64) * pixel_bytes;
                let x = load_lanes(b, input, off as i32, ch.lanes);
                for (k, &(_, p, kx)) in same.iter().enumerate() {
                    let wv = w[kx].expect("the weights of every tap read are loaded");
                    // x64 overwrites the register of the first factor: pass one read for the
                    // last time, so that it need not be copied.
                    let (f1, f2) = match k + 1 < same.len() && last_read[kx] == i + k {
                        true => (wv, x),
                        false => (x, wv),
                    };
                    acc[p] = Some(match acc[p] {
                        Some(a) => b.ins().fma(f1, f2, a),
                        None => b.ins().fmul(f1, f2),
                    });
                }
                i += same.len();
            }
        }
        for (p, a) in acc.into_iter().enumerate() {
            let a = a.unwrap_or_else(|| {
                let z = b.ins().f32const(0.0);
                b.ins().splat(types::F32X4, z)
            });
            let row = b.ins().iadd_imm_s(ch.pixel, (first.offset + p) as i64);
            let row = match column {
                Some(ox) => b.ins().iadd(row, ox),
                None => row,
            };
            let site = Site { row, col: ch.first, lanes: ch.lanes };
            let y = self.spec.epilogue.apply(b, &self.operands, g.c, site, a);
            store_lanes(b, y, output, ((first.offset + p) as i64 * pixel_bytes) as i32, ch.lanes);
        }
    }
}
