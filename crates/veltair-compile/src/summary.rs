//! The one-screen summary `veltair-compile` prints after writing a bundle.

use crate::compile::Check;
use std::path::Path;
use veltair_tune::Report;

/// What the summary describes.
pub struct Summary<'a> {
    pub report: &'a Report,
    pub output: &'a Path,
    /// Candidate versions compiled (and measured, when tuning).
    pub candidates: usize,
    pub checks: &'a [Check],
}

pub fn print_summary(s: &Summary) {
    let r = s.report;
    let mib = r.bundle_bytes as f64 / 1048576.0;
    println!("{} -> {} ({mib:.1} MiB)", r.model, s.output.display());
    println!(
        "  {} layers, {} versions kept of {} candidates (tune {}), widths 1-{}",
        r.layers.len(),
        r.versions,
        s.candidates,
        r.tune,
        r.max_threads
    );
    if r.calibration.is_empty() {
        println!("  contention levels: not measured (solo only)");
    } else {
        let slowdowns: Vec<String> = r.calibration.iter().map(|l| format!("{:.2}x", l.slowdown)).collect();
        println!("  contention levels 0-{}: reference slowdowns {}", r.levels, slowdowns.join(" / "));
        println!("    reference: {}", r.calibration_reference);
    }
    if r.tune != "none" {
        println!("  layers whose best version changes under the highest level: {}", r.switches.len());
        let mut top: Vec<_> = r.switches.iter().collect();
        top.sort_by(|a, b| b.gain_under_contention.total_cmp(&a.gain_under_contention));
        for sw in top.iter().take(3) {
            println!(
                "    {} (width {}): solo best slows {:.2}x at level {}, the contended best is {:.2}x faster there",
                sw.label, sw.width, sw.solo_best_slowdown, sw.level, sw.gain_under_contention
            );
        }
    }
    match s.checks.iter().find(|c| !c.ok) {
        None if s.checks.is_empty() => println!("  outputs: not checked (no --data)"),
        None => {
            let worst = s.checks.iter().map(|c| c.max_abs).fold(0.0, f64::max);
            println!(
                "  outputs: {} checked against --data, all within tolerance (max abs error {worst:.2e})",
                s.checks.len()
            );
        }
        Some(bad) => {
            println!("  outputs: MISMATCH on `{}` of {} (max abs error {:.2e})", bad.output, bad.data, bad.max_abs)
        }
    }
    let t = &r.seconds;
    println!(
        "  time: import {:.1} s, lower {:.1} s, calibrate {:.1} s, tune {:.1} s, write {:.1} s, total {:.1} s",
        t.import, t.lower, t.calibrate, t.tune, t.write, t.total
    );
}
