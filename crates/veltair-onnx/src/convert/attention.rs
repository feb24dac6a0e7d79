//! Attention (opsets 23–25) inlined as IR steps, following the ONNX reference: 3-D inputs split
//! into heads, the past key/value cache concatenated, grouped-query heads repeated, `Q·√s ×
//! (K·√s)ᵀ`, softcap, the bias (the mask, bool or additive, padded to the key length, plus the
//! causal and sliding-window frontiers as a constant), softmax with fully masked rows zeroed,
//! `× V`, heads merged back. Outputs: Y, present key and value, and the QK product at the stage
//! `qk_matmul_output_mode` names. An external cache (`nonpad_kv_seqlen`) is refused.

use super::{invalid, unsupported, Body, Lowered, NodeCtx, Operand};
use crate::NodeProblem;
use veltair_ir::{BinaryOp, CompareOp, DType, Op, PadMode, ReduceOp, Tensor, UnaryOp};

pub fn convert(op: &str, ctx: &NodeCtx) -> Result<Option<Lowered>, NodeProblem> {
    if op != "Attention" {
        return Ok(None);
    }
    attention(ctx).map(Some)
}

/// Shapes of the 4-D (batch, heads, sequence, head size) operands.
struct Heads {
    batch: usize,
    q_heads: usize,
    kv_heads: usize,
    q_len: usize,
    kv_len: usize,
    head: usize,
    v_head: usize,
}

fn attention(ctx: &NodeCtx) -> Result<Lowered, NodeProblem> {
    let a = &ctx.attrs;
    if ctx.input(6).is_some() {
        return Err(unsupported("Attention with nonpad_kv_seqlen (an external KV cache)"));
    }
    let (past_key, past_value) = (ctx.input(4), ctx.input(5));
    if past_key.is_some() != past_value.is_some() {
        return Err(invalid("past_key and past_value must be given together"));
    }
    let value = |i: usize| ctx.input(i).map(Operand::Value).ok_or_else(|| invalid(format!("input #{i} is missing")));
    let (qt, kt, vt) = (ctx.ty(0)?.clone(), ctx.ty(1)?.clone(), ctx.ty(2)?.clone());
    if !qt.dtype.is_float() {
        return Err(invalid(format!("Attention over {}", qt.dtype)));
    }
    let mut body = Body::new(qt.dtype);
    let rank = qt.shape.len();
    let (mut q, mut k, mut v) = (value(0)?, value(1)?, value(2)?);
    let heads = match rank {
        4 if kt.shape.len() == 4 && vt.shape.len() == 4 => Heads {
            batch: qt.shape[0],
            q_heads: qt.shape[1],
            kv_heads: kt.shape[1],
            q_len: qt.shape[2],
            kv_len: kt.shape[2],
            head: qt.shape[3],
            v_head: vt.shape[3],
        },
        3 if kt.shape.len() == 3 && vt.shape.len() == 3 => {
            let count = |name: &str| match a.int(name)? {
                Some(h) if h >= 1 => Ok(h as usize),
                other => Err(invalid(format!("3-D Attention needs a positive {name}, has {other:?}"))),
            };
            let (hq, hkv) = (count("q_num_heads")?, count("kv_num_heads")?);
            let split = |hidden: usize, h: usize| {
                if hidden.is_multiple_of(h) {
                    Ok(hidden / h)
                } else {
                    Err(invalid(format!("a hidden size of {hidden} does not split into {h} heads")))
                }
            };
            let heads = Heads {
                batch: qt.shape[0],
                q_heads: hq,
                kv_heads: hkv,
                q_len: qt.shape[1],
                kv_len: kt.shape[1],
                head: split(qt.shape[2], hq)?,
                v_head: split(vt.shape[2], hkv)?,
            };
            let into_heads = |body: &mut Body, x: Operand, len: usize, h: usize, d: usize| {
                let x = body.push(Op::Reshape(vec![heads.batch, len, h, d]), vec![x]);
                body.push(Op::Transpose(vec![0, 2, 1, 3]), vec![x])
            };
            q = into_heads(&mut body, q, heads.q_len, hq, heads.head);
            k = into_heads(&mut body, k, heads.kv_len, hkv, split(kt.shape[2], hkv)?);
            v = into_heads(&mut body, v, heads.kv_len, hkv, heads.v_head);
            heads
        }
        _ => return Err(invalid("Q, K and V must all have rank 3 or all rank 4")),
    };
    let past_len = match past_key {
        Some(p) => ctx.graph.value(p).ty.shape.get(2).copied().ok_or_else(|| invalid("past_key must have rank 4"))?,
        None => 0,
    };
    let (present_key, present_value) = match (past_key, past_value) {
        (Some(pk), Some(pv)) => (
            body.push(Op::Concat { axis: 2 }, vec![Operand::Value(pk), k]),
            body.push(Op::Concat { axis: 2 }, vec![Operand::Value(pv), v]),
        ),
        _ => (k, v),
    };
    let total = heads.kv_len + past_len;
    let (mut keys, mut values) = (present_key.clone(), present_value.clone());
    if heads.q_heads != heads.kv_heads {
        if heads.kv_heads == 0 || !heads.q_heads.is_multiple_of(heads.kv_heads) {
            return Err(invalid(format!(
                "{} query heads do not group over {} key heads",
                heads.q_heads, heads.kv_heads
            )));
        }
        let reps = heads.q_heads / heads.kv_heads;
        let repeat = |body: &mut Body, x: Operand, d: usize| {
            let x = body.push(Op::Reshape(vec![heads.batch, heads.kv_heads, 1, total, d]), vec![x]);
            let x = body.push(Op::Expand(vec![heads.batch, heads.kv_heads, reps, total, d]), vec![x]);
            body.push(Op::Reshape(vec![heads.batch, heads.q_heads, total, d]), vec![x])
        };
        keys = repeat(&mut body, keys, heads.head);
        values = repeat(&mut body, values, heads.v_head);
    }
    let scale = if a.has("scale") { f64::from(a.float_or("scale", 1.0)?) } else { 1.0 / (heads.head as f64).sqrt() };
    let root = body.scalar(scale.sqrt() as f32)?;
    let keys_t = body.push(Op::Transpose(vec![0, 1, 3, 2]), vec![keys]);
    let q_scaled = body.binary(BinaryOp::Mul, q, root.clone());
    let k_scaled = body.binary(BinaryOp::Mul, keys_t, root);
    let mut qk = body.push(Op::MatMul, vec![q_scaled, k_scaled]);
    let softcap = a.float_or("softcap", 0.0)?;
    if softcap > 0.0 {
        let cap = body.scalar(softcap)?;
        let x = body.binary(BinaryOp::Div, qk, cap.clone());
        let x = body.unary(UnaryOp::Tanh, x);
        qk = body.binary(BinaryOp::Mul, x, cap);
    }
    let bias = attention_bias(ctx, &mut body, &heads, past_len)?;
    let with_bias = match &bias {
        Some((b, _)) => body.binary(BinaryOp::Add, qk.clone(), b.clone()),
        None => qk.clone(),
    };
    let mut probs = body.push(Op::Softmax { axis: 3, log: false, coerce_2d: false }, vec![with_bias.clone()]);
    if let Some((b, bias_rank)) = bias {
        // Rows the bias masks entirely attend to nothing: zeros, not the softmax's NaN.
        let last = vec![bias_rank - 1];
        let row_max = body.push(Op::Reduce { op: ReduceOp::Max, axes: last, keepdims: true }, vec![b]);
        let neg_inf = body.scalar(f32::NEG_INFINITY)?;
        let masked = body.push(Op::Compare(CompareOp::Equal), vec![row_max, neg_inf]);
        let zero = body.scalar(0.0)?;
        probs = body.push(Op::Where, vec![masked, zero, probs]);
    }
    let qk_output = match a.int_or("qk_matmul_output_mode", 0)? {
        0 | 1 => qk,
        2 => with_bias,
        3 => probs.clone(),
        m => return Err(invalid(format!("qk_matmul_output_mode {m} (0 to 3)"))),
    };
    let mut y = body.push(Op::MatMul, vec![probs, values]);
    if rank == 3 {
        y = body.push(Op::Transpose(vec![0, 2, 1, 3]), vec![y]);
        y = body.push(Op::Reshape(vec![heads.batch, heads.q_len, heads.q_heads * heads.v_head]), vec![y]);
    }
    Ok(body.finish(vec![y, present_key, present_value, qk_output]))
}

