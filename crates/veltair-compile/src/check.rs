//! `veltair-compile check`: import, run the graph passes, list layers, evaluate on
//! backend-test data and compare.

use crate::report::{layer_rows, print_text, CheckReport, DataResult, OutputResult, PassCounts};
use crate::{InputShape, Outcome};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use veltair_ir::passes::{fold_batch_norm, fuse_epilogues, recognize_silu};
use veltair_onnx::{DataSet, ImportOptions, OnnxModel};

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
    let model = OnnxModel::load(&args.model).map_err(|e| e.to_string())?;
    let mut opts = ImportOptions::default();
    for s in &args.input_shapes {
        opts.input_shapes.insert(s.name.clone(), s.dims.clone());
    }
    let input_names = model.input_names();
    let data_sets: Vec<DataSet> = args.data.iter().map(|d| DataSet::load(d)).collect::<Result<_, _>>()?;
    for (dir, set) in args.data.iter().zip(&data_sets) {
        if set.inputs.len() != input_names.len() {
            return Err(format!(
                "{} has {} input files, the model has {} inputs ({})",
                dir.display(),
                set.inputs.len(),
                input_names.len(),
                input_names.join(", ")
            ));
        }
    }
    let samples: HashMap<String, _> = match data_sets.first() {
        Some(set) => input_names.iter().cloned().zip(set.inputs.iter().cloned()).collect(),
        None => HashMap::new(),
    };
    let (mut graph, bound) = model.import_for_samples(&opts, &samples).map_err(|e| e.to_string())?;
    let passes = if args.no_passes {
        None
    } else {
        Some(PassCounts {
            folded_batch_norms: fold_batch_norm(&mut graph),
            silus: recognize_silu(&mut graph),
            fused_nodes: fuse_epilogues(&mut graph),
        })
    };
    let mut report = CheckReport {
        model: args.model.display().to_string(),
        opset: model.opset().map_err(|e| e.to_string())?,
        layers: layer_rows(&graph),
        bound_inputs: bound.clone(),
        passes,
        data: Vec::new(),
    };
    let mut all_ok = true;
    for (dir, set) in args.data.iter().zip(&data_sets) {
        for name in &bound {
            let i = input_names.iter().position(|n| n == name).expect("bound inputs are model inputs");
            if set.inputs[i] != samples[name] {
                return Err(format!(
                    "input '{name}' fixes a shape and must be equal in every --data set; {} differs",
                    dir.display()
                ));
            }
        }
        let feeds: Vec<_> = graph
            .inputs
            .iter()
            .map(|&id| {
                let name = &graph.value(id).name;
                let i = input_names.iter().position(|n| n == name).expect("graph inputs are model inputs");
                set.inputs[i].clone()
            })
            .collect();
        let outputs =
            veltair_ref::evaluate(&graph, &feeds).map_err(|e| format!("evaluating on {}: {e}", dir.display()))?;
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
        println!("{}", serde_json::to_string_pretty(&report.to_json(&graph)).expect("JSON values serialise"));
    } else {
        print_text(&report, &graph);
    }
    Ok(if all_ok { Outcome::Ok } else { Outcome::Mismatch })
}
