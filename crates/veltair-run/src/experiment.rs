//! What `bench` and `simulate` share: the tenants and their QoS targets, the policies compared,
//! the trace seed, and printing and saving their table.

use crate::table::{render, to_json, Row};
use crate::tenants::{mix, open, ModelArg};
use clap::Args;
use std::path::PathBuf;
use veltair_exec::Plan;
use veltair_run::sched::{ModelProfile, Policy};

#[derive(Args)]
pub struct ExperimentArgs {
    /// A tenant: `NAME=FILE.vbundle[:QOS_MS]` (repeatable).
    #[arg(long = "model", value_name = "NAME=FILE[:QOS_MS]")]
    pub models: Vec<ModelArg>,
    /// Instead of `--model`: `light`, `medium`, `heavy` or `NAME,NAME,...`, read from `--bundles`.
    #[arg(long)]
    pub mix: Option<String>,
    /// Directory of `NAME.vbundle` files for `--mix`.
    #[arg(long, default_value = "target/bundles")]
    pub bundles: PathBuf,
    /// Policies to compare: model-wise, layer-wise, layer-block, veltair (`+adaptive` /
    /// `+solo-best` override the version choice).
    #[arg(long = "policy", default_values_t = ["model-wise".to_string(), "layer-wise".to_string(), "layer-block".to_string(), "veltair".to_string()])]
    pub policies: Vec<String>,
    /// Seed of the Poisson arrival trace (the same trace for every policy).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// QoS target of a model without one: this many times its solo latency at its bundle's
    /// widest width.
    #[arg(long, default_value_t = 4.0)]
    pub qos_factor: f64,
    /// Also write the table as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl ExperimentArgs {
    /// The tenants' plans and profiles (with QoS targets).
    pub fn tenants(&self) -> Result<Vec<(Plan, ModelProfile)>, String> {
        let models = match (&self.mix, self.models.is_empty()) {
            (Some(spec), true) => mix(spec, &self.bundles)?,
            (None, false) => self.models.clone(),
            _ => return Err("give either --model (repeatable) or --mix".into()),
        };
        if self.qos_factor.is_nan() || self.qos_factor <= 0.0 {
            return Err("--qos-factor must be positive".into());
        }
        open(&models, self.qos_factor)
    }

    pub fn policies(&self) -> Result<Vec<Policy>, String> {
        self.policies.iter().map(|p| Policy::parse(p)).collect()
    }

    /// Prints the table under a title naming the setting, writes the JSON if asked, and
    /// returns the title.
    pub fn report(
        &self,
        rows: &[Row],
        profiles: &[ModelProfile],
        cores: usize,
        queries: usize,
        simulated: bool,
    ) -> Result<String, String> {
        let targets: Vec<String> = profiles.iter().map(|p| format!("{} {:.2} ms", p.name, p.qos * 1e3)).collect();
        let kind = if simulated { "simulated (modelled, not measured)" } else { "measured on this machine" };
        let title = format!("{kind}: {cores} cores, {queries} queries per replay, QoS targets: {}", targets.join(", "));
        println!("{}", render(rows, &title));
        if let Some(path) = &self.json {
            let value = serde_json::json!({"simulated": simulated, "cores": cores, "queries": queries, "seed": self.seed,
                "models": profiles.iter().map(|p| serde_json::json!({"name": p.name, "qos_ms": p.qos * 1e3})).collect::<Vec<_>>(),
                "policies": to_json(rows)});
            std::fs::write(path, serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(title)
    }
}
