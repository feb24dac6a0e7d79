//! GEMM layers: `C[M,N] = A[M,K] · B[K,N]` (+ bias, fused epilogue), with B a constant packed at
//! compile time into panels of `nr` columns (`nr` = 4 or 8 lanes, zero padded) and A, the
//! runtime operand, packed by the kernel itself into per-thread scratch, one `mc × kc` block at
//! a time, as `[tile][k][mr]` so the register tile reads it contiguously. Loop nest (GotoBLAS):
//! k-blocks of `kc` → row blocks of `mc` (pack A) → this thread's panels → register tiles of
//! `mr` rows. Panels are the parallel loop: thread `t` of `T` takes panels `P·t/T .. P·(t+1)/T`.
//! The last k-block adds the bias and applies the epilogue to the register tile before storing.
//!
//! Argument table: `[A (M·K), B packed (panels·K·nr), bias (M or N, if any), C (M·N),
//! scratch (max_threads·mc·kc), epilogue operands…]`; C may be a column slice of a wider
//! matrix ([`OutView`]), so a layer can write straight into a Concat's output.

use crate::builder::{
    build_kernel, counted_loop, if_then, lanes, load_lanes, mem, store_lanes, thread_range, transpose4,
};
use crate::epilogue::{Epilogue, Site};
use crate::im2col::{self, ConvGeometry};
use crate::tiling::{access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Function, InstBuilder, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use veltair_load::MachineCode;

/// Where a bias is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bias {
    None,
    /// One value per row of C (a convolution's output channel when weights are on the left).
    PerRow,
    /// One value per column of C (a fully connected layer's output feature).
    PerCol,
}

/// Where the runtime operand A comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ASource {
    /// A row-major `[M, K]` matrix.
    Matrix,
    /// An NHWC image read as its implicit im2col matrix (a convolution).
    Conv2d(ConvGeometry),
}

/// The problem: shapes, where A comes from, and the epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmSpec {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: ASource,
    pub bias: Bias,
    pub epilogue: Epilogue,
    /// Where C lives when it is a slice of a wider row-major matrix (a Concat output the layer
    /// writes straight into); `None`: C is a contiguous `[M, N]`.
    pub out: Option<OutView>,
}

/// C as columns `col_offset .. col_offset + N` of a row-major `[M, row_stride]` matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutView {
    pub row_stride: usize,
    pub col_offset: usize,
}

/// How the loops are tiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmSchedule {
    /// Rows of the register tile.
    pub mr: usize,
    /// f32x4 vectors per panel row: the panel is `4 · nr_vecs` columns wide.
    pub nr_vecs: usize,
    /// K-block length (the B panel block and the packed A tile stay in L1).
    pub kc: usize,
    /// Rows of A packed at once (a multiple of `mr`; the packed block stays in L2).
    pub mc: usize,
    /// Unroll factor of the innermost k loop.
    pub k_unroll: usize,
    /// Most threads the kernel may run on (sizes the scratch argument).
    pub max_threads: usize,
    /// Which loop the threads split.
    pub parallel: Parallel,
}

/// The loop a GEMM's threads split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallel {
    /// Column panels: every thread packs every row block of A (cheap when N is wide).
    Panels,
    /// Row blocks of `mc` rows: each thread packs only its own rows of A (better when A's
    /// packing is costly and N is narrow, e.g. convolutions over few output channels).
    Rows,
}

impl GemmSchedule {
    /// Panel width in columns.
    pub fn nr(&self) -> usize {
        4 * self.nr_vecs
    }

    /// The schedule as loop-tiling steps over the spec's domain.
    pub fn to_schedule(&self, spec: &GemmSpec) -> Schedule {
        let conv = matches!(spec.a, ASource::Conv2d(_));
        let prefix = if conv { "fuse n oh ow into m\nfuse kh kw ci into k\n" } else { "" };
        let text = format!(
            "{prefix}split k {kc}\nsplit m {mc} {mr}\nsplit n {nr}\nreorder k.0 m.0 n.0 m.1 k.1 m.2 n.1\n\
             pack B [n.0 k n.1] at compile-time\npack A [m.1 k.1 m.2] at m.0\nparallel {par} {t}\n\
             cache_write C at m.1\nvectorize n.1 4\nunroll k.1 {u}\ncompute_at epilogue m.1",
            kc = self.kc,
            mc = self.mc,
            mr = self.mr,
            nr = self.nr(),
            t = self.max_threads,
            u = self.k_unroll,
            par = match self.parallel {
                Parallel::Panels => "n.0",
                Parallel::Rows => "m.0",
            }
        );
        text.parse().expect("the GEMM template parses")
    }

