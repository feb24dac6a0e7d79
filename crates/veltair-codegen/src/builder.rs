//! Small helpers over `cranelift_frontend::FunctionBuilder` for the shapes of code kernels
//! need: the uniform kernel signature, counted loops and this thread's share of a range.

use crate::Target;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, ConstantData, Endianness, Function, InstBuilder, MemFlagsData, Signature, UserFuncName, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

/// Flags for loads and stores of kernel buffers: in bounds (never trapping), but vectors are
/// only element-aligned (AVX encodings accept unaligned memory operands).
pub fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// A kernel's parameters: its argument table and its share of the parallel loop.
#[derive(Clone, Copy)]
pub struct KernelParams {
    args: Value,
    pub thread: Value,
    pub threads: Value,
}

impl KernelParams {
    /// Pointer number `i` of the argument table.
    pub fn arg(&self, b: &mut FunctionBuilder, i: usize) -> Value {
        b.ins().load(types::I64, mem(), self.args, (i * 8) as i32)
    }
}

/// Builds a function with the uniform kernel signature `(args, thread_index, thread_count)`:
/// `body` emits the code of the entry block onwards; the return is added after it.
pub fn build_kernel(target: &Target, body: impl FnOnce(&mut FunctionBuilder, KernelParams)) -> Function {
    let mut sig = Signature::new(CallConv::SystemV);
    for _ in 0..3 {
        sig.params.push(AbiParam::new(types::I64));
    }
    let mut func = Function::with_name_signature(UserFuncName::user(0, 0), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let &[args, thread, threads] = b.block_params(entry) else { unreachable!("the signature has three parameters") };
    body(&mut b, KernelParams { args, thread, threads });
    b.ins().return_(&[]);
    b.finalize(target.isa.frontend_config());
    func
}

/// Emits `for iv in (start..end).step_by(step) { body(iv) }` with runtime bounds.
pub fn counted_loop(
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    step: i64,
    mut body: impl FnMut(&mut FunctionBuilder, Value),
) {
    let header = b.create_block();
    let body_block = b.create_block();
    let exit = b.create_block();
    b.append_block_param(header, types::I64);
    b.ins().jump(header, &[start.into()]);
    b.switch_to_block(header);
    let iv = b.block_params(header)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, iv, end);
    b.ins().brif(more, body_block, &[], exit, &[]);
    b.switch_to_block(body_block);
    b.seal_block(body_block);
    body(b, iv);
    let next = b.ins().iadd_imm_s(iv, step);
    b.ins().jump(header, &[next.into()]);
    b.seal_block(header);
    b.switch_to_block(exit);
    b.seal_block(exit);
}

/// Emits `if cond { body }`.
pub fn if_then(b: &mut FunctionBuilder, cond: Value, body: impl FnOnce(&mut FunctionBuilder)) {
    let then = b.create_block();
    let done = b.create_block();
    b.ins().brif(cond, then, &[], done, &[]);
    b.switch_to_block(then);
    b.seal_block(then);
    body(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(done);
    b.seal_block(done);
}

/// This thread's share `[start, end)` of `0..total` units: `total * t / threads` up to
/// `total * (t + 1) / threads`.
pub fn thread_range(b: &mut FunctionBuilder, total: i64, thread: Value, threads: Value) -> (Value, Value) {
    let total_v = b.ins().iconst(types::I64, total);
    let lo = b.ins().imul(total_v, thread);
    let start = b.ins().udiv(lo, threads);
    let next = b.ins().iadd_imm_s(thread, 1);
    let hi = b.ins().imul(total_v, next);
    let end = b.ins().udiv(hi, threads);
    (start, end)
}

/// Loads `lanes` (0..=4) floats at `ptr + off` into a vector, zero filling the rest.
pub fn load_lanes(b: &mut FunctionBuilder, ptr: Value, off: i32, lanes: usize) -> Value {
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
pub fn store_lanes(b: &mut FunctionBuilder, v: Value, ptr: Value, off: i32, lanes: usize) {
    if lanes == 4 {
        b.ins().store(mem(), v, ptr, off);
        return;
    }
    for l in 0..lanes {
        let x = b.ins().extractlane(v, l as u8);
        b.ins().store(mem(), x, ptr, off + 4 * l as i32);
    }
}

/// Valid lanes of vector `j` of a row with `cols` valid elements.
pub fn lanes(cols: usize, j: usize) -> usize {
    cols.saturating_sub(4 * j).min(4)
}

/// A two-input shuffle of 32-bit lanes (`0..4` from `x`, `4..8` from `y`).
fn shuffle32(b: &mut FunctionBuilder, x: Value, y: Value, sel: [u8; 4]) -> Value {
    let little = MemFlagsData::new().with_endianness(Endianness::Little);
    let bytes: Vec<u8> = sel.iter().flat_map(|&l| (0..4).map(move |k| 4 * l + k)).collect();
    let mask = b.func.dfg.immediates.push(ConstantData::from(bytes));
    let xb = b.ins().bitcast(types::I8X16, little, x);
    let yb = b.ins().bitcast(types::I8X16, little, y);
    let r = b.ins().shuffle(xb, yb, mask);
    b.ins().bitcast(types::F32X4, little, r)
}

/// Transposes four f32x4 rows.
pub fn transpose4(b: &mut FunctionBuilder, r: [Value; 4]) -> [Value; 4] {
    let t0 = shuffle32(b, r[0], r[1], [0, 4, 1, 5]);
    let t1 = shuffle32(b, r[0], r[1], [2, 6, 3, 7]);
    let t2 = shuffle32(b, r[2], r[3], [0, 4, 1, 5]);
    let t3 = shuffle32(b, r[2], r[3], [2, 6, 3, 7]);
    [
        shuffle32(b, t0, t2, [0, 1, 4, 5]),
        shuffle32(b, t0, t2, [2, 3, 6, 7]),
        shuffle32(b, t1, t3, [0, 1, 4, 5]),
        shuffle32(b, t1, t3, [2, 3, 6, 7]),
    ]
}
