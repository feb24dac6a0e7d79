//! The lowering driver: walks the graph's nodes in order, keeps where each value lives (in
//! which layout, in which buffer or constant), converts layouts on demand, and reports every
//! node it cannot lower at once.

use crate::builder::{Arg, PlanBuilder};
use crate::layout::{arrange, layouts_agree, stored_shape, to_layout_perm, Layout};
use std::collections::HashMap;
use veltair_codegen::copy::{compile_copy, CopySpec};
use veltair_codegen::{CodegenError, MachineCode, Target};
use veltair_exec::Plan;
use veltair_ir::{DType, Graph, Node, NodeStats, Op, ValueId};

/// Lowering choices.
#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// Most threads any kernel of the plan may run on.
    pub max_threads: usize,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions { max_threads: 2 }
    }
}

/// Why a graph cannot be lowered.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    #[error("{} node(s) cannot be lowered to generated code yet:\n{}", .0.len(), .0.join("\n"))]
    Unsupported(Vec<String>),
    #[error("{0}")]
    Graph(String),
}

/// Why one node failed.
pub enum Fail {
    Unsupported(String),
    Codegen(CodegenError),
}

impl From<CodegenError> for Fail {
    fn from(e: CodegenError) -> Fail {
        Fail::Codegen(e)
    }
}

/// Shorthand for an unsupported-case failure.
pub fn unsupported<T>(why: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Unsupported(why.into()))
}

/// Lowers `graph` (shapes static, passes applied) to a plan for `target`.
pub fn lower(graph: &Graph, target: &Target, options: &LowerOptions) -> Result<Plan, LowerError> {
    let mut l = Lowerer { graph, target, options, plan: PlanBuilder::default(), locs: HashMap::new() };
    let mut inputs = Vec::new();
    for &v in &graph.inputs {
        let value = graph.value(v);
        if value.ty.dtype != DType::F32 {
            return Err(LowerError::Unsupported(vec![format!(
                "input `{}`: element type {:?} (generated code computes f32 only)",
                value.name, value.ty.dtype
            )]));
        }
        let buf = l.plan.input_buffer(value.ty.numel());
        l.register(v, Layout::Plain, Arg::Buf(buf));
        inputs.push((value.name.clone(), value.ty.shape.clone(), buf));
    }
    let mut problems = Vec::new();
    let mut missing = vec![false; graph.values.len()];
    for node in &graph.nodes {
        if node.inputs.iter().flatten().any(|v| missing[v.0]) {
            node.outputs.iter().for_each(|o| missing[o.0] = true);
            continue;
        }
        if let Err(fail) = l.node(node) {
            let why = match fail {
                Fail::Unsupported(why) => why,
                Fail::Codegen(e) => e.to_string(),
            };
            problems.push(format!("  node `{}` ({}): {why}", node.name, node.source_op));
            node.outputs.iter().for_each(|o| missing[o.0] = true);
        }
    }
    if !problems.is_empty() {
        return Err(LowerError::Unsupported(problems));
    }
    let mut outputs = Vec::new();
    for &v in &graph.outputs {
        let value = graph.value(v);
        let buf = match l.get(v, Layout::Plain) {
            Ok(Arg::Buf(buf)) => buf,
            _ => return Err(LowerError::Graph(format!("output `{}` is not computed by any node", value.name))),
        };
        l.plan.keep(buf);
        outputs.push((value.name.clone(), value.ty.shape.clone(), buf));
    }
    Ok(l.plan.finish(graph.name.clone(), inputs, outputs))
}

/// Lowering state.
pub struct Lowerer<'a> {
    pub graph: &'a Graph,
    pub target: &'a Target,
    pub options: &'a LowerOptions,
    pub plan: PlanBuilder,
    /// Where each computed value lives, per layout.
    locs: HashMap<(ValueId, Layout), Arg>,
}