    /// Reads a schedule of the GEMM template back (the inverse of [`GemmSchedule::to_schedule`]);
    /// any step outside the template is refused.
    pub fn from_schedule(spec: &GemmSpec, schedule: &Schedule) -> Result<GemmSchedule, CodegenError> {
        use crate::tiling::Step;
        let (kc, (mc, mr), nr) = (
            schedule.find("split k KC", |s| match s {
                Step::Split { axis, factors } if axis == "k" && factors.len() == 1 => Some(factors[0]),
                _ => None,
            })?,
            schedule.find("split m MC MR", |s| match s {
                Step::Split { axis, factors } if axis == "m" && factors.len() == 2 => Some((factors[0], factors[1])),
                _ => None,
            })?,
            schedule.find("split n NR", |s| match s {
                Step::Split { axis, factors } if axis == "n" && factors.len() == 1 => Some(factors[0]),
                _ => None,
            })?,
        );
        let (parallel, max_threads) = schedule.find("parallel n.0|m.0 T", |s| match s {
            Step::Parallel { axis, max_threads } if axis == "n.0" => Some((Parallel::Panels, *max_threads)),
            Step::Parallel { axis, max_threads } if axis == "m.0" => Some((Parallel::Rows, *max_threads)),
            _ => None,
        })?;
        let k_unroll = schedule.find("unroll k.1 U", |s| match s {
            Step::Unroll { axis, factor } if axis == "k.1" => Some(*factor),
            _ => None,
        })?;
        if !nr.is_multiple_of(4) {
            return Err(CodegenError::Schedule(format!("split n {nr}: panels are whole f32x4 vectors")));
        }
        let s = GemmSchedule { mr, nr_vecs: nr / 4, kc, mc, k_unroll, max_threads, parallel };
        let template = s.to_schedule(spec);
        if let Some((got, want)) = schedule.steps.iter().zip(&template.steps).find(|(a, b)| a != b) {
            return Err(CodegenError::Schedule(format!(
                "step `{got}` is outside the GEMM template (expected `{want}`)"
            )));
        }
        if schedule.steps.len() != template.steps.len() {
            return Err(CodegenError::Schedule(format!("the GEMM template has {} steps", template.steps.len())));
        }
        s.validate(spec)?;
        Ok(s)
    }

    fn validate(&self, spec: &GemmSpec) -> Result<(), CodegenError> {
        let regs = self.mr * self.nr_vecs + self.nr_vecs + 1;
        let problems = [
            (self.mr == 0 || self.mr > 16, "mr must be 1..=16"),
            (!(1..=2).contains(&self.nr_vecs), "nr_vecs must be 1 or 2"),
            (regs > 16, "the register tile needs more than 16 vector registers"),
            (self.kc == 0 || self.k_unroll == 0 || self.max_threads == 0, "kc, k_unroll and max_threads must be >= 1"),
            (self.mc == 0 || !self.mc.is_multiple_of(self.mr), "mc must be a positive multiple of mr"),
            (spec.m == 0 || spec.n == 0 || spec.k == 0, "empty GEMM"),
            (spec.out.is_some_and(|o| o.col_offset + spec.n > o.row_stride), "C's columns exceed its row stride"),
            (
                matches!(spec.a, ASource::Conv2d(g) if g.m() != spec.m || g.k() != spec.k || g.stride.0 * g.stride.1 * g.dilation.0 * g.dilation.1 == 0),
                "convolution geometry does not match the GEMM shape",
            ),
            ((spec.m.max(self.mc) * spec.k.max(spec.ldc())) as u64 * 4 >= 1 << 31, "GEMM too large for 32-bit offsets"),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err(CodegenError::Schedule(why.to_string())),
            None => Ok(()),
        }
    }

    /// Scratch floats one thread packs A into.
    fn scratch_per_thread(&self, spec: &GemmSpec) -> usize {
        self.mc.min(spec.m.next_multiple_of(self.mr)) * self.kc.min(spec.k)
    }
}

