//! Prometheus text exposition: a lock-free fixed-bucket [`Histogram`] and the family/label
//! helpers (public, so the engine renders its queue, compute and QoS metrics the same way),
//! and the server's own per-model request counters and end-to-end latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bucket upper bounds (seconds) for request-scale latencies: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

/// A histogram of durations over fixed bucket bounds (seconds, increasing); observing and
/// rendering take no lock.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per-bucket (not cumulative) counts; the last one is the `+Inf` overflow bucket.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds`, which must be increasing.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// A histogram over [`LATENCY_BUCKETS`].
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BUCKETS)
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = self.bounds.partition_point(|&bound| bound < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the `_bucket`, `_sum` and `_count` samples of metric `name` with `labels`
    /// (already rendered, e.g. `model="resnet"`, or empty). The family header is the caller's.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = self.bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{labels} {sum}");
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

/// Appends the `# HELP` and `# TYPE` lines that open metric family `name`.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `key="value"` with the value escaped as the exposition format requires.
pub fn label(key: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("{key}=\"{escaped}\"")
}

/// Why the server answered an inference request with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    BadRequest,
    Busy,
    ShuttingDown,
    Internal,
}

impl Failure {
    const ALL: [Failure; 4] = [Failure::BadRequest, Failure::Busy, Failure::ShuttingDown, Failure::Internal];

    fn as_str(self) -> &'static str {
        match self {
            Failure::BadRequest => "bad_request",
            Failure::Busy => "busy",
            Failure::ShuttingDown => "shutting_down",
            Failure::Internal => "internal",
        }
    }
}

/// Inference outcomes of one model.
pub(crate) struct ModelMetrics {
    requests: AtomicU64,
    failures: [AtomicU64; Failure::ALL.len()],
    duration: Histogram,
}

impl ModelMetrics {
    pub(crate) fn succeeded(&self, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.duration.observe(elapsed);
    }

    pub(crate) fn failed(&self, failure: Failure) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.failures[failure as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The server's metrics: per model (only models the backend knows, so URLs cannot grow the
/// label set) and requests naming no known model.
#[derive(Default)]
pub(crate) struct ServerMetrics {
    models: Mutex<BTreeMap<String, Arc<ModelMetrics>>>,
    unknown_model: AtomicU64,
}

impl ServerMetrics {
    /// The counters of `model`, created on first use.
    pub(crate) fn model(&self, model: &str) -> Arc<ModelMetrics> {
        let mut models = self.models.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = models.entry(model.to_string()).or_insert_with(|| {
            Arc::new(ModelMetrics {
                requests: AtomicU64::new(0),
                failures: Default::default(),
                duration: Histogram::latency(),
            })
        });
        Arc::clone(entry)
    }

    pub(crate) fn unknown_model(&self) {
        self.unknown_model.fetch_add(1, Ordering::Relaxed);
    }

    /// The server's families in text exposition format.
    pub(crate) fn render(&self) -> String {
        let models: Vec<(String, Arc<ModelMetrics>)> = {
            let models = self.models.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            models.iter().map(|(name, m)| (label("model", name), Arc::clone(m))).collect()
        };
        let mut out = String::new();
        family(&mut out, "veltair_requests_total", "counter", "Inference requests answered, by model.");
        for (model, m) in &models {
            let _ = writeln!(out, "veltair_requests_total{{{model}}} {}", m.requests.load(Ordering::Relaxed));
        }
        family(&mut out, "veltair_request_failures_total", "counter", "Inference requests answered with an error.");
        for (model, m) in &models {
            for failure in Failure::ALL {
                let count = m.failures[failure as usize].load(Ordering::Relaxed);
                let reason = label("reason", failure.as_str());
                let _ = writeln!(out, "veltair_request_failures_total{{{model},{reason}}} {count}");
            }
        }
        let name = "veltair_request_duration_seconds";
        family(&mut out, name, "histogram", "End-to-end duration of successful inference requests.");
        for (model, m) in &models {
            m.duration.render(&mut out, name, model);
        }
        family(&mut out, "veltair_unknown_model_requests_total", "counter", "Requests naming no served model.");
        let _ = writeln!(out, "veltair_unknown_model_requests_total {}", self.unknown_model.load(Ordering::Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::new(&[0.25, 1.0]);
        h.observe(Duration::from_millis(250));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_millis(2750));
        assert_eq!(h.count(), 3);
        let mut out = String::new();
        h.render(&mut out, "t", "model=\"m\"");
        assert_eq!(
            out,
            "t_bucket{model=\"m\",le=\"0.25\"} 1\nt_bucket{model=\"m\",le=\"1\"} 2\n\
             t_bucket{model=\"m\",le=\"+Inf\"} 3\nt_sum{model=\"m\"} 3.5\nt_count{model=\"m\"} 3\n"
        );
        let mut bare = String::new();
        Histogram::new(&[1.0]).render(&mut bare, "u", "");
        assert_eq!(bare, "u_bucket{le=\"1\"} 0\nu_bucket{le=\"+Inf\"} 0\nu_sum 0\nu_count 0\n");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("model", "a\"b\\c\nd"), "model=\"a\\\"b\\\\c\\nd\"");
    }
}
