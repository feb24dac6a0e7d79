//! Decoding a v2 inference request body (`{"id"?, "inputs": [...], "outputs"?: [...]}`) and
//! validating it against the model's signature: input names, datatypes, shapes, element counts
//! and element types, `data` read as a [`Flat`] list. Every failure is a message for a 400.

use super::backend::{DataType, ModelInfo, PortInfo, Tensor, TensorData};
use super::flat::Flat;
use super::small::Small;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;

/// A request that matches its model's signature.
#[derive(Debug)]
pub(crate) struct InferRequest {
    pub(crate) id: Option<String>,
    /// One tensor per model input, in signature order.
    pub(crate) inputs: Vec<Tensor>,
    /// The outputs to answer with, in this order; `None` for all of them.
    pub(crate) outputs: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct RawRequest {
    #[serde(default)]
    id: Option<Small>,
    #[serde(default)]
    inputs: Option<Inputs>,
    #[serde(default)]
    outputs: Option<Small>,
}

#[derive(Deserialize)]
#[serde(expecting = "an input object {\"name\", \"shape\", \"datatype\", \"data\"}")]
struct RawInput {
    #[serde(default)]
    name: Option<Small>,
    #[serde(default)]
    shape: Option<Small>,
    #[serde(default)]
    datatype: Option<Small>,
    #[serde(default)]
    data: Option<Flat>,
}

/// Most entries an `inputs` list may have (each costs ~200 bytes parsed, a few on the wire).
const MAX_INPUTS: usize = 4096;

struct Inputs(Vec<RawInput>);

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Inputs, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Inputs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of input objects")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inputs, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX_INPUTS {
                        return Err(de::Error::custom(format!("more than {MAX_INPUTS} inputs")));
                    }
                    items.push(item);
                }
                Ok(Inputs(items))
            }
        }
        deserializer.deserialize_seq(List)
    }
}

/// Parses and validates `body` for `model`.
pub(crate) fn parse(body: &[u8], model: &ModelInfo) -> Result<InferRequest, String> {
    // A struct also deserializes from a JSON list: refuse anything but an object up front.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err("the request body must be a JSON object".to_string());
    }
    let request: RawRequest = serde_json::from_slice(body).map_err(|e| format!("invalid request: {e}"))?;
    let id = match request.id {
        None => None,
        Some(Small(Value::String(id))) => Some(id),
        Some(_) => return Err("'id' must be a string".to_string()),
    };
    let Inputs(items) = request.inputs.ok_or("the request needs an 'inputs' list")?;
    let mut slots: Vec<Option<Tensor>> = vec![None; model.inputs.len()];
    for (i, item) in items.into_iter().enumerate() {
        let name = item
            .name
            .as_ref()
            .and_then(|name| name.0.as_str())
            .ok_or_else(|| format!("inputs[{i}] needs a string 'name'"))?;
        let Some(index) = model.inputs.iter().position(|port| port.name == name) else {
            return Err(format!("model '{}' has no input '{name}' (inputs: {})", model.name, names(&model.inputs)));
        };
        if slots[index].is_some() {
            return Err(format!("input '{name}' is given more than once"));
        }
        slots[index] = Some(tensor(item, &model.inputs[index])?);
    }
    let mut inputs = Vec::with_capacity(slots.len());
    for (slot, port) in slots.into_iter().zip(&model.inputs) {
        inputs.push(slot.ok_or_else(|| format!("missing input '{}'", port.name))?);
    }
    let outputs = requested_outputs(request.outputs, model)?;
    Ok(InferRequest { id, inputs, outputs })
}

fn names(ports: &[PortInfo]) -> String {
    ports.iter().map(|port| format!("'{}'", port.name)).collect::<Vec<_>>().join(", ")
}

/// The input tensor described by `item`, checked against `port`.
fn tensor(item: RawInput, port: &PortInfo) -> Result<Tensor, String> {
    let name = &port.name;
    let datatype = item.datatype.as_ref().and_then(|datatype| datatype.0.as_str());
    let datatype = datatype.ok_or_else(|| format!("input '{name}' needs a string 'datatype'"))?;
    if datatype != port.datatype.as_str() {
        return Err(format!("input '{name}': datatype {datatype} does not match the model's {}", port.datatype));
    }
    let shape = item
        .shape
        .as_ref()
        .and_then(|shape| parse_shape(&shape.0))
        .ok_or_else(|| format!("input '{name}': 'shape' must be a list of non-negative integers"))?;
    if shape != port.shape {
        return Err(format!("input '{name}': shape {shape:?} does not match the model's shape {:?}", port.shape));
    }
    let expected = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("input '{name}': shape {shape:?} has too many elements"))?;
    let data = item.data.ok_or_else(|| format!("input '{name}' needs a 'data' list"))?;
    if data.len() != expected {
        return Err(format!("input '{name}': shape {shape:?} needs {expected} elements but data has {}", data.len()));
    }
    let mismatch = |what: &str, found: f64| format!("input '{name}': data must hold only {what}, found {found:?}");
    let data = match (port.datatype, data) {
        (DataType::Fp32, Flat::Ints(values)) => TensorData::F32(values.into_iter().map(|v| v as f32).collect()),
        (DataType::Fp32, Flat::Floats { values, .. }) => {
            let narrowed: Result<Vec<f32>, f64> =
                values.into_iter().map(|v| Some(v as f32).filter(|x| x.is_finite()).ok_or(v)).collect();
            TensorData::F32(narrowed.map_err(|v| mismatch("finite FP32 numbers", v))?)
        }
        (DataType::Int64, Flat::Ints(values)) => TensorData::I64(values),
        (DataType::Int64, Flat::Floats { first_non_integer, .. }) => {
            return Err(mismatch("INT64 integers", first_non_integer));
        }
    };
    Ok(Tensor { name: name.clone(), shape, data })
}