impl GemmSpec {
    /// The iteration domain: a matrix product, or a 2-D convolution over an NHWC image.
    pub fn domain(&self) -> Domain {
        match self.a {
            ASource::Matrix => Domain::new("gemm", &[("m", self.m), ("n", self.n)], &[("k", self.k)]).computing(
                access("C", &["m", "n"]),
                vec![access("A", &["m", "k"]), access("B", &["k", "n"])],
                "+= A * B",
            ),
            ASource::Conv2d(g) => {
                let iy = format!("oh*{}+kh*{}-{}", g.stride.0, g.dilation.0, g.pad.0);
                let ix = format!("ow*{}+kw*{}-{}", g.stride.1, g.dilation.1, g.pad.1);
                Domain::new(
                    "conv2d",
                    &[("n", g.batch), ("oh", g.oh), ("ow", g.ow), ("co", self.n)],
                    &[("kh", g.kh), ("kw", g.kw), ("ci", g.c)],
                )
                .computing(
                    access("out", &["n", "oh", "ow", "co"]),
                    vec![access("x", &["n", &iy, &ix, "ci"]), access("w", &["kh", "kw", "ci", "co"])],
                    "+= x * w (zero outside x)",
                )
            }
        }
    }

    /// Elements between rows of C.
    fn ldc(&self) -> usize {
        self.out.map_or(self.n, |o| o.row_stride)
    }

    fn panels(&self, s: &GemmSchedule) -> usize {
        self.n.div_ceil(s.nr())
    }

    /// Elements of each argument-table entry.
    pub fn arg_elems(&self, s: &GemmSchedule) -> Vec<usize> {
        let a = match self.a {
            ASource::Matrix => self.m * self.k,
            ASource::Conv2d(g) => g.input_elems(),
        };
        let mut v = vec![a, self.panels(s) * self.k * s.nr()];
        match self.bias {
            Bias::None => {}
            Bias::PerRow => v.push(self.m),
            Bias::PerCol => v.push(self.n),
        }
        v.push(self.m * self.ldc());
        v.push(s.max_threads * s.scratch_per_thread(self));
        v.extend(self.epilogue.arg_elems(self.m, self.n));
        v
    }
}

/// Packs row-major `B[K, N]` into zero-padded panels `[panel][k][nr]`.
pub fn pack_b(spec: &GemmSpec, s: &GemmSchedule, b: &[f32]) -> Vec<f32> {
    let nr = s.nr();
    let mut out = vec![0.0; spec.panels(s) * spec.k * nr];
    for p in 0..spec.panels(s) {
        for k in 0..spec.k {
            for j in 0..nr {
                let col = p * nr + j;
                if col < spec.n {
                    out[(p * spec.k + k) * nr + j] = b[k * spec.n + col];
                }
            }
        }
    }
    out
}

/// Generates and compiles the GEMM kernel.
pub fn compile_gemm(spec: &GemmSpec, s: &GemmSchedule, target: &Target) -> Result<MachineCode, CodegenError> {
    compile_batched_gemm(spec, s, &GemmBatch { count: 1, a_stride: 0, b_stride: 0, c_stride: 0 }, target)
}

/// `count` independent GEMMs of one shape in one kernel (Winograd's per-position products):
/// product `i` reads A and packed B and writes C at `i ×` their strides (in elements). The
/// threads keep their share of the loop across the products. Batches take no bias, epilogue
/// or output view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmBatch {
    pub count: usize,
    pub a_stride: usize,
    pub b_stride: usize,
    pub c_stride: usize,
}

impl GemmBatch {
    /// Elements of each argument-table entry of `spec` batched this way.
    pub fn arg_elems(&self, spec: &GemmSpec, s: &GemmSchedule) -> Vec<usize> {
        let mut v = spec.arg_elems(s);
        let before = self.count.saturating_sub(1);
        for (i, stride) in [(0, self.a_stride), (1, self.b_stride), (2, self.c_stride)] {
            v[i] += before * stride;
        }
        v
    }
}

/// Generates and compiles a batch of GEMMs (see [`GemmBatch`]).
pub fn compile_batched_gemm(
    spec: &GemmSpec,
    s: &GemmSchedule,
    batch: &GemmBatch,
    target: &Target,
) -> Result<MachineCode, CodegenError> {
    s.validate(spec)?;
    spec.epilogue.validate()?;
    let plain = spec.bias == Bias::None && spec.epilogue.is_empty() && spec.out.is_none();
    if batch.count == 0 || (batch.count > 1 && !plain) {
        return Err(CodegenError::Schedule(format!("unsupported GEMM batch {batch:?}")));
    }
    let elems = batch.arg_elems(spec, s);
    if elems.iter().any(|&e| e as u64 * 4 >= 1 << 31) {
        return Err(CodegenError::Schedule("GEMM batch too large for 32-bit offsets".into()));
    }
    let mut code = compile(build(spec, s, batch, target), target, elems)?;
    code.max_threads = s.max_threads;
    Ok(code)
}

