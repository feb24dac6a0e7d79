//! Scheduling decisions without a scheduler thread: the scheduler and every query's state sit
//! behind one lock, taken by whichever thread has news — the submitting thread when a query
//! arrives, a block's leader when its block ends. Each block the scheduler starts is led by the
//! worker of its first core; a leader whose core starts the next block goes straight on with
//! it, so consecutive blocks of a busy core hand over without a wake-up.

use super::counters::RateCounter;
use super::{Completion, Contention, Reply, Shared};
use crate::sched::{BlockStart, Policy, Scheduler};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veltair_exec::{read_outputs, write_inputs};
use veltair_ir::Tensor;
use veltair_load::Team;

/// A query between arrival and answer.
struct Query {
    model: usize,
    /// When its first block started (seconds since the engine started).
    started: Option<f64>,
    /// `None` while a block of it runs (the leader holds the arena).
    arena: Option<Vec<f32>>,
    reply: Box<dyn FnOnce(Reply) + Send>,
    error: Option<String>,
}

/// What the lock protects.
pub(crate) struct Dispatch {
    scheduler: Scheduler,
    queries: HashMap<u64, Query>,
    /// The query each running block belongs to.
    blocks: HashMap<u64, u64>,
    /// The process's cache-miss counter, sampled as blocks end, if the host has one.
    misses: Option<RateCounter>,
}

/// A started block with the arena it works on.
pub(crate) struct Started {
    block: BlockStart,
    arena: Vec<f32>,
}

impl Dispatch {
    pub fn new(
        shared_profiles: Vec<crate::sched::ModelProfile>,
        policy: Policy,
        cores: usize,
        scale: Vec<f64>,
        misses: Option<RateCounter>,
    ) -> Dispatch {
        Dispatch {
            scheduler: Scheduler::new(policy, shared_profiles, cores, scale),
            queries: HashMap::new(),
            blocks: HashMap::new(),
            misses,
        }
    }

    /// Registers a query whose inputs are already in `arena`, and starts what can start.
    fn arrive(
        &mut self,
        model: usize,
        arena: Vec<f32>,
        reply: Box<dyn FnOnce(Reply) + Send>,
        arrival: f64,
        now: f64,
    ) -> Vec<Started> {
        let id = self.scheduler.arrive(model, arrival);
        self.queries.insert(id, Query { model, started: None, arena: Some(arena), reply, error: None });
        self.start(now)
    }

    /// Starts every block the scheduler starts now, taking their queries' arenas.
    fn start(&mut self, now: f64) -> Vec<Started> {
        let mut started = Vec::new();
        for block in self.scheduler.schedule(now) {
            let query = self.queries.get_mut(&block.query);
            if let Some((q, arena)) = query.and_then(|q| q.arena.take().map(|a| (q, a))) {
                q.started.get_or_insert(now);
                self.blocks.insert(block.id, block.query);
                started.push(Started { block, arena });
            }
        }
        started
    }

    /// Ends a block; returns the answered query (if it completed) and what starts now.
    fn done(
        &mut self,
        block: u64,
        seconds: &[f64],
        arena: Vec<f32>,
        error: Option<String>,
        now: f64,
    ) -> (Option<(Query, f64)>, Vec<Started>) {
        let mut answered = None;
        if let Some(rate) = self.misses.as_mut().and_then(RateCounter::sample) {
            self.scheduler.observe_miss_rate(rate);
        }
        if let Some(qid) = self.blocks.remove(&block) {
            if let Some(q) = self.queries.get_mut(&qid) {
                q.arena = Some(arena);
                q.error = q.error.take().or(error);
            }
            if let Some(done) = self.scheduler.block_done(block, seconds) {
                answered = self.queries.remove(&done.query).map(|q| (q, done.arrival));
            }
        }
        (answered, self.start(now))
    }

    pub fn stats(&self) -> crate::sched::SchedStats {
        self.scheduler.stats().clone()
    }

