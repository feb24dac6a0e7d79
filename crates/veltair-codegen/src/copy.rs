//! Strided N-d copies: one kernel shape for Transpose, Slice (any step), Expand (stride 0),
//! Concat and Split parts and NCHW↔NHWC layout conversion.
//!
//! The copy visits every coordinate of `extents` and moves `src[src_offset + Σ c·src_stride]`
//! to `dst[dst_offset + Σ c·dst_stride]`. It is simplified first (axes of extent 1 dropped,
//! axes contiguous in both buffers merged), then lowered to an innermost run: f32x4 loads and
//! stores when both sides are contiguous, a splat for broadcasts, 4×4 register transposes (in
//! blocks of 16 rows) when the run is contiguous only in the destination but another axis is
//! contiguous in the source, scalar gathers otherwise. Long runs are cut into chunks, and the outer axes (with
//! the chunks) are flattened and split among threads.
//!
//! Argument table: `[src (src_elems), dst (dst_elems)]`.

use crate::builder::{
    build_kernel, counted_loop, lanes, load_lanes, mem, store_lanes, thread_range, transpose4, KernelParams,
};
use crate::tiling::{elementwise, Access, Domain, Schedule};
use crate::{compile, CodegenError, Target};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use veltair_ir::SliceAxis;
use veltair_load::MachineCode;

/// Runs of twice this many elements or more are cut into chunks of it (parallel units).
const RUN_CHUNK: usize = 1024;
/// Rows of a transposed block: 16 floats, a cache line of the source.
const BLOCK_ROWS: usize = 16;
/// Transposed blocks of twice this many columns or more are cut into chunks of it.
const BLOCK_COLS: usize = 64;
/// The flattened outer axes are extended inwards until there are this many parallel units.
const PARALLEL_UNITS: usize = 64;
/// Largest buffer (in elements) a copy may address.
const MAX_ELEMS: usize = 1 << 40;

/// A strided copy; strides and offsets are in elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySpec {
    pub extents: Vec<usize>,
    pub src_offset: usize,
    /// May be 0 (broadcast) or negative (reversed slices).
    pub src_strides: Vec<isize>,
    pub dst_offset: usize,
    /// Must not map two coordinates to the same element.
    pub dst_strides: Vec<isize>,
    pub src_elems: usize,
    pub dst_elems: usize,
}

fn schedule_err(msg: String) -> CodegenError {
    CodegenError::Schedule(msg)
}

fn numel(shape: &[usize]) -> Result<usize, CodegenError> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMS)
        .ok_or_else(|| schedule_err(format!("shape {shape:?} is too large")))
}

fn row_major(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![1isize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1] as isize;
    }
    strides
}

impl CopySpec {
    /// Elements of each argument-table entry.
    /// The iteration domain and schedule: an element-wise domain over the extents.
    pub fn describe(&self, max_threads: usize) -> (Domain, Schedule) {
        let names: Vec<String> = (0..self.extents.len()).map(|i| format!("d{i}")).collect();
        let index = |strides: &[isize], offset: usize| -> String {
            let terms: Vec<String> = names.iter().zip(strides).map(|(n, s)| format!("{n}*{s}")).collect();
            format!("{offset}+{}", terms.join("+"))
        };
        let src = Access { tensor: "src".into(), index: vec![index(&self.src_strides, self.src_offset)] };
        let (mut domain, schedule) = elementwise("copy", &self.extents, "= src", vec![src], max_threads);
        domain.output = Access { tensor: "dst".into(), index: vec![index(&self.dst_strides, self.dst_offset)] };
        (domain, schedule)
    }

    pub fn arg_elems(&self) -> Vec<usize> {
        vec![self.src_elems, self.dst_elems]
    }