/// How a tile's accumulators start.
#[derive(Clone, Copy, PartialEq)]
enum Init {
    Zero,
    LoadC,
}

/// Values every part of the kernel needs.
#[derive(Clone)]
struct Ctx {
    spec: GemmSpec,
    s: GemmSchedule,
    a: Value,
    bp: Value,
    bias: Option<Value>,
    c: Value,
    /// The epilogue operands' base pointers.
    operands: Vec<Value>,
    /// This thread's packed-A buffer.
    ap: Value,
    /// This thread's panels.
    panels: Share,
    /// This thread's row blocks of `mc` rows.
    rows: Share,
}

/// One k-block: where it starts and how long it is.
#[derive(Clone, Copy)]
struct KBlock {
    k0: Value,
    len: usize,
    init: Init,
    /// The final k-block: its tiles are complete after it, so it applies bias and epilogue.
    last: bool,
}

fn iconst(b: &mut FunctionBuilder, v: usize) -> Value {
    b.ins().iconst(types::I64, v as i64)
}

fn build(spec: &GemmSpec, s: &GemmSchedule, batch: &GemmBatch, target: &Target) -> Function {
    build_kernel(target, |b, params| {
        let mut slot = 0;
        let mut arg = |b: &mut FunctionBuilder| {
            slot += 1;
            params.arg(b, slot - 1)
        };
        let a = arg(b);
        let bp = arg(b);
        let bias = (spec.bias != Bias::None).then(|| arg(b));
        let c = arg(b);
        let scratch = arg(b);
        let operands = spec.epilogue.operands.iter().map(|_| arg(b)).collect();
        let per_thread = b.ins().imul_imm_s(params.thread, (s.scratch_per_thread(spec) * 4) as i64);
        let ap = b.ins().iadd(scratch, per_thread);

        let split = |b: &mut FunctionBuilder, total: usize, unit: usize, mine: bool| {
            Share::new(b, (total / unit, !total.is_multiple_of(unit)), mine.then_some((params.thread, params.threads)))
        };
        let panels = split(b, spec.n, s.nr(), s.parallel == Parallel::Panels);
        let rows = split(b, spec.m, s.mc, s.parallel == Parallel::Rows);
        let ctx = Ctx { spec: spec.clone(), s: *s, a, bp, bias, c, operands, ap, panels, rows };
        if batch.count == 1 {
            product(b, &ctx);
        } else {
            let (zero, end) = (iconst(b, 0), iconst(b, batch.count));
            counted_loop(b, zero, end, 1, |b, i| {
                let at = |b: &mut FunctionBuilder, base: Value, stride: usize| {
                    let off = b.ins().imul_imm_s(i, (stride * 4) as i64);
                    b.ins().iadd(base, off)
                };
                let (a, bp, c) =
                    (at(b, ctx.a, batch.a_stride), at(b, ctx.bp, batch.b_stride), at(b, ctx.c, batch.c_stride));
                product(b, &Ctx { a, bp, c, operands: Vec::new(), ..ctx.clone() });
            });
        }
    })
}

/// One product: every k-block of this thread's share.
fn product(b: &mut FunctionBuilder, ctx: &Ctx) {
    let (spec, s) = (&ctx.spec, &ctx.s);
    // k-blocks: the first (accumulators start at zero), full middle ones in a loop, and the
    // last (possibly partial), which finishes the tiles.
    let kc = s.kc.min(spec.k);
    let blocks = spec.k.div_ceil(kc);
    let zero = iconst(b, 0);
    k_block(b, ctx, KBlock { k0: zero, len: kc, init: Init::Zero, last: blocks == 1 });
    if blocks > 2 {
        let (one, end) = (iconst(b, 1), iconst(b, blocks - 1));
        counted_loop(b, one, end, 1, |b, kb| {
            let k0 = b.ins().imul_imm_s(kb, kc as i64);
            k_block(b, ctx, KBlock { k0, len: kc, init: Init::LoadC, last: false });
        });
    }
    if blocks > 1 {
        let k0 = iconst(b, (blocks - 1) * kc);
        k_block(b, ctx, KBlock { k0, len: spec.k - (blocks - 1) * kc, init: Init::LoadC, last: true });
    }
}

