//! `veltair-run bench`: the QPS-at-QoS benchmark on this machine. Each policy gets a fresh
//! engine; the same seeded Poisson trace over the mix is replayed in real time at a searched
//! rate; a query meets QoS when answered within its model's target (a query refused as busy
//! does not), and a missed rate is replayed (`--retries`) before the search counts it. Prints the policy table and writes it as JSON, with an SVG of the latency CDFs and
//! QPS-at-QoS bars.

use crate::experiment::{compare, start_rate, ExperimentArgs};
use crate::svg;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veltair_exec::{synthetic_input, Plan};
use veltair_ir::Tensor;
use veltair_run::engine::{Engine, Tenant};
use veltair_run::sched::{confirmed_share, level_scale, poisson, ModelProfile, Outcome, Policy, SchedStats, QOS_SHARE};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Queries per replay.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Bisection steps of the rate search per policy.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Replays of a missed rate (same trace) before it counts as missed: this shared machine
    /// stalls now and then, and one stall fails a replay with tight targets, while a rate beyond
    /// a policy's capacity fails every replay. 0 trusts every single replay.
    #[arg(long, default_value_t = 1)]
    pub retries: usize,
    /// Milliseconds an idle worker keeps polling for work before it sleeps (`serve
    /// --idle-poll-ms`).
    #[arg(long, default_value_t = 0)]
    pub idle_poll_ms: u64,
    /// Queries of one model allowed in flight before it answers busy.
    #[arg(long, default_value_t = 64)]
    pub capacity: usize,
    /// Write the latency CDFs and QPS-at-QoS bars as SVG here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// A tenant's parts, kept to start a fresh engine per replay.
struct Loaded {
    plan: Plan,
    profile: ModelProfile,
    inputs: Vec<Tensor>,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    if args.queries == 0 {
        return Err("--queries must be positive".into());
    }
    let policies = args.experiment.policies()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loaded = load(args.experiment.workload.tenants()?);
    let profiles: Vec<ModelProfile> = loaded.iter().map(|l| l.profile.clone()).collect();
    let scale = level_scale(&profiles);
    let qos: Vec<f64> = profiles.iter().map(|p| p.qos).collect();
    let weights = vec![1.0; loaded.len()];
    let start = start_rate(&profiles, cores);
    let seed = args.experiment.workload.seed;
    let replay = |policy, rate: f64, seed: u64| -> Result<(Outcome, usize, SchedStats), String> {
        let tenants = loaded
            .iter()
            .map(|l| Tenant::new(l.plan.clone(), l.profile.clone(), args.capacity))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let engine = Engine::start(tenants, policy, cores, scale.clone(), Duration::from_millis(args.idle_poll_ms))
            .map_err(|e| e.to_string())?;
        let trace = poisson(rate, args.queries, &weights, seed);
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
    let comparison = compare(
        &policies,
        args.experiment.latency_rate,
        start,
        (args.steps, args.experiment.repeats),
        |policy: Policy, rate, repeat| {
            confirmed_share(args.retries, QOS_SHARE, |attempt| {
                let (outcome, refused, _) = replay(policy, rate, seed + repeat)?;
                let n = outcome.queries.len() + refused;
                let met = outcome.within_qos(&qos) * outcome.queries.len() as f64 / n.max(1) as f64;
                let again = if attempt > 0 { " (replayed)" } else { "" };
                eprintln!("  {:<12} {rate:9.2} queries/s: {:5.1}% within QoS{again}", policy.name(), met * 100.0);
                Ok(met)
            })
        },
        |policy, rate| replay(policy, rate, seed).map(|(outcome, _, stats)| (outcome, stats)),
    )?;
    let title = args.experiment.report(&comparison, &profiles, cores, args.queries, false)?;
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::plot(&comparison.rows, &title))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The tenants with synthetic inputs (values in [-1, 1]; zeros for integer inputs).
fn load(tenants: Vec<(Plan, ModelProfile)>) -> Vec<Loaded> {
    tenants
        .into_iter()
        .map(|(plan, profile)| {
            let inputs = plan.inputs.iter().map(synthetic_input).collect();
            Loaded { plan, profile, inputs }
        })
        .collect()
}