    /// `Transpose`: output axis `i` is input axis `perm[i]` of a row-major `shape`. With
    /// `shape = [N, C, HW]`, `perm = [0, 2, 1]` converts NCHW to NHWC (and `[N, HW, C]` back).
    pub fn transpose(shape: &[usize], perm: &[usize]) -> Result<CopySpec, CodegenError> {
        let mut seen = vec![false; shape.len()];
        if perm.len() != shape.len() || perm.iter().any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true))
        {
            return Err(schedule_err(format!("{perm:?} is not a permutation of the axes of {shape:?}")));
        }
        let elems = numel(shape)?;
        let src = row_major(shape);
        let extents: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        Ok(CopySpec {
            src_offset: 0,
            src_strides: perm.iter().map(|&p| src[p]).collect(),
            dst_offset: 0,
            dst_strides: row_major(&extents),
            extents,
            src_elems: elems,
            dst_elems: elems,
        })
    }

    /// One input of `Concat` (or, read backwards, one output of `Split`): the row-major
    /// `part_shape` copied into `out_shape` starting at `offset` along `axis`.
    pub fn concat_part(
        part_shape: &[usize],
        out_shape: &[usize],
        axis: usize,
        offset: usize,
    ) -> Result<CopySpec, CodegenError> {
        let fits = part_shape.len() == out_shape.len()
            && axis < out_shape.len()
            && (0..out_shape.len()).all(|d| d == axis || part_shape[d] == out_shape[d])
            && offset.checked_add(part_shape[axis]).is_some_and(|end| end <= out_shape[axis]);
        if !fits {
            return Err(schedule_err(format!(
                "{part_shape:?} does not fit {out_shape:?} at offset {offset} on axis {axis}"
            )));
        }
        let dst_strides = row_major(out_shape);
        Ok(CopySpec {
            extents: part_shape.to_vec(),
            src_offset: 0,
            src_strides: row_major(part_shape),
            dst_offset: offset * dst_strides[axis] as usize,
            dst_strides,
            src_elems: numel(part_shape)?,
            dst_elems: numel(out_shape)?,
        })
    }

    /// `Slice` of a row-major `in_shape` (`Split` pieces are slices with step 1), as the
    /// reference evaluator computes it; each axis may be listed once.
    pub fn slice(in_shape: &[usize], axes: &[SliceAxis]) -> Result<CopySpec, CodegenError> {
        let src = row_major(in_shape);
        let mut extents = in_shape.to_vec();
        let mut src_strides = src.clone();
        let mut src_offset = 0;
        let mut seen = vec![false; in_shape.len()];
        for s in axes {
            if s.axis >= in_shape.len() || std::mem::replace(&mut seen[s.axis], true) {
                return Err(schedule_err(format!("slice axis {} of {in_shape:?} is invalid or repeated", s.axis)));
            }
            let dim = in_shape[s.axis] as i128;
            let last = s.start as i128 + s.step as i128 * (s.len as i128 - 1);
            if s.len > 0 && (s.start as i128 >= dim || last < 0 || last >= dim) {
                return Err(schedule_err(format!("slice {s:?} leaves {in_shape:?}")));
            }
            extents[s.axis] = s.len;
            if s.len > 0 {
                src_offset += s.start * src[s.axis] as usize;
                src_strides[s.axis] = src[s.axis] * s.step as isize;
            }
        }
        Ok(CopySpec {
            src_offset,
            src_strides,
            dst_offset: 0,
            dst_strides: row_major(&extents),
            src_elems: numel(in_shape)?,
            dst_elems: numel(&extents)?,
            extents,
        })
    }

    /// `Expand`: `in_shape` broadcast (numpy rules, aligned to the right) to `out_shape`.
    pub fn expand(in_shape: &[usize], out_shape: &[usize]) -> Result<CopySpec, CodegenError> {
        let lead = out_shape.len().checked_sub(in_shape.len());
        let fits = lead.is_some_and(|lead| in_shape.iter().zip(&out_shape[lead..]).all(|(&i, &o)| i == o || i == 1));
        let (Some(lead), true) = (lead, fits) else {
            return Err(schedule_err(format!("{in_shape:?} does not broadcast to {out_shape:?}")));
        };
        let src = row_major(in_shape);
        let mut src_strides = vec![0; out_shape.len()];
        for (i, &d) in in_shape.iter().enumerate() {
            if d != 1 {
                src_strides[lead + i] = src[i];
            }
        }
        Ok(CopySpec {
            extents: out_shape.to_vec(),
            src_offset: 0,
            src_strides,
            dst_offset: 0,
            dst_strides: row_major(out_shape),
            src_elems: numel(in_shape)?,
            dst_elems: numel(out_shape)?,
        })
    }

    /// Checks that every access is in bounds and no two coordinates write one element.
    fn validate(&self) -> Result<(), CodegenError> {
        let rank = self.extents.len();
        if self.src_strides.len() != rank || self.dst_strides.len() != rank {
            return Err(schedule_err(format!("copy strides do not match the extents {:?}", self.extents)));
        }
        if self.src_elems > MAX_ELEMS || self.dst_elems > MAX_ELEMS {
            return Err(schedule_err("copy buffers are too large".into()));
        }
        if self.extents.contains(&0) {
            return Ok(());
        }
        for (what, offset, strides, elems) in [
            ("source", self.src_offset, &self.src_strides, self.src_elems),
            ("destination", self.dst_offset, &self.dst_strides, self.dst_elems),
        ] {
            let (mut lo, mut hi) = (offset as i128, offset as i128);
            for (&e, &s) in self.extents.iter().zip(strides) {
                let span = s as i128 * (e as i128 - 1);
                lo += span.min(0);
                hi += span.max(0);
            }
            if lo < 0 || hi >= elems as i128 {
                return Err(schedule_err(format!("copy {what} range {lo}..={hi} is outside its {elems} elements")));
            }
        }
        // Sufficient condition for distinct destinations: sorted by stride magnitude, each
        // stride exceeds the span of all smaller ones.
        let mut dst: Vec<(i128, i128)> = self
            .extents
            .iter()
            .zip(&self.dst_strides)
            .filter(|&(&e, _)| e > 1)
            .map(|(&e, &s)| ((s as i128).abs(), e as i128))
            .collect();
        dst.sort_unstable();
        let mut span = 0;
        for (s, e) in dst {
            if s <= span {
                return Err(schedule_err(format!(
                    "destination strides {:?} write some element twice",
                    self.dst_strides
                )));
            }
            span += s * (e - 1);
        }
        Ok(())
    }
}