/// A thread's share of a parallel loop over whole units `[start, full_end)`, plus whether it
/// owns the partial last unit (index `full_end`'s bound, the total number of whole units).
#[derive(Clone, Copy)]
struct Share {
    start: Value,
    full_end: Value,
    partial: Option<Value>,
    /// Index of the partial unit (the number of whole units).
    whole: usize,
}

impl Share {
    /// The share of `(whole units, a partial one?)` for `(thread, threads)`, or all of them.
    fn new(b: &mut FunctionBuilder, (whole, partial): (usize, bool), team: Option<(Value, Value)>) -> Share {
        let total = whole + partial as usize;
        let (start, end) = match team {
            Some((thread, threads)) => thread_range(b, total as i64, thread, threads),
            None => (iconst(b, 0), iconst(b, total)),
        };
        let whole_v = iconst(b, whole);
        let full_end = b.ins().umin(end, whole_v);
        let partial = partial.then(|| b.ins().icmp(IntCC::SignedGreaterThan, end, whole_v));
        Share { start, full_end, partial, whole }
    }

    /// Runs `body(unit index, whole?)` over the share.
    fn each(&self, b: &mut FunctionBuilder, mut body: impl FnMut(&mut FunctionBuilder, Value, bool)) {
        counted_loop(b, self.start, self.full_end, 1, |b, u| body(b, u, true));
        if let Some(partial) = self.partial {
            if_then(b, partial, |b| {
                let u = iconst(b, self.whole);
                body(b, u, false);
            });
        }
    }
}

/// Runs `body(panel, valid columns)` over this thread's panels.
fn for_each_panel(b: &mut FunctionBuilder, ctx: &Ctx, mut body: impl FnMut(&mut FunctionBuilder, Value, usize)) {
    let nr = ctx.s.nr();
    let last = ctx.spec.n % nr;
    ctx.panels.each(b, |b, p, whole| body(b, p, if whole { nr } else { last }));
}

/// One k-block: every row block of `mc` rows.
fn k_block(b: &mut FunctionBuilder, ctx: &Ctx, kb: KBlock) {
    let mc = ctx.s.mc;
    let last = ctx.spec.m % mc;
    ctx.rows.each(b, |b, blk, whole| {
        let m0 = b.ins().imul_imm_s(blk, mc as i64);
        row_block(b, ctx, kb, m0, if whole { mc } else { last });
    });
}

/// Packs rows `m0 .. m0 + rows` of the k-block into this thread's scratch, then runs every
/// register tile of those rows over this thread's panels.
fn row_block(b: &mut FunctionBuilder, ctx: &Ctx, kb: KBlock, m0: Value, rows: usize) {
    let mr = ctx.s.mr;
    pack_a(b, ctx, kb, m0, rows);
    for_each_panel(b, ctx, |b, p, cols| {
        let full_tiles = rows / mr;
        if full_tiles > 0 {
            let (zero, end) = (iconst(b, 0), iconst(b, full_tiles));
            counted_loop(b, zero, end, 1, |b, t| tile(b, ctx, kb, p, cols, m0, t, mr));
        }
        if !rows.is_multiple_of(mr) {
            let t = iconst(b, full_tiles);
            tile(b, ctx, kb, p, cols, m0, t, rows % mr);
        }
    });
}

/// Copies `A[m0 + r, k0 + k]` for `r < rows`, `k < len` to `ap[(r / mr)·len·mr + k·mr + r % mr]`.
fn pack_a(b: &mut FunctionBuilder, ctx: &Ctx, kb: KBlock, m0: Value, rows: usize) {
    let mr = ctx.s.mr;
    let copy_tile = |b: &mut FunctionBuilder, t: Value, tile_rows: usize| match ctx.spec.a {
        ASource::Matrix => copy_matrix_tile(b, ctx, kb, m0, t, tile_rows),
        ASource::Conv2d(g) if tap_aligned(&g, ctx.s.kc.min(ctx.spec.k)) => {
            copy_conv_runs(b, ctx, &g, kb, m0, t, tile_rows)
        }
        ASource::Conv2d(g) => copy_conv_tile(b, ctx, &g, kb, m0, t, tile_rows),
    };
    let full_tiles = rows / mr;
    if full_tiles > 0 {
        let (zero, end) = (iconst(b, 0), iconst(b, full_tiles));
        counted_loop(b, zero, end, 1, |b, t| copy_tile(b, t, mr));
    }
    if !rows.is_multiple_of(mr) {
        let t = iconst(b, full_tiles);
        copy_tile(b, t, rows % mr);
    }
}

