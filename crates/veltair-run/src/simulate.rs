//! `veltair-run simulate`: the schedulers replayed in the discrete-event simulator on any
//! number of cores, from the bundles' profiles, searching each policy's QPS-at-QoS. All figures
//! are modelled (see `veltair_run::sched::sim` for the model), never measured.

use crate::experiment::{compare, start_rate, ExperimentArgs};
use clap::Args;
use veltair_run::sched::{level_scale, poisson, simulate};

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
    let scale = level_scale(&profiles);
    let qos: Vec<f64> = profiles.iter().map(|p| p.qos).collect();
    let weights = vec![1.0; profiles.len()];
    let start = start_rate(&profiles, cores);
    let seed = args.experiment.workload.seed;
    let replay =
        |policy, rate| simulate(&profiles, policy, cores, scale.clone(), &poisson(rate, args.queries, &weights, seed));
    let comparison = compare::<String>(
        &policies,
        args.experiment.latency_rate,
        start,
        12,
        |policy, rate| Ok(replay(policy, rate).outcome.within_qos(&qos)),
        |policy, rate| {
            let run = replay(policy, rate);
            Ok((run.outcome, run.stats))
        },
    )?;
    args.experiment.report(&comparison, &profiles, cores, args.queries, true).map(|_| ())
}
