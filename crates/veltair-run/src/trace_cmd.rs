//! `veltair-run trace`: the arrival trace `bench` replays at one rate, and the tenants' QoS
//! targets, as JSON on standard output, so an outside engine (`scripts/bench_peers.py
//! --trace-mix`, onnxruntime) can replay exactly the same queries.

use crate::tenants::WorkloadArgs;
use clap::Args;
use veltair_run::sched::poisson;

#[derive(Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Mean arrival rate (queries per second).
    #[arg(long)]
    pub rate: f64,
    /// Number of arrivals.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
}

pub fn run(args: &TraceArgs) -> Result<(), String> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err("--rate must be a positive number of queries per second".into());
    }
    let profiles: Vec<_> = args.workload.tenants()?.into_iter().map(|(_, p)| p).collect();
    let weights = vec![1.0; profiles.len()];
    let arrivals = poisson(args.rate, args.queries, &weights, args.workload.seed);
    let value = serde_json::json!({
        "rate": args.rate,
        "seed": args.workload.seed,
        "models": profiles.iter().map(|p| serde_json::json!({
            "name": p.name,
            "qos_ms": p.qos * 1e3,
            "solo_ms": p.solo(p.max_width) * 1e3,
        })).collect::<Vec<_>>(),
        "arrivals": arrivals.iter().map(|a| serde_json::json!({"at": a.at, "model": a.model})).collect::<Vec<_>>(),
    });
    println!("{value}");
    Ok(())
}