/// Packs one tile of a row-major A.
fn copy_matrix_tile(b: &mut FunctionBuilder, ctx: &Ctx, kb: KBlock, m0: Value, t: Value, tile_rows: usize) {
    let (mr, k) = (ctx.s.mr, ctx.spec.k);
    // Row i's source: A + ((m0 + t·mr + i)·K + k0)·4; dst = ap + t·len·mr·4.
    let row = b.ins().imul_imm_s(t, mr as i64);
    let row = b.ins().iadd(m0, row);
    let src_row = b.ins().imul_imm_s(row, (k * 4) as i64);
    let src_k = b.ins().ishl_imm_u(kb.k0, 2);
    let src_off = b.ins().iadd(src_row, src_k);
    let src = b.ins().iadd(ctx.a, src_off);
    let dst_off = b.ins().imul_imm_s(t, (kb.len * mr * 4) as i64);
    let dst = b.ins().iadd(ctx.ap, dst_off);
    let rows: Vec<Source> =
        (0..tile_rows).map(|i| Source { ptr: b.ins().iadd_imm_s(src, (i * k * 4) as i64), inside: None }).collect();
    pack_columns(b, mr, &rows, kb.len, dst);
}

/// The pixel rows of tile `t` of the row block at `m0` (`tile_rows` of them) and where the
/// tile's packed columns start in this thread's scratch.
fn conv_tile_rows(
    b: &mut FunctionBuilder,
    ctx: &Ctx,
    g: &ConvGeometry,
    kb: KBlock,
    (m0, t): (Value, Value),
    tile_rows: usize,
) -> (Vec<im2col::PixelRow>, Value) {
    let mr = ctx.s.mr;
    let first = b.ins().imul_imm_s(t, mr as i64);
    let first = b.ins().iadd(m0, first);
    let pixels = (0..tile_rows)
        .map(|i| {
            let m = b.ins().iadd_imm_s(first, i as i64);
            im2col::pixel_row(b, g, m)
        })
        .collect();
    let dst_off = b.ins().imul_imm_s(t, (kb.len * mr * 4) as i64);
    (pixels, b.ins().iadd(ctx.ap, dst_off))
}

/// Whether k-blocks of `kc` columns cover whole taps of the convolution (or lie inside one),
/// so A can be packed by runs of channels instead of element by element.
fn tap_aligned(g: &ConvGeometry, kc: usize) -> bool {
    kc.is_multiple_of(g.c) || g.c.is_multiple_of(kc)
}

/// Packs one tile of a convolution's implicit im2col matrix whose k-block is tap aligned:
/// per tap, each row's pixel is located once and its channels are copied as a run.
#[allow(clippy::too_many_arguments)]
fn copy_conv_runs(
    b: &mut FunctionBuilder,
    ctx: &Ctx,
    g: &ConvGeometry,
    kb: KBlock,
    m0: Value,
    t: Value,
    tile_rows: usize,
) {
    let mr = ctx.s.mr;
    let (pixels, dst) = conv_tile_rows(b, ctx, g, kb, (m0, t), tile_rows);
    let first_window = b.ins().udiv_imm_u(kb.k0, g.c as i64);
    let rows_at = |b: &mut FunctionBuilder, window: Value, channel_bytes: Value| -> Vec<Source> {
        let (dy, dx) = im2col::window_offset(b, g, window);
        pixels
            .iter()
            .map(|px| {
                let (inside, off) = im2col::tap_pixel(b, g, px, dy, dx);
                let off = b.ins().iadd(off, channel_bytes);
                Source { ptr: b.ins().iadd(ctx.a, off), inside: Some(inside) }
            })
            .collect()
    };
    if kb.len >= g.c {
        let (zero, windows) = (iconst(b, 0), iconst(b, kb.len / g.c));
        counted_loop(b, zero, windows, 1, |b, j| {
            let window = b.ins().iadd(first_window, j);
            let zero_bytes = iconst(b, 0);
            let rows = rows_at(b, window, zero_bytes);
            let d_off = b.ins().imul_imm_s(j, (g.c * mr * 4) as i64);
            let d = b.ins().iadd(dst, d_off);
            pack_columns(b, mr, &rows, g.c, d);
        });
    } else {
        let ci0 = b.ins().urem_imm_u(kb.k0, g.c as i64);
        let channel_bytes = b.ins().ishl_imm_u(ci0, 2);
        let rows = rows_at(b, first_window, channel_bytes);
        pack_columns(b, mr, &rows, kb.len, dst);
    }
}

