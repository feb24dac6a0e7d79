//! The scheduler as a state machine shared by the real runtime and the simulator: queries
//! arrive, `schedule` starts every block that can start now, in the policy's order (by arrival
//! or by deadline: when the first waiting query cannot start, nobody behind it does),
//! `block_done` returns a block's cores and feeds its layer timings to the contention monitor.
//! It never touches threads or clocks itself: callers pass the time.

use super::cores::CoreSet;
use super::monitor::{predicted_level, Monitor};
use super::policy::{Granularity, Idle, Order, Policy, VersionPolicy};
use super::profile::ModelProfile;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::Instant;

/// A layer block ends before its profiled latency passes this fraction of the tightest QoS
/// target among the tenants, so a query that arrives while every core is held waits at most
/// that long for a block boundary.
const BLOCK_HORIZON: f64 = 0.1;

/// A block alone in the queue widens into idle cores only while the extra cores keep at least
/// this parallel efficiency: going from width `w` to `v` must divide its profiled latency by at
/// least `WIDEN_EFFICIENCY * v / w`. Inefficient widening would hold cores that a query arriving
/// a moment later needs, for little gain.
const WIDEN_EFFICIENCY: f64 = 0.7;

/// A query, numbered in arrival order.
pub type QueryId = u64;

/// A block the scheduler started: steps `steps` of query `query` on `cores`, layer `i` running
/// version `versions[i - steps.start]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockStart {
    pub id: u64,
    pub query: QueryId,
    pub model: usize,
    pub steps: Range<usize>,
    pub cores: Vec<usize>,
    pub versions: Vec<usize>,
    /// The contention level the versions were chosen for.
    pub level: usize,
    /// Its pressure on co-runners (the profile's block pressure) times the cores it holds.
    pub pressure: f64,
}

/// A query the scheduler finished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueryDone {
    pub query: QueryId,
    pub model: usize,
    pub arrival: f64,
}

/// Counters for reports and metrics.
#[derive(Clone, Debug, Default)]
pub struct SchedStats {
    pub blocks: u64,
    /// Blocks that ran on fewer cores than their plan asked for.
    pub conflicts: u64,
    /// How often each (model, step, version) was chosen.
    pub version_choices: HashMap<(usize, usize, usize), u64>,
    /// Layer runs whose version differs from the solo-best version at the width they got (the
    /// choices contention made).
    pub contention_choices: u64,
    /// Layer runs in all.
    pub layer_runs: u64,
    /// Wall time spent inside `arrive`, `schedule` and `block_done`.
    pub decision_seconds: f64,
    /// Per (model, width): the time finished layers took against their profiled solo time.
    pub layer_time: HashMap<(usize, usize), LayerTime>,
}

/// Time layers took and what their profiles say they take solo at the same width and version:
/// the ratio is the slowdown co-runners (and running inside a server rather than in a
/// measurement loop) caused. The `alone_` part is from blocks that no other block ran beside:
/// the cost of serving without interference.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerTime {
    pub measured: f64,
    pub profiled: f64,
    pub alone_measured: f64,
    pub alone_profiled: f64,
}

impl SchedStats {
    /// Measured over profiled layer time of the (model, width) pairs `keep` accepts.
    pub fn slowdown(&self, keep: impl Fn(usize, usize) -> bool) -> f64 {
        self.ratio(keep, |t| (t.measured, t.profiled))
    }

    /// The same over the layers of blocks that ran alone (NaN when there were none).
    pub fn alone_slowdown(&self, keep: impl Fn(usize, usize) -> bool) -> f64 {
        self.ratio(keep, |t| (t.alone_measured, t.alone_profiled))
    }

    fn ratio(&self, keep: impl Fn(usize, usize) -> bool, part: impl Fn(&LayerTime) -> (f64, f64)) -> f64 {
        let (measured, profiled) = self
            .layer_time
            .iter()
            .filter(|((m, w), _)| keep(*m, *w))
            .map(|(_, t)| part(t))
            .fold((0.0, 0.0), |(a, b), (m, p)| (a + m, b + p));
        measured / profiled
    }
}

