//! The discrete-event simulator: a trace replayed through the same `Scheduler` the runtime
//! uses, on any number of cores, without running any code. Every figure it produces is
//! modelled, not measured. The model:
//! - a block lasts the sum of its layers' profiled latencies (`ModelProfile::latency`: measured
//!   cells, else the models stated there) at the width it got and the contention level its
//!   co-runners cause when it starts;
//! - that level is the predicted level of the monitor module: the pressure (profile module) of
//!   the blocks running on the other cores, relative to how many other cores there are;
//! - each model's layers take its in-situ factor at that width times that: how much slower its
//!   layers ran in a real server than in the compiler's measurement loop with no co-runner
//!   (caches cold after other tenants, waking the other workers of a block), measured by a
//!   low-rate `bench` (1.0 when not given).

use super::monitor::predicted_level;
use super::policy::Policy;
use super::profile::ModelProfile;
use super::scheduler::{SchedStats, Scheduler};
use super::trace::{Arrival, Outcome};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The result of one simulated replay.
#[derive(Clone, Debug)]
pub struct SimRun {
    pub outcome: Outcome,
    pub stats: SchedStats,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival(usize),
    Done(u64),
}

/// The simulated machine: its cores, the typical slowdown of each contention level, and the
/// in-situ factors (see the module doc).
#[derive(Clone, Debug)]
pub struct Machine {
    pub cores: usize,
    pub scale: Vec<f64>,
    pub in_situ: InSitu,
}

/// In-situ factors by (model, width), else by model, else 1.0.
#[derive(Clone, Debug, Default)]
pub struct InSitu {
    pub by_width: HashMap<(usize, usize), f64>,
    pub by_model: HashMap<usize, f64>,
}

impl InSitu {
    pub fn factor(&self, model: usize, width: usize) -> f64 {
        let by_model = || self.by_model.get(&model);
        self.by_width.get(&(model, width)).or_else(by_model).copied().unwrap_or(1.0)
    }
}

/// Replays `trace` under `policy` on `machine`.
pub fn simulate(models: &[ModelProfile], policy: Policy, machine: &Machine, trace: &[Arrival]) -> SimRun {
    let (cores, scale) = (machine.cores, machine.scale.clone());
    let levels = scale.len().saturating_sub(1);
    let mut sched = Scheduler::new(policy, models.to_vec(), cores, scale);
    let nanos = |t: f64| (t * 1e9).round() as u64;
    let mut events: BinaryHeap<Reverse<(u64, Event)>> =
        trace.iter().enumerate().map(|(i, a)| Reverse((nanos(a.at), Event::Arrival(i)))).collect();
    let mut running: HashMap<u64, (f64, Vec<f64>)> = HashMap::new();
    let mut outcome = Outcome::default();
    while let Some(Reverse((t, event))) = events.pop() {
        let now = t as f64 / 1e9;
        match event {
            Event::Arrival(i) => {
                sched.arrive(trace[i].model, now);
            }
            Event::Done(id) => {
                let (_, seconds) = running.remove(&id).unwrap_or_default();
                if let Some(done) = sched.block_done(id, &seconds) {
                    outcome.queries.push((done.model, done.arrival, now));
                }
            }
        }
        for block in sched.schedule(now) {
            let p = &models[block.model];
            let width = block.cores.len();
            let factor = machine.in_situ.factor(block.model, width);
            let others: f64 = running.values().map(|r| r.0).sum();
            let level = predicted_level(others, width, cores, levels);
            let seconds: Vec<f64> = block
                .steps
                .clone()
                .zip(&block.versions)
                .map(|(i, &v)| factor * p.latency(i, v, width, level))
                .collect();
            let end = now + seconds.iter().sum::<f64>();
            running.insert(block.id, (block.pressure, seconds));
            events.push(Reverse((nanos(end).max(t + 1), Event::Done(block.id))));
        }
    }
    SimRun { outcome, stats: sched.stats().clone() }
}

