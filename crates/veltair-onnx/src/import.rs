//! The import driver: model loading, signature handling (pinning dynamic dims, binding inputs
//! to values), topological ordering with clear errors for missing values and cycles, and the
//! per-node convert-infer-fold loop.

use crate::convert::{convert, Lowered, NodeCtx, Operand, Produced, SUPPORTED_OPS};
use crate::tensor_proto::{dtype_of, onnx_type_name, tensor_from_proto};
use crate::{attrs::Attrs, ImportError, NodeProblem, UnsupportedOp};
use onnx_protobuf::{tensor_shape_proto::dimension, type_proto, GraphProto, Message, ModelProto, ValueInfoProto};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use veltair_ir::shape::format_dims;
use veltair_ir::{Graph, Op, Tensor, TensorType, ValueId};

/// How to specialise a model at import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Concrete shapes for graph inputs (required for inputs with dynamic dims).
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Graph inputs fixed to a value (they become constants and leave the graph's inputs).
    pub input_values: HashMap<String, Tensor>,
}

/// A parsed ONNX model, ready to import.
pub struct OnnxModel {
    proto: ModelProto,
    base_dir: Option<PathBuf>,
}

impl OnnxModel {
    /// Reads and parses a model file; external data is resolved beside it.
    pub fn load(path: &Path) -> Result<OnnxModel, ImportError> {
        let bytes =
            std::fs::read(path).map_err(|e| ImportError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        OnnxModel::from_bytes(&bytes, path.parent())
    }

    /// Parses model bytes; `base_dir` resolves external data (none: external data is an error).
    pub fn from_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<OnnxModel, ImportError> {
        let proto = ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::Parse(e.to_string()))?;
        if proto.graph.is_none() {
            return Err(ImportError::Parse("the file holds no graph (empty, truncated or not an ONNX model)".into()));
        }
        Ok(OnnxModel { proto, base_dir: base_dir.map(Path::to_path_buf) })
    }

    fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().expect("checked in from_bytes")
    }

    /// Names of the graph inputs that are runtime data (not initializers), in model order.
    pub fn input_names(&self) -> Vec<String> {
        let g = self.graph();
        let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        g.input.iter().filter(|v| !inits.contains(v.name.as_str())).map(|v| v.name.clone()).collect()
    }

    /// The version of the default ONNX operator set the model uses.
    pub fn opset(&self) -> Result<i64, ImportError> {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| ImportError::Model("the model declares no opset for the default ONNX domain".into()))
    }

    /// Nodes whose operator (or domain) the importer does not support.
    pub fn unsupported_ops(&self) -> Vec<UnsupportedOp> {
        self.graph()
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                !(n.domain.is_empty() || n.domain == "ai.onnx") || !SUPPORTED_OPS.contains(&n.op_type.as_str())
            })
            .map(|(i, n)| UnsupportedOp { node: label(i, &n.name), op: n.op_type.clone(), domain: n.domain.clone() })
            .collect()
    }

    /// Imports the model into the IR.
    pub fn import(&self, opts: &ImportOptions) -> Result<Graph, ImportError> {
        Importer::new(self, opts)?.run()
    }

    /// Imports with shapes taken from sample inputs (unless `opts` pins them) and, where inputs
    /// determine a shape or a static attribute (a Reshape target or Resize scales fed as graph
    /// inputs, say), binds them to their sample values. Returns the graph and the names of the
    /// inputs bound.
    pub fn import_for_samples(
        &self,
        opts: &ImportOptions,
        samples: &HashMap<String, Tensor>,
    ) -> Result<(Graph, Vec<String>), ImportError> {
        let mut opts = opts.clone();
        for (name, t) in samples {
            opts.input_shapes.entry(name.clone()).or_insert_with(|| t.shape().to_vec());
        }
        let mut bound = Vec::new();
        loop {
            match self.import(&opts) {
                Ok(g) => return Ok((g, bound)),
                Err(e) => {
                    let needed: Vec<String> = e
                        .inputs_needing_values()
                        .into_iter()
                        .filter(|n| samples.contains_key(n) && !opts.input_values.contains_key(n))
                        .collect();
                    if needed.is_empty() {
                        return Err(e);
                    }
                    for n in needed {
                        opts.input_shapes.remove(&n);
                        opts.input_values.insert(n.clone(), samples[&n].clone());
                        bound.push(n);
                    }
                }
            }
        }
    }
}

