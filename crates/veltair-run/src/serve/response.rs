//! Encoding answers in the Open Inference Protocol's JSON: server and model metadata, and
//! inference responses (flat `data`, outputs filtered and ordered as requested). A backend
//! reply that lacks a requested output or whose data does not fill its shape is refused here
//! with a message for a 500; non-finite FP32 outputs are written as `null` (JSON has no NaN).

use super::backend::{ModelInfo, PortInfo, Tensor, TensorData};
use serde::Serialize;
use serde_json::{json, Value};

/// `GET /v2`.
pub(crate) fn server_metadata() -> Value {
    json!({ "name": "veltair", "version": env!("CARGO_PKG_VERSION"), "extensions": [] })
}

/// `GET /v2/models/{name}`.
pub(crate) fn model_metadata(model: &ModelInfo) -> Value {
    let ports = |ports: &[PortInfo]| -> Vec<Value> {
        ports.iter().map(|p| json!({ "name": p.name, "datatype": p.datatype.as_str(), "shape": p.shape })).collect()
    };
    json!({
        "name": model.name,
        "versions": ["1"],
        "platform": "veltair",
        "inputs": ports(&model.inputs),
        "outputs": ports(&model.outputs),
    })
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<Output<'a>>,
}

#[derive(Serialize)]
struct Output<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
}

/// The response body for `outputs` of `model`, restricted to `wanted` (in that order) when
/// the request named outputs.
pub(crate) fn infer_response(
    model: &str,
    id: Option<&str>,
    outputs: &[Tensor],
    wanted: Option<&[String]>,
) -> Result<Vec<u8>, String> {
    let chosen: Vec<&Tensor> = match wanted {
        None => outputs.iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                outputs
                    .iter()
                    .find(|t| &t.name == name)
                    .ok_or_else(|| format!("the backend returned no output '{name}'"))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut encoded = Vec::with_capacity(chosen.len());
    for tensor in chosen {
        let elements = tensor.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements != Some(tensor.data.len()) {
            return Err(format!(
                "the backend returned output '{}' with shape {:?} and {} elements",
                tensor.name,
                tensor.shape,
                tensor.data.len()
            ));
        }
        let data = match &tensor.data {
            TensorData::F32(v) => Data::F32(v),
            TensorData::I64(v) => Data::I64(v),
        };
        encoded.push(Output {
            name: &tensor.name,
            datatype: tensor.data.datatype().as_str(),
            shape: &tensor.shape,
            data,
        });
    }
    let response = InferResponse { model_name: model, model_version: "1", id, outputs: encoded };
    serde_json::to_vec(&response).map_err(|e| format!("cannot encode the response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[usize], data: TensorData) -> Tensor {
        Tensor { name: name.into(), shape: shape.into(), data }
    }

    #[test]
    fn outputs_are_filtered_in_requested_order() {
        let outputs =
            [tensor("a", &[2], TensorData::F32(vec![1.5, f32::NAN])), tensor("b", &[1], TensorData::I64(vec![-7]))];
        let body = infer_response("m", Some("q"), &outputs, Some(&["b".into(), "a".into()])).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"model_name":"m","model_version":"1","id":"q","outputs":[{"name":"b","datatype":"INT64","shape":[1],"data":[-7]},{"name":"a","datatype":"FP32","shape":[2],"data":[1.5,null]}]}"#
        );
        let all = infer_response("m", None, &outputs, None).unwrap();
        assert!(!String::from_utf8(all).unwrap().contains("\"id\""));
    }

    #[test]
    fn inconsistent_replies_are_refused() {
        let short = [tensor("a", &[3], TensorData::F32(vec![1.0]))];
        assert!(infer_response("m", None, &short, None).unwrap_err().contains("shape [3] and 1 elements"));
        assert!(infer_response("m", None, &short, Some(&["z".into()])).unwrap_err().contains("no output 'z'"));
        let huge = [tensor("a", &[usize::MAX, 2], TensorData::F32(vec![]))];
        assert!(infer_response("m", None, &huge, None).is_err());
    }
}
