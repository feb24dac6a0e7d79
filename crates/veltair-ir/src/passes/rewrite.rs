//! Building blocks of the passes that replace one node by several: the node list rebuilt in
//! order, and a [`Rewrite`] that appends typed nodes and views of values for one replaced node.

use crate::infer::infer;
use crate::{Graph, IrError, Node, Op, TensorType, ValueId};

/// Rebuilds the node list, putting `replace`'s nodes in place of every node it rewrites (it
/// returns `None` to keep a node; values it added then are dropped again). Returns the number
/// of nodes rewritten.
pub fn replace_nodes(graph: &mut Graph, mut replace: impl FnMut(&mut Graph, &Node) -> Option<Vec<Node>>) -> usize {
    let nodes = std::mem::take(&mut graph.nodes);
    let mut rewritten = 0;
    for node in nodes {
        let values = graph.values.len();
        match replace(graph, &node) {
            Some(mut new) => {
                graph.nodes.append(&mut new);
                rewritten += 1;
            }
            None => {
                graph.values.truncate(values);
                graph.nodes.push(node);
            }
        }
    }
    rewritten
}

/// The nodes replacing one node, named after it; new values are typed by shape inference.
pub struct Rewrite<'g> {
    pub graph: &'g mut Graph,
    pub nodes: Vec<Node>,
    layer: String,
    source_op: String,
}

impl<'g> Rewrite<'g> {
    pub fn new(graph: &'g mut Graph, replaced: &Node) -> Self {
        Rewrite { graph, nodes: Vec::new(), layer: replaced.name.clone(), source_op: replaced.source_op.clone() }
    }

    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.graph.value(v).ty.shape
    }

    /// Appends the node that does the replaced node's work, computing `op` on `inputs` into new
    /// values: its first `count` outputs (the ones the replaced node has) and the replaced node's name
    /// (profiles and reports name layers by it).
    pub fn main_outputs(
        &mut self,
        op: Op,
        inputs: Vec<Option<ValueId>>,
        count: usize,
    ) -> Result<Vec<ValueId>, IrError> {
        self.add(self.layer.clone(), op, inputs, count)
    }

    /// Appends a node computing `op` on `inputs` into one new value (its first output; any
    /// others, such as MaxPool's indices, are not computed).
    pub fn node(&mut self, op: Op, inputs: Vec<Option<ValueId>>) -> Result<ValueId, IrError> {
        let name = format!("{}.{}", self.layer, self.nodes.len());
        let outputs = self.add(name, op, inputs, 1)?;
        Ok(outputs[0])
    }

    /// Appends a node with its first `count` outputs as new values.
    fn add(
        &mut self,
        name: String,
        op: Op,
        inputs: Vec<Option<ValueId>>,
        count: usize,
    ) -> Result<Vec<ValueId>, IrError> {
        let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|v| &self.graph.value(v).ty)).collect();
        let mut out_tys = infer(&op, &tys)?;
        if out_tys.len() < count {
            return Err(IrError::shape(format!("{count} outputs wanted, the operator has {}", out_tys.len())));
        }
        out_tys.truncate(count);
        let outputs: Vec<ValueId> =
            out_tys.into_iter().enumerate().map(|(i, ty)| self.graph.add_value(format!("{name}:{i}"), ty)).collect();
        self.nodes.push(Node { name, source_op: self.source_op.clone(), op, inputs, outputs: outputs.clone() });
        Ok(outputs)
    }

    /// Ends the rewrite: `v` viewed into the existing value `out` (same element count), so
    /// the replaced node's readers stay as they are.
    pub fn view_into(&mut self, v: ValueId, out: ValueId) {
        let shape = self.graph.value(out).ty.shape.clone();
        let name = format!("{}.{}", self.layer, self.nodes.len());
        let node = Node {
            name,
            source_op: "Reshape".into(),
            op: Op::Reshape(shape),
            inputs: vec![Some(v)],
            outputs: vec![out],
        };
        self.nodes.push(node);
    }

    /// `v` viewed as `shape`: itself when the shape is unchanged, a reshaped constant for a
    /// constant, else the result of a new Reshape node.
    pub fn view(&mut self, v: ValueId, shape: Vec<usize>) -> Result<ValueId, IrError> {
        let value = self.graph.value(v);
        if value.ty.shape == shape {
            return Ok(v);
        }
        if let Some(t) = &value.constant {
            let name = format!("{}.{}", value.name, shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"));
            let t = t.clone().reshaped(shape)?;
            return Ok(self.graph.add_constant(name, t));
        }
        self.node(Op::Reshape(shape), vec![Some(v)])
    }
}
