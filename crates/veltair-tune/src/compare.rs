//! Comparison of the variant sets of two builds, as CI runs it: layers matched by label
//! occurrence, per layer the versions that appeared or disappeared and the best latency of every
//! (width, contention level) cell old vs new, per-cell totals over the model, and the cells that
//! slowed down past a relative threshold; rendered for a terminal, a pull-request comment
//! (Markdown) or JSON.

use crate::report::{Cell, LayerVariants, VariantSet};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

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
fn shown(c: &CellDiff, threshold: f64) -> bool {
    c.regression || c.change.abs() > threshold
}

/// Seconds as microseconds, with two decimals below 10 µs and one above.
fn micros(seconds: f64) -> String {
    let us = seconds * 1e6;
    if us < 10.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.1}")
    }
}

/// A relative change as a signed percentage.
fn signed_percent(change: f64) -> String {
    format!("{:+.1}%", change * 100.0)
}

/// A fraction as a percentage without a trailing `.0` (0.05: "5%").
fn percent(fraction: f64) -> String {
    let text = format!("{:.1}", fraction * 100.0);
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

/// "no regression", "1 regression", "3 regressions".
fn regression_count(c: &Comparison) -> String {
    match c.regressions {
        0 => "no regression".to_string(),
        1 => "1 regression".to_string(),
        n => format!("{n} regressions"),
    }
}

/// One-line display forms of schedules (multi-line texts), in order. The versions of one GEMM
/// layer share their domain line and most steps, so neither a schedule's last line nor its first
/// characters tell them apart: each schedule shows its lines that not all of `schedules` have
/// (all its lines when it is alone or has none of its own), trimmed, joined with "; " and cut
/// to 100 characters.
fn short_forms(schedules: &[&str]) -> Vec<String> {
    let lines =
        |s: &str| -> Vec<String> { s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect() };
    let all: Vec<Vec<String>> = schedules.iter().map(|s| lines(s)).collect();
    let common: HashSet<&String> = match all.split_first() {
        Some((first, rest)) if !rest.is_empty() => {
            first.iter().filter(|l| rest.iter().all(|other| other.contains(l))).collect()
        }
        _ => HashSet::new(),
    };
    all.iter()
        .map(|own| {
            let distinct: Vec<&str> = own.iter().filter(|l| !common.contains(l)).map(String::as_str).collect();
            let shown = if distinct.is_empty() { own.iter().map(String::as_str).collect() } else { distinct };
            let text = shown.join("; ");
            match text.char_indices().nth(100) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text,
            }
        })
        .collect()
}

/// The short forms of a layer's appeared and disappeared schedules, in that order.
fn version_changes(layer: &LayerDiff) -> (Vec<String>, Vec<String>) {
    let all: Vec<&str> = layer.appeared.iter().chain(&layer.disappeared).map(String::as_str).collect();
    let mut short = short_forms(&all);
    let disappeared = short.split_off(layer.appeared.len().min(short.len()));
    (short, disappeared)
}

/// One cell's line of the terminal report.
fn text_cell(out: &mut String, c: &CellDiff) {
    let _ = writeln!(
        out,
        "  w{:<3} l{:<3} {:>11} µs → {:>11} µs  {:>8}{}",
        c.width,
        c.level,
        micros(c.old_seconds),
        micros(c.new_seconds),
        signed_percent(c.change),
        if c.regression { "  REGRESSION" } else { "" }
    );
}