fn parse_shape(value: &Value) -> Option<Vec<usize>> {
    value.as_array()?.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect()
}

fn requested_outputs(value: Option<Small>, model: &ModelInfo) -> Result<Option<Vec<String>>, String> {
    let items = match value.map(|small| small.0) {
        None => return Ok(None),
        Some(Value::Array(items)) if items.is_empty() => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("'outputs' must be a list".to_string()),
    };
    let mut wanted: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = item.get("name").and_then(Value::as_str);
        let name = name.ok_or_else(|| format!("outputs[{i}] needs a string 'name'"))?;
        if !model.outputs.iter().any(|port| port.name == name) {
            return Err(format!("model '{}' has no output '{name}' (outputs: {})", model.name, names(&model.outputs)));
        }
        if wanted.iter().any(|w| w == name) {
            return Err(format!("output '{name}' is requested more than once"));
        }
        wanted.push(name.to_string());
    }
    Ok(Some(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelInfo {
        let port =
            |name: &str, datatype, shape: &[usize]| PortInfo { name: name.into(), datatype, shape: shape.into() };
        ModelInfo {
            name: "m".into(),
            inputs: vec![port("a", DataType::Fp32, &[2, 2]), port("b", DataType::Int64, &[3])],
            outputs: vec![port("y", DataType::Fp32, &[2, 2])],
        }
    }

    fn err(body: &str) -> String {
        parse(body.as_bytes(), &model()).unwrap_err()
    }

    #[test]
    fn inputs_come_back_in_signature_order_and_flattened() {
        let body = r#" {"id":"q","inputs":[
            {"name":"b","shape":[3],"datatype":"INT64","data":[[1],[2,3]]},
            {"data":[[1,2.5],[3,-4]],"datatype":"FP32","shape":[2,2],"name":"a","parameters":{"x":[1]}}],
            "outputs":[{"name":"y"}]}"#;
        let request = parse(body.as_bytes(), &model()).unwrap();
        assert_eq!(request.id.as_deref(), Some("q"));
        assert_eq!(request.inputs[0].data, TensorData::F32(vec![1.0, 2.5, 3.0, -4.0]));
        assert_eq!(request.inputs[1].data, TensorData::I64(vec![1, 2, 3]));
        assert_eq!(request.outputs, Some(vec!["y".to_string()]));
    }

    #[test]
    fn element_types_and_ranges_are_checked() {
        let b = r#"{"name":"b","shape":[3],"datatype":"INT64","data":[1,2,3]}"#;
        let a =
            |data: &str| format!(r#"{{"inputs":[{{"name":"a","shape":[2,2],"datatype":"FP32","data":{data}}},{b}]}}"#);
        assert!(err(&a("[1,2,3,1e39]")).contains("input 'a': data must hold only finite FP32 numbers, found 1e39"));
        assert!(err(&a(r#"[1,2,3,"x"]"#)).contains("invalid type: string \"x\", expected a list of numbers"));
        assert!(err(&a("[1,2,3]")).contains("needs 4 elements but data has 3"));
        assert!(err("[1]").contains("must be a JSON object"));
        let many = format!(r#"{{"inputs":[{}{{}}]}}"#, "{},".repeat(MAX_INPUTS));
        assert!(err(&many).contains("more than 4096 inputs"));
        let ints =
            |data: &str| format!(r#"{{"inputs":[{{"name":"b","shape":[3],"datatype":"INT64","data":{data}}}]}}"#);
        assert!(err(&ints("[1,2.5,3]")).contains("INT64 integers, found 2.5"));
        assert!(err(&ints("[1,2.0,3]")).contains("INT64 integers, found 2.0"));
        assert!(err(&ints("[1,2,18446744073709551615]")).contains("INT64 integers"));
    }

    #[test]
    fn shapes_must_be_non_negative_integers() {
        for shape in ["[-1,2]", "[2.0,2]", "\"2x2\"", "[18446744073709551616,1]"] {
            let body = format!(r#"{{"inputs":[{{"name":"a","shape":{shape},"datatype":"FP32","data":[]}}]}}"#);
            assert!(err(&body).contains("'shape' must be a list of non-negative integers"), "{shape}");
        }
    }
}
