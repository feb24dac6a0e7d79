//! GEMM layers: `C[M,N] = A[M,K] · B[K,N]` (+ bias, activation), with B a constant packed at
//! compile time into panels of `nr` columns (`nr` = 4 or 8 lanes, zero padded) and A read
//! row-major. The schedule picks the register tile (`mr` rows × `nr` columns of accumulators),
//! the k-block `kc` (the B panel block kept in L1) and the k-loop unroll. Panels are the
//! parallel loop: thread `t` of `T` takes panels `P·t/T .. P·(t+1)/T`.
//!
//! Argument table: `[A (M·K), B packed (panels·K·nr), bias (M or N, if any), C (M·N)]`.

use crate::builder::{counted_loop, if_then, kernel_function, mem, thread_range};
use crate::{compile, CodegenError, MachineCode, Target};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Function, InstBuilder, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use std::fmt;

/// Where a bias is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bias {
    None,
    /// One value per row of C (a convolution's output channel when weights are on the left).
    PerRow,
    /// One value per column of C (a fully connected layer's output feature).
    PerCol,
}

/// Element-wise function applied to the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
}

/// The problem: shapes and epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmSpec {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub bias: Bias,
    pub activation: Activation,
}

/// How the loops are tiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmSchedule {
    /// Rows of the register tile.
    pub mr: usize,
    /// f32x4 vectors per panel row: the panel is `4 · nr_vecs` columns wide.
    pub nr_vecs: usize,
    /// K-block length.
    pub kc: usize,
    /// Unroll factor of the innermost k loop.
    pub k_unroll: usize,
}

impl fmt::Display for GemmSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "split k by {kc}; tile {mr}x{nr} in registers (f32x4 x {v}); unroll k by {u}; parallel over {nr}-column panels",
            kc = self.kc,
            mr = self.mr,
            nr = 4 * self.nr_vecs,
            v = self.nr_vecs,
            u = self.k_unroll
        )
    }
}

impl GemmSchedule {
    /// Panel width in columns.
    pub fn nr(&self) -> usize {
        4 * self.nr_vecs
    }

    fn validate(&self, spec: &GemmSpec) -> Result<(), CodegenError> {
        let regs = self.mr * self.nr_vecs + self.nr_vecs + 1;
        let problems = [
            (self.mr == 0 || self.mr > 16, "mr must be 1..=16"),
            (!(1..=2).contains(&self.nr_vecs), "nr_vecs must be 1 or 2"),
            (regs > 16, "the register tile needs more than 16 vector registers"),
            (self.kc == 0 || self.k_unroll == 0, "kc and k_unroll must be >= 1"),
            (spec.m == 0 || spec.n == 0 || spec.k == 0, "empty GEMM"),
            ((spec.m.max(self.mr) * spec.k.max(spec.n)) as u64 * 4 >= 1 << 31, "GEMM too large for 32-bit offsets"),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err(CodegenError::Schedule(why.to_string())),
            None => Ok(()),
        }
    }
}

impl GemmSpec {
    fn panels(&self, s: &GemmSchedule) -> usize {
        self.n.div_ceil(s.nr())
    }

