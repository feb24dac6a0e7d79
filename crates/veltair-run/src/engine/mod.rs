//! The in-process engine: tenants loaded once, a crew of workers pinned one per core, and the
//! scheduler behind one lock (`dispatch`). Each block the scheduler starts is led by the worker
//! of its first core, which runs the block's layers one after another, every layer on exactly
//! the block's cores (thread index `t` on core `t` of the block), and reports their times back.
//! Submission is bounded per model: a full model answers "busy" at once instead of queueing
//! without limit.

mod backend;
mod counters;
mod dispatch;
mod tenant;

pub use backend::check_servable;
pub use tenant::Tenant;

use crate::sched::{Policy, SchedStats};
use crate::serve::metrics::Histogram;
use counters::RateCounter;
use dispatch::Dispatch;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use veltair_ir::Tensor;
use veltair_load::Crew;

/// What a query returns: the model's outputs (of the types it declares), or why it failed.
pub type Reply = Result<Vec<Tensor>, String>;

/// Why a query was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("no model `{0}`")]
    UnknownModel(String),
    #[error("server busy")]
    Busy,
    #[error("shutting down")]
    ShuttingDown,
}

/// One answered query, for benchmarks and metrics.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub model: usize,
    /// Seconds since the engine started.
    pub arrival: f64,
    /// When its first block started.
    pub started: f64,
    pub finish: f64,
}

/// The scheduler's contention estimate, for metrics.
#[derive(Clone, Copy, Debug)]
pub struct Contention {
    pub level: usize,
    /// Smoothed slowdown of executed layers over their profiles.
    pub slowdown: f64,
    /// Whether hardware counters feed the monitor (else it models pressure from profiles).
    pub counters: bool,
    /// Smoothed last-level-cache misses per second (counters only).
    pub miss_rate: f64,
}

/// Per-model serving metrics.
pub(crate) struct ModelMetrics {
    pub queue: Histogram,
    pub compute: Histogram,
    pub qos_misses: AtomicU64,
}

/// State shared by the engine handle, the dispatcher and the block leaders.
pub(crate) struct Shared {
    pub tenants: Vec<Tenant>,
    pub crew: Crew,
    pub start: Instant,
    pub in_flight: Vec<AtomicUsize>,
    pub accepting: AtomicBool,
    pub completions: Mutex<Vec<Completion>>,
    pub metrics: Vec<ModelMetrics>,
    dispatch: Mutex<Dispatch>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Dispatch> {
        self.dispatch.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running engine.
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Starts an engine serving `tenants` under `policy` on `cores` cores; `scale` is the
    /// typical slowdown of each contention level; idle workers poll for `idle_poll` before
    /// they sleep (`Crew::new`). The process's cache-miss counter, where the host has one, is
    /// opened before the crew so that its workers inherit it.
    pub fn start(
        tenants: Vec<Tenant>,
        policy: Policy,
        cores: usize,
        scale: Vec<f64>,
        idle_poll: Duration,
    ) -> std::io::Result<Engine> {
        let in_flight = tenants.iter().map(|_| AtomicUsize::new(0)).collect();
        let in_flight_len = tenants.len();
        let profiles = tenants.iter().map(|t| t.profile.clone()).collect();
        let misses = RateCounter::cache_misses();
        let shared = Arc::new(Shared {
            crew: Crew::new(cores, idle_poll)?,
            tenants,
            start: Instant::now(),
            in_flight,
            accepting: AtomicBool::new(true),
            completions: Mutex::new(Vec::new()),
            metrics: tenants_metrics(in_flight_len),
            dispatch: Mutex::new(Dispatch::new(profiles, policy, cores, scale, misses)),
        });
        Ok(Engine { shared })
    }

    pub fn tenants(&self) -> &[Tenant] {
        &self.shared.tenants
    }

    /// The index of the model called `name`.
    pub fn model(&self, name: &str) -> Option<usize> {
        self.shared.tenants.iter().position(|t| t.name == name)
    }

    /// Queues one query of `model`; `reply` is called exactly once with its outputs. Fails at
    /// once when the model has `capacity` queries in flight or the engine is draining.
    pub fn submit(
        &self,
        model: usize,
        inputs: Vec<Tensor>,
        reply: Box<dyn FnOnce(Reply) + Send>,
    ) -> Result<(), SubmitError> {
        let tenant = self.shared.tenants.get(model).ok_or_else(|| SubmitError::UnknownModel(model.to_string()))?;
        if !self.shared.accepting.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        let count = &self.shared.in_flight[model];
        if count.fetch_add(1, Ordering::AcqRel) >= tenant.capacity {
            count.fetch_sub(1, Ordering::AcqRel);
            return Err(SubmitError::Busy);
        }
        let arrival = self.shared.start.elapsed().as_secs_f64();
        dispatch::arrive(&self.shared, model, inputs, reply, arrival);
        Ok(())
    }

    /// Queries accepted and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.iter().map(|c| c.load(Ordering::Acquire)).sum()
    }

    /// Every query answered so far (and forgets them).
    pub fn take_completions(&self) -> Vec<Completion> {
        std::mem::take(&mut *self.shared.completions.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The scheduler's counters.
    pub fn stats(&self) -> SchedStats {
        self.shared.lock().stats()
    }

    /// The scheduler's contention estimate.
    pub fn contention(&self) -> Contention {
        self.shared.lock().contention()
    }

    /// Whether the engine accepts queries.
    pub fn accepting(&self) -> bool {
        self.shared.accepting.load(Ordering::Acquire)
    }

    /// Stops accepting queries and returns once every accepted one is answered.
    pub fn drain(&self) {
        self.shared.accepting.store(false, Ordering::Release);
        while self.in_flight() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn tenants_metrics(n: usize) -> Vec<ModelMetrics> {
    (0..n)
        .map(|_| ModelMetrics {
            queue: Histogram::latency(),
            compute: Histogram::latency(),
            qos_misses: AtomicU64::new(0),
        })
        .collect()
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.drain();
    }
}