/// A terminal report: the layers with a change (versions or cells that came or went, cells that
/// moved by more than the threshold), the per-cell totals and the verdict.
pub fn render_text(c: &Comparison, options: &CompareOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "variant sets: {} → {} (threshold {}, min delta {} µs)",
        c.model_old,
        c.model_new,
        percent(options.threshold),
        micros(options.min_delta_seconds)
    );
    if !c.removed_layers.is_empty() {
        let _ = writeln!(out, "removed layers: {}", c.removed_layers.join(", "));
    }
    if !c.added_layers.is_empty() {
        let _ = writeln!(out, "added layers: {}", c.added_layers.join(", "));
    }
    for layer in c.layers.iter().filter(|l| l.changed(options.threshold)) {
        let _ = writeln!(out, "layer {}", layer.name());
        let (appeared, disappeared) = version_changes(layer);
        for s in &appeared {
            let _ = writeln!(out, "  + version {s}");
        }
        for s in &disappeared {
            let _ = writeln!(out, "  - version {s}");
        }
        let moved: Vec<&CellDiff> = layer.cells.iter().filter(|d| shown(d, options.threshold)).collect();
        for d in &moved {
            text_cell(&mut out, d);
        }
        if moved.len() < layer.cells.len() {
            let rest = layer.cells.len() - moved.len();
            let _ = writeln!(out, "  ({rest} other cell(s) within ±{})", percent(options.threshold));
        }
        for (what, cells) in [("only old", &layer.missing_cells), ("only new", &layer.new_cells)] {
            for cell in cells {
                let _ = writeln!(out, "  w{:<3} l{:<3} {what}: {} µs", cell.width, cell.level, micros(cell.seconds));
            }
        }
    }
    if c.totals.is_empty() {
        let _ = writeln!(out, "totals: no cell measured in every layer on both sides");
    } else {
        let _ = writeln!(out, "totals");
        for d in &c.totals {
            text_cell(&mut out, d);
        }
    }
    match c.regressions {
        0 => {
            let _ = writeln!(out, "no regression over {}", percent(options.threshold));
        }
        _ => {
            let _ = writeln!(out, "{} over threshold {}", regression_count(c), percent(options.threshold));
        }
    }
    out
}

/// Text as Markdown inline code, safe inside a table cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'").replace('|', "\\|").replace('\n', " "))
}

/// A change for a Markdown table, bold-flagged when it regressed.
fn markdown_change(c: &CellDiff) -> String {
    if c.regression {
        format!("{} **REGRESSION**", signed_percent(c.change))
    } else {
        signed_percent(c.change)
    }
}

/// A pull-request comment: the verdict, the per-cell totals and a table of the changed layers.
pub fn render_markdown(c: &Comparison, options: &CompareOptions) -> String {
    let threshold = percent(options.threshold);
    let mut out = String::new();
    let status = if c.failed() { "FAIL" } else { "OK" };
    let _ = writeln!(out, "**{status}**: {} over {threshold}", regression_count(c));
    let _ = writeln!(
        out,
        "\nVariant sets {} → {}; a regression is a best latency more than {threshold} and {} µs slower.",
        code(&c.model_old),
        code(&c.model_new),
        micros(options.min_delta_seconds)
    );
    for (what, labels) in [("Removed", &c.removed_layers), ("Added", &c.added_layers)] {
        if !labels.is_empty() {
            let list: Vec<String> = labels.iter().map(|l| code(l)).collect();
            let _ = writeln!(out, "\n{what} layers: {}", list.join(", "));
        }
    }
    out.push_str("\n### Totals\n\n");
    if c.totals.is_empty() {
        out.push_str("No cell is measured in every layer on both sides.\n");
    } else {
        out.push_str("| cell | old µs | new µs | change |\n|---|---:|---:|---:|\n");
        for d in &c.totals {
            let _ = writeln!(
                out,
                "| w{} l{} | {} | {} | {} |",
                d.width,
                d.level,
                micros(d.old_seconds),
                micros(d.new_seconds),
                markdown_change(d)
            );
        }
    }
    let changed: Vec<&LayerDiff> = c.layers.iter().filter(|l| l.changed(options.threshold)).collect();
    if changed.is_empty() {
        return out;
    }
    out.push_str("\n### Changed layers\n\n");
    out.push_str("| layer | cell | old µs | new µs | change | versions +/- |\n|---|---|---:|---:|---:|---|\n");
    for layer in changed {
        let (appeared, disappeared) = version_changes(layer);
        let mut versions: Vec<String> = appeared.iter().map(|s| format!("+ {}", code(s))).collect();
        versions.extend(disappeared.iter().map(|s| format!("- {}", code(s))));
        let mut rows: Vec<[String; 4]> = layer
            .cells
            .iter()
            .filter(|d| shown(d, options.threshold))
            .map(|d| {
                [format!("w{} l{}", d.width, d.level), micros(d.old_seconds), micros(d.new_seconds), markdown_change(d)]
            })
            .collect();
        let lone = |cell: &Cell, old: bool| {
            let (seconds, dash) = (micros(cell.seconds), "-".to_string());
            let (before, after, what) = if old { (seconds, dash, "missing") } else { (dash, seconds, "new") };
            [format!("w{} l{}", cell.width, cell.level), before, after, what.to_string()]
        };
        rows.extend(layer.missing_cells.iter().map(|cell| lone(cell, true)));
        rows.extend(layer.new_cells.iter().map(|cell| lone(cell, false)));
        if rows.is_empty() {
            rows.push(["-", "-", "-", "-"].map(str::to_string));
        }
        for (i, [cell, before, after, change]) in rows.iter().enumerate() {
            let versions = if i == 0 { versions.join("<br>") } else { String::new() };
            let _ = writeln!(out, "| {} | {cell} | {before} | {after} | {change} | {versions} |", code(&layer.name()));
        }
    }
    out
}