    /// Elements of each argument-table entry.
    pub fn arg_elems(&self, s: &GemmSchedule) -> Vec<usize> {
        let mut v = vec![self.m * self.k, self.panels(s) * self.k * s.nr()];
        match self.bias {
            Bias::None => {}
            Bias::PerRow => v.push(self.m),
            Bias::PerCol => v.push(self.n),
        }
        v.push(self.m * self.n);
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
    s.validate(spec)?;
    compile(build(spec, s, target), target, spec.arg_elems(s))
}

/// How a tile's accumulators start.
#[derive(Clone, Copy, PartialEq)]
enum Init {
    Zero,
    LoadC,
}

/// Values every part of the kernel needs.
struct Ctx {
    spec: GemmSpec,
    s: GemmSchedule,
    a: Value,
    bp: Value,
    bias: Option<Value>,
    c: Value,
}

fn build(spec: &GemmSpec, s: &GemmSchedule, target: &Target) -> Function {
    let mut func = kernel_function();
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let [args, thread, threads] = b.block_params(entry) else { unreachable!("three parameters") };
    let (args, thread, threads) = (*args, *thread, *threads);
    let mut slot = 0;
    let mut arg = |b: &mut FunctionBuilder| {
        let v = b.ins().load(types::I64, mem(), args, slot * 8);
        slot += 1;
        v
    };
    let a = arg(&mut b);
    let bp = arg(&mut b);
    let bias = (spec.bias != Bias::None).then(|| arg(&mut b));
    let c = arg(&mut b);
    let ctx = Ctx { spec: *spec, s: *s, a, bp, bias, c };

    let nr = s.nr();
    let full_panels = (spec.n / nr) as i64;
    let rem_cols = spec.n % nr;
    let (p0, p1) = thread_range(&mut b, spec.panels(s) as i64, thread, threads);
    let full_v = b.ins().iconst(types::I64, full_panels);
    let p_end = b.ins().umin(p1, full_v);
    counted_loop(&mut b, p0, p_end, 1, |b, p| panel(b, &ctx, p, nr));
    if rem_cols > 0 {
        let has_last = b.ins().icmp(IntCC::SignedGreaterThan, p1, full_v);
        if_then(&mut b, has_last, |b| {
            let p = b.ins().iconst(types::I64, full_panels);
            panel(b, &ctx, p, rem_cols);
        });
    }
    b.ins().return_(&[]);
    b.finalize(target.isa.frontend_config());
    func
}

/// All of C's columns in panel `p` (`cols` of them valid).
fn panel(b: &mut FunctionBuilder, ctx: &Ctx, p: Value, cols: usize) {
    let (k, kc) = (ctx.spec.k, ctx.s.kc.min(ctx.spec.k));
    let full_blocks = k / kc;
    let rem = k % kc;
    let zero = b.ins().iconst(types::I64, 0);
    k_block(b, ctx, p, cols, zero, kc, Init::Zero);
    if full_blocks > 1 {
        let one = b.ins().iconst(types::I64, 1);
        let end = b.ins().iconst(types::I64, full_blocks as i64);
        counted_loop(b, one, end, 1, |b, kb| {
            let k0 = b.ins().imul_imm_s(kb, kc as i64);
            k_block(b, ctx, p, cols, k0, kc, Init::LoadC);
        });
    }
    if rem > 0 {
        let k0 = b.ins().iconst(types::I64, (full_blocks * kc) as i64);
        k_block(b, ctx, p, cols, k0, rem, Init::LoadC);
    }
    if ctx.spec.bias != Bias::None || ctx.spec.activation != Activation::None {
        epilogue(b, ctx, p, cols);
    }
}

/// One k-block of panel `p`: every register tile down the M axis.
fn k_block(b: &mut FunctionBuilder, ctx: &Ctx, p: Value, cols: usize, k0: Value, klen: usize, init: Init) {
    let mr = ctx.s.mr;
    let full_rows = (ctx.spec.m / mr * mr) as i64;
    let zero = b.ins().iconst(types::I64, 0);
    let end = b.ins().iconst(types::I64, full_rows);
    counted_loop(b, zero, end, mr as i64, |b, m0| tile(b, ctx, p, cols, m0, mr, k0, klen, init));
    if !ctx.spec.m.is_multiple_of(mr) {
        let m0 = b.ins().iconst(types::I64, full_rows);
        tile(b, ctx, p, cols, m0, ctx.spec.m % mr, k0, klen, init);
    }
}

/// Address of C's element `(m0, panel p column 0)`.
fn c_base(b: &mut FunctionBuilder, ctx: &Ctx, p: Value, m0: Value) -> Value {
    let row = b.ins().imul_imm_s(m0, (ctx.spec.n * 4) as i64);
    let col = b.ins().imul_imm_s(p, (ctx.s.nr() * 4) as i64);
    let off = b.ins().iadd(row, col);
    b.ins().iadd(ctx.c, off)
}

/// Loads `lanes` (0..=4) floats at `ptr + off` into a vector, zero filling the rest.
fn load_lanes(b: &mut FunctionBuilder, ptr: Value, off: i32, lanes: usize) -> Value {
    if lanes == 4 {
        return b.ins().load(types::F32X4, mem(), ptr, off);
    }
    let z = b.ins().f32const(0.0);
    let mut v = b.ins().splat(types::F32X4, z);
    for l in 0..lanes {
        let x = b.ins().load(types::F32, mem(), ptr, off + 4 * l as i32);
        v = b.ins().insertlane(v, x, l as u8);
    }
    v
}

/// Stores the first `lanes` (0..=4) floats of `v` at `ptr + off`.
fn store_lanes(b: &mut FunctionBuilder, v: Value, ptr: Value, off: i32, lanes: usize) {
    if lanes == 4 {
        b.ins().store(mem(), v, ptr, off);
        return;
    }
    for l in 0..lanes {
        let x = b.ins().extractlane(v, l as u8);
        b.ins().store(mem(), x, ptr, off + 4 * l as i32);
    }
}

/// Valid lanes of vector `j` of a panel row with `cols` valid columns.
fn lanes(cols: usize, j: usize) -> usize {
    cols.saturating_sub(4 * j).min(4)
}

/// One register tile: `rows` × `cols` of C over `klen` steps of k from `k0`.
#[allow(clippy::too_many_arguments)]
fn tile(
    b: &mut FunctionBuilder,
    ctx: &Ctx,
    p: Value,
    cols: usize,
    m0: Value,
    rows: usize,
    k0: Value,
    klen: usize,
    init: Init,
) {
    let (n, k, nr, nv, u) = (ctx.spec.n, ctx.spec.k, ctx.s.nr(), ctx.s.nr_vecs, ctx.s.k_unroll);
    let cb = c_base(b, ctx, p, m0);
    let accs: Vec<Vec<Variable>> = (0..rows).map(|_| (0..nv).map(|_| b.declare_var(types::F32X4)).collect()).collect();
    for (i, row) in accs.iter().enumerate() {
        for (j, &var) in row.iter().enumerate() {
            let v = match init {
                Init::Zero => {
                    let z = b.ins().f32const(0.0);
                    b.ins().splat(types::F32X4, z)
                }
                Init::LoadC => load_lanes(b, cb, ((i * n + 4 * j) * 4) as i32, lanes(cols, j)),
            };
            b.def_var(var, v);
        }
    }
    // a_ptr = A + (m0·K + k0)·4; b_ptr = Bp + (p·K + k0)·nr·4.
    let a_row = b.ins().imul_imm_s(m0, (k * 4) as i64);
    let a_k = b.ins().ishl_imm_u(k0, 2);
    let a_off = b.ins().iadd(a_row, a_k);
    let a_ptr = b.ins().iadd(ctx.a, a_off);
    let b_panel = b.ins().imul_imm_s(p, (k * nr * 4) as i64);
    let b_k = b.ins().imul_imm_s(k0, (nr * 4) as i64);
    let b_off = b.ins().iadd(b_panel, b_k);
    let b_ptr = b.ins().iadd(ctx.bp, b_off);

    let step = |b: &mut FunctionBuilder, ap: Value, bpp: Value, s: usize| {
        let bv: Vec<Value> =
            (0..nv).map(|j| b.ins().load(types::F32X4, mem(), bpp, ((s * nr + 4 * j) * 4) as i32)).collect();
        for (i, row) in accs.iter().enumerate() {
            let x = b.ins().load(types::F32, mem(), ap, ((i * k + s) * 4) as i32);
            for (j, &var) in row.iter().enumerate() {
                let av = b.ins().splat(types::F32X4, x);
                let acc = b.use_var(var);
                let r = b.ins().fma(av, bv[j], acc);
                b.def_var(var, r);
            }
        }
    };
    let iters = (klen / u) as i64;
    if iters > 0 {
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, iters);
        counted_loop(b, zero, end, 1, |b, it| {
            let ao = b.ins().imul_imm_s(it, (u * 4) as i64);
            let ap = b.ins().iadd(a_ptr, ao);
            let bo = b.ins().imul_imm_s(it, (u * nr * 4) as i64);
            let bpp = b.ins().iadd(b_ptr, bo);
            for s in 0..u {
                step(b, ap, bpp, s);
            }
        });
    }
    let done = iters as usize * u;
    if done < klen {
        let ap = b.ins().iadd_imm_s(a_ptr, (done * 4) as i64);
        let bpp = b.ins().iadd_imm_s(b_ptr, (done * nr * 4) as i64);
        for s in 0..klen - done {
            step(b, ap, bpp, s);
        }
    }
    for (i, row) in accs.iter().enumerate() {
        for (j, &var) in row.iter().enumerate() {
            let v = b.use_var(var);
            store_lanes(b, v, cb, ((i * n + 4 * j) * 4) as i32, lanes(cols, j));
        }
    }
}