struct Importer<'a> {
    model: &'a OnnxModel,
    opts: &'a ImportOptions,
    opset: i64,
    graph: Graph,
    names: HashMap<String, ValueId>,
}

fn label(i: usize, name: &str) -> String {
    if name.is_empty() {
        format!("#{i}")
    } else {
        name.to_string()
    }
}

impl<'a> Importer<'a> {
    fn new(model: &'a OnnxModel, opts: &'a ImportOptions) -> Result<Self, ImportError> {
        let opset = model.opset()?;
        let g = model.graph();
        Ok(Importer {
            model,
            opts,
            opset,
            graph: Graph { name: g.name.clone(), ..Graph::default() },
            names: HashMap::new(),
        })
    }

    fn run(mut self) -> Result<Graph, ImportError> {
        let g = self.model.graph();
        self.check_supported(g)?;
        self.add_initializers(g)?;
        self.add_inputs(g)?;
        for i in topological_order(g, &self.names)? {
            self.add_node(i, g)?;
        }
        self.add_outputs(g)?;
        Ok(self.graph)
    }

    /// Lists every node whose operator is not supported, all at once.
    fn check_supported(&self, g: &GraphProto) -> Result<(), ImportError> {
        if !g.sparse_initializer.is_empty() {
            return Err(ImportError::Initializer {
                name: g.sparse_initializer[0].values.name.clone(),
                problem: NodeProblem::Unsupported("sparse initializers".into()),
            });
        }
        let ops = self.model.unsupported_ops();
        if ops.is_empty() {
            Ok(())
        } else {
            Err(ImportError::Unsupported { opset: self.opset, ops })
        }
    }

    fn add_initializers(&mut self, g: &GraphProto) -> Result<(), ImportError> {
        for t in &g.initializer {
            let tensor = tensor_from_proto(t, self.model.base_dir.as_deref())
                .map_err(|problem| ImportError::Initializer { name: t.name.clone(), problem })?;
            if t.name.is_empty() || self.names.contains_key(&t.name) {
                return Err(ImportError::Model(format!("initializer name '{}' is empty or repeated", t.name)));
            }
            let id = self.graph.add_constant(t.name.clone(), tensor);
            self.names.insert(t.name.clone(), id);
        }
        Ok(())
    }

    fn add_inputs(&mut self, g: &GraphProto) -> Result<(), ImportError> {
        let declared: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        for name in self.opts.input_shapes.keys().chain(self.opts.input_values.keys()) {
            if !declared.contains(name.as_str()) || self.graph_is_initializer(name, g) {
                return Err(ImportError::Signature {
                    name: name.clone(),
                    message: format!("not a graph input; the inputs are: {}", self.model.input_names().join(", ")),
                });
            }
        }
        for vi in &g.input {
            if self.names.contains_key(&vi.name) {
                continue; // an initializer gives its value
            }
            let sig = |message: String| ImportError::Signature { name: vi.name.clone(), message };
            let declared = declared_type(vi).map_err(sig)?;
            let id = if let Some(value) = self.opts.input_values.get(&vi.name) {
                check_fits(&declared, &value.ty()).map_err(sig)?;
                self.graph.add_constant(vi.name.clone(), value.clone())
            } else {
                let ty = pin(&declared, self.opts.input_shapes.get(&vi.name)).map_err(sig)?;
                let id = self.graph.add_value(vi.name.clone(), ty);
                self.graph.inputs.push(id);
                id
            };
            if self.names.insert(vi.name.clone(), id).is_some() {
                return Err(ImportError::Model(format!("graph input '{}' is declared twice", vi.name)));
            }
        }
        Ok(())
    }

