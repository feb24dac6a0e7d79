//! Comparison of the variant sets of two builds, as CI runs it: layers matched by label
//! occurrence, per layer the versions that appeared or disappeared and the best latency of every
//! (width, contention level) cell old vs new, per-cell totals over the model, and the cells that
//! slowed down past a relative threshold; rendered for a terminal, a pull-request comment
//! (Markdown) or JSON.

use crate::report::{Cell, LayerVariants, VariantSet};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What counts as a regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompareOptions {
    /// Relative slowdown above which a cell regresses (0.05: 5%).
    pub threshold: f64,
    /// Absolute slowdown, in seconds, that a cell must exceed to regress: smaller changes are
    /// timer noise on tiny layers.
    pub min_delta_seconds: f64,
}

impl Default for CompareOptions {
    fn default() -> CompareOptions {
        CompareOptions { threshold: 0.05, min_delta_seconds: 5e-6 }
    }
}

/// One (width, level) cell measured on both sides: the best latency old vs new.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CellDiff {
    pub width: u32,
    pub level: u32,
    pub old_seconds: f64,
    pub new_seconds: f64,
    /// `new_seconds / old_seconds - 1`: positive is slower.
    pub change: f64,
    /// Slower by more than the threshold and by more than the minimum absolute change.
    pub regression: bool,
}

impl CellDiff {
    fn new((width, level): (u32, u32), old_seconds: f64, new_seconds: f64, options: &CompareOptions) -> CellDiff {
        let change = new_seconds / old_seconds - 1.0;
        let regression = change > options.threshold && new_seconds - old_seconds > options.min_delta_seconds;
        CellDiff { width, level, old_seconds, new_seconds, change, regression }
    }
}

/// A layer present in both builds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerDiff {
    pub label: String,
    /// Which occurrence of `label` this is, from 0: labels may repeat.
    pub occurrence: usize,
    /// Schedules of the versions only the new build has, in its order.
    pub appeared: Vec<String>,
    /// Schedules of the versions only the old build has, in its order.
    pub disappeared: Vec<String>,
    /// The cells measured on both sides, by width then level.
    pub cells: Vec<CellDiff>,
    /// The cells measured only by the old build, with their best latency.
    pub missing_cells: Vec<Cell>,
    /// The cells measured only by the new build, with their best latency.
    pub new_cells: Vec<Cell>,
}

impl LayerDiff {
    /// Whether a report shows the layer: a version or a cell came or went, or a cell's best
    /// latency moved by more than `threshold`.
    fn changed(&self, threshold: f64) -> bool {
        !(self.appeared.is_empty()
            && self.disappeared.is_empty()
            && self.missing_cells.is_empty()
            && self.new_cells.is_empty())
            || self.cells.iter().any(|c| shown(c, threshold))
    }

    /// The label, with the occurrence after the first.
    fn name(&self) -> String {
        match self.occurrence {
            0 => self.label.clone(),
            k => format!("{} #{}", self.label, k + 1),
        }
    }
}

/// The comparison of two builds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub model_old: String,
    pub model_new: String,
    /// The layers present in both builds, in the old build's order.
    pub layers: Vec<LayerDiff>,
    /// Labels of the layers only the new build has, in its order.
    pub added_layers: Vec<String>,
    /// Labels of the layers only the old build has, in its order.
    pub removed_layers: Vec<String>,
    /// For each cell measured in every matched layer on both sides, the sum of the layers' best
    /// latencies.
    pub totals: Vec<CellDiff>,
    /// Regressed layer cells plus regressed total cells.
    pub regressions: usize,
}

impl Comparison {
    /// Whether any cell regressed: the check fails.
    pub fn failed(&self) -> bool {
        self.regressions > 0
    }
}

