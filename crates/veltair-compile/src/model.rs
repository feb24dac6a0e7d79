//! Loading a model the way every subcommand needs it: import with pinned shapes, binding
//! shape-fixing inputs to the first data set's values, then the graph passes.

use crate::InputShape;
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use veltair_codegen::Target;
use veltair_ir::passes::{
    conv_as_im2col, expand_norms, fold_batch_norm, fuse_epilogues, lift_1d_spatial, pool_3d_separably, recognize_gelu,
    recognize_silu,
};
use veltair_ir::{Graph, Tensor};
use veltair_lower::{lower, LowerOptions, Plan};
use veltair_onnx::{DataSet, ImportOptions, OnnxModel};

/// The model and data arguments every subcommand takes.
#[derive(Args)]
pub struct ModelArgs {
    /// The ONNX model file.
    #[arg(value_name = "MODEL")]
    pub path: PathBuf,
    /// Pin an input's shape, e.g. `--input-shape input=1x3x224x224` (repeatable). Needed for
    /// inputs with dynamic dimensions unless `--data` supplies them.
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<InputShape>,
    /// A directory in the ONNX backend-test layout (`input_N.pb`, `output_N.pb`): the model
    /// runs on its inputs and is compared with its outputs (repeatable).
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Relative tolerance of the comparison.
    #[arg(long, default_value_t = 1e-3)]
    pub rtol: f64,
    /// Absolute tolerance of the comparison.
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
}

/// How many nodes each graph pass changed.
pub struct PassCounts {
    pub folded_batch_norms: usize,
    pub im2col_convs: usize,
    pub expanded_norms: usize,
    pub separated_3d_pools: usize,
    pub silus: usize,
    pub gelus: usize,
    pub fused_nodes: usize,
    pub lifted_1d_layers: usize,
}

/// An imported model with its backend-test data sets.
pub struct Loaded {
    pub model: OnnxModel,
    pub graph: Graph,
    pub input_names: Vec<String>,
    /// Inputs fixed to the first data set's values because they determine shapes.
    pub bound: Vec<String>,
    pub data: Vec<(PathBuf, DataSet)>,
}

impl Loaded {
    /// Imports the model, pinning the given shapes and binding shape-fixing inputs from the
    /// first data set.
    pub fn load(args: &ModelArgs) -> Result<Loaded, String> {
        let (path, shapes, data_dirs): (&Path, &[InputShape], &[PathBuf]) =
            (&args.path, &args.input_shapes, &args.data);
        let model = OnnxModel::load(path).map_err(|e| e.to_string())?;
        let mut opts = ImportOptions::default();
        for s in shapes {
            opts.input_shapes.insert(s.name.clone(), s.dims.clone());
        }
        let input_names = model.input_names();
        let mut data = Vec::new();
        for dir in data_dirs {
            let set = DataSet::load(dir)?;
            if set.inputs.len() != input_names.len() {
                return Err(format!(
                    "{} has {} input files, the model has {} inputs ({})",
                    dir.display(),
                    set.inputs.len(),
                    input_names.len(),
                    input_names.join(", ")
                ));
            }
            data.push((dir.clone(), set));
        }
        let samples: HashMap<String, Tensor> = match data.first() {
            Some((_, set)) => input_names.iter().cloned().zip(set.inputs.iter().cloned()).collect(),
            None => HashMap::new(),
        };
        let (graph, bound) = model.import_for_samples(&opts, &samples).map_err(|e| e.to_string())?;
        for (dir, set) in &data {
            for name in &bound {
                let i = input_names.iter().position(|n| n == name).expect("bound inputs are model inputs");
                if set.inputs[i] != samples[name] {
                    return Err(format!(
                        "input '{name}' fixes a shape and must be equal in every --data set; {} differs",
                        dir.display()
                    ));
                }
            }
        }
        Ok(Loaded { model, graph, input_names, bound, data })
    }

    /// Runs the graph passes that turn the imported graph into layers.
    pub fn apply_passes(&mut self) -> PassCounts {
        PassCounts {
            folded_batch_norms: fold_batch_norm(&mut self.graph),
            im2col_convs: conv_as_im2col(&mut self.graph),
            expanded_norms: expand_norms(&mut self.graph),
            separated_3d_pools: pool_3d_separably(&mut self.graph),
            silus: recognize_silu(&mut self.graph),
            gelus: recognize_gelu(&mut self.graph),
            fused_nodes: fuse_epilogues(&mut self.graph),
            lifted_1d_layers: lift_1d_spatial(&mut self.graph),
        }
    }

    /// Lowers the graph to a plan whose inputs are the model's, in its order: inputs bound
    /// because they fix shapes become fixed ports, so the plan (and its bundle) takes the
    /// same inputs as the ONNX model.
    pub fn lower(&self, target: &Target, options: &LowerOptions) -> Result<Plan, String> {
        let mut plan = lower(&self.graph, target, options).map_err(|e| e.to_string())?;
        let fixed: Vec<(String, Tensor)> = match self.data.first() {
            Some((_, set)) => self
                .bound
                .iter()
                .map(|name| {
                    let i = self.input_names.iter().position(|n| n == name).expect("bound inputs are model inputs");
                    (name.clone(), set.inputs[i].clone())
                })
                .collect(),
            None => Vec::new(),
        };
        plan.fix_inputs(&self.input_names, &fixed)?;
        Ok(plan)
    }

    /// A data set's inputs in graph-input order (the reference evaluator's; a plan from
    /// [`Loaded::lower`] takes every model input, `set.inputs`).
    pub fn feeds(&self, set: &DataSet) -> Vec<Tensor> {
        self.graph
            .inputs
            .iter()
            .map(|&id| {
                let name = &self.graph.value(id).name;
                let i = self.input_names.iter().position(|n| n == name).expect("graph inputs are model inputs");
                set.inputs[i].clone()
            })
            .collect()
    }
}