/// One loop of the copy: extent and strides (elements).
#[derive(Clone, Copy, Debug)]
struct Axis {
    len: usize,
    src: i64,
    dst: i64,
}

/// The innermost, fully unrolled or vectorised part of a loop nest.
#[derive(Clone, Copy, Debug)]
enum Leaf {
    /// `len` elements along one axis.
    Run(Axis),
    /// `rows` (a multiple of 4, source stride 1, destination stride `row_dst`) by `cols`
    /// columns (source stride `col_src`, destination stride 1), moved with 4×4 register
    /// transposes.
    Block { rows: usize, cols: usize, row_dst: i64, col_src: i64 },
}

/// A loop nest: `axes` (outermost first) around `leaf`, from element offsets `src`/`dst`.
#[derive(Clone, Debug)]
struct Nest {
    axes: Vec<Axis>,
    leaf: Leaf,
    src: i64,
    dst: i64,
}

/// The copy's axes without extent-1 axes and with contiguous neighbours merged; `None` when
/// the copy is empty.
fn simplify(spec: &CopySpec) -> Option<Vec<Axis>> {
    if spec.extents.contains(&0) {
        return None;
    }
    let mut axes: Vec<Axis> = Vec::new();
    for ((&len, &src), &dst) in spec.extents.iter().zip(&spec.src_strides).zip(&spec.dst_strides) {
        if len == 1 {
            continue;
        }
        let inner = Axis { len, src: src as i64, dst: dst as i64 };
        match axes.last_mut() {
            Some(outer) if outer.src == inner.src * len as i64 && outer.dst == inner.dst * len as i64 => {
                *outer = Axis { len: outer.len * len, ..inner };
            }
            _ => axes.push(inner),
        }
    }
    Some(axes)
}

/// The loop nests of a simplified copy.
fn plan(mut axes: Vec<Axis>, src: i64, dst: i64) -> Vec<Nest> {
    if axes.is_empty() {
        axes.push(Axis { len: 1, src: 1, dst: 1 });
    }
    // Any axis contiguous in the destination goes innermost (the order of a copy's loops is free).
    if let Some(i) = axes.iter().position(|a| a.dst == 1) {
        let contiguous = axes.remove(i);
        axes.push(contiguous);
    }
    let last = axes.pop().expect("at least one axis");
    let run = |len| Leaf::Run(Axis { len, ..last });
    let row = axes.iter().rposition(|a| a.src == 1 && a.len >= 4);
    let Some(i) = row.filter(|_| last.dst == 1 && last.src != 0 && last.src != 1) else {
        return chunked(axes, last, RUN_CHUNK, run, src, dst);
    };
    // Transposed: blocks of 16 rows (whole cache lines of the source), then one block of the
    // remaining multiple of 4 rows, then the last rows as gathered runs.
    let row = axes.remove(i);
    let block = |rows| move |cols| Leaf::Block { rows, cols, row_dst: row.dst, col_src: last.src };
    let mut nests = Vec::new();
    let (big, mid, rest) = (row.len / BLOCK_ROWS, row.len % BLOCK_ROWS / 4 * 4, row.len % 4);
    if big > 0 {
        let mut outer = axes.clone();
        outer.push(Axis { len: big, src: BLOCK_ROWS as i64, dst: BLOCK_ROWS as i64 * row.dst });
        nests.extend(chunked(outer, last, BLOCK_COLS, block(BLOCK_ROWS), src, dst));
    }
    let done = (big * BLOCK_ROWS) as i64;
    if mid > 0 {
        nests.extend(chunked(axes.clone(), last, BLOCK_COLS, block(mid), src + done, dst + done * row.dst));
    }
    if rest > 0 {
        let done = (row.len - rest) as i64;
        axes.push(Axis { len: rest, ..row });
        nests.extend(chunked(axes, last, RUN_CHUNK, run, src + done, dst + done * row.dst));
    }
    nests
}