/// Bias and activation over panel `p`'s columns of every row.
fn epilogue(b: &mut FunctionBuilder, ctx: &Ctx, p: Value, cols: usize) {
    let nv = ctx.s.nr_vecs;
    let zero_i = b.ins().iconst(types::I64, 0);
    let m_end = b.ins().iconst(types::I64, ctx.spec.m as i64);
    counted_loop(b, zero_i, m_end, 1, |b, m| {
        let cb = c_base(b, ctx, p, m);
        for j in 0..nv {
            let ln = lanes(cols, j);
            if ln == 0 {
                continue;
            }
            let mut v = load_lanes(b, cb, (16 * j) as i32, ln);
            match (ctx.spec.bias, ctx.bias) {
                (Bias::PerRow, Some(bias)) => {
                    let off = b.ins().ishl_imm_u(m, 2);
                    let addr = b.ins().iadd(bias, off);
                    let x = b.ins().load(types::F32, mem(), addr, 0);
                    let bv = b.ins().splat(types::F32X4, x);
                    v = b.ins().fadd(v, bv);
                }
                (Bias::PerCol, Some(bias)) => {
                    let off = b.ins().imul_imm_s(p, (ctx.s.nr() * 4) as i64);
                    let addr = b.ins().iadd(bias, off);
                    let bv = load_lanes(b, addr, (16 * j) as i32, ln);
                    v = b.ins().fadd(v, bv);
                }
                _ => {}
            }
            if ctx.spec.activation == Activation::Relu {
                let z = b.ins().f32const(0.0);
                let zv = b.ins().splat(types::F32X4, z);
                v = b.ins().fmax(v, zv);
            }
            store_lanes(b, v, cb, (16 * j) as i32, ln);
        }
    });
}
