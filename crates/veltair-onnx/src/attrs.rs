//! Typed access to a node's attributes, with errors that name the attribute and the type
//! expected.

use crate::tensor_proto::tensor_from_proto;
use crate::NodeProblem;
use onnx_protobuf::{AttributeProto, NodeProto};
use veltair_ir::Tensor;

// AttributeProto.AttributeType codes.
const FLOAT: i32 = 1;
const INT: i32 = 2;
const STRING: i32 = 3;
const TENSOR: i32 = 4;
const FLOATS: i32 = 6;
const INTS: i32 = 7;

/// The attributes of one node.
pub struct Attrs<'a> {
    node: &'a NodeProto,
}

fn wrong(a: &AttributeProto, want: &str) -> NodeProblem {
    NodeProblem::Invalid(format!("attribute '{}' must be {want}", a.name))
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        Attrs { node }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// True when the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// An attribute's type code, treating UNDEFINED (very old exporters) as whichever field is set.
    fn kind(a: &AttributeProto) -> i32 {
        a.type_.value()
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, NodeProblem> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if Self::kind(a) == INT || Self::kind(a) == 0 => Ok(Some(a.i)),
            Some(a) => Err(wrong(a, "an int")),
        }
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, NodeProblem> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, NodeProblem> {
        match self.get(name) {
            None => Ok(default),
            Some(a) if Self::kind(a) == FLOAT || Self::kind(a) == 0 => Ok(a.f),
            Some(a) => Err(wrong(a, "a float")),
        }
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, NodeProblem> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if Self::kind(a) == INTS || Self::kind(a) == 0 => Ok(Some(a.ints.clone())),
            Some(a) => Err(wrong(a, "a list of ints")),
        }
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, NodeProblem> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if Self::kind(a) == FLOATS || Self::kind(a) == 0 => Ok(Some(a.floats.clone())),
            Some(a) => Err(wrong(a, "a list of floats")),
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, NodeProblem> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if Self::kind(a) == STRING || Self::kind(a) == 0 => {
                Ok(Some(String::from_utf8_lossy(&a.s).into_owned()))
            }
            Some(a) => Err(wrong(a, "a string")),
        }
    }

    pub fn string_or(&self, name: &str, default: &str) -> Result<String, NodeProblem> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>, NodeProblem> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if Self::kind(a) == TENSOR || Self::kind(a) == 0 => match a.t.as_ref() {
                Some(t) => tensor_from_proto(t, None).map(Some),
                None => Err(wrong(a, "a tensor")),
            },
            Some(a) => Err(wrong(a, "a tensor")),
        }
    }

    /// Non-negative ints (sizes, strides, pads).
    pub fn sizes(&self, name: &str) -> Result<Option<Vec<usize>>, NodeProblem> {
        self.ints(name)?
            .map(|v| {
                v.iter()
                    .map(|&x| {
                        usize::try_from(x)
                            .map_err(|_| NodeProblem::Invalid(format!("attribute '{name}' has negative entry {x}")))
                    })
                    .collect()
            })
            .transpose()
    }
}
