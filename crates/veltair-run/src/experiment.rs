//! What `bench` and `simulate` share: the tenants and their QoS targets, the policies compared,
//! the trace seed, the comparison itself (each policy's QPS-at-QoS, then every policy replayed
//! at one common rate for the latency columns), and printing and saving its table.

use crate::table::{render, to_json, Row};
use crate::tenants::WorkloadArgs;
use clap::Args;
use std::path::PathBuf;
use veltair_run::sched::{search_rate, ModelProfile, Outcome, Policy, SchedStats, QOS_SHARE};

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

/// Searches each policy's QPS-at-QoS `repeats` times (`within(policy, rate, repeat)`: the share
/// of queries within QoS in a replay at `rate` of repeat `repeat`'s trace; `steps` bisections
/// from `start`; every policy once per repeat, in turn, so slow drift of a shared machine
/// affects them alike) and keeps the median; then replays every policy at one rate for the
/// latency, conflict and version columns, so those compare like with like: `latency_rate`, or
/// the lowest rate found (where all of them meet QoS).
pub fn compare<E>(
    policies: &[Policy],
    latency_rate: Option<f64>,
    start: f64,
    (steps, repeats): (usize, usize),
    mut within: impl FnMut(Policy, f64, u64) -> Result<f64, E>,
    mut replay: impl FnMut(Policy, f64) -> Result<(Outcome, SchedStats), E>,
) -> Result<Comparison, E> {
    let mut runs = vec![Vec::new(); policies.len()];
    for repeat in 0..repeats.max(1) as u64 {
        for (&policy, found) in policies.iter().zip(&mut runs) {
            let mut failure = None;
            let qps = search_rate(start, QOS_SHARE, steps, |rate| {
                within(policy, rate, repeat).unwrap_or_else(|e| {
                    failure.get_or_insert(e);
                    0.0
                })
            });
            if let Some(e) = failure {
                return Err(e);
            }
            found.push(qps);
        }
    }
    let rates: Vec<f64> = runs.iter().map(|r| median(r)).collect();
    let common_rate =
        latency_rate.unwrap_or_else(|| rates.iter().copied().fold(f64::INFINITY, f64::min).max(start * 1e-3));
    let mut rows = Vec::new();
    for ((&policy, qps), runs) in policies.iter().zip(rates).zip(runs) {
        let (outcome, stats) = replay(policy, common_rate)?;
        rows.push(Row { policy: policy.name(), qps_at_qos: qps, runs, outcome, stats });
    }
    Ok(Comparison { rows, common_rate })
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
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
    /// Rate searches per policy, repeat `r` on the trace of seed `--seed` + `r`, policies in
    /// turn; the table shows the median QPS-at-QoS, the JSON every run.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
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
        if self.repeats == 0 {
            return Err("--repeats must be positive".into());
        }
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
        let repeats = match self.repeats {
            1 => String::new(),
            n => format!(
                ", QPS-at-QoS the median of {n} searches (seeds {} to {})",
                self.workload.seed,
                self.workload.seed + n as u64 - 1
            ),
        };
        let title = format!(
            "{kind}: {cores} cores, {queries} queries per replay{repeats}, QoS targets: {}; latency, conflict and \
             version columns from a replay of every policy at {rate:.2} queries/s{}",
            targets.join(", "),
            if self.latency_rate.is_some() { "" } else { " (the lowest QPS-at-QoS)" }
        );
        println!("{}", render(&comparison.rows, &title));
        if let Some(path) = &self.json {
            let value = serde_json::json!({"simulated": simulated, "cores": cores, "queries": queries, "seed": self.workload.seed, "repeats": self.repeats,
                "qos_factor": self.workload.qos_factor, "common_rate": rate,
                "models": profiles.iter().map(|p| serde_json::json!({"name": p.name, "qos_ms": p.qos * 1e3})).collect::<Vec<_>>(),
                "policies": to_json(&comparison.rows, profiles)});
            std::fs::write(path, serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(title)
    }
}