    fn graph_is_initializer(&self, name: &str, g: &GraphProto) -> bool {
        g.initializer.iter().any(|t| t.name == name)
    }

    fn add_node(&mut self, index: usize, g: &GraphProto) -> Result<(), ImportError> {
        let node = &g.node[index];
        let name = label(index, &node.name);
        let opset = self.opset;
        let err =
            |problem: NodeProblem| ImportError::Node { node: name.clone(), op: node.op_type.clone(), opset, problem };
        let mut inputs = Vec::with_capacity(node.input.len());
        for n in &node.input {
            inputs.push(match n.as_str() {
                "" => None,
                n => Some(
                    *self
                        .names
                        .get(n)
                        .ok_or_else(|| err(NodeProblem::Invalid(format!("input '{n}' is not defined"))))?,
                ),
            });
        }
        let ctx = NodeCtx { node, attrs: Attrs::new(node), opset: self.opset, graph: &self.graph, inputs };
        let lowered = convert(&ctx).map_err(err)?;
        match lowered {
            Lowered::Values(values) => {
                for (i, out) in node.output.iter().enumerate() {
                    if out.is_empty() {
                        continue;
                    }
                    let id = match values.get(i) {
                        Some(Produced::Existing(id)) => *id,
                        Some(Produced::Constant(t)) => self.graph.add_constant(out.clone(), t.clone()),
                        None => {
                            return Err(err(NodeProblem::Invalid(format!(
                                "output #{i} '{out}' is not defined by this operator"
                            ))))
                        }
                    };
                    self.names.insert(out.clone(), id);
                }
            }
            Lowered::Op { op, inputs } => {
                let ids = self.operands(&name, inputs, &[]).map_err(err)?;
                let outs = self.emit(&name, &node.op_type, op, ids, &node.output).map_err(err)?;
                self.name_outputs(&node.output, outs);
            }
            Lowered::Steps { steps, outputs } => {
                // A step that is an output is named after it; the others after the node.
                let output_of = |k: usize| {
                    outputs.iter().zip(&node.output).find_map(|(o, n)| {
                        (matches!(o, Operand::Step(s) if *s == k) && !n.is_empty()).then(|| n.clone())
                    })
                };
                let mut results = Vec::with_capacity(steps.len());
                for (k, (op, inputs)) in steps.into_iter().enumerate() {
                    let ids = self.operands(&format!("{name}:step{k}"), inputs, &results).map_err(err)?;
                    let names = [output_of(k).unwrap_or_else(|| format!("{name}:step{k}"))];
                    let outs = self.emit(&name, &node.op_type, op, ids, &names).map_err(err)?;
                    results.push(outs[0].expect("a step's result is named"));
                }
                for (o, n) in outputs.into_iter().zip(&node.output) {
                    let id = match o {
                        Operand::Step(k) => results.get(k).copied(),
                        Operand::Value(id) => Some(id),
                        Operand::Constant(t) => Some(self.graph.add_constant(n.clone(), t)),
                    };
                    let id =
                        id.ok_or_else(|| err(NodeProblem::Invalid(format!("output '{n}' reads a missing step"))))?;
                    if !n.is_empty() {
                        self.names.insert(n.clone(), id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Graph values for a converted node's operands: constants made during conversion added,
    /// `Operand::Step(k)` taken from `steps` (the first results of a node's earlier steps).
    fn operands(
        &mut self,
        name: &str,
        inputs: Vec<Option<Operand>>,
        steps: &[ValueId],
    ) -> Result<Vec<Option<ValueId>>, NodeProblem> {
        let mut ids = Vec::with_capacity(inputs.len());
        for (i, o) in inputs.into_iter().enumerate() {
            ids.push(match o {
                None => None,
                Some(Operand::Value(id)) => Some(id),
                Some(Operand::Constant(t)) => Some(self.graph.add_constant(format!("{name}:operand{i}"), t)),
                Some(Operand::Step(k)) => Some(*steps.get(k).ok_or_else(|| {
                    NodeProblem::Invalid(format!("operand #{i} reads step {k}, which is not computed yet"))
                })?),
            });
        }
        Ok(ids)
    }

    /// Adds `op` over `ids` as a node whose outputs get `outputs`' names (an empty name: an
    /// output nothing reads), or as constants when every operand is constant. Returns the
    /// value of each named output (`None` for an unnamed one).
    fn emit(
        &mut self,
        name: &str,
        op_type: &str,
        op: Op,
        ids: Vec<Option<ValueId>>,
        outputs: &[String],
    ) -> Result<Vec<Option<ValueId>>, NodeProblem> {
        let out_tys = self.graph.infer_outputs(&op, &ids).map_err(shape_problem)?;
        if outputs.len() > out_tys.len() {
            return Err(NodeProblem::Invalid(format!(
                "{} outputs declared, the operator has {}",
                outputs.len(),
                out_tys.len()
            )));
        }
        if ids.iter().flatten().all(|&id| self.graph.value(id).constant.is_some()) {
            let args: Vec<Option<&Tensor>> =
                ids.iter().map(|i| i.and_then(|id| self.graph.value(id).constant.as_ref())).collect();
            let results = veltair_ref::eval_op(&op, &args).map_err(shape_problem)?;
            return Ok(outputs
                .iter()
                .zip(results)
                .map(|(out, t)| (!out.is_empty()).then(|| self.graph.add_constant(out.clone(), t)))
                .collect());
        }
        let out_names: Vec<String> = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| if o.is_empty() { format!("{name}:unused{i}") } else { o.clone() })
            .collect();
        let outs = self.graph.add_node(name, op_type, op, ids, &out_names).map_err(shape_problem)?;
        Ok(outputs.iter().zip(outs).map(|(n, id)| (!n.is_empty()).then_some(id)).collect())
    }

    /// Records the values of a node's named outputs.
    fn name_outputs(&mut self, names: &[String], values: Vec<Option<ValueId>>) {
        for (n, id) in names.iter().zip(values) {
            if let Some(id) = id {
                self.names.insert(n.clone(), id);
            }
        }
    }

    fn add_outputs(&mut self, g: &GraphProto) -> Result<(), ImportError> {
        for vi in &g.output {
            let id = *self
                .names
                .get(&vi.name)
                .ok_or_else(|| ImportError::Model(format!("graph output '{}' is not produced by any node", vi.name)))?;
            let ty = &self.graph.value(id).ty;
            let sig = |message: String| ImportError::Signature { name: vi.name.clone(), message };
            if let Ok(declared) = declared_type(vi) {
                check_fits(&declared, ty).map_err(|m| sig(format!("{m} (computed by the model)")))?;
            }
            self.graph.outputs.push(id);
        }
        Ok(())
    }
}

fn shape_problem(e: veltair_ir::IrError) -> NodeProblem {
    match e {
        veltair_ir::IrError::DType { .. } => NodeProblem::Unsupported(e.to_string()),
        other => NodeProblem::Invalid(other.to_string()),
    }
}

/// A declared tensor type: element type and dims (`None` for symbolic or unknown dims).
struct Declared {
    dtype: veltair_ir::DType,
    dims: Option<Vec<Option<usize>>>,
}

fn declared_type(vi: &ValueInfoProto) -> Result<Declared, String> {
    let Some(type_proto::Value::TensorType(t)) = vi.type_.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err("only tensor inputs and outputs are supported (not sequences, maps or optionals)".into());
    };
    let dtype =
        dtype_of(t.elem_type).map_err(|_| format!("unsupported element type {}", onnx_type_name(t.elem_type)))?;
    let dims = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) if v >= 0 => Some(v as usize),
                _ => None,
            })
            .collect()
    });
    Ok(Declared { dtype, dims })
}