/// Nests for `axes` around a leaf along `along`; when `along` has `2·chunk` or more elements,
/// it is cut into chunks (one more outer axis) and a remainder.
fn chunked(axes: Vec<Axis>, along: Axis, chunk: usize, leaf: impl Fn(usize) -> Leaf, src: i64, dst: i64) -> Vec<Nest> {
    if along.len < 2 * chunk {
        return vec![Nest { axes, leaf: leaf(along.len), src, dst }];
    }
    let chunks = along.len / chunk;
    let mut outer = axes.clone();
    outer.push(Axis { len: chunks, src: chunk as i64 * along.src, dst: chunk as i64 * along.dst });
    let mut nests = vec![Nest { axes: outer, leaf: leaf(chunk), src, dst }];
    let done = chunks * chunk;
    if along.len > done {
        let (src, dst) = (src + done as i64 * along.src, dst + done as i64 * along.dst);
        nests.push(Nest { axes, leaf: leaf(along.len - done), src, dst });
    }
    nests
}

/// Generates and compiles the copy kernel.
pub fn compile_copy(spec: &CopySpec, target: &Target) -> Result<MachineCode, CodegenError> {
    spec.validate()?;
    let nests = simplify(spec).map(|axes| plan(axes, spec.src_offset as i64, spec.dst_offset as i64));
    let func = build_kernel(target, |b, params| {
        let src = params.arg(b, 0);
        let dst = params.arg(b, 1);
        for nest in nests.iter().flatten() {
            emit_nest(b, params, src, dst, nest);
        }
    });
    compile(func, target, spec.arg_elems())
}

/// `ptr + index · stride` elements, in bytes.
fn advance(b: &mut FunctionBuilder, ptr: Value, index: Value, stride: i64) -> Value {
    let off = b.ins().imul_imm_s(index, stride * 4);
    b.ins().iadd(ptr, off)
}

fn emit_nest(b: &mut FunctionBuilder, params: KernelParams, src: Value, dst: Value, nest: &Nest) {
    // The outer axes flattened into the parallel units.
    let mut parallel = 0;
    let mut units = 1;
    while parallel < nest.axes.len() && units < PARALLEL_UNITS {
        units *= nest.axes[parallel].len;
        parallel += 1;
    }
    let (u0, u1) = thread_range(b, units as i64, params.thread, params.threads);
    counted_loop(b, u0, u1, 1, |b, u| {
        let mut sp = b.ins().iadd_imm_s(src, nest.src * 4);
        let mut dp = b.ins().iadd_imm_s(dst, nest.dst * 4);
        let mut rest = u;
        for (i, axis) in nest.axes[..parallel].iter().enumerate().rev() {
            let coord = if i == 0 { rest } else { b.ins().urem_imm_u(rest, axis.len as i64) };
            if i > 0 {
                rest = b.ins().udiv_imm_u(rest, axis.len as i64);
            }
            sp = advance(b, sp, coord, axis.src);
            dp = advance(b, dp, coord, axis.dst);
        }
        loops(b, &nest.axes[parallel..], nest.leaf, sp, dp);
    });
}

/// Sequential loops over `axes` around the leaf.
fn loops(b: &mut FunctionBuilder, axes: &[Axis], leaf: Leaf, sp: Value, dp: Value) {
    let Some((axis, inner)) = axes.split_first() else {
        match leaf {
            Leaf::Run(run) => emit_run(b, run, sp, dp),
            Leaf::Block { rows, cols, row_dst, col_src } => emit_block(b, rows, cols, row_dst, col_src, sp, dp),
        }
        return;
    };
    let zero = b.ins().iconst(types::I64, 0);
    let end = b.ins().iconst(types::I64, axis.len as i64);
    counted_loop(b, zero, end, 1, |b, i| {
        let s = advance(b, sp, i, axis.src);
        let d = advance(b, dp, i, axis.dst);
        loops(b, inner, leaf, s, d);
    });
}

