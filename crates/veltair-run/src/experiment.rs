//! What `bench` and `simulate` share: the tenants and their QoS targets, the policies compared,
//! the trace seed, the comparison itself (each policy's QPS-at-QoS, then every policy replayed
//! at one common rate for the latency columns), and printing and saving its table.

use crate::table::{render, to_json, Row};
use crate::tenants::{mix, open, ModelArg};
use clap::Args;
use std::path::PathBuf;
use veltair_exec::Plan;
use veltair_run::sched::{search_rate, ModelProfile, Outcome, Policy, SchedStats};

/// The comparison's rows and the common rate their latency columns were measured at.
pub struct Comparison {
    pub rows: Vec<Row>,
    pub common_rate: f64,
}

/// Searches each policy's QPS-at-QoS (`within(policy, rate)`: the share of queries within QoS
/// in a replay at `rate`; `steps` bisections from `start`), then replays every policy at the
/// lowest rate found (where all of them meet QoS) for the latency, conflict and version columns,
/// so those compare like with like.
pub fn compare<E>(
    policies: &[Policy],
    start: f64,
    steps: usize,
    mut within: impl FnMut(Policy, f64) -> Result<f64, E>,
    mut replay: impl FnMut(Policy, f64) -> Result<(Outcome, SchedStats), E>,
) -> Result<Comparison, E> {
    let mut rates = Vec::new();
    for &policy in policies {
        let mut failure = None;
        let qps = search_rate(start, 0.99, steps, |rate| {
            within(policy, rate).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                0.0
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        rates.push(qps);
    }
    let common_rate = rates.iter().copied().fold(f64::INFINITY, f64::min).max(start * 1e-3);
    let mut rows = Vec::new();
    for (&policy, qps) in policies.iter().zip(rates) {
        let (outcome, stats) = replay(policy, common_rate)?;
        rows.push(Row { policy: policy.name(), qps_at_qos: qps, outcome, stats });
    }
    Ok(Comparison { rows, common_rate })
}

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
        comparison: &Comparison,
        profiles: &[ModelProfile],
        cores: usize,
        queries: usize,
        simulated: bool,
    ) -> Result<String, String> {
        let targets: Vec<String> = profiles.iter().map(|p| format!("{} {:.2} ms", p.name, p.qos * 1e3)).collect();
        let kind = if simulated { "simulated (modelled, not measured)" } else { "measured on this machine" };
        let rate = comparison.common_rate;
        let title = format!(
            "{kind}: {cores} cores, {queries} queries per replay, QoS targets: {}; latency, conflict and \
             version columns from a replay of every policy at {rate:.2} queries/s (the lowest QPS-at-QoS)",
            targets.join(", ")
        );
        println!("{}", render(&comparison.rows, &title));
        if let Some(path) = &self.json {
            let value = serde_json::json!({"simulated": simulated, "cores": cores, "queries": queries, "seed": self.seed,
                "qos_factor": self.qos_factor, "common_rate": rate,
                "models": profiles.iter().map(|p| serde_json::json!({"name": p.name, "qos_ms": p.qos * 1e3})).collect::<Vec<_>>(),
                "policies": to_json(&comparison.rows)});
            std::fs::write(path, serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(title)
    }
}