#[cfg(test)]
mod tests {
    use super::super::profile::{StepProfile, VersionProfile};
    use super::super::trace::poisson;
    use super::*;
    use veltair_bundle::Latency;

    /// A model of `layers` identical layers that scale perfectly up to `scaling` cores.
    fn model(layers: usize, t1: f64, scaling: usize, qos: f64) -> ModelProfile {
        let cells = (1..=4u32)
            .map(|w| Latency { width: w, level: 0, seconds: t1 / (w.min(scaling as u32)) as f64 })
            .collect::<Vec<_>>();
        let step = StepProfile { label: "l".into(), macs: 1000, versions: vec![VersionProfile { cells }] };
        ModelProfile { name: "m".into(), qos, steps: vec![step; layers], max_width: 4, levels: 0, reference: vec![1.0] }
    }

    fn machine(cores: usize) -> Machine {
        Machine { cores, scale: vec![1.0], in_situ: InSitu::default() }
    }

    #[test]
    fn in_situ_factors_scale_the_layers_of_their_model() {
        let models = vec![model(10, 1e-3, 1, 1.0)];
        let trace = poisson(1.0, 20, &[1.0], 4);
        let policy = Policy::parse("model-wise").unwrap();
        let plain = simulate(&models, policy, &machine(1), &trace);
        let in_situ = InSitu { by_model: HashMap::from([(0, 1.5)]), ..InSitu::default() };
        let slow = simulate(&models, policy, &Machine { in_situ, ..machine(1) }, &trace);
        let (a, b) = (plain.outcome.latencies(), slow.outcome.latencies());
        assert!((a[0] - 0.01).abs() < 1e-9 && (b[0] - 0.015).abs() < 1e-9, "{a:?} {b:?}");
        assert!((slow.stats.slowdown(|_, _| true) - 1.5).abs() < 1e-9);
        let in_situ = InSitu { by_width: HashMap::from([((0, 1), 2.0)]), by_model: HashMap::from([(0, 1.5)]) };
        assert_eq!((in_situ.factor(0, 1), in_situ.factor(0, 2), in_situ.factor(1, 1)), (2.0, 1.5, 1.0));
    }

    #[test]
    fn every_query_finishes_and_latency_is_at_least_the_solo_time() {
        let models = vec![model(10, 1e-3, 4, 0.05)];
        for name in ["model-wise", "layer-wise", "layer-block", "veltair"] {
            let trace = poisson(200.0, 300, &[1.0], 3);
            let run = simulate(&models, Policy::parse(name).unwrap(), &machine(4), &trace);
            assert_eq!(run.outcome.queries.len(), 300, "{name}");
            let fastest = models[0].solo(4);
            assert!(run.outcome.latencies()[0] >= fastest - 1e-9, "{name}");
            assert!(run.stats.blocks >= 300);
        }
    }

    #[test]
    fn an_idle_machine_meets_qos_and_an_overloaded_one_does_not() {
        let models = vec![model(10, 1e-3, 2, 0.02)];
        let qos = [0.02];
        let policy = Policy::parse("veltair").unwrap();
        let light = simulate(&models, policy, &machine(4), &poisson(10.0, 200, &[1.0], 1));
        assert_eq!(light.outcome.within_qos(&qos), 1.0);
        let heavy = simulate(&models, policy, &machine(4), &poisson(5000.0, 200, &[1.0], 1));
        assert!(heavy.outcome.within_qos(&qos) < 0.5);
    }

    #[test]
    fn model_wise_holds_cores_for_the_whole_query() {
        let models = vec![model(5, 1e-3, 4, 1.0)];
        let run = simulate(&models, Policy::parse("model-wise").unwrap(), &machine(4), &poisson(1.0, 20, &[1.0], 2));
        assert_eq!(run.stats.blocks, 20, "one block per query");
        assert_eq!(run.stats.conflicts, 0);
    }
}
