//! `veltair-compile check`: import, run the graph passes, list layers, evaluate on
//! backend-test data and compare.

use crate::model::{Loaded, ModelArgs};
use crate::report::{layer_rows, print_text, CheckReport, DataResult, OutputResult};
use crate::Outcome;
use clap::Args;

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// List and evaluate the graph as imported, without the graph passes (BatchNormalization
    /// folding, SiLU recognition, epilogue fusion) that turn it into layers.
    #[arg(long)]
    pub no_passes: bool,
}

pub fn run(args: &CheckArgs) -> Result<Outcome, String> {
    let mut loaded = Loaded::load(&args.model)?;
    let passes = (!args.no_passes).then(|| loaded.apply_passes());
    let graph = &loaded.graph;
    let mut report = CheckReport {
        model: args.model.path.display().to_string(),
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
                cmp: veltair_ir::compare(got, want, args.model.rtol, args.model.atol),
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
