//! `veltair-run bench`: the QPS-at-QoS benchmark on this machine. Each policy gets a fresh
//! engine; the same seeded Poisson trace over the mix is replayed in real time at a searched
//! rate; a query meets QoS when answered within its model's target (a query refused as busy
//! does not). Prints the policy table and writes it as JSON, with an SVG of the latency CDFs and
//! QPS-at-QoS bars.

use crate::svg;
use crate::table::{render, to_json, Row};
use crate::tenants::{mix, open, ModelArg};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veltair_exec::{Plan, PortType};
use veltair_run::engine::{Engine, Input, Tenant};
use veltair_run::sched::{level_scale, poisson, search_rate, ModelProfile, Outcome, Policy};

#[derive(Args)]
pub struct BenchArgs {
    /// A tenant: `NAME=FILE.vbundle[:QOS_MS]` (repeatable).
    #[arg(long = "model", value_name = "NAME=FILE[:QOS_MS]")]
    pub models: Vec<ModelArg>,
    /// Instead of `--model`: `light`, `medium`, `heavy` or `NAME,NAME,...`, read from `--bundles`.
    #[arg(long)]
    pub mix: Option<String>,
    /// Directory of `NAME.vbundle` files for `--mix`.
    #[arg(long, default_value = "target/bundles")]
    pub bundles: PathBuf,
    /// Policies to compare (see `simulate --help`).
    #[arg(long = "policy", default_values_t = ["model-wise".to_string(), "layer-wise".to_string(), "layer-block".to_string(), "veltair".to_string()])]
    pub policies: Vec<String>,
    /// Queries per replay.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Bisection steps of the rate search per policy.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Seed of the arrival trace (the same for every policy).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// QoS target of a model without one: this many times its solo latency at its bundle's
    /// widest width.
    #[arg(long, default_value_t = 4.0)]
    pub qos_factor: f64,
    /// Queries of one model allowed in flight before it answers busy.
    #[arg(long, default_value_t = 64)]
    pub capacity: usize,
    /// Write the table as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency CDFs and QPS-at-QoS bars as SVG here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// A tenant's parts, kept to start a fresh engine per replay.
struct Loaded {
    plan: Plan,
    profile: ModelProfile,
    inputs: Vec<Input>,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    let models = match (&args.mix, args.models.is_empty()) {
        (Some(spec), true) => mix(spec, &args.bundles)?,
        (None, false) => args.models.clone(),
        _ => return Err("give either --model (repeatable) or --mix".into()),
    };
    if args.queries == 0 || args.qos_factor.is_nan() || args.qos_factor <= 0.0 {
        return Err("--queries and --qos-factor must be positive".into());
    }
    let policies = args.policies.iter().map(|p| Policy::parse(p)).collect::<Result<Vec<_>, _>>()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loaded = load(&models, args.qos_factor)?;
    let profiles: Vec<ModelProfile> = loaded.iter().map(|l| l.profile.clone()).collect();
    let scale = level_scale(&profiles);
    let qos: Vec<f64> = profiles.iter().map(|p| p.qos).collect();
    let weights = vec![1.0; loaded.len()];
    let mean_solo = profiles.iter().map(|p| p.solo(1)).sum::<f64>() / profiles.len() as f64;
    let start = cores as f64 / mean_solo / 4.0;
    let mut rows = Vec::new();
    for policy in policies {
        let replay = |rate: f64| -> Result<(Outcome, usize, veltair_run::sched::SchedStats), String> {
            let tenants = loaded
                .iter()
                .map(|l| Tenant::new(l.plan.clone(), l.profile.clone(), args.capacity))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let engine = Engine::start(tenants, policy, cores, scale.clone()).map_err(|e| e.to_string())?;
            let trace = poisson(rate, args.queries, &weights, args.seed);
            let t0 = Instant::now();
            let mut refused = 0;
            for a in &trace {
                let due = Duration::from_secs_f64(a.at);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
                let inputs = loaded[a.model].inputs.clone();
                if engine.submit(a.model, inputs, Box::new(|_| {})).is_err() {
                    refused += 1;
                }
            }
            while engine.in_flight() > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let outcome =
                Outcome { queries: engine.take_completions().iter().map(|c| (c.model, c.arrival, c.finish)).collect() };
            let stats = engine.stats();
            engine.drain();
            Ok((outcome, refused, stats))
        };
        let mut failure = None;
        let mut within = |rate: f64| match replay(rate) {
            Ok((outcome, refused, _)) => {
                let n = outcome.queries.len() + refused;
                let met = outcome.within_qos(&qos) * outcome.queries.len() as f64 / n.max(1) as f64;
                eprintln!("  {:<12} {rate:9.1} queries/s: {:5.1}% within QoS", policy.name(), met * 100.0);
                met
            }
            Err(e) => {
                failure.get_or_insert(e);
                0.0
            }
        };
        let qps = search_rate(start, 0.99, args.steps, &mut within);
        if let Some(e) = failure {
            return Err(e);
        }
        let (outcome, _, stats) = replay(qps.max(start * 1e-3))?;
        rows.push(Row { policy: policy.name(), qps_at_qos: qps, outcome, stats });
    }
    let targets: Vec<String> = profiles.iter().map(|p| format!("{} {:.2} ms", p.name, p.qos * 1e3)).collect();
    let title = format!(
        "measured on this machine: {cores} cores, {} queries per replay, QoS targets: {}",
        args.queries,
        targets.join(", ")
    );
    println!("{}", render(&rows, &title));
    if let Some(path) = &args.json {
        let value = serde_json::json!({"simulated": false, "cores": cores, "queries": args.queries, "seed": args.seed,
            "models": profiles.iter().map(|p| serde_json::json!({"name": p.name, "qos_ms": p.qos * 1e3})).collect::<Vec<_>>(),
            "policies": to_json(&rows)});
        std::fs::write(path, serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::plot(&rows, &title)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Opens the bundles, builds profiles (with QoS targets) and synthetic inputs.
fn load(models: &[ModelArg], qos_factor: f64) -> Result<Vec<Loaded>, String> {
    Ok(open(models, qos_factor)?
        .into_iter()
        .map(|(plan, profile)| {
            let inputs = plan
                .inputs
                .iter()
                .map(|p| match p.dtype {
                    PortType::F32 => {
                        Input::F32((0..p.elems()).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect())
                    }
                    PortType::I64 => Input::I64(vec![0; p.elems()]),
                })
                .collect();
            Loaded { plan, profile, inputs }
        })
        .collect())
}
