//! Tests of the comparison and its renderings on hand-made variant sets.

use super::render::short_forms;
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
        vec![plain("conv", 10.0), plain("conv", 500.0), plain("relu", 1.0), plain("fc_new", 7.0), plain("conv", 42.0)],
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