/// Stores `len` (< 2·RUN_CHUNK) contiguous elements at `dp`, 16 per loop iteration: `value`
/// gives the vector for element `i` (a runtime base plus a static offset) and lane count.
fn store_contiguous(
    b: &mut FunctionBuilder,
    len: usize,
    dp: Value,
    value: impl Fn(&mut FunctionBuilder, Value, usize, usize) -> Value,
) {
    let zero = b.ins().iconst(types::I64, 0);
    let full = len / 16;
    if full > 0 {
        let end = b.ins().iconst(types::I64, full as i64 * 16);
        counted_loop(b, zero, end, 16, |b, i| {
            let d = advance(b, dp, i, 1);
            for j in 0..4 {
                let v = value(b, i, 4 * j, 4);
                b.ins().store(mem(), v, d, 16 * j as i32);
            }
        });
    }
    let rest = len % 16;
    for j in 0..rest.div_ceil(4) {
        let at = full * 16 + 4 * j;
        let v = value(b, zero, at, lanes(rest, j));
        store_lanes(b, v, dp, 4 * at as i32, lanes(rest, j));
    }
}

fn emit_run(b: &mut FunctionBuilder, run: Axis, sp: Value, dp: Value) {
    match (run.src, run.dst) {
        (1, 1) => store_contiguous(b, run.len, dp, |b, i, at, n| {
            let s = advance(b, sp, i, 1);
            load_lanes(b, s, 4 * at as i32, n)
        }),
        (0, 1) => {
            let x = b.ins().load(types::F32, mem(), sp, 0);
            let v = b.ins().splat(types::F32X4, x);
            store_contiguous(b, run.len, dp, |_, _, _, _| v);
        }
        (stride, 1) => store_contiguous(b, run.len, dp, |b, i, at, n| {
            let s = advance(b, sp, i, stride);
            let z = b.ins().f32const(0.0);
            let mut v = b.ins().splat(types::F32X4, z);
            for l in 0..n {
                let addr = b.ins().iadd_imm_s(s, (at + l) as i64 * stride * 4);
                let x = b.ins().load(types::F32, mem(), addr, 0);
                v = b.ins().insertlane(v, x, l as u8);
            }
            v
        }),
        (src, dst) => {
            let zero = b.ins().iconst(types::I64, 0);
            let end = b.ins().iconst(types::I64, run.len as i64);
            counted_loop(b, zero, end, 1, |b, i| {
                let s = advance(b, sp, i, src);
                let d = advance(b, dp, i, dst);
                let x = b.ins().load(types::F32, mem(), s, 0);
                b.ins().store(mem(), x, d, 0);
            });
        }
    }
}

/// `rows` (a multiple of 4, contiguous in the source) by `cols` columns (contiguous in the
/// destination): each group of 4 columns is loaded as 4-row vectors and transposed.
fn emit_block(b: &mut FunctionBuilder, rows: usize, cols: usize, row_dst: i64, col_src: i64, sp: Value, dp: Value) {
    let full = cols / 4;
    if full > 0 {
        let zero = b.ins().iconst(types::I64, 0);
        let end = b.ins().iconst(types::I64, full as i64 * 4);
        counted_loop(b, zero, end, 4, |b, j| {
            let s = advance(b, sp, j, col_src);
            let d = advance(b, dp, j, 1);
            for r in (0..rows as i64).step_by(4) {
                let loaded = [0, 1, 2, 3].map(|k| {
                    let addr = b.ins().iadd_imm_s(s, (k * col_src + r) * 4);
                    b.ins().load(types::F32X4, mem(), addr, 0)
                });
                for (i, row) in (r..).zip(transpose4(b, loaded)) {
                    let addr = b.ins().iadd_imm_s(d, i * row_dst * 4);
                    b.ins().store(mem(), row, addr, 0);
                }
            }
        });
    }
    for j in (full * 4) as i64..cols as i64 {
        for r in (0..rows as i64).step_by(4) {
            let addr = b.ins().iadd_imm_s(sp, (j * col_src + r) * 4);
            let col = b.ins().load(types::F32X4, mem(), addr, 0);
            for i in 0..4 {
                let x = b.ins().extractlane(col, i as u8);
                let addr = b.ins().iadd_imm_s(dp, ((r + i) * row_dst + j) * 4);
                b.ins().store(mem(), x, addr, 0);
            }
        }
    }
}