/// The comparison as pretty-printed JSON (non-finite numbers as `null`).
pub fn render_json(c: &Comparison) -> String {
    // Plain structs of strings, numbers and booleans: serializing them cannot fail.
    serde_json::to_string_pretty(c).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CandidateReport;

    const US: f64 = 1e-6;

    fn version(schedule: &str, cells: &[(u32, u32, f64)]) -> CandidateReport {
        CandidateReport {
            schedule: schedule.to_string(),
            footprint_bytes: 0,
            latencies: cells.iter().map(|&(width, level, seconds)| Cell { width, level, seconds }).collect(),
        }
    }

    fn layer(label: &str, versions: Vec<CandidateReport>) -> LayerVariants {
        LayerVariants { label: label.to_string(), versions }
    }

    fn set(model: &str, layers: Vec<LayerVariants>) -> VariantSet {
        VariantSet { model: model.to_string(), layers }
    }

    /// A GEMM-like schedule: a shared domain line and steps, differing in `split k`.
    fn schedule(kc: u32) -> String {
        format!("gemm: for m<64, n<256; reduce k<576\nsplit k {kc}\nsplit m 64 10\ncompute_at epilogue m.1")
    }

    /// Two layers, each with two versions, at cells (1,0) and (1,3); `slow` scales the best
    /// version of `conv1` at (1,3).
    fn model(conv2: f64, slow: f64) -> VariantSet {
        set(
            "net",
            vec![
                layer(
                    "conv1",
                    vec![
                        version(&schedule(128), &[(1, 0, 80.0 * US), (1, 3, 100.0 * slow * US)]),
                        version(&schedule(256), &[(1, 0, 90.0 * US), (1, 3, 150.0 * US)]),
                    ],
                ),
                layer("conv2", vec![version(&schedule(64), &[(1, 0, conv2 * US), (1, 3, conv2 * US)])]),
            ],
        )
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
    }

    #[test]
    fn identical_sets_have_no_regression_and_no_changed_layer() {
        let options = CompareOptions::default();
        let a = model(10.0, 1.0);
        let c = compare(&a, &a, &options);
        assert_eq!(c.regressions, 0);
        assert!(!c.failed());
        assert_eq!(c.layers.len(), 2);
        assert!(c.added_layers.is_empty() && c.removed_layers.is_empty());
        assert!(c.layers.iter().all(|l| !l.changed(options.threshold)));
        assert!(c.layers.iter().flat_map(|l| &l.cells).all(|d| d.change == 0.0 && !d.regression));
        assert_eq!(c.totals.len(), 2);
        assert!(close(c.totals[0].old_seconds, 90.0 * US));
        let text = render_text(&c, &options);
        assert!(text.contains("no regression over 5%"), "{text}");
        assert!(!text.contains("layer conv"), "{text}");
        assert!(!text.contains("REGRESSION"), "{text}");
        let markdown = render_markdown(&c, &options);
        assert!(markdown.starts_with("**OK**: no regression over 5%"), "{markdown}");
        assert!(!markdown.contains("Changed layers"), "{markdown}");
    }

    #[test]
    fn slower_best_cell_is_a_regression_and_so_is_the_total_past_the_threshold() {
        let options = CompareOptions::default();
        // conv1's best at (1,3) goes 100 -> 110 µs; with conv2 at 10 µs the total goes 110 -> 120 µs.
        let c = compare(&model(10.0, 1.0), &model(10.0, 1.1), &options);
        let conv1 = &c.layers[0];
        assert_eq!(conv1.cells.len(), 2);
        assert!(!conv1.cells[0].regression && conv1.cells[0].change == 0.0);
        let hot = conv1.cells[1];
        assert_eq!((hot.width, hot.level), (1, 3));
        assert!(close(hot.old_seconds, 100.0 * US) && close(hot.new_seconds, 110.0 * US));
        assert!(close(hot.change, 0.1));
        assert!(hot.regression);
        assert!(c.layers[1].cells.iter().all(|d| !d.regression));
        let total = c.totals.iter().find(|d| (d.width, d.level) == (1, 3)).copied();
        assert!(total.is_some_and(|t| t.regression && close(t.change, 120.0 / 110.0 - 1.0)));
        assert_eq!(c.regressions, 2);
        assert!(c.failed());
        let text = render_text(&c, &options);
        assert!(text.contains("layer conv1") && !text.contains("layer conv2"), "{text}");
        assert!(text.contains("+10.0%  REGRESSION"), "{text}");
        assert!(text.contains("2 regressions over threshold 5%"), "{text}");
        let markdown = render_markdown(&c, &options);
        assert!(markdown.starts_with("**FAIL**: 2 regressions over 5%"), "{markdown}");
        assert!(markdown.contains("| `conv1` | w1 l3 | 100.0 | 110.0 | +10.0% **REGRESSION** |"), "{markdown}");
    }

    #[test]
    fn a_total_diluted_under_the_threshold_does_not_regress() {
        let options = CompareOptions::default();
        // conv2 at 900 µs: the total at (1,3) goes 1000 -> 1010 µs, +1%.
        let c = compare(&model(900.0, 1.0), &model(900.0, 1.1), &options);
        assert_eq!(c.regressions, 1);
        assert!(c.layers[0].cells[1].regression);
        assert!(c.totals.iter().all(|t| !t.regression));
        assert!(render_text(&c, &options).contains("1 regression over threshold 5%"));
        assert!(render_markdown(&c, &options).starts_with("**FAIL**: 1 regression over 5%"));
    }

    #[test]
    fn a_slowdown_below_the_minimum_delta_is_not_a_regression() {
        let options = CompareOptions::default();
        let old = set("net", vec![layer("relu", vec![version("relu", &[(1, 0, 20.0 * US)])])]);
        let new = set("net", vec![layer("relu", vec![version("relu", &[(1, 0, 22.0 * US)])])]);
        let c = compare(&old, &new, &options);
        let d = c.layers[0].cells[0];
        assert!(close(d.change, 0.1));
        assert!(!d.regression);
        assert!(!c.totals[0].regression);
        assert_eq!(c.regressions, 0);
        assert!(!c.failed());
        // Past the threshold, so shown, but not flagged.
        let text = render_text(&c, &options);
        assert!(text.contains("layer relu") && text.contains("+10.0%"), "{text}");
        assert!(!text.contains("REGRESSION") && text.contains("no regression over 5%"), "{text}");
        // The same relative slowdown past the minimum delta regresses.
        let strict = CompareOptions { min_delta_seconds: 1e-6, ..options };
        assert_eq!(compare(&old, &new, &strict).regressions, 2);
    }

    #[test]
    fn versions_that_appear_and_disappear_and_a_faster_one_improves() {
        let options = CompareOptions::default();
        let old = set(
            "net",
            vec![layer(
                "fc",
                vec![version(&schedule(128), &[(1, 0, 100.0 * US)]), version(&schedule(256), &[(1, 0, 120.0 * US)])],
            )],
        );
        let new = set(
            "net",
            vec![layer(
                "fc",
                vec![
                    version(&schedule(128), &[(1, 0, 100.0 * US)]),
                    version(&schedule(512), &[(1, 0, 80.0 * US)]),
                    version(&schedule(512), &[(1, 0, 85.0 * US)]),
                ],
            )],
        );
        let c = compare(&old, &new, &options);
        let fc = &c.layers[0];
        assert_eq!(fc.appeared, vec![schedule(512)]);
        assert_eq!(fc.disappeared, vec![schedule(256)]);
        assert!(close(fc.cells[0].change, -0.2));
        assert!(!fc.cells[0].regression);
        assert_eq!(c.regressions, 0);
        let text = render_text(&c, &options);
        assert!(text.contains("  + version split k 512\n") && text.contains("  - version split k 256\n"), "{text}");
        assert!(text.contains("-20.0%") && text.contains("no regression"), "{text}");
        let markdown = render_markdown(&c, &options);
        assert!(markdown.contains("+ `split k 512`<br>- `split k 256`"), "{markdown}");
    }

    #[test]
    fn short_forms_show_what_tells_schedules_apart() {
        let (a, b) = (schedule(128), "one\n two \n\nthree".to_string());
        assert_eq!(short_forms(&[&a, &schedule(256)]), ["split k 128", "split k 256"]);
        assert_eq!(short_forms(&[&b]), ["one; two; three"]);
        // A schedule whose lines all appear in the others shows all of them.
        assert_eq!(short_forms(&["x\ny", "x\ny\nz"]), ["x; y", "z"]);
        let long = "é".repeat(150);
        let cut = short_forms(&[&long]);
        assert_eq!(cut[0].chars().count(), 101);
        assert!(cut[0].ends_with('…'));
        assert!(short_forms(&[]).is_empty());
    }

    #[test]
    fn repeated_labels_match_by_occurrence_and_unmatched_layers_are_listed() {
        let options = CompareOptions::default();
        let plain = |label: &str, us: f64| layer(label, vec![version("s", &[(1, 0, us * US)])]);
        let old = set("a", vec![plain("conv", 10.0), plain("relu", 1.0), plain("conv", 500.0), plain("fc_old", 7.0)]);
        let new = set(
            "b",
            vec![
                plain("conv", 10.0),
                plain("conv", 500.0),
                plain("relu", 1.0),
                plain("fc_new", 7.0),
                plain("conv", 42.0),
            ],
        );
        let c = compare(&old, &new, &options);
        let matched: Vec<(&str, usize)> = c.layers.iter().map(|l| (l.label.as_str(), l.occurrence)).collect();
        assert_eq!(matched, [("conv", 0), ("relu", 0), ("conv", 1)]);
        // The second conv of each side pairs up: 500 µs on both.
        assert!(c.layers.iter().flat_map(|l| &l.cells).all(|d| d.change == 0.0));
        assert!(close(c.layers[2].cells[0].old_seconds, 500.0 * US));
        assert_eq!(c.removed_layers, ["fc_old"]);
        assert_eq!(c.added_layers, ["fc_new", "conv"]);
        assert_eq!(c.regressions, 0);
        assert!(close(c.totals[0].old_seconds, 511.0 * US));
        let text = render_text(&c, &options);
        assert!(text.contains("removed layers: fc_old\n") && text.contains("added layers: fc_new, conv\n"), "{text}");
        assert!(text.contains("no regression"), "{text}");
        assert!(render_markdown(&c, &options).contains("Added layers: `fc_new`, `conv`"));
    }

    #[test]
    fn invalid_and_one_sided_latencies_are_ignored_without_panicking() {
        let options = CompareOptions::default();
        let old = set(
            "net",
            vec![
                layer(
                    "a",
                    vec![
                        version("v0", &[(1, 0, f64::NAN), (1, 1, 0.0), (1, 2, 30.0 * US), (2, 0, 9.0 * US)]),
                        version("v1", &[(1, 0, 50.0 * US), (1, 1, -1.0), (1, 2, f64::INFINITY)]),
                    ],
                ),
                layer("b", vec![version("v", &[(1, 0, 1.0 * US), (1, 2, 2.0 * US)])]),
                layer("empty", vec![]),
            ],
        );
        let new = set(
            "net",
            vec![
                layer(
                    "a",
                    vec![version(
                        "v0",
                        &[(1, 0, 50.0 * US), (1, 1, 7.0 * US), (1, 2, f64::NAN), (3, 0, 0.0), (3, 1, f64::INFINITY)],
                    )],
                ),
                layer("b", vec![version("v", &[(1, 0, 1.0 * US), (1, 2, 2.0 * US)])]),
                layer("empty", vec![version("v", &[(1, 0, f64::NEG_INFINITY)])]),
            ],
        );
        let c = compare(&old, &new, &options);
        let a = &c.layers[0];
        // (1,0): NaN ignored, best 50 µs both sides; (1,1) only valid in new; (1,2) only in old.
        assert_eq!(a.cells.len(), 1);
        assert_eq!((a.cells[0].width, a.cells[0].level), (1, 0));
        assert!(close(a.cells[0].old_seconds, 50.0 * US) && a.cells[0].change == 0.0);
        let ids = |cells: &[Cell]| cells.iter().map(|x| (x.width, x.level)).collect::<Vec<_>>();
        assert_eq!(ids(&a.missing_cells), [(1, 2), (2, 0)]);
        assert_eq!(ids(&a.new_cells), [(1, 1)]);
        assert_eq!(a.disappeared, ["v1"]);
        // "empty" has no valid cell on either side: no cell is in every layer, so no totals.
        assert!(c.layers[2].cells.is_empty() && c.layers[2].new_cells.is_empty());
        assert!(c.totals.is_empty());
        assert_eq!(c.regressions, 0);
        assert!(c.layers.iter().flat_map(|l| &l.cells).all(|d| d.change.is_finite()));
        let text = render_text(&c, &options);
        assert!(text.contains("only old: 30.0 µs") && text.contains("only new: 7.00 µs"), "{text}");
        assert!(text.contains("totals: no cell"), "{text}");
        assert!(render_markdown(&c, &options).contains("| `a` | w1 l2 | 30.0 | - | missing |"));
        // Odd options and empty sets do not panic either.
        let odd = CompareOptions { threshold: f64::NAN, min_delta_seconds: f64::NAN };
        let _ = render_text(&compare(&old, &new, &odd), &odd);
        let nothing = compare(&set("x", vec![]), &set("y", vec![]), &options);
        assert!(nothing.layers.is_empty() && nothing.totals.is_empty() && !nothing.failed());
        assert!(render_markdown(&nothing, &options).starts_with("**OK**"));
    }

    #[test]
    fn json_carries_the_structs() {
        let options = CompareOptions::default();
        let c = compare(&model(10.0, 1.0), &model(10.0, 1.1), &options);
        let json: serde_json::Value = serde_json::from_str(&render_json(&c)).unwrap_or_default();
        assert_eq!(json["regressions"], 2);
        assert_eq!(json["layers"][0]["cells"][1]["regression"], true);
        assert_eq!(json["totals"][1]["level"], 3);
    }
}
