//! The compile report (`--report FILE.json`): per layer every candidate measured, with its
//! schedule, modelled footprint and latency per (width, contention level), which versions were
//! kept, and the layers whose best version changes with contention. Also the variant set — the
//! kept versions with their latencies — that `compare` diffs, read from a report or a bundle.

use crate::select::winners;
use serde::{Deserialize, Serialize};
use veltair_bundle::{Latency, Manifest};

/// One (width, level) measurement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub width: u32,
    pub level: u32,
    pub seconds: f64,
}

impl From<&Latency> for Cell {
    fn from(l: &Latency) -> Cell {
        Cell { width: l.width, level: l.level, seconds: l.seconds }
    }
}

/// One candidate version of a layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub schedule: String,
    pub footprint_bytes: u64,
    pub latencies: Vec<Cell>,
}

/// The fastest candidate in one cell.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Winner {
    pub width: u32,
    pub level: u32,
    pub candidate: usize,
    pub seconds: f64,
}

/// One layer: its candidates, the cell winners, and the kept candidates in bundle order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    pub label: String,
    pub macs: u64,
    pub candidates: Vec<CandidateReport>,
    pub winners: Vec<Winner>,
    pub kept: Vec<usize>,
}

impl LayerReport {
    pub fn new(label: String, macs: u64, candidates: Vec<CandidateReport>, kept: Vec<usize>) -> LayerReport {
        let lat: Vec<Vec<Latency>> = candidates
            .iter()
            .map(|c| {
                c.latencies.iter().map(|x| Latency { width: x.width, level: x.level, seconds: x.seconds }).collect()
            })
            .collect();
        let winners = winners(&lat)
            .into_iter()
            .map(|(width, level, candidate, seconds)| Winner { width, level, candidate, seconds })
            .collect();
        LayerReport { label, macs, candidates, winners, kept }
    }

    /// Where the solo winner and the winner at the highest level differ at some width: the
    /// effect multi-versioning exists for.
    pub fn contention_switches(&self) -> Vec<Switch> {
        let mut out = Vec::new();
        let top = self.winners.iter().map(|w| w.level).max().unwrap_or(0);
        for solo in self.winners.iter().filter(|w| w.level == 0) {
            let Some(hot) = self.winners.iter().find(|w| w.width == solo.width && w.level == top && top > 0) else {
                continue;
            };
            if hot.candidate == solo.candidate {
                continue;
            }
            let at = |c: usize, level: u32| {
                self.candidates[c]
                    .latencies
                    .iter()
                    .find(|x| x.width == solo.width && x.level == level)
                    .map(|x| x.seconds)
            };
            if let Some(solo_best_hot) = at(solo.candidate, top) {
                out.push(Switch {
                    label: self.label.clone(),
                    width: solo.width,
                    level: top,
                    solo_best: self.candidates[solo.candidate].schedule.clone(),
                    contended_best: self.candidates[hot.candidate].schedule.clone(),
                    solo_best_slowdown: solo_best_hot / solo.seconds,
                    gain_under_contention: solo_best_hot / hot.seconds,
                });
            }
        }
        out
    }
}

/// A layer whose best version under the highest contention level is not its solo best.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    pub label: String,
    pub width: u32,
    pub level: u32,
    pub solo_best: String,
    pub contended_best: String,
    /// The solo best's latency at `level` over its solo latency.
    pub solo_best_slowdown: f64,
    /// The solo best's latency at `level` over the contended best's.
    pub gain_under_contention: f64,
}

/// A calibrated contention level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    pub level: u32,
    pub slowdown: f64,
    pub stream_threads: u32,
    pub thrash_threads: u32,
    pub intensity: f64,
}

/// Wall time of each compile phase, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    pub import: f64,
    pub lower: f64,
    pub calibrate: f64,
    pub tune: f64,
    pub write: f64,
    pub total: f64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    pub compiler_version: String,
    pub tune: String,
    pub max_threads: usize,
    pub levels: usize,
    pub calibration_reference: String,
    pub calibration: Vec<LevelReport>,
    pub layers: Vec<LayerReport>,
    pub switches: Vec<Switch>,
    pub versions: usize,
    pub bundle_bytes: u64,
    pub seconds: PhaseTimes,
}

/// The kept versions of every layer with their latencies: what two builds are compared on.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantSet {
    pub model: String,
    pub layers: Vec<LayerVariants>,
}

/// One layer's kept versions.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerVariants {
    pub label: String,
    pub versions: Vec<CandidateReport>,
}

impl VariantSet {
    pub fn from_report(r: &Report) -> VariantSet {
        let layers = r
            .layers
            .iter()
            .map(|l| LayerVariants {
                label: l.label.clone(),
                versions: l.kept.iter().filter_map(|&k| l.candidates.get(k).cloned()).collect(),
            })
            .collect();
        VariantSet { model: r.model.clone(), layers }
    }

    pub fn from_manifest(m: &Manifest) -> VariantSet {
        let layers = m
            .layers
            .iter()
            .map(|l| LayerVariants {
                label: l.label.clone(),
                versions: l
                    .versions
                    .iter()
                    .map(|v| CandidateReport {
                        schedule: v.schedule.clone(),
                        footprint_bytes: v.footprint_bytes,
                        latencies: v.latencies.iter().map(Cell::from).collect(),
                    })
                    .collect(),
            })
            .collect();
        VariantSet { model: m.model.clone(), layers }
    }
}
