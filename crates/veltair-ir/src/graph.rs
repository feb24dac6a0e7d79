//! The model graph: typed values (some constant), nodes in topological order, and the graph's
//! inputs and outputs. Nodes are appended only after their inputs exist, so node order is
//! always a valid execution order.

use crate::infer::infer;
use crate::{IrError, Op, Tensor, TensorType};

/// Index of a value in [`Graph::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// A tensor-valued edge of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub ty: TensorType,
    /// Known at compile time (weights, folded shape computations).
    pub constant: Option<Tensor>,
}

/// One operator application.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    /// The ONNX operator this node came from (`Flatten` for a node whose `op` is a reshape).
    pub source_op: String,
    pub op: Op,
    /// Absent optional inputs are `None`.
    pub inputs: Vec<Option<ValueId>>,
    pub outputs: Vec<ValueId>,
}

/// A model with fully static shapes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

impl Graph {
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0]
    }

    /// Adds a non-constant value.
    pub fn add_value(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        self.values.push(Value { name: name.into(), ty, constant: None });
        ValueId(self.values.len() - 1)
    }

    /// Adds a constant value.
    pub fn add_constant(&mut self, name: impl Into<String>, tensor: Tensor) -> ValueId {
        let ty = tensor.ty();
        self.values.push(Value { name: name.into(), ty, constant: Some(tensor) });
        ValueId(self.values.len() - 1)
    }

    /// Output types `op` would produce on these existing values (checked by shape inference).
    pub fn infer_outputs(&self, op: &Op, inputs: &[Option<ValueId>]) -> Result<Vec<TensorType>, IrError> {
        let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|id| &self.value(id).ty)).collect();
        infer(op, &tys)
    }

    /// Appends a node whose outputs get the given names; returns their ids. Shape inference
    /// runs here, so a graph never holds a node whose types do not fit.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        source_op: impl Into<String>,
        op: Op,
        inputs: Vec<Option<ValueId>>,
        output_names: &[String],
    ) -> Result<Vec<ValueId>, IrError> {
        let tys = self.infer_outputs(&op, &inputs)?;
        if output_names.len() > tys.len() {
            return Err(IrError::shape(format!(
                "{} outputs requested, the operator has {}",
                output_names.len(),
                tys.len()
            )));
        }
        let outputs: Vec<ValueId> = output_names.iter().zip(tys).map(|(n, t)| self.add_value(n.clone(), t)).collect();
        self.nodes.push(Node { name: name.into(), source_op: source_op.into(), op, inputs, outputs: outputs.clone() });
        Ok(outputs)
    }

    /// The graph inputs that value `id` is computed from.
    pub fn input_ancestors(&self, id: ValueId) -> Vec<ValueId> {
        let mut seen = vec![false; self.values.len()];
        let mut stack = vec![id];
        let mut found = Vec::new();
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v.0], true) {
                continue;
            }
            if self.inputs.contains(&v) {
                found.push(v);
            }
            if let Some(node) = self.nodes.iter().find(|n| n.outputs.contains(&v)) {
                stack.extend(node.inputs.iter().flatten());
            }
        }
        found.sort();
        found
    }

    /// Total size in bytes of the constant values nodes read or the graph outputs (weights
    /// and folded constants).
    pub fn weight_bytes(&self) -> usize {
        let mut used = vec![false; self.values.len()];
        for id in self.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).chain(&self.outputs) {
            used[id.0] = true;
        }
        self.values
            .iter()
            .zip(used)
            .filter(|(_, u)| *u)
            .filter_map(|(v, _)| v.constant.as_ref())
            .map(Tensor::byte_size)
            .sum()
    }
}
