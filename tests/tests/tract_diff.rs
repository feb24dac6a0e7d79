//! Differential test against an outside implementation: the committed small zoo models give the
//! same outputs through veltair's reference evaluator and through tract.

use tract_onnx::prelude::*;
use veltair_ir::{Tensor as VTensor, TensorData};
use veltair_tests::{prepare_case, small_zoo};

fn to_tract(t: &VTensor) -> tract_onnx::prelude::Tensor {
    let shape = t.shape().to_vec();
    match t.data() {
        TensorData::F32(v) => {
            tract_ndarray::ArrayD::from_shape_vec(shape, v.clone()).expect("shape fits").into_tensor()
        }
        TensorData::I64(v) => {
            tract_ndarray::ArrayD::from_shape_vec(shape, v.clone()).expect("shape fits").into_tensor()
        }
        other => panic!("zoo inputs are f32 or i64, got {}", other.dtype()),
    }
}

fn from_tract(t: &tract_onnx::prelude::Tensor) -> VTensor {
    let view = t.to_plain_array_view::<f32>().expect("zoo outputs are f32");
    VTensor::from_f32(t.shape().to_vec(), view.iter().copied().collect()).expect("shape fits")
}

#[test]
fn small_zoo_agrees_with_tract() {
    for dir in small_zoo() {
        let case = prepare_case(&dir).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        let feeds = &case.feeds[0];
        let mut model = tract_onnx::onnx().model_for_path(dir.join("model.onnx")).expect("tract loads the model");
        for (i, t) in feeds.iter().enumerate() {
            let dt = match t.data() {
                TensorData::F32(_) => f32::datum_type(),
                _ => i64::datum_type(),
            };
            model.set_input_fact(i, InferenceFact::dt_shape(dt, t.shape())).expect("input fact");
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .unwrap_or_else(|e| panic!("{}: tract: {e}", dir.display()));
        let inputs: TVec<TValue> = feeds.iter().map(|t| to_tract(t).into()).collect();
        let theirs = plan.run(inputs).unwrap_or_else(|e| panic!("{}: tract run: {e}", dir.display()));
        let ours = veltair_ref::evaluate(&case.graph, feeds).expect("reference evaluation");
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(theirs.iter()) {
            let c = veltair_ir::compare(o, &from_tract(t), 1e-3, 1e-4);
            assert!(c.ok, "{}: veltair vs tract {c:?}", dir.display());
        }
    }
}
