//! The lowering driver: walks the graph's nodes in order, keeps where each value lives (in
//! which layout, in which buffer or constant), converts layouts on demand, and reports every
//! node it cannot lower at once.

use crate::builder::{Arg, BufId, PendingPort, PlanBuilder};
use crate::layout::{arrange, layouts_agree, stored_shape, to_layout_perm, Layout};
use crate::space::CacheSizes;
use std::collections::{HashMap, HashSet};
use veltair_codegen::copy::{compile_copy, CopySpec};
use veltair_codegen::tiling::describe;
use veltair_codegen::{CodegenError, Target};
use veltair_exec::{Plan, Storage};
use veltair_ir::{DType, Graph, Node, NodeStats, Op, Tensor, ValueId};
use veltair_load::MachineCode;

/// Lowering choices.
#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// Most threads any kernel of the plan may run on.
    pub max_threads: usize,
    /// Versions (candidate schedules) per GEMM-family layer; 1 keeps only the default.
    pub versions: usize,
    /// Cache capacities the schedule space is pruned against.
    pub caches: CacheSizes,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions { max_threads: 2, versions: 1, caches: CacheSizes::default() }
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

impl Fail {
    pub fn message(self) -> String {
        match self {
            Fail::Unsupported(why) => why,
            Fail::Codegen(e) => e.to_string(),
        }
    }
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
    let mut l = Lowerer {
        graph,
        owner: String::new(),
        options,
        plan: PlanBuilder::default(),
        locs: HashMap::new(),
        concat_slots: concat_slots(graph),
        written_in_place: HashSet::new(),
        folded: HashMap::new(),
    };
    let mut inputs = Vec::new();
    for &v in &graph.inputs {
        let value = graph.value(v);
        let buf = l.plan.input_buffer(l.slots(v));
        l.register(v, Layout::Plain, Arg::Buf(buf));
        inputs.push(PendingPort {
            name: value.name.clone(),
            shape: value.ty.shape.clone(),
            dtype: value.ty.dtype,
            buf,
        });
    }
    let mut problems = Vec::new();
    let mut missing = vec![false; graph.values.len()];
    for node in &graph.nodes {
        if node.inputs.iter().flatten().any(|v| missing[v.0]) {
            node.outputs.iter().for_each(|o| missing[o.0] = true);
            continue;
        }
        l.owner = format!("node `{}` ({})", node.name, node.source_op);
        if let Err(fail) = l.node(node) {
            problems.push(format!("  {}: {}", l.owner, fail.message()));
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
            // An output the importer folded to a constant is copied into its own buffer.
            Ok(constant) => l.materialize(v, constant).map_err(|f| {
                LowerError::Unsupported(vec![format!("  output `{}` (a constant): {}", value.name, f.message())])
            })?,
            Err(_) => return Err(LowerError::Graph(format!("output `{}` is not computed by any node", value.name))),
        };
        l.plan.keep(buf);
        outputs.push(PendingPort {
            name: value.name.clone(),
            shape: value.ty.shape.clone(),
            dtype: value.ty.dtype,
            buf,
        });
    }
    l.plan.finish(graph.name.clone(), options.max_threads, target, inputs, outputs).map_err(LowerError::Unsupported)
}

/// Lowering state.
pub struct Lowerer<'a> {
    pub graph: &'a Graph,
    /// The node being lowered, as messages name it.
    owner: String,
    pub options: &'a LowerOptions,
    pub plan: PlanBuilder,
    /// Where each computed value lives, per layout.
    locs: HashMap<(ValueId, Layout), Arg>,
    /// Values a convolution may write straight into a channel slice of a Concat's output.
    pub concat_slots: HashMap<ValueId, ConcatSlot>,
    /// Values that were written into their Concat's output (the Concat skips them).
    pub written_in_place: HashSet<ValueId>,
    /// Results of nodes that read no data (every runtime input empty), evaluated at compile
    /// time: constants like the graph's own.
    folded: HashMap<ValueId, Tensor>,
}

/// Where a Concat input lives inside the Concat's (NHWC) output.
#[derive(Clone, Copy, Debug)]
pub struct ConcatSlot {
    pub concat: ValueId,
    pub channels: usize,
    pub offset: usize,
}

/// Inputs of channel Concats over images that are produced by a dense convolution and read by
/// nothing else: those convolutions can write into the Concat's output directly.
fn concat_slots(graph: &Graph) -> HashMap<ValueId, ConcatSlot> {
    let mut readers = vec![0usize; graph.values.len()];
    for id in graph.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).chain(&graph.outputs) {
        readers[id.0] += 1;
    }
    let dense_conv = |v: ValueId| {
        graph.nodes.iter().find(|n| n.outputs.first() == Some(&v)).is_some_and(|n| {
            let main = match &n.op {
                Op::Fused { main, .. } => main.as_ref(),
                op => op,
            };
            matches!(main, Op::Conv(a) if a.group == 1 && a.kernel.len() == 2)
        })
    };
    let mut slots = HashMap::new();
    for node in &graph.nodes {
        let Op::Concat { axis: 1 } = node.op else { continue };
        let out = node.outputs[0];
        let shape = &graph.value(out).ty.shape;
        if shape.len() != 4 || graph.value(out).ty.dtype != DType::F32 {
            continue;
        }
        let mut offset = 0;
        for v in node.inputs.iter().flatten() {
            if readers[v.0] == 1 && !graph.outputs.contains(v) && dense_conv(*v) {
                slots.insert(*v, ConcatSlot { concat: out, channels: shape[1], offset });
            }
            offset += graph.value(*v).ty.shape[1];
        }
    }
    slots
}