/// The additive bias over `[…, q_len, kv_len + past_len]`: the mask (a bool one as 0/-inf),
/// padded with -inf to the key length, plus the causal and sliding-window frontiers (a query
/// at `i` sits at absolute position `i + past_len`), with its rank. `None` when nothing masks.
fn attention_bias(
    ctx: &NodeCtx,
    body: &mut Body,
    h: &Heads,
    past_len: usize,
) -> Result<Option<(Operand, usize)>, NodeProblem> {
    let a = &ctx.attrs;
    let total = h.kv_len + past_len;
    let mut bias = None;
    if let Some(mask) = ctx.input(3) {
        let mt = ctx.graph.value(mask).ty.clone();
        let mut m = Operand::Value(mask);
        if mt.dtype == DType::Bool {
            let (zero, neg_inf) = (body.scalar(0.0)?, body.scalar(f32::NEG_INFINITY)?);
            m = body.push(Op::Where, vec![m, zero, neg_inf]);
        } else if mt.dtype != body.dtype {
            m = body.push(Op::Cast { to: body.dtype, saturate: false }, vec![m]);
        }
        let last = *mt.shape.last().ok_or_else(|| invalid("attn_mask must have rank 1 or more"))?;
        if last > total {
            return Err(invalid(format!("attn_mask covers {last} keys, there are {total}")));
        }
        if last < total {
            let mut end = vec![0; mt.shape.len()];
            *end.last_mut().expect("rank checked") = (total - last) as i64;
            let pad =
                Op::Pad { begin: vec![0; mt.shape.len()], end, mode: PadMode::Constant, value: f64::NEG_INFINITY };
            m = body.push(pad, vec![m]);
        }
        bias = Some((m, mt.shape.len()));
    }
    let causal = a.int_or("is_causal", 0)? != 0;
    let (left, right) = (a.int_or("left_window_size", -1)?, a.int_or("right_window_size", -1)?);
    if causal || left >= 0 || right >= 0 {
        let allowed = |i: usize, j: usize| {
            let diff = (i + past_len) as i64 - j as i64;
            (!causal || diff >= 0) && (left < 0 || diff <= left) && (right < 0 || -diff <= right)
        };
        let frontier: Vec<f32> = (0..h.q_len)
            .flat_map(|i| (0..total).map(move |j| if allowed(i, j) { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let t = Tensor::from_f32(vec![h.q_len, total], frontier).map_err(|e| invalid(e.to_string()))?;
        let c = body.constant(t);
        bias = Some(match bias {
            Some((m, rank)) => (body.binary(BinaryOp::Add, m, c), rank.max(2)),
            None => (c, 2),
        });
    }
    Ok(bias)
}
