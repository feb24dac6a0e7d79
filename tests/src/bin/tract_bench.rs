//! `tract_bench`: single-model latency through tract (batch as in the data, median of timed
//! runs), the Rust peer in `scripts/bench_peers.py`. Prints one JSON object.

use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;
use tract_onnx::prelude::*;
use veltair_ir::TensorData;
use veltair_onnx::DataSet;

#[derive(Parser)]
#[command(about = "Time one ONNX model through tract")]
struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// Backend-test data directory whose inputs are fed (shapes and values).
    #[arg(long)]
    data: PathBuf,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let set = DataSet::load(&args.data)?;
    let mut model = tract_onnx::onnx().model_for_path(&args.model).map_err(|e| format!("tract: {e}"))?;
    let mut inputs: TVec<TValue> = TVec::new();
    for (i, t) in set.inputs.iter().enumerate() {
        let shape = t.shape().to_vec();
        let tensor = match t.data() {
            TensorData::F32(v) => {
                tract_ndarray::ArrayD::from_shape_vec(shape.clone(), v.clone()).map(|a| a.into_tensor())
            }
            TensorData::I64(v) => {
                tract_ndarray::ArrayD::from_shape_vec(shape.clone(), v.clone()).map(|a| a.into_tensor())
            }
            other => return Err(format!("input {i}: element type {} not fed by this bench", other.dtype())),
        }
        .map_err(|e| e.to_string())?;
        model.set_input_fact(i, InferenceFact::dt_shape(tensor.datum_type(), &shape)).map_err(|e| e.to_string())?;
        inputs.push(tensor.into());
    }
    let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| format!("tract: {e}"))?;
    for _ in 0..args.warmup {
        plan.run(inputs.clone()).map_err(|e| e.to_string())?;
    }
    let mut runs = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let start = Instant::now();
        plan.run(inputs.clone()).map_err(|e| e.to_string())?;
        runs.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied();
    println!(
        "{}",
        serde_json::json!({"model": args.model.display().to_string(), "median_ms": median, "runs_ms": runs})
    );
    Ok(())
}