/// A row of A to pack: where its k-block run starts and, for a convolution tap, whether the
/// pixel is inside the image (zeros are packed otherwise).
struct Source {
    ptr: Value,
    inside: Option<Value>,
}

/// Packs `count` consecutive columns of each row in `rows` into `dst` (`mr` floats per
/// column), four columns at a time: four rows are loaded as vectors and transposed.
fn pack_columns(b: &mut FunctionBuilder, mr: usize, rows: &[Source], count: usize, dst: Value) {
    let zf = b.ins().f32const(0.0);
    let zero_v = b.ins().splat(types::F32X4, zf);
    let full = count / 4;
    if full > 0 {
        let (zero, end) = (iconst(b, 0), iconst(b, full * 16));
        counted_loop(b, zero, end, 16, |b, q| {
            let d_off = b.ins().imul_imm_s(q, mr as i64);
            let d = b.ins().iadd(dst, d_off);
            for i0 in (0..rows.len()).step_by(4) {
                let loaded = [0, 1, 2, 3].map(|j| match rows.get(i0 + j) {
                    Some(row) => {
                        let addr = b.ins().iadd(row.ptr, q);
                        let v = b.ins().load(types::F32X4, mem(), addr, 0);
                        match row.inside {
                            Some(inside) => b.ins().select(inside, v, zero_v),
                            None => v,
                        }
                    }
                    None => zero_v,
                });
                let n = (rows.len() - i0).min(4);
                for (l, col) in transpose4(b, loaded).into_iter().enumerate() {
                    store_lanes(b, col, d, ((l * mr + i0) * 4) as i32, n);
                }
            }
        });
    }
    let zs = b.ins().f32const(0.0);
    for c in full * 4..count {
        for (i, row) in rows.iter().enumerate() {
            let mut x = b.ins().load(types::F32, mem(), row.ptr, (c * 4) as i32);
            if let Some(inside) = row.inside {
                x = b.ins().select(inside, x, zs);
            }
            b.ins().store(mem(), x, dst, ((c * mr + i) * 4) as i32);
        }
    }
}

/// Packs one tile of a convolution's implicit im2col matrix.
#[allow(clippy::too_many_arguments)]
fn copy_conv_tile(
    b: &mut FunctionBuilder,
    ctx: &Ctx,
    g: &ConvGeometry,
    kb: KBlock,
    m0: Value,
    t: Value,
    tile_rows: usize,
) {
    let mr = ctx.s.mr;
    let (pixels, dst) = conv_tile_rows(b, ctx, g, kb, (m0, t), tile_rows);
    let (zero, end) = (iconst(b, 0), iconst(b, kb.len));
    counted_loop(b, zero, end, 1, |b, kk| {
        let kg = b.ins().iadd(kb.k0, kk);
        let tap = im2col::tap(b, g, kg);
        let d_off = b.ins().imul_imm_s(kk, (mr * 4) as i64);
        let d_ptr = b.ins().iadd(dst, d_off);
        for (i, px) in pixels.iter().enumerate() {
            let x = im2col::load(b, g, ctx.a, px, &tap);
            b.ins().store(mem(), x, d_ptr, (i * 4) as i32);
        }
    });
}

/// Address of C's element `(m0, panel p column 0)`.
fn c_base(b: &mut FunctionBuilder, ctx: &Ctx, p: Value, m0: Value) -> Value {
    let row = b.ins().imul_imm_s(m0, (ctx.spec.ldc() * 4) as i64);
    let col = b.ins().imul_imm_s(p, (ctx.s.nr() * 4) as i64);
    let off = b.ins().iadd(row, col);
    let first = ctx.spec.out.map_or(0, |o| o.col_offset * 4);
    let c = b.ins().iadd_imm_s(ctx.c, first as i64);
    b.ins().iadd(c, off)
}