fn dims_text(dims: &[Option<usize>]) -> String {
    dims.iter().map(|d| d.map_or("?".to_string(), |v| v.to_string())).collect::<Vec<_>>().join("x")
}

/// The concrete type of an input: its declared dims with any dynamic ones pinned.
fn pin(declared: &Declared, pinned: Option<&Vec<usize>>) -> Result<TensorType, String> {
    match (&declared.dims, pinned) {
        (Some(dims), Some(p)) => {
            if dims.len() != p.len() || dims.iter().zip(p).any(|(d, v)| d.is_some_and(|d| d != *v)) {
                return Err(format!("declared as {} but pinned to {}", dims_text(dims), format_dims(p)));
            }
            Ok(TensorType::new(declared.dtype, p.clone()))
        }
        (None, Some(p)) => Ok(TensorType::new(declared.dtype, p.clone())),
        (Some(dims), None) => match dims.iter().map(|d| d.ok_or(())).collect::<Result<Vec<_>, _>>() {
            Ok(shape) => Ok(TensorType::new(declared.dtype, shape)),
            Err(()) => Err(format!(
                "has dynamic dims ({}); pin them, e.g. --input-shape NAME={}",
                dims_text(dims),
                dims.iter().map(|d| d.unwrap_or(1).to_string()).collect::<Vec<_>>().join("x")
            )),
        },
        (None, None) => Err("has no declared shape; pin it with --input-shape NAME=DIMS".into()),
    }
    .and_then(|t| veltair_ir::shape::checked_numel(&t.shape).map(|_| t).map_err(|e| e.to_string()))
}

