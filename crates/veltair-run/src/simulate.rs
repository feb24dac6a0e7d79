//! `veltair-run simulate`: the schedulers replayed in the discrete-event simulator on any
//! number of cores, from the bundles' profiles, searching each policy's QPS-at-QoS. All figures
//! are modelled (see `veltair_run::sched::sim` for the model), never measured.

use crate::experiment::{compare, start_rate, ExperimentArgs};
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use veltair_run::sched::{level_scale, poisson, simulate, InSitu, Machine, ModelProfile};

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Cores of the simulated machine [default: this machine's].
    #[arg(long)]
    pub cores: Option<usize>,
    /// Queries per replay.
    #[arg(long, default_value_t = 2000)]
    pub queries: usize,
    /// Widest width a layer may get [default: each bundle's own]; wider than measured is
    /// modelled (Amdahl's law fitted to the measured widths).
    #[arg(long, value_name = "W")]
    pub max_width: Option<usize>,
    /// A `bench --json` file from a run on the real machine (e.g. `bench --policy model-wise
    /// --policy layer-wise --steps 0 --latency-rate R`): each model's layer slowdown at each width
    /// in blocks that ran alone (from the policy row that ran alone at that width longest; when
    /// no row has 0.25 s of such layers, the slowdown in all of the row that ran the width
    /// longest; else the first row's slowdown in all) becomes its in-situ factor there, scaling its simulated layer times:
    /// the cost of running in a server, with caches cold after other tenants, rather than in
    /// the compiler's measurement loop [default: 1.0].
    #[arg(long, value_name = "FILE")]
    pub in_situ: Option<PathBuf>,
}

pub fn run(args: &SimulateArgs) -> Result<(), String> {
    if args.queries == 0 {
        return Err("--queries must be positive".into());
    }
    let cores = args.cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let policies = args.experiment.policies()?;
    let mut profiles: Vec<_> = args.experiment.workload.tenants()?.into_iter().map(|(_, p)| p).collect();
    if let Some(w) = args.max_width {
        profiles.iter_mut().for_each(|p| p.max_width = w.max(1));
    }
    let in_situ = match &args.in_situ {
        Some(path) => in_situ_factors(path, &profiles)?,
        None => InSitu::default(),
    };
    let machine = Machine { cores, scale: level_scale(&profiles), in_situ };
    let qos: Vec<f64> = profiles.iter().map(|p| p.qos).collect();
    let weights = vec![1.0; profiles.len()];
    let start = start_rate(&profiles, cores);
    let seed = args.experiment.workload.seed;
    let replay =
        |policy, rate, seed| simulate(&profiles, policy, &machine, &poisson(rate, args.queries, &weights, seed));
    let comparison = compare::<String>(
        &policies,
        args.experiment.latency_rate,
        start,
        (12, args.experiment.repeats),
        |policy, rate, repeat| Ok(replay(policy, rate, seed + repeat).outcome.within_qos(&qos)),
        |policy, rate| {
            let run = replay(policy, rate, seed);
            Ok((run.outcome, run.stats))
        },
    )?;
    args.experiment.report(&comparison, &profiles, cores, args.queries, true).map(|_| ())
}

/// Layer time that blocks which ran alone must cover at a width before their slowdown stands
/// for it: a few layers that happened to run alone say little.
const MIN_ALONE_SECONDS: f64 = 0.25;

/// The in-situ factors in the bench JSON at `path` for the models of `profiles` (by name): per
/// width, the slowdown of blocks that ran alone in the policy row that ran them longest there;
/// when no row has `MIN_ALONE_SECONDS` of them (or the file predates them), the slowdown in all
/// of the row that ran that width longest; per model, the first row's slowdown in all.
fn in_situ_factors(path: &Path, profiles: &[ModelProfile]) -> Result<InSitu, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    if json["simulated"] != serde_json::Value::Bool(false) {
        return Err(format!("{} is not the JSON of a measured `veltair-run bench`", path.display()));
    }
    let rows: Vec<&serde_json::Value> = json["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["per_model"].as_array().into_iter().flatten())
        .collect();
    let valid = |v: &serde_json::Value| v.as_f64().filter(|s| s.is_finite() && *s > 0.0);
    let mut in_situ = InSitu::default();
    // Per (model, width): whether the chosen cell's factor is from blocks that ran alone, and
    // the layer time behind it; alone beats all, then the longer time wins.
    let mut longest: HashMap<(usize, usize), (bool, f64)> = HashMap::new();
    for (m, p) in profiles.iter().enumerate() {
        let mine: Vec<_> = rows.iter().filter(|r| r["model"] == p.name.as_str()).collect();
        let overall = mine
            .first()
            .and_then(|r| valid(&r["slowdown"]))
            .ok_or_else(|| format!("{} has no measured layer slowdown for model `{}`", path.display(), p.name))?;
        in_situ.by_model.insert(m, overall);
        for (width, cell) in mine.iter().filter_map(|r| r["slowdown_by_width"].as_object()).flatten() {
            let alone = (valid(&cell["alone_slowdown"]), valid(&cell["alone_seconds"]));
            let enough = alone.0.is_some() && alone.1.is_some_and(|t| t >= MIN_ALONE_SECONDS);
            let all = (valid(&cell["slowdown"]), valid(&cell["seconds"]));
            let (Ok(w), (Some(slowdown), Some(seconds))) = (width.parse(), if enough { alone } else { all }) else {
                continue;
            };
            let key = (enough, seconds);
            if longest.get(&(m, w)).is_none_or(|&best| key > best) {
                longest.insert((m, w), key);
                in_situ.by_width.insert((m, w), slowdown);
            }
        }
    }
    Ok(in_situ)
}
