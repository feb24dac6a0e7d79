//! The policy comparison table `bench` and `simulate` print and write as JSON: per policy its
//! QPS-at-QoS and, from its replay at the comparison's common rate, mean/p50/p99 latency,
//! conflict rate and version choices.

use serde_json::{json, Value};
use veltair_run::sched::{quantile, ModelProfile, Outcome, SchedStats};

/// One policy's row.
pub struct Row {
    pub policy: String,
    /// Highest rate (queries/s) with at least 99% of queries within QoS: the median of `runs`.
    pub qps_at_qos: f64,
    /// What each repeated search found.
    pub runs: Vec<f64>,
    /// The replay at the comparison's common rate.
    pub outcome: Outcome,
    pub stats: SchedStats,
}

impl Row {
    fn latency_ms(&self, q: f64) -> f64 {
        quantile(&self.outcome.latencies(), q) * 1e3
    }

    fn mean_ms(&self) -> f64 {
        let l = self.outcome.latencies();
        if l.is_empty() {
            return f64::NAN;
        }
        l.iter().sum::<f64>() / l.len() as f64 * 1e3
    }

    fn conflict_rate(&self) -> f64 {
        self.stats.conflicts as f64 / self.stats.blocks.max(1) as f64
    }

    /// Share of layer runs whose version was chosen for contention (not the solo best at the
    /// width they got).
    fn other_versions(&self) -> f64 {
        self.stats.contention_choices as f64 / self.stats.layer_runs.max(1) as f64
    }

    /// Scheduler time per query over mean latency.
    fn overhead(&self) -> f64 {
        let queries = self.outcome.queries.len().max(1) as f64;
        self.stats.decision_seconds / queries / (self.mean_ms() / 1e3)
    }
}

/// The table as text; gains are relative to the first row named `model-wise`, if any.
pub fn render(rows: &[Row], title: &str) -> String {
    let base = rows.iter().find(|r| r.policy == "model-wise").map(|r| r.qps_at_qos);
    let mut out = format!("{title}\n");
    out.push_str(&format!(
        "{:<22} {:>11} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}\n",
        "policy", "QPS@QoS", "vs MW", "mean ms", "p50 ms", "p99 ms", "conflicts", "contended", "slowdown", "sched"
    ));
    for r in rows {
        let gain = base
            .filter(|b| *b > 0.0)
            .map_or("—".to_string(), |b| format!("{:+.0}%", (r.qps_at_qos / b - 1.0) * 100.0));
        out.push_str(&format!(
            "{:<22} {:>11.1} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>8.1}% {:>9.1}% {:>8.3}x {:>8.3}%\n",
            r.policy,
            r.qps_at_qos,
            gain,
            r.mean_ms(),
            r.latency_ms(0.5),
            r.latency_ms(0.99),
            r.conflict_rate() * 100.0,
            r.other_versions() * 100.0,
            r.stats.slowdown(|_, _| true),
            r.overhead() * 100.0
        ));
    }
    out
}

/// Per model of `profiles`: queries, mean and p99 latency, share within target and layer
/// slowdown (measured over profiled; in all and per width), at the common rate.
fn per_model(row: &Row, profiles: &[ModelProfile]) -> Value {
    let qos: Vec<f64> = profiles.iter().map(|p| p.qos).collect();
    Value::Array(
        profiles
            .iter()
            .enumerate()
            .map(|(m, p)| {
                let queries: Vec<(usize, f64, f64)> =
                    row.outcome.queries.iter().copied().filter(|q| q.0 == m).collect();
                let outcome = Outcome { queries };
                let latencies = outcome.latencies();
                let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
                json!({"model": p.name, "queries": latencies.len(), "mean_ms": mean * 1e3,
                    "p99_ms": quantile(&latencies, 0.99) * 1e3, "within_qos": outcome.within_qos(&qos),
                    "slowdown": row.stats.slowdown(|model, _| model == m),
                    "slowdown_by_width": by_width(&row.stats, m)})
            })
            .collect(),
    )
}

/// `{"width": {"slowdown": s, "seconds": t, "alone_slowdown": a, "alone_seconds": u}}` for each
/// width `model`'s layers ran at, `t` the layer time measured there, `a` and `u` the same for
/// blocks that ran alone (`a` null when none did).
fn by_width(stats: &SchedStats, model: usize) -> Value {
    let mut widths: Vec<(usize, f64, f64)> = stats
        .layer_time
        .iter()
        .filter(|(k, _)| k.0 == model)
        .map(|(k, t)| (k.1, t.measured, t.alone_measured))
        .collect();
    widths.sort_unstable_by_key(|w| w.0);
    widths
        .into_iter()
        .map(|(w, seconds, alone_seconds)| {
            let here = |m: usize, v: usize| m == model && v == w;
            let cell = json!({"slowdown": stats.slowdown(here), "seconds": seconds,
                "alone_slowdown": stats.alone_slowdown(here), "alone_seconds": alone_seconds});
            (w.to_string(), cell)
        })
        .collect()
}

/// The rows as JSON.
pub fn to_json(rows: &[Row], profiles: &[ModelProfile]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "per_model": per_model(r, profiles),
                    "policy": r.policy,
                    "qps_at_qos": r.qps_at_qos,
                    "qps_at_qos_runs": r.runs,
                    "queries": r.outcome.queries.len(),
                    "mean_ms": r.mean_ms(),
                    "p50_ms": r.latency_ms(0.5),
                    "p99_ms": r.latency_ms(0.99),
                    "conflict_rate": r.conflict_rate(),
                    "contention_version_share": r.other_versions(),
                    "slowdown": r.stats.slowdown(|_, _| true),
                    "scheduler_overhead": r.overhead(),
                    "blocks": r.stats.blocks,
                })
            })
            .collect(),
    )
}