/// One register tile: rows `m0 + t·mr ..` (`rows` of them) × panel `p` over the k-block.
#[allow(clippy::too_many_arguments)]
fn tile(b: &mut FunctionBuilder, ctx: &Ctx, kb: KBlock, p: Value, cols: usize, m0: Value, t: Value, rows: usize) {
    let (n, k, mr, nr, nv, u) = (ctx.spec.ldc(), ctx.spec.k, ctx.s.mr, ctx.s.nr(), ctx.s.nr_vecs, ctx.s.k_unroll);
    let tile_row = b.ins().imul_imm_s(t, mr as i64);
    let row0 = b.ins().iadd(m0, tile_row);
    let cb = c_base(b, ctx, p, row0);
    let accs: Vec<Vec<Variable>> = (0..rows).map(|_| (0..nv).map(|_| b.declare_var(types::F32X4)).collect()).collect();
    for (i, row) in accs.iter().enumerate() {
        for (j, &var) in row.iter().enumerate() {
            let v = match kb.init {
                Init::Zero => {
                    let z = b.ins().f32const(0.0);
                    b.ins().splat(types::F32X4, z)
                }
                Init::LoadC => load_lanes(b, cb, ((i * n + 4 * j) * 4) as i32, lanes(cols, j)),
            };
            b.def_var(var, v);
        }
    }
    // Packed A tile: ap + t·len·mr·4; B: bp + (p·K + k0)·nr·4.
    let a_off = b.ins().imul_imm_s(t, (kb.len * mr * 4) as i64);
    let a_ptr = b.ins().iadd(ctx.ap, a_off);
    let b_panel = b.ins().imul_imm_s(p, (k * nr * 4) as i64);
    let b_k = b.ins().imul_imm_s(kb.k0, (nr * 4) as i64);
    let b_off = b.ins().iadd(b_panel, b_k);
    let b_ptr = b.ins().iadd(ctx.bp, b_off);

    let step = |b: &mut FunctionBuilder, ap: Value, bpp: Value, s: usize| {
        let bv: Vec<Value> =
            (0..nv).map(|j| b.ins().load(types::F32X4, mem(), bpp, ((s * nr + 4 * j) * 4) as i32)).collect();
        for (i, row) in accs.iter().enumerate() {
            let x = b.ins().load(types::F32, mem(), ap, ((s * mr + i) * 4) as i32);
            for (j, &var) in row.iter().enumerate() {
                let av = b.ins().splat(types::F32X4, x);
                let acc = b.use_var(var);
                let r = b.ins().fma(av, bv[j], acc);
                b.def_var(var, r);
            }
        }
    };
    let iters = kb.len / u;
    if iters > 0 {
        let (zero, end) = (iconst(b, 0), iconst(b, iters));
        counted_loop(b, zero, end, 1, |b, it| {
            let ao = b.ins().imul_imm_s(it, (u * mr * 4) as i64);
            let ap = b.ins().iadd(a_ptr, ao);
            let bo = b.ins().imul_imm_s(it, (u * nr * 4) as i64);
            let bpp = b.ins().iadd(b_ptr, bo);
            for s in 0..u {
                step(b, ap, bpp, s);
            }
        });
    }
    let done = iters * u;
    if done < kb.len {
        let ap = b.ins().iadd_imm_s(a_ptr, (done * mr * 4) as i64);
        let bpp = b.ins().iadd_imm_s(b_ptr, (done * nr * 4) as i64);
        for s in 0..kb.len - done {
            step(b, ap, bpp, s);
        }
    }
    for (i, row) in accs.iter().enumerate() {
        for (j, &var) in row.iter().enumerate() {
            let mut v = b.use_var(var);
            let ln = lanes(cols, j);
            if kb.last && ln > 0 {
                let m = b.ins().iadd_imm_s(row0, i as i64);
                v = finish(b, ctx, p, j, m, ln, v);
            }
            store_lanes(b, v, cb, ((i * n + 4 * j) * 4) as i32, ln);
        }
    }
}

/// Bias and epilogue on the finished vector `j` of panel `p` in row `m` (`ln` valid lanes).
fn finish(b: &mut FunctionBuilder, ctx: &Ctx, p: Value, j: usize, m: Value, ln: usize, mut v: Value) -> Value {
    let panel_col = b.ins().imul_imm_s(p, ctx.s.nr() as i64);
    let col = b.ins().iadd_imm_s(panel_col, 4 * j as i64);
    match (ctx.spec.bias, ctx.bias) {
        (Bias::PerRow, Some(bias)) => {
            let off = b.ins().ishl_imm_u(m, 2);
            let addr = b.ins().iadd(bias, off);
            let x = b.ins().load(types::F32, mem(), addr, 0);
            let bv = b.ins().splat(types::F32X4, x);
            v = b.ins().fadd(v, bv);
        }
        (Bias::PerCol, Some(bias)) => {
            let off = b.ins().ishl_imm_u(col, 2);
            let addr = b.ins().iadd(bias, off);
            let bv = load_lanes(b, addr, 0, ln);
            v = b.ins().fadd(v, bv);
        }
        _ => {}
    }
    ctx.spec.epilogue.apply(b, &ctx.operands, ctx.spec.n, Site { row: m, col, lanes: ln }, v)
}
