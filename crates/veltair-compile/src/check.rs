//! `veltair-compile check`: import, run the graph passes, list layers, evaluate on
//! backend-test data and compare.

use crate::model::Loaded;
use crate::report::{layer_rows, print_text, CheckReport, DataResult, OutputResult};
use crate::{InputShape, Outcome};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CheckArgs {
    /// The ONNX model file.
    pub model: PathBuf,
    /// Pin an input's shape, e.g. `--input-shape input=1x3x224x224` (repeatable). Needed for
    /// inputs with dynamic dimensions unless `--data` supplies them.
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<InputShape>,
    /// A directory in the ONNX backend-test layout (`input_N.pb`, `output_N.pb`); the model is
    /// evaluated on its inputs and compared with its outputs (repeatable).
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Relative tolerance of the comparison.
    #[arg(long, default_value_t = 1e-3)]
    pub rtol: f64,
    /// Absolute tolerance of the comparison.
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// List and evaluate the graph as imported, without the graph passes (BatchNormalization
    /// folding, SiLU recognition, epilogue fusion) that turn it into layers.
    #[arg(long)]
    pub no_passes: bool,
}

pub fn run(args: &CheckArgs) -> Result<Outcome, String> {
    let mut loaded = Loaded::load(&args.model, &args.input_shapes, &args.data)?;
    let passes = (!args.no_passes).then(|| loaded.apply_passes());
    let graph = &loaded.graph;
    let mut report = CheckReport {
        model: args.model.display().to_string(),
        opset: loaded.model.opset().map_err(|e| e.to_string())?,
        layers: layer_rows(graph),
        bound_inputs: loaded.bound.clone(),
        passes,
        data: Vec::new(),
    };
    let mut all_ok = true;
    for (dir, set) in &loaded.data {
        let feeds = loaded.feeds(set);
        let outputs =
            veltair_ref::evaluate(graph, &feeds).map_err(|e| format!("evaluating on {}: {e}", dir.display()))?;
        if outputs.len() != set.outputs.len() {
            return Err(format!(
                "{} has {} expected outputs, the model computes {}",
                dir.display(),
                set.outputs.len(),
                outputs.len()
            ));
        }
        let results: Vec<OutputResult> = graph
            .outputs
            .iter()
            .zip(outputs.iter().zip(&set.outputs))
            .map(|(&id, (got, want))| OutputResult {
                name: graph.value(id).name.clone(),
                cmp: veltair_ref::compare(got, want, args.rtol, args.atol),
            })
            .collect();
        all_ok &= results.iter().all(|r| r.cmp.ok);
        report.data.push(DataResult { dir: dir.display().to_string(), outputs: results });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json(graph)).expect("JSON values serialise"));
    } else {
        print_text(&report, graph);
    }
    Ok(if all_ok { Outcome::Ok } else { Outcome::Mismatch })
}