    pub fn contention(&self) -> Contention {
        Contention {
            level: self.scheduler.contention_level(),
            slowdown: self.scheduler.observed_slowdown(),
            counters: self.misses.is_some(),
            miss_rate: self.scheduler.miss_rate(),
        }
    }
}

/// Takes an arriving query (from the submitting thread).
pub(crate) fn arrive(
    shared: &Arc<Shared>,
    model: usize,
    inputs: Vec<Tensor>,
    reply: Box<dyn FnOnce(Reply) + Send>,
    arrival: f64,
) {
    let tenant = &shared.tenants[model];
    let mut arena = tenant.take_arena();
    if let Err(e) = write_inputs(&tenant.plan, &mut arena, &inputs) {
        tenant.give_arena(arena);
        shared.in_flight[model].fetch_sub(1, Ordering::AcqRel);
        reply(Err(e.to_string()));
        return;
    }
    let now = shared.start.elapsed().as_secs_f64();
    let started = shared.lock().arrive(model, arena, reply, arrival, now);
    hand_out(shared, started, None);
}

/// Posts each started block to its leader; returns the one this thread (the worker of `own`)
/// should lead itself, if any.
fn hand_out(shared: &Arc<Shared>, started: Vec<Started>, own: Option<usize>) -> Option<Started> {
    let mut mine = None;
    for s in started {
        let leader = s.block.cores[0];
        if own == Some(leader) && mine.is_none() {
            mine = Some(s);
        } else {
            let shared2 = Arc::clone(shared);
            shared.crew.spawn_on(leader, Box::new(move || lead(&shared2, s)));
        }
    }
    mine
}

/// Leads a block, then every block this core is handed next.
fn lead(shared: &Arc<Shared>, first: Started) {
    let mut next = Some(first);
    while let Some(Started { block, mut arena }) = next.take() {
        let tenant = &shared.tenants[block.model];
        let mut seconds = Vec::with_capacity(block.versions.len());
        let mut error = None;
        for (step, &v) in block.steps.clone().zip(&block.versions) {
            let version = &tenant.plan.steps[step].versions[v];
            let start = Instant::now();
            let team = Team::Crew(&shared.crew, &block.cores);
            if let Err(e) =
                tenant.kernels[version.kernel].run_in(&mut arena, &tenant.plan.constants, &version.args, team)
            {
                error.get_or_insert(format!("layer `{}`: {e}", tenant.plan.steps[step].label));
            }
            seconds.push(start.elapsed().as_secs_f64());
        }
        let now = shared.start.elapsed().as_secs_f64();
        let (answered, started) = shared.lock().done(block.id, &seconds, arena, error, now);
        if let Some((q, arrival)) = answered {
            answer(shared, q, arrival);
        }
        next = hand_out(shared, started, Some(block.cores[0]));
    }
}

/// Replies to a finished query and returns its arena.
fn answer(shared: &Shared, q: Query, arrival: f64) {
    let tenant = &shared.tenants[q.model];
    let arena = q.arena.unwrap_or_default();
    let reply = match q.error {
        Some(e) => Err(e),
        None => Ok(read_outputs(&tenant.plan, &arena)),
    };
    tenant.give_arena(arena);
    let finish = shared.start.elapsed().as_secs_f64();
    let started = q.started.unwrap_or(finish);
    let m = &shared.metrics[q.model];
    m.queue.observe(Duration::from_secs_f64((started - arrival).max(0.0)));
    m.compute.observe(Duration::from_secs_f64((finish - started).max(0.0)));
    if finish - arrival > tenant.profile.qos {
        m.qos_misses.fetch_add(1, Ordering::Relaxed);
    }
    shared.completions.lock().unwrap_or_else(|e| e.into_inner()).push(Completion {
        model: q.model,
        arrival,
        started,
        finish,
    });
    shared.in_flight[q.model].fetch_sub(1, Ordering::AcqRel);
    (q.reply)(reply);
}