/// Compares two builds' variant sets. The k-th occurrence of a label in `old` matches the k-th
/// in `new`; within a layer versions are identified by their schedule text, and a cell's latency
/// is the best over the layer's versions. Latencies that are not finite or not positive count
/// as unmeasured.
pub fn compare(old: &VariantSet, new: &VariantSet, options: &CompareOptions) -> Comparison {
    let mut new_by_label: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, layer) in new.layers.iter().enumerate() {
        new_by_label.entry(&layer.label).or_default().push(i);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut matched: HashSet<usize> = HashSet::new();
    let (mut layers, mut removed_layers) = (Vec::new(), Vec::new());
    for layer in &old.layers {
        let count = seen.entry(&layer.label).or_default();
        let occurrence = *count;
        *count += 1;
        let twin = new_by_label.get(layer.label.as_str()).and_then(|at| at.get(occurrence));
        match twin.and_then(|&i| Some((i, new.layers.get(i)?))) {
            Some((i, twin)) => {
                matched.insert(i);
                layers.push(diff_layer(layer, twin, occurrence, options));
            }
            None => removed_layers.push(layer.label.clone()),
        }
    }
    let added_layers = new
        .layers
        .iter()
        .enumerate()
        .filter(|(i, _)| !matched.contains(i))
        .map(|(_, layer)| layer.label.clone())
        .collect();
    let totals = totals(&layers, options);
    let regressions = layers.iter().flat_map(|l| &l.cells).chain(&totals).filter(|c| c.regression).count();
    Comparison {
        model_old: old.model.clone(),
        model_new: new.model.clone(),
        layers,
        added_layers,
        removed_layers,
        totals,
        regressions,
    }
}

/// Per (width, level) cell, the fastest latency over the layer's versions, ignoring latencies
/// that are not finite or not positive.
fn best_cells(layer: &LayerVariants) -> BTreeMap<(u32, u32), f64> {
    let mut best = BTreeMap::new();
    for cell in layer.versions.iter().flat_map(|v| &v.latencies) {
        if cell.seconds.is_finite() && cell.seconds > 0.0 {
            best.entry((cell.width, cell.level))
                .and_modify(|s: &mut f64| *s = s.min(cell.seconds))
                .or_insert(cell.seconds);
        }
    }
    best
}

/// The distinct schedules of `of`'s versions that `other` lacks, in `of`'s order.
fn schedules_only_in(of: &LayerVariants, other: &LayerVariants) -> Vec<String> {
    let mut seen: HashSet<&str> = other.versions.iter().map(|v| v.schedule.as_str()).collect();
    of.versions.iter().filter(|v| seen.insert(&v.schedule)).map(|v| v.schedule.clone()).collect()
}

fn diff_layer(old: &LayerVariants, new: &LayerVariants, occurrence: usize, options: &CompareOptions) -> LayerDiff {
    let (before, after) = (best_cells(old), best_cells(new));
    let cells = before
        .iter()
        .filter_map(|(&cell, &old_seconds)| after.get(&cell).map(|&new_seconds| (cell, old_seconds, new_seconds)))
        .map(|(cell, old_seconds, new_seconds)| CellDiff::new(cell, old_seconds, new_seconds, options))
        .collect();
    let only = |of: &BTreeMap<(u32, u32), f64>, other: &BTreeMap<(u32, u32), f64>| {
        of.iter()
            .filter(|(cell, _)| !other.contains_key(cell))
            .map(|(&(width, level), &seconds)| Cell { width, level, seconds })
            .collect()
    };
    LayerDiff {
        label: old.label.clone(),
        occurrence,
        appeared: schedules_only_in(new, old),
        disappeared: schedules_only_in(old, new),
        cells,
        missing_cells: only(&before, &after),
        new_cells: only(&after, &before),
    }
}

/// Per cell measured in every matched layer on both sides, the sums of the best latencies.
fn totals(layers: &[LayerDiff], options: &CompareOptions) -> Vec<CellDiff> {
    let Some((first, rest)) = layers.split_first() else {
        return Vec::new();
    };
    first
        .cells
        .iter()
        .filter_map(|c| {
            let cell = (c.width, c.level);
            let (mut old_seconds, mut new_seconds) = (c.old_seconds, c.new_seconds);
            for layer in rest {
                let at = layer.cells.binary_search_by_key(&cell, |d| (d.width, d.level)).ok()?;
                let d = layer.cells.get(at)?;
                old_seconds += d.old_seconds;
                new_seconds += d.new_seconds;
            }
            Some(CellDiff::new(cell, old_seconds, new_seconds, options))
        })
        .collect()
}

/// Whether a report lists the cell: it regressed or moved by more than `threshold`.
pub(super) fn shown(c: &CellDiff, threshold: f64) -> bool {
    c.regression || c.change.abs() > threshold
}

mod render;
#[cfg(test)]
mod tests;

pub use render::{render_json, render_markdown, render_text};
