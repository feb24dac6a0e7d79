//! `veltair-run simulate`: the schedulers replayed in the discrete-event simulator on any
//! number of cores, from the bundles' profiles, searching each policy's QPS-at-QoS. All figures
//! are modelled (see `veltair_run::sched::sim` for the model), never measured.

use crate::table::{render, to_json, Row};
use crate::tenants::{mix, open, ModelArg};
use clap::Args;
use std::path::PathBuf;
use veltair_run::sched::{level_scale, poisson, search_rate, simulate, Policy};

#[derive(Args)]
pub struct SimulateArgs {
    /// A tenant: `NAME=FILE.vbundle[:QOS_MS]` (repeatable).
    #[arg(long = "model", value_name = "NAME=FILE[:QOS_MS]")]
    pub models: Vec<ModelArg>,
    /// Instead of `--model`: `light`, `medium`, `heavy` or `NAME,NAME,...`, read from `--bundles`.
    #[arg(long)]
    pub mix: Option<String>,
    /// Directory of `NAME.vbundle` files for `--mix`.
    #[arg(long, default_value = "target/bundles")]
    pub bundles: PathBuf,
    /// Cores of the simulated machine [default: this machine's].
    #[arg(long)]
    pub cores: Option<usize>,
    /// Policies to compare: model-wise, layer-wise, layer-block, veltair (`+adaptive` /
    /// `+solo-best` override the version choice).
    #[arg(long = "policy", default_values_t = ["model-wise".to_string(), "layer-wise".to_string(), "layer-block".to_string(), "veltair".to_string()])]
    pub policies: Vec<String>,
    /// Queries per replay.
    #[arg(long, default_value_t = 2000)]
    pub queries: usize,
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

pub fn run(args: &SimulateArgs) -> Result<(), String> {
    let models = match (&args.mix, args.models.is_empty()) {
        (Some(spec), true) => mix(spec, &args.bundles)?,
        (None, false) => args.models.clone(),
        _ => return Err("give either --model (repeatable) or --mix".into()),
    };
    if args.queries == 0 || args.qos_factor.is_nan() || args.qos_factor <= 0.0 {
        return Err("--queries and --qos-factor must be positive".into());
    }
    let cores = args.cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let policies = args.policies.iter().map(|p| Policy::parse(p)).collect::<Result<Vec<_>, _>>()?;
    let profiles: Vec<_> = open(&models, args.qos_factor)?.into_iter().map(|(_, p)| p).collect();
    let scale = level_scale(&profiles);
    let qos: Vec<f64> = profiles.iter().map(|p| p.qos).collect();
    let weights = vec![1.0; profiles.len()];
    let mean_solo = profiles.iter().map(|p| p.solo(1)).sum::<f64>() / profiles.len() as f64;
    let start = cores as f64 / mean_solo / 4.0;
    let mut rows = Vec::new();
    for policy in policies {
        let replay = |rate: f64| {
            simulate(&profiles, policy, cores, scale.clone(), &poisson(rate, args.queries, &weights, args.seed))
        };
        let qps = search_rate(start, 0.99, 12, |rate| replay(rate).outcome.within_qos(&qos));
        let at = replay(qps.max(start * 1e-3));
        rows.push(Row { policy: policy.name(), qps_at_qos: qps, outcome: at.outcome, stats: at.stats });
    }
    let targets: Vec<String> = profiles.iter().map(|p| format!("{} {:.2} ms", p.name, p.qos * 1e3)).collect();
    let title = format!(
        "simulated (modelled, not measured): {cores} cores, {} queries per replay, QoS targets: {}",
        args.queries,
        targets.join(", ")
    );
    println!("{}", render(&rows, &title));
    if let Some(path) = &args.json {
        let value = serde_json::json!({"simulated": true, "cores": cores, "queries": args.queries, "seed": args.seed,
            "models": profiles.iter().map(|p| serde_json::json!({"name": p.name, "qos_ms": p.qos * 1e3})).collect::<Vec<_>>(),
            "policies": to_json(&rows)});
        std::fs::write(path, serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
