//! What `bench` and `simulate` share: the tenants and their QoS targets, the policies compared,
//! the trace seed, the comparison itself (each policy's QPS-at-QoS, then every policy replayed
//! at one common rate for the latency columns), and printing and saving its table.

use crate::table::{render, to_json, Row};
use crate::tenants::WorkloadArgs;
use clap::Args;
use std::path::PathBuf;
use veltair_run::sched::{search_rate, ModelProfile, Outcome, Policy, SchedStats};

/// The comparison's rows and the common rate their latency columns were measured at.
pub struct Comparison {
    pub rows: Vec<Row>,
    pub common_rate: f64,
}

/// Where the rate search starts: a quarter of what `cores` cores sustain when every query takes
/// the mean one-core solo latency of the tenants.
pub fn start_rate(profiles: &[ModelProfile], cores: usize) -> f64 {
    let mean_solo = profiles.iter().map(|p| p.solo(1)).sum::<f64>() / profiles.len().max(1) as f64;
    cores as f64 / mean_solo / 4.0
}

/// Searches each policy's QPS-at-QoS (`within(policy, rate)`: the share of queries within QoS
/// in a replay at `rate`; `steps` bisections from `start`), then replays every policy at one
/// rate for the latency, conflict and version columns, so those compare like with like:
/// `latency_rate`, or the lowest rate found (where all of them meet QoS).
pub fn compare<E>(
    policies: &[Policy],
    latency_rate: Option<f64>,
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
    let common_rate =
        latency_rate.unwrap_or_else(|| rates.iter().copied().fold(f64::INFINITY, f64::min).max(start * 1e-3));
    let mut rows = Vec::new();
    for (&policy, qps) in policies.iter().zip(rates) {
        let (outcome, stats) = replay(policy, common_rate)?;
        rows.push(Row { policy: policy.name(), qps_at_qos: qps, outcome, stats });
    }
    Ok(Comparison { rows, common_rate })
}

#[derive(Args)]
pub struct ExperimentArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Policies to compare: model-wise (FCFS), layer-wise, layer-block, veltair (earliest
    /// deadline first, widening into idle cores); suffixes `+adaptive` / `+solo-best` override
    /// the version choice, `+fcfs` / `+deadline` the order, `+fit` / `+widen` the use of idle
    /// cores.
    #[arg(long = "policy", default_values_t = ["model-wise".to_string(), "layer-wise".to_string(), "layer-block".to_string(), "veltair".to_string()])]
    pub policies: Vec<String>,
    /// Rate (queries/s) of the replay behind the latency, conflict and version columns
    /// [default: the lowest QPS-at-QoS in the table].
    #[arg(long, value_name = "QPS")]
    pub latency_rate: Option<f64>,
    /// Also write the table as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl ExperimentArgs {
    pub fn policies(&self) -> Result<Vec<Policy>, String> {
        if self.latency_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err("--latency-rate must be a positive number of queries per second".into());
        }
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
             version columns from a replay of every policy at {rate:.2} queries/s{}",
            targets.join(", "),
            if self.latency_rate.is_some() { "" } else { " (the lowest QPS-at-QoS)" }
        );
        println!("{}", render(&comparison.rows, &title));
        if let Some(path) = &self.json {
            let value = serde_json::json!({"simulated": simulated, "cores": cores, "queries": queries, "seed": self.workload.seed,
                "qos_factor": self.workload.qos_factor, "common_rate": rate,
                "models": profiles.iter().map(|p| serde_json::json!({"name": p.name, "qos_ms": p.qos * 1e3})).collect::<Vec<_>>(),
                "policies": to_json(&comparison.rows, profiles)});
            std::fs::write(path, serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(title)
    }
}
