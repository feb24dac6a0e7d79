//! Import errors. Each names what failed (file, node, operator, opset) and what was expected;
//! a model with several unsupported operators lists them all in one error.

use std::fmt;
use std::path::PathBuf;

/// An operator the importer does not handle.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedOp {
    pub node: String,
    pub op: String,
    pub domain: String,
}

/// Operators whose output shape depends on input values: refused, with a message saying why.
const DATA_DEPENDENT_SHAPES: &[&str] = &["NonZero", "NonMaxSuppression", "Unique", "Compress"];

/// What went wrong with one node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeProblem {
    /// The node is malformed or its shapes do not fit.
    Invalid(String),
    /// A feature of the node (attribute value, element type) that veltair does not support.
    Unsupported(String),
    /// An operand that fixes a shape is not a compile-time constant. It is computed from the
    /// listed graph inputs (if any); binding them with `ImportOptions::input_values` fixes it.
    NeedsConstant { input: String, from_inputs: Vec<String> },
}

/// Why a model could not be imported.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportError {
    Io {
        path: PathBuf,
        message: String,
    },
    /// The bytes are not a readable ONNX protobuf (corrupt or truncated file).
    Parse(String),
    /// The graph's structure is broken (missing input, cycle, duplicate names, …).
    Model(String),
    Unsupported {
        opset: i64,
        ops: Vec<UnsupportedOp>,
    },
    Node {
        node: String,
        op: String,
        opset: i64,
        problem: NodeProblem,
    },
    /// An initializer that cannot be read.
    Initializer {
        name: String,
        problem: NodeProblem,
    },
    /// A graph input or output whose type is unusable or not pinned.
    Signature {
        name: String,
        message: String,
    },
}

impl ImportError {
    /// True when the model uses something veltair does not support (rather than being broken).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ImportError::Unsupported { .. }
                | ImportError::Node { problem: NodeProblem::Unsupported(_), .. }
                | ImportError::Initializer { problem: NodeProblem::Unsupported(_), .. }
        )
    }

    /// Graph inputs that would have to be bound to values for the import to succeed.
    pub fn inputs_needing_values(&self) -> Vec<String> {
        match self {
            ImportError::Node { problem: NodeProblem::NeedsConstant { from_inputs, .. }, .. } => from_inputs.clone(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Io { path, message } => {
                write!(f, "cannot read {}: {message}", path.display())
            }
            ImportError::Parse(m) => write!(f, "not a valid ONNX model: {m}"),
            ImportError::Model(m) => write!(f, "invalid model: {m}"),
            ImportError::Unsupported { opset, ops } => {
                write!(f, "{} node(s) use operators veltair does not support (opset {opset}):", ops.len())?;
                for o in ops {
                    let domain = if o.domain.is_empty() { String::new() } else { format!(" in domain '{}'", o.domain) };
                    let why = if o.domain.is_empty() && DATA_DEPENDENT_SHAPES.contains(&o.op.as_str()) {
                        " (its output shape depends on the input values; veltair compiles static shapes only)"
                    } else {
                        ""
                    };
                    write!(f, "\n  node '{}': {}{}{}", o.node, o.op, domain, why)?;
                }
                Ok(())
            }
            ImportError::Node { node, op, opset, problem } => {
                write!(f, "node '{node}' ({op}, opset {opset}): ")?;
                match problem {
                    NodeProblem::Invalid(m) => write!(f, "{m}"),
                    NodeProblem::Unsupported(m) => write!(f, "unsupported: {m}"),
                    NodeProblem::NeedsConstant { input, from_inputs } if from_inputs.is_empty() => {
                        write!(f, "operand '{input}' determines a shape but is not a compile-time constant")
                    }
                    NodeProblem::NeedsConstant { input, from_inputs } => write!(
                        f,
                        "operand '{input}' determines a shape but is computed from graph input(s) {}; their values must be fixed at compile time",
                        from_inputs.join(", ")
                    ),
                }
            }
            ImportError::Initializer { name, problem } => match problem {
                NodeProblem::Unsupported(m) => write!(f, "initializer '{name}': unsupported: {m}"),
                NodeProblem::Invalid(m) => write!(f, "initializer '{name}': {m}"),
                NodeProblem::NeedsConstant { .. } => {
                    write!(f, "initializer '{name}' is unreadable")
                }
            },
            ImportError::Signature { name, message } => {
                write!(f, "graph input/output '{name}': {message}")
            }
        }
    }
}

impl std::error::Error for ImportError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dependent_shapes_are_named_as_the_reason() {
        let op = |op: &str| UnsupportedOp { node: "#0".into(), op: op.into(), domain: String::new() };
        let e = ImportError::Unsupported { opset: 13, ops: vec![op("NonZero"), op("LSTM")] };
        let text = e.to_string();
        assert!(text.contains("NonZero (its output shape depends on the input values"), "{text}");
        assert!(text.ends_with("node '#0': LSTM"), "{text}");
    }
}