impl Lowerer<'_> {
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.graph.value(v).ty.shape
    }

    /// Arena slots (f32-sized) value `v` needs: an element stored as i64 takes two.
    pub fn slots(&self, v: ValueId) -> usize {
        let ty = &self.graph.value(v).ty;
        ty.numel() * Storage::of(ty.dtype).slots()
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
        let arg = Arg::Buf(self.plan.buffer(self.slots(v)));
        self.register(v, layout, arg);
        arg
    }

    /// Makes `v` an alias of `arg` (a view: same buffer, new shape).
    pub fn alias(&mut self, v: ValueId, layout: Layout, arg: Arg) {
        self.register(v, layout, arg);
    }

    /// The buffer of `v` in `layout` if it is computed already, else a fresh one.
    pub fn get_or_define(&mut self, v: ValueId, layout: Layout) -> Arg {
        match self.locs.get(&(v, layout)) {
            Some(&arg) => arg,
            None => self.define(v, layout),
        }
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
        if let Some(t) = value.constant.as_ref().or_else(|| self.folded.get(&v)) {
            let slots = match Storage::of(value.ty.dtype) {
                Storage::I64 => t
                    .data()
                    .to_i64_vec()
                    .iter()
                    .flat_map(|&x| [f32::from_bits(x as u32), f32::from_bits((x >> 32) as u32)])
                    .collect(),
                Storage::F32 => {
                    let data: Vec<f32> = t.data().to_f64_vec().iter().map(|&x| x as f32).collect();
                    arrange(&data, &value.ty.shape, layout)
                }
            };
            let arg = self.plan.constant(slots);
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

    /// A fresh buffer holding `src`, the value of `v` (a constant).
    fn materialize(&mut self, v: ValueId, src: Arg) -> Result<BufId, Fail> {
        let n = self.slots(v);
        let dst = self.plan.buffer(n);
        self.copy(
            &format!("{} (constant)", self.graph.value(v).name),
            CopySpec::transpose(&[n], &[0])?,
            src,
            Arg::Buf(dst),
        )?;
        Ok(dst)
    }

    /// Compiles (once) and calls a copy kernel.
    pub fn copy(&mut self, label: &str, spec: CopySpec, src: Arg, dst: Arg) -> Result<(), Fail> {
        let elems = spec.extents.iter().product::<usize>() as u64;
        let k = self.kernel(format!("copy {spec:?}"), {
            let spec = spec.clone();
            move |t| compile_copy(&spec, t)
        })?;
        self.plan.step(label, k, vec![src, dst], elems, describe(spec.describe(self.options.max_threads)));
        Ok(())
    }

    /// The kernel for `key`, generated by `make` unless an identical one exists.
    pub fn kernel(
        &mut self,
        key: String,
        make: impl FnOnce(&Target) -> Result<MachineCode, CodegenError> + Send + 'static,
    ) -> Result<usize, Fail> {
        Ok(self.plan.kernel(key, self.owner.clone(), make))
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

    /// Evaluates `node` at compile time when it reads no data: it has a runtime input and every
    /// runtime input is empty (a reduction over an empty axis, say). `Ok(false)` otherwise.
    fn fold_data_free(&mut self, node: &Node) -> Result<bool, Fail> {
        let runtime = |v: &ValueId| self.graph.value(*v).constant.is_none() && !self.folded.contains_key(v);
        let mut inputs = node.inputs.iter().flatten().filter(|v| runtime(v)).peekable();
        if inputs.peek().is_none() || !inputs.all(|&v| self.graph.value(v).ty.numel() == 0) {
            return Ok(false);
        }
        let args: Vec<Option<Tensor>> = node
            .inputs
            .iter()
            .map(|v| {
                v.map(|v| {
                    let value = self.graph.value(v);
                    value
                        .constant
                        .clone()
                        .or_else(|| self.folded.get(&v).cloned())
                        .unwrap_or_else(|| Tensor::zeros(&value.ty))
                })
            })
            .collect();
        let refs: Vec<Option<&Tensor>> = args.iter().map(Option::as_ref).collect();
        let results = veltair_ref::eval_op(&node.op, &refs).map_err(|e| Fail::Unsupported(e.to_string()))?;
        for (&o, t) in node.outputs.iter().zip(results) {
            self.folded.insert(o, t);
        }
        Ok(true)
    }

    fn node(&mut self, node: &Node) -> Result<(), Fail> {
        if self.fold_data_free(node)? {
            return Ok(());
        }
        let values = || node.inputs.iter().flatten().chain(&node.outputs).map(|&v| self.graph.value(v));
        if let Some(v) = values().find(|v| v.ty.dtype.is_narrow()).filter(|_| !matches!(node.op, Op::Cast { .. })) {
            return unsupported(format!("`{}` has the narrow element type {}", v.name, v.ty.dtype));
        }
        if self.typed(node)? {
            return Ok(());
        }
        let integer_view =
            matches!(node.op, Op::Reshape(_)) && self.graph.value(node.outputs[0]).ty.dtype == DType::I64;
        let float_outputs = node.outputs.iter().all(|&o| Storage::of(self.graph.value(o).ty.dtype) == Storage::F32);
        if !integer_view && !float_outputs {
            return unsupported("non-float output (generated code computes floats; i64 only as indices)");
        }
        match &node.op {
            Op::Fused { main, main_inputs, epilogue } => self.layer(node, main, *main_inputs, epilogue),
            op @ (Op::Conv(_) | Op::ConvTranspose { .. } | Op::Gemm { .. } | Op::MatMul) => {
                self.layer(node, op, node.inputs.len(), &[])
            }
            _ => self.simple(node),
        }
    }
}
