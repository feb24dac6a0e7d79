//! The outcome of one test on one path, and totals of outcomes.

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Outcome of one test on one path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Status {
    Pass,
    Mismatch,
    Unsupported,
    Error,
    Panic,
    Hang,
}

pub const ALL: [Status; 6] =
    [Status::Pass, Status::Mismatch, Status::Unsupported, Status::Error, Status::Panic, Status::Hang];

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Mismatch => "mismatch",
            Status::Unsupported => "unsupported",
            Status::Error => "error",
            Status::Panic => "panic",
            Status::Hang => "hang",
        }
    }

    /// A wrong answer or a crash: what CI never accepts.
    pub fn is_defect(self) -> bool {
        matches!(self, Status::Mismatch | Status::Panic | Status::Hang)
    }
}

/// A status with its explanation.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub detail: String,
}

impl Outcome {
    pub fn new(status: Status, detail: impl Into<String>) -> Outcome {
        Outcome { status, detail: detail.into() }
    }

    pub fn pass() -> Outcome {
        Outcome::new(Status::Pass, "")
    }

    pub fn json(&self) -> Value {
        json!({"status": self.status.name(), "detail": self.detail})
    }
}

/// Counts of each status.
#[derive(Default)]
pub struct Totals(BTreeMap<Status, usize>);

impl Totals {
    pub fn add(&mut self, s: Status) {
        *self.0.entry(s).or_default() += 1;
    }

    pub fn get(&self, s: Status) -> usize {
        self.0.get(&s).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    pub fn defects(&self) -> usize {
        ALL.iter().filter(|s| s.is_defect()).map(|&s| self.get(s)).sum()
    }

    pub fn json(&self) -> Value {
        let mut o = serde_json::Map::new();
        for s in ALL {
            o.insert(s.name().into(), json!(self.get(s)));
        }
        o.insert("total".into(), json!(self.total()));
        o.into()
    }
}