struct Query {
    model: usize,
    arrival: f64,
    /// Its place in the waiting order.
    key: u64,
    next_step: usize,
    /// Model-wise: the width chosen at the first block.
    width: Option<usize>,
}

struct Running {
    query: QueryId,
    model: usize,
    steps: Range<usize>,
    versions: Vec<usize>,
    cores: Vec<usize>,
    /// Pressure times cores held.
    pressure: f64,
    /// Whether another block ran beside it at some point.
    shared: bool,
}

/// The scheduler.
pub struct Scheduler {
    policy: Policy,
    models: Vec<ModelProfile>,
    cores: CoreSet,
    queries: HashMap<QueryId, Query>,
    /// Queries ready for their next block, by (priority key, id).
    waiting: BTreeSet<(u64, QueryId)>,
    running: HashMap<u64, Running>,
    monitor: Monitor,
    next_query: QueryId,
    next_block: u64,
    /// The longest a layer block may hold its cores (profiled, seconds).
    horizon: f64,
    stats: SchedStats,
}

impl Scheduler {
    /// A scheduler for `models` on `cores` cores; `scale` is the typical slowdown of each
    /// contention level (level 0 first).
    pub fn new(policy: Policy, models: Vec<ModelProfile>, cores: usize, scale: Vec<f64>) -> Scheduler {
        Scheduler {
            policy,
            horizon: BLOCK_HORIZON * models.iter().map(|m| m.qos).fold(f64::INFINITY, f64::min),
            models,
            cores: CoreSet::new(cores.max(1)),
            queries: HashMap::new(),
            waiting: BTreeSet::new(),
            running: HashMap::new(),
            monitor: Monitor::new(scale),
            next_query: 0,
            next_block: 0,
            stats: SchedStats::default(),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn models(&self) -> &[ModelProfile] {
        &self.models
    }

    pub fn stats(&self) -> &SchedStats {
        &self.stats
    }

    /// The current contention estimate for a block on one core (for metrics).
    pub fn contention_level(&self) -> usize {
        self.monitor.level(self.predicted(1))
    }

    /// The smoothed observed slowdown of executed layers (for metrics).
    pub fn observed_slowdown(&self) -> f64 {
        self.monitor.slowdown()
    }

    /// Feeds the contention monitor the process's cache misses per second over the last sampling
    /// interval (from hardware counters, where the host has them).
    pub fn observe_miss_rate(&mut self, rate: f64) {
        self.monitor.observe_miss_rate(rate);
    }

    /// The smoothed cache misses per second (for metrics).
    pub fn miss_rate(&self) -> f64 {
        self.monitor.miss_rate()
    }

    /// Registers a query of `model` arriving at `now`.
    pub fn arrive(&mut self, model: usize, now: f64) -> QueryId {
        let start = Instant::now();
        let id = self.next_query;
        self.next_query += 1;
        let key = match self.policy.order {
            Order::Arrival => id,
            Order::Deadline => ((now + self.models[model].qos) * 1e9) as u64,
        };
        self.queries.insert(id, Query { model, arrival: now, key, next_step: 0, width: None });
        self.waiting.insert((key, id));
        self.stats.decision_seconds += start.elapsed().as_secs_f64();
        id
    }

    /// Starts every block that can start at `now`, in the policy's order.
    pub fn schedule(&mut self, now: f64) -> Vec<BlockStart> {
        let start = Instant::now();
        let mut started = Vec::new();
        while let Some(&(key, qid)) = self.waiting.first() {
            match self.next_block(qid, now) {
                Some(block) => {
                    self.waiting.remove(&(key, qid));
                    started.push(block);
                }
                None => break,
            }
        }
        self.stats.decision_seconds += start.elapsed().as_secs_f64();
        started
    }

    /// Ends block `id`, whose layers took `step_seconds`; returns the query when it is complete.
    pub fn block_done(&mut self, id: u64, step_seconds: &[f64]) -> Option<QueryDone> {
        let start = Instant::now();
        let done = self.finish_block(id, step_seconds);
        self.stats.decision_seconds += start.elapsed().as_secs_f64();
        done
    }

    fn finish_block(&mut self, id: u64, step_seconds: &[f64]) -> Option<QueryDone> {
        let block = self.running.remove(&id)?;
        self.cores.give_back(&block.cores);
        let profile = &self.models[block.model];
        let width = block.cores.len();
        for ((step, &version), &seconds) in block.steps.clone().zip(&block.versions).zip(step_seconds) {
            let solo = profile.latency(step, version, width, 0);
            self.monitor.observe(seconds, solo, !block.shared);
            let time = self.stats.layer_time.entry((block.model, width)).or_default();
            time.measured += seconds;
            time.profiled += solo;
            if !block.shared {
                time.alone_measured += seconds;
                time.alone_profiled += solo;
            }
        }
        let q = self.queries.get_mut(&block.query)?;
        q.next_step = block.steps.end;
        if q.next_step >= profile.steps.len() {
            let q = self.queries.remove(&block.query)?;
            return Some(QueryDone { query: block.query, model: q.model, arrival: q.arrival });
        }
        self.waiting.insert((q.key, block.query));
        None
    }

    /// Predicted contention level for a new block on `own` cores: from the measured pressure
    /// when hardware counters give one (the whole process's, taken as the other cores'), from
    /// the running blocks' modelled pressure otherwise.
    fn predicted(&self, own: usize) -> usize {
        let others = self.cores.total().saturating_sub(own) as f64;
        let pressures = match self.monitor.measured_pressure() {
            Some(fraction) => fraction * others,
            None => self.running.values().map(|r| r.pressure).sum(),
        };
        predicted_level(pressures, own, self.cores.total(), self.monitor.levels())
    }

    /// Plans and, if the cores are there, starts the next block of `qid`.
    fn next_block(&mut self, qid: QueryId, now: f64) -> Option<BlockStart> {
        let q = self.queries.get(&qid)?;
        let (model, first, arrival, fixed) = (q.model, q.next_step, q.arrival, q.width);
        let p = &self.models[model];
        let max = p.max_width.min(self.cores.total()).max(1);
        let free = self.cores.free();
        if free == 0 {
            return None;
        }
        let level = self.monitor.level(self.predicted(1));
        let budget = (arrival + p.qos - now).max(0.0);
        let remaining_macs: u64 = p.steps[first..].iter().map(|s| s.macs.max(1)).sum();
        let share = |range: &Range<usize>| {
            budget * p.steps[range.clone()].iter().map(|s| s.macs.max(1)).sum::<u64>() as f64 / remaining_macs as f64
        };
        let fitting = |range: &Range<usize>, limit: f64| {
            (1..=max).find(|&w| p.block_latency(range.clone(), w, level) <= limit).unwrap_or(max)
        };
        let (steps, width, conflict) = match self.policy.granularity {
            Granularity::ModelWise => {
                let range = first..p.steps.len();
                let width = fixed.unwrap_or_else(|| fitting(&(0..p.steps.len()), p.qos));
                if free < width {
                    return None;
                }
                (range, width, false)
            }
            Granularity::LayerWise => {
                let range = first..first + 1;
                let want = fitting(&range, share(&range));
                (range, want.min(free), want > free)
            }
            Granularity::LayerBlock => {
                let range = self.block_range(model, first, max);
                let limit = share(&range);
                let want = fitting(&range, limit);
                let hopeless = p.block_latency(range.clone(), want, level) > limit;
                let narrow = || p.block_latency(range.clone(), free, level);
                let catch_up = || p.block_latency(range.end..p.steps.len(), max, level);
                if want <= free {
                    (range, want, false)
                } else if hopeless || narrow() <= limit || narrow() + catch_up() <= budget {
                    // Narrower still fits: its share, or the whole remaining budget if the rest
                    // of the query runs at full width. Or nothing fits any more: waiting would
                    // only hold up the queries behind this one.
                    (range, free, true)
                } else {
                    return None;
                }
            }
        };
        let alone = self.waiting.len() == 1 && (fixed.is_none() || self.policy.granularity != Granularity::ModelWise);
        let width = match self.policy.idle {
            Idle::Widen if alone && !conflict => widened(p, &steps, width, free.min(max), level),
            _ => width,
        };
        let cores = self.cores.take(width)?;
        let version_level = match self.policy.versions {
            VersionPolicy::Adaptive => self.monitor.level(self.predicted(width)),
            VersionPolicy::SoloBest => 0,
        };
        let p = &self.models[model];
        let versions: Vec<usize> = steps.clone().map(|i| p.version_for(i, width, version_level)).collect();
        for (i, &v) in steps.clone().zip(&versions) {
            *self.stats.version_choices.entry((model, i, v)).or_default() += 1;
            self.stats.layer_runs += 1;
            if version_level > 0 && v != p.best_version(i, width, 0).0 {
                self.stats.contention_choices += 1;
            }
        }
        let pressure = p.block_pressure(steps.clone(), &versions, width) * width as f64;
        self.stats.blocks += 1;
        self.stats.conflicts += conflict as u64;
        if let Some(q) = self.queries.get_mut(&qid) {
            q.width.get_or_insert(width);
        }
        let id = self.next_block;
        self.next_block += 1;
        let shared = !self.running.is_empty();
        self.running.values_mut().for_each(|r| r.shared = true);
        self.running.insert(
            id,
            Running {
                query: qid,
                model,
                steps: steps.clone(),
                versions: versions.clone(),
                cores: cores.clone(),
                pressure,
                shared,
            },
        );
        Some(BlockStart { id, query: qid, model, steps, cores, versions, level: version_level, pressure })
    }

    /// The block of consecutive layers from `first` whose preferred widths stay within the
    /// closeness threshold of the first one's. The threshold grows with load: 0 when nothing
    /// else waits (every change of preferred width starts a block), up to `max` (one block
    /// for the rest of the model) when as many queries wait as there are cores. A block also
    /// ends before its solo latency passes the horizon.
    fn block_range(&self, model: usize, first: usize, max: usize) -> Range<usize> {
        let p = &self.models[model];
        let load = self.waiting.len().saturating_sub(1) as f64 / self.cores.total() as f64;
        let threshold = (load.min(1.0) * max as f64).round() as usize;
        let anchor = p.preferred_width(first, max);
        let mut spent = p.best_version(first, anchor, 0).1;
        let mut end = first + 1;
        while end < p.steps.len() && p.preferred_width(end, max).abs_diff(anchor) <= threshold {
            spent += p.best_version(end, anchor, 0).1;
            if spent > self.horizon {
                break;
            }
            end += 1;
        }
        first..end
    }
}

/// The widest width from `width` up to `limit` at which steps `range` of `p` still run with the
/// widening efficiency relative to `width`.
fn widened(p: &ModelProfile, range: &Range<usize>, width: usize, limit: usize, level: usize) -> usize {
    let base = p.block_latency(range.clone(), width, level) * width as f64;
    (width..=limit)
        .rev()
        .find(|&w| base >= WIDEN_EFFICIENCY * w as f64 * p.block_latency(range.clone(), w, level))
        .unwrap_or(width)
}

#[cfg(test)]
mod tests {
    use super::super::profile::{StepProfile, VersionProfile};
    use super::*;
    use veltair_bundle::Latency;

    /// A model of `layers` layers of `seconds` each at width 1 (and half that at width 2).
    fn model(name: &str, layers: usize, seconds: f64, qos: f64) -> ModelProfile {
        let cells =
            vec![Latency { width: 1, level: 0, seconds }, Latency { width: 2, level: 0, seconds: seconds / 2.0 }];
        let step = StepProfile { label: "l".into(), macs: 1, versions: vec![VersionProfile { cells }] };
        ModelProfile {
            name: name.into(),
            qos,
            steps: vec![step; layers],
            max_width: 1,
            levels: 0,
            reference: vec![1.0],
        }
    }

    /// Which model each started block belongs to, when a long query holds the only core and
    /// a second long query, then a short urgent one, arrive behind it.
    fn order_after_the_long_query(policy: &str) -> Vec<usize> {
        let models = vec![model("long", 1, 1.0, 10.0), model("short", 1, 0.01, 0.1)];
        let mut s = Scheduler::new(Policy::parse(policy).unwrap(), models, 1, vec![1.0]);
        s.arrive(0, 0.0);
        let first = s.schedule(0.0);
        assert_eq!(first.len(), 1);
        s.arrive(0, 0.1);
        s.arrive(1, 0.2);
        assert!(s.schedule(0.2).is_empty(), "the only core is held");
        assert_eq!(s.block_done(first[0].id, &[1.0]).map(|d| d.model), Some(0));
        let mut order = Vec::new();
        let mut now = 1.0;
        while let Some(block) = s.schedule(now).pop() {
            order.push(block.model);
            now += 0.5;
            s.block_done(block.id, &[0.5]);
        }
        order
    }

    #[test]
    fn deadline_order_serves_the_urgent_query_first_and_fcfs_the_oldest() {
        assert_eq!(order_after_the_long_query("layer-wise"), vec![1, 0]);
        assert_eq!(order_after_the_long_query("veltair"), vec![1, 0]);
        assert_eq!(order_after_the_long_query("model-wise"), vec![0, 1]);
        assert_eq!(order_after_the_long_query("layer-wise+fcfs"), vec![0, 1]);
    }

    #[test]
    fn measured_miss_rates_replace_the_modelled_pressure_once_warm() {
        let mut s =
            Scheduler::new(Policy::parse("veltair").unwrap(), vec![model("m", 2, 0.01, 1.0)], 2, vec![1.0, 1.2, 1.5]);
        assert_eq!(s.contention_level(), 0, "nothing runs: no modelled pressure");
        for _ in 0..40 {
            s.observe_miss_rate(5e6);
        }
        assert_eq!(s.miss_rate(), 5e6);
        assert_eq!(s.contention_level(), 2, "the peak miss rate: the top level");
        for _ in 0..40 {
            s.observe_miss_rate(1e5);
        }
        assert_eq!(s.contention_level(), 0, "2% of the peak");
    }

    /// The widths of the first blocks started when `queries` queries of a model arrive at once
    /// on 2 idle cores; at width 2 a layer takes `speedup` times less than at width 1.
    fn first_widths(policy: &str, queries: usize, speedup: f64) -> Vec<usize> {
        let mut m = model("m", 4, 0.01, 10.0);
        m.max_width = 2;
        for step in &mut m.steps {
            step.versions[0].cells[1].seconds = 0.01 / speedup;
        }
        let mut s = Scheduler::new(Policy::parse(policy).unwrap(), vec![m], 2, vec![1.0]);
        for _ in 0..queries {
            s.arrive(0, 0.0);
        }
        s.schedule(0.0).iter().map(|b| b.cores.len()).collect()
    }

    #[test]
    fn a_lone_query_widens_into_idle_cores_only_when_that_pays() {
        assert_eq!(first_widths("layer-wise", 1, 1.9), vec![2]);
        assert_eq!(first_widths("veltair", 1, 1.9), vec![2]);
        assert_eq!(first_widths("veltair+fit", 1, 1.9), vec![1], "the budget fits at width 1");
        assert_eq!(first_widths("model-wise", 1, 1.9), vec![1]);
        assert_eq!(first_widths("model-wise+widen", 1, 1.9), vec![2]);
        assert_eq!(first_widths("veltair", 1, 1.2), vec![1], "60% efficiency does not pay");
        assert_eq!(first_widths("veltair", 2, 1.9), vec![1, 1], "a waiting query keeps its core");
    }

    /// The widths `veltair` starts a query of four 10 ms layers (5 ms at width 2) with target
    /// `qos` at, while another query holds one of the two cores.
    fn narrow_start(qos: f64) -> Vec<usize> {
        let mut m = model("m", 4, 0.01, qos);
        m.max_width = 2;
        let blocker = model("blocker", 1, 1.0, 100.0);
        let mut s = Scheduler::new(Policy::parse("veltair").unwrap(), vec![blocker, m], 2, vec![1.0]);
        s.arrive(0, 0.0);
        assert_eq!(s.schedule(0.0).len(), 1);
        s.arrive(1, 0.0);
        let started: Vec<usize> = s.schedule(0.0).iter().map(|b| b.cores.len()).collect();
        assert_eq!(s.stats().conflicts, started.len() as u64);
        started
    }

    #[test]
    fn a_block_runs_narrower_when_the_rest_can_catch_up_at_full_width() {
        // Each layer's share of 30 ms is 7.5 ms: width 1 misses it, but 10 ms now and 3 x 5 ms
        // at full width later fit the 30 ms.
        assert_eq!(narrow_start(0.03), vec![1]);
        // With 22 ms (5.5 ms a layer) that no longer fits: the query waits for both cores.
        assert_eq!(narrow_start(0.022), Vec::<usize>::new());
    }

    #[test]
    fn alone_slowdown_counts_only_blocks_nothing_ran_beside() {
        let mut s = Scheduler::new(Policy::parse("layer-wise").unwrap(), vec![model("m", 1, 0.01, 1.0)], 2, vec![1.0]);
        s.arrive(0, 0.0);
        let alone = s.schedule(0.0);
        s.block_done(alone[0].id, &[0.02]);
        s.arrive(0, 1.0);
        let first = s.schedule(1.0);
        s.arrive(0, 1.001);
        let second = s.schedule(1.001);
        s.block_done(first[0].id, &[0.03]);
        s.arrive(0, 1.05);
        let third = s.schedule(1.05);
        s.block_done(second[0].id, &[0.03]);
        s.block_done(third[0].id, &[0.03]);
        let all = s.stats().slowdown(|_, _| true);
        assert!((all - 2.75).abs() < 1e-9, "{all}");
        let alone = s.stats().alone_slowdown(|_, _| true);
        assert!((alone - 2.0).abs() < 1e-9, "the three overlapping blocks are not alone: {alone}");
        assert!(s.stats().alone_slowdown(|_, w| w == 2).is_nan());
    }

    #[test]
    fn layer_blocks_end_within_the_horizon() {
        // The tightest target is 0.2 s, so no block may hold its cores past 0.02 s.
        let models = vec![model("many", 10, 0.008, 100.0), model("tight", 1, 0.001, 0.2)];
        let mut s = Scheduler::new(Policy::parse("layer-block").unwrap(), models, 1, vec![1.0]);
        s.arrive(0, 0.0);
        let mut now = 0.0;
        let mut lengths = Vec::new();
        while let Some(block) = s.schedule(now).pop() {
            lengths.push(block.steps.len());
            now += 0.008 * block.steps.len() as f64;
            s.block_done(block.id, &vec![0.008; block.steps.len()]);
        }
        assert_eq!(lengths.iter().sum::<usize>(), 10);
        assert!(lengths.iter().all(|&n| n <= 2), "{lengths:?}");
        assert!(lengths.len() < 10, "blocks group layers: {lengths:?}");
    }
}