fn check_fits(declared: &Declared, actual: &TensorType) -> Result<(), String> {
    let shape_ok = declared.dims.as_ref().is_none_or(|dims| {
        dims.len() == actual.rank() && dims.iter().zip(&actual.shape).all(|(d, a)| d.is_none_or(|d| d == *a))
    });
    if declared.dtype != actual.dtype || !shape_ok {
        let dims = declared.dims.as_deref().map_or("?".to_string(), dims_text);
        return Err(format!("declared as {}[{dims}], got {actual}", declared.dtype));
    }
    Ok(())
}

/// Node indices in an order where every node follows the producers of its inputs. Fails on a
/// value produced twice, an input nobody provides, or a cycle.
fn topological_order(g: &GraphProto, known: &HashMap<String, ValueId>) -> Result<Vec<usize>, ImportError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for out in n.output.iter().filter(|o| !o.is_empty()) {
            if known.contains_key(out) {
                return Err(ImportError::Model(format!(
                    "node '{}' redefines '{out}', which is a graph input or initializer",
                    label(i, &n.name)
                )));
            }
            if let Some(prev) = producer.insert(out, i) {
                return Err(ImportError::Model(format!(
                    "value '{out}' is produced by both node '{}' and node '{}'",
                    label(prev, &g.node[prev].name),
                    label(i, &n.name)
                )));
            }
        }
    }
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    let mut pending = vec![0usize; g.node.len()];
    for (i, n) in g.node.iter().enumerate() {
        for input in n.input.iter().filter(|x| !x.is_empty()) {
            match producer.get(input.as_str()) {
                Some(&p) => {
                    consumers[p].push(i);
                    pending[i] += 1;
                }
                None if known.contains_key(input) => {}
                None => {
                    return Err(ImportError::Model(format!(
                        "node '{}' ({}) reads '{input}', which no node, initializer or graph input provides",
                        label(i, &n.name),
                        n.op_type
                    )))
                }
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..g.node.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(g.node.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &c in &consumers[i] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    if order.len() < g.node.len() {
        let stuck: Vec<String> = (0..g.node.len())
            .filter(|&i| pending[i] > 0)
            .take(8)
            .map(|i| format!("'{}'", label(i, &g.node[i].name)))
            .collect();
        return Err(ImportError::Model(format!("the graph has a cycle through nodes {}", stuck.join(", "))));
    }
    Ok(order)
}