impl Lowerer<'_> {
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.graph.value(v).ty.shape
    }

    fn register(&mut self, v: ValueId, layout: Layout, arg: Arg) {
        self.locs.insert((v, layout), arg);
        if layouts_agree(self.shape(v)) {
            let other = if layout == Layout::Plain { Layout::Nhwc } else { Layout::Plain };
            self.locs.insert((v, other), arg);
        }
    }

    /// A fresh buffer for node output `v`, stored in `layout`.
    pub fn define(&mut self, v: ValueId, layout: Layout) -> Arg {
        let arg = Arg::Buf(self.plan.buffer(self.graph.value(v).ty.numel()));
        self.register(v, layout, arg);
        arg
    }

    /// Makes `v` an alias of `arg` (a view: same buffer, new shape).
    pub fn alias(&mut self, v: ValueId, layout: Layout, arg: Arg) {
        self.register(v, layout, arg);
    }

    /// Whether `v` is held in `layout` (and not also identically in the other).
    pub fn prefers(&self, v: ValueId, layout: Layout) -> bool {
        self.graph.value(v).constant.is_none() && !layouts_agree(self.shape(v)) && self.locs.contains_key(&(v, layout))
    }

    /// `v` stored in `layout`: a constant arranged at compile time, or the activation,
    /// transposed by a generated copy if it is only held in the other layout.
    pub fn get(&mut self, v: ValueId, layout: Layout) -> Result<Arg, Fail> {
        if let Some(&arg) = self.locs.get(&(v, layout)) {
            return Ok(arg);
        }
        let value = self.graph.value(v);
        if value.ty.dtype != DType::F32 {
            return unsupported(format!(
                "`{}` has element type {:?}; generated code computes f32",
                value.name, value.ty.dtype
            ));
        }
        if let Some(t) = &value.constant {
            let data = t.as_f32(&value.name).map_err(|e| Fail::Unsupported(e.to_string()))?;
            let arg = self.plan.constant(arrange(data, &value.ty.shape, layout));
            self.locs.insert((v, layout), arg);
            return Ok(arg);
        }
        let other = if layout == Layout::Plain { Layout::Nhwc } else { Layout::Plain };
        let Some(&src) = self.locs.get(&(v, other)) else {
            return unsupported(format!("value `{}` was never computed", value.name));
        };
        let shape = value.ty.shape.clone();
        let stored = stored_shape(&shape, other);
        // Stored `other` order → stored `layout` order.
        let perm = match layout {
            Layout::Nhwc => to_layout_perm(Layout::Nhwc, 4),
            Layout::Plain => crate::layout::from_layout_perm(Layout::Nhwc, 4),
        };
        let dst = self.define(v, layout);
        let label = format!("{} to {layout:?}", value.name);
        self.copy(&label, CopySpec::transpose(&stored, &perm)?, src, dst)?;
        Ok(dst)
    }

    /// Compiles (once) and calls a copy kernel.
    pub fn copy(&mut self, label: &str, spec: CopySpec, src: Arg, dst: Arg) -> Result<(), Fail> {
        let elems = spec.extents.iter().product::<usize>() as u64;
        let k = self.kernel(format!("copy {spec:?}"), |t| compile_copy(&spec, t))?;
        self.plan.step(label, k, vec![src, dst], elems);
        Ok(())
    }

    /// The kernel for `key`, generated by `make` unless an identical one exists.
    pub fn kernel(
        &mut self,
        key: String,
        make: impl FnOnce(&Target) -> Result<MachineCode, CodegenError>,
    ) -> Result<usize, Fail> {
        let target = self.target;
        Ok(self.plan.kernel(key, || make(target))?)
    }

    /// Multiply-accumulates of `node` (its output size when it has none).
    pub fn work(&self, node: &Node) -> u64 {
        let macs = NodeStats::of(self.graph, node).macs;
        if macs > 0 {
            macs
        } else {
            self.graph.value(node.outputs[0]).ty.numel() as u64
        }
    }

    fn node(&mut self, node: &Node) -> Result<(), Fail> {
        if node.outputs.iter().any(|&o| self.graph.value(o).ty.dtype != DType::F32) {
            return unsupported("non-f32 output (generated code computes f32 only)");
        }
        match &node.op {
            Op::Fused { main, main_inputs, epilogue } => self.layer(node, main, *main_inputs, epilogue),
            op @ (Op::Conv(_) | Op::Gemm { .. } | Op::MatMul) => self.layer(node, op, node.inputs.len(), &[]),
            _ => self.simple(node),
        }
    }
}
