//! Renderings of a [`Comparison`]: a terminal report, a pull-request comment (Markdown) and
//! JSON.

use super::{shown, CellDiff, CompareOptions, Comparison, LayerDiff};
use crate::report::Cell;
use std::collections::HashSet;
use std::fmt::Write as _;

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
pub(super) fn short_forms(schedules: &[&str]) -> Vec<String> {
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
