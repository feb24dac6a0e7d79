//! What the scheduler knows about a model: per layer its MACs and, per version, the latency at
//! each (width, contention level) the compiler measured. Cells it did not measure are modelled,
//! and every model used is stated where it is computed:
//! - another level at a measured width: the solo latency times the slowdown the same version
//!   showed at that level at the widest width measured there;
//! - a wider width than measured: Amdahl's law fitted to the two widest measured widths
//!   (`t(w) = s + p / w`), or, with one measured width, a 90% parallel fraction;
//! - nothing measured (`--tune none`): a nominal 40 GFLOP/s per core plus 10 µs per layer.
//!
//! It also says how hard a layer presses on the layers running beside it: its slowdown under
//! the compiler's stressor at the highest level, relative to the slowdown of the calibration
//! reference (a pure memory stream) there. The stated model: interference is symmetric, so a
//! layer that suffers like the stream (memory-bound) presses like the stream (pressure 1), and
//! one the stressor does not slow (compute-bound in its own caches) does not press (0).

use veltair_bundle::Latency;
use veltair_exec::Plan;

/// Nominal per-core rate for unmeasured layers (FLOP/s).
const NOMINAL_RATE: f64 = 40e9;
/// Nominal fixed cost of one layer call (seconds).
const NOMINAL_OVERHEAD: f64 = 10e-6;
/// A version other than the solo best is chosen for a contention level only when it is faster
/// there by more than this fraction: the measured cells are medians with a few percent of noise,
/// and a switch on a smaller difference would follow the noise.
const SWITCH_MARGIN: f64 = 0.05;
/// Parallel fraction assumed when only one width was measured.
const DEFAULT_PARALLEL_FRACTION: f64 = 0.9;

/// One model's profile.
#[derive(Clone, Debug)]
pub struct ModelProfile {
    pub name: String,
    /// The latency target of one query (seconds).
    pub qos: f64,
    pub steps: Vec<StepProfile>,
    /// The widest width the model's code supports.
    pub max_width: usize,
    /// The highest contention level any latency was measured at.
    pub levels: usize,
    /// The calibration reference's slowdown at each level (level 0 first).
    pub reference: Vec<f64>,
}

/// One layer.
#[derive(Clone, Debug)]
pub struct StepProfile {
    pub label: String,
    pub macs: u64,
    pub versions: Vec<VersionProfile>,
}

/// One version: its measured cells.
#[derive(Clone, Debug, Default)]
pub struct VersionProfile {
    pub cells: Vec<Latency>,
}

impl ModelProfile {
    /// The profile of a plan loaded from a bundle, with latency target `qos` seconds.
    pub fn from_plan(name: &str, plan: &Plan, qos: f64) -> ModelProfile {
        let steps: Vec<StepProfile> = plan
            .steps
            .iter()
            .map(|s| StepProfile {
                label: s.label.clone(),
                macs: s.macs,
                versions: s.versions.iter().map(|v| VersionProfile { cells: v.latencies.clone() }).collect(),
            })
            .collect();
        let levels =
            steps.iter().flat_map(|s| &s.versions).flat_map(|v| &v.cells).map(|c| c.level as usize).max().unwrap_or(0);
        let mut reference: Vec<f64> = vec![1.0];
        if let Some(c) = &plan.calibration {
            let mut levels: Vec<_> = c.levels.iter().map(|l| (l.level, l.slowdown)).collect();
            levels.sort_by_key(|l| l.0);
            reference.extend(levels.into_iter().filter(|l| l.0 > 0).map(|l| l.1));
        }
        ModelProfile { name: name.to_string(), qos, steps, max_width: plan.max_threads.max(1), levels, reference }
    }

    /// How hard `version` of `step` presses on co-running layers, 0 to 1 (the model stated at
    /// the top of this module); 0 when it was not measured under contention.
    pub fn pressure(&self, step: usize, version: usize) -> f64 {
        let top = self.levels.min(self.reference.len().saturating_sub(1));
        let stream = self.reference.get(top).copied().unwrap_or(1.0);
        if top == 0 || stream.is_nan() || stream <= 1.0 {
            return 0.0;
        }
        let own = level_slowdown(&self.steps[step].versions[version], top as u32);
        ((own - 1.0) / (stream - 1.0)).clamp(0.0, 1.0)
    }

    /// The pressure of steps `range` running `versions` at `width`: each layer's pressure
    /// weighted by its solo time there.
    pub fn block_pressure(&self, range: std::ops::Range<usize>, versions: &[usize], width: usize) -> f64 {
        let (mut weighted, mut total) = (0.0, 0.0);
        for (step, &v) in range.zip(versions) {
            let t = self.latency(step, v, width, 0);
            weighted += self.pressure(step, v) * t;
            total += t;
        }
        if total > 0.0 {
            weighted / total
        } else {
            0.0
        }
    }

    /// Latency of `version` of `step` at `width` and contention `level` (measured or modelled).
    pub fn latency(&self, step: usize, version: usize, width: usize, level: usize) -> f64 {
        let s = &self.steps[step];
        let v = &s.versions[version];
        let (w, l) = (width.max(1) as u32, level as u32);
        if let Some(c) = v.cells.iter().find(|c| c.width == w && c.level == l) {
            return c.seconds;
        }
        solo(v, s.macs, width.max(1)) * level_slowdown(v, l)
    }

    /// The version of `step` fastest at (`width`, `level`) and its latency.
    pub fn best_version(&self, step: usize, width: usize, level: usize) -> (usize, f64) {
        (0..self.steps[step].versions.len())
            .map(|v| (v, self.latency(step, v, width, level)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::INFINITY))
    }

    /// The version to run `step` at `width` under contention `level`: the solo-best version,
    /// unless another is faster at that level by more than the switch margin, judged with both
    /// sides' cells read against measurement spikes (contention never speeds a layer up, host
    /// noise only slows a timing down): the other version takes at least its solo time there,
    /// and the solo-best version takes at most its time at any heavier level. A single cell
    /// caught in a host hiccup (a layer 2x slower at level 1 than at levels 2 and 3, or a
    /// version 1.7x slower solo than under contention) then starts no switch.
    pub fn version_for(&self, step: usize, width: usize, level: usize) -> usize {
        let (solo_best, _) = self.best_version(step, width, 0);
        if level == 0 {
            return solo_best;
        }
        let at_least = |v: usize| self.latency(step, v, width, level).max(self.latency(step, v, width, 0));
        let at_most =
            |v: usize| (level..=self.levels).map(|l| self.latency(step, v, width, l)).fold(f64::INFINITY, f64::min);
        let (best, t) = (0..self.steps[step].versions.len())
            .map(|v| (v, at_least(v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((solo_best, f64::INFINITY));
        if t * (1.0 + SWITCH_MARGIN) < at_most(solo_best) {
            best
        } else {
            solo_best
        }
    }

    /// Latency of steps `range` at `width` and `level`, each at its best version there.
    pub fn block_latency(&self, range: std::ops::Range<usize>, width: usize, level: usize) -> f64 {
        range.map(|i| self.best_version(i, width, level).1).sum()
    }

    /// The whole model's latency at `width`, solo.
    pub fn solo(&self, width: usize) -> f64 {
        self.block_latency(0..self.steps.len(), width, 0)
    }

    /// The smallest width (up to `max`) whose solo latency for `step` is within 10% of the
    /// fastest: the width the layer makes good use of.
    pub fn preferred_width(&self, step: usize, max: usize) -> usize {
        let widths = 1..=max.max(1);
        let best = widths.clone().map(|w| self.best_version(step, w, 0).1).fold(f64::INFINITY, f64::min);
        widths.into_iter().find(|&w| self.best_version(step, w, 0).1 <= 1.1 * best).unwrap_or(1)
    }
}

/// Gives every model one calibration reference: per level, the median of the models' own. The
/// reference is a property of the machine (a memory stream's slowdown under the stressor), but
/// each bundle's calibration ran for a fraction of a second and they differ (1.02x to 3.52x at
/// the top level across six compiles here), so the shared median is a steadier yardstick for
/// pressure.
pub fn share_reference(models: &mut [ModelProfile]) {
    let levels = models.iter().map(|m| m.reference.len()).max().unwrap_or(0);
    let shared: Vec<f64> = (0..levels)
        .map(|l| {
            let mut values: Vec<f64> =
                models.iter().filter_map(|m| m.reference.get(l).copied()).filter(|v| v.is_finite()).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(1.0)
        })
        .collect();
    for m in models {
        m.reference = shared.clone();
    }
}

/// The typical slowdown of each contention level over `models` (level 0 first): the median,
/// over every version and width measured at that level, of its latency there over its solo
/// latency at the same width.
pub fn level_scale(models: &[ModelProfile]) -> Vec<f64> {
    let levels = models.iter().map(|m| m.levels).max().unwrap_or(0);
    let mut scale = vec![1.0];
    for level in 1..=levels as u32 {
        let mut ratios: Vec<f64> = models
            .iter()
            .flat_map(|m| &m.steps)
            .flat_map(|s| &s.versions)
            .flat_map(|v| {
                v.cells.iter().filter(move |c| c.level == level).filter_map(move |c| {
                    let base = v.cells.iter().find(|b| b.width == c.width && b.level == 0)?;
                    (base.seconds > 0.0 && c.seconds.is_finite()).then(|| c.seconds / base.seconds)
                })
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        scale.push(ratios.get(ratios.len() / 2).copied().unwrap_or(1.0));
    }
    scale
}

/// Solo latency of `v` at `width`: measured, Amdahl-extrapolated, or nominal.
fn solo(v: &VersionProfile, macs: u64, width: usize) -> f64 {
    let mut measured: Vec<(usize, f64)> =
        v.cells.iter().filter(|c| c.level == 0).map(|c| (c.width as usize, c.seconds)).collect();
    measured.sort_by_key(|m| m.0);
    if let Some(&(_, t)) = measured.iter().find(|m| m.0 == width) {
        return t;
    }
    let (serial, parallel) = match measured.as_slice() {
        [] => {
            let t1 = 2.0 * macs as f64 / NOMINAL_RATE;
            (NOMINAL_OVERHEAD + (1.0 - DEFAULT_PARALLEL_FRACTION) * t1, DEFAULT_PARALLEL_FRACTION * t1)
        }
        [(w, t)] => {
            let t1 = t * amdahl_speedup(*w);
            ((1.0 - DEFAULT_PARALLEL_FRACTION) * t1, DEFAULT_PARALLEL_FRACTION * t1)
        }
        [.., (w1, t1), (w2, t2)] => {
            // t = s + p / w through both points; no negative parts.
            let (a, b) = (1.0 / *w1 as f64, 1.0 / *w2 as f64);
            let p = ((t1 - t2) / (a - b)).max(0.0);
            ((t2 - p * b).max(0.0), p)
        }
    };
    serial + parallel / width as f64
}

/// Speedup at `w` under the default parallel fraction.
fn amdahl_speedup(w: usize) -> f64 {
    1.0 / ((1.0 - DEFAULT_PARALLEL_FRACTION) + DEFAULT_PARALLEL_FRACTION / w as f64)
}

/// The slowdown `v` showed at `level` (at the widest width measured at that level), 1 if none.
fn level_slowdown(v: &VersionProfile, level: u32) -> f64 {
    if level == 0 {
        return 1.0;
    }
    v.cells
        .iter()
        .filter(|c| c.level == level)
        .max_by_key(|c| c.width)
        .and_then(|c| {
            let base = v.cells.iter().find(|b| b.width == c.width && b.level == 0)?;
            (base.seconds > 0.0).then(|| (c.seconds / base.seconds).max(1.0))
        })
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(list: &[(u32, u32, f64)]) -> Vec<Latency> {
        list.iter().map(|&(width, level, seconds)| Latency { width, level, seconds }).collect()
    }

    fn profile(versions: Vec<Vec<Latency>>, macs: u64) -> ModelProfile {
        let versions = versions.into_iter().map(|cells| VersionProfile { cells }).collect();
        ModelProfile {
            name: "m".into(),
            qos: 1.0,
            steps: vec![StepProfile { label: "s".into(), macs, versions }],
            max_width: 2,
            levels: 3,
            reference: vec![1.0, 1.2, 1.4, 2.0],
        }
    }

    #[test]
    fn measured_cells_are_used_as_is() {
        let p = profile(vec![cells(&[(1, 0, 4.0), (1, 3, 6.0), (2, 0, 2.5)])], 0);
        assert_eq!(p.latency(0, 0, 1, 0), 4.0);
        assert_eq!(p.latency(0, 0, 1, 3), 6.0);
        assert_eq!(p.latency(0, 0, 2, 0), 2.5);
    }

    #[test]
    fn unmeasured_cells_follow_the_stated_models() {
        let p = profile(vec![cells(&[(1, 0, 4.0), (1, 3, 6.0), (2, 0, 2.5)])], 0);
        // Level 3 at width 2: solo 2.5 times the 1.5x slowdown seen at width 1.
        assert!((p.latency(0, 0, 2, 3) - 3.75).abs() < 1e-12);
        // Width 4 from t = s + p/w through (1, 4.0) and (2, 2.5): p = 3, s = 1.
        assert!((p.latency(0, 0, 4, 0) - 1.75).abs() < 1e-12);
        // Nothing measured: nominal rate.
        let n = profile(vec![vec![]], 20_000_000);
        let t1 = n.latency(0, 0, 1, 0);
        assert!((t1 - (NOMINAL_OVERHEAD + 1e-3)).abs() < 1e-9, "{t1}");
        assert!(n.latency(0, 0, 2, 0) < t1);
    }

    #[test]
    fn level_scale_is_the_median_ratio() {
        let p = profile(
            vec![cells(&[(1, 0, 1.0), (1, 1, 1.2), (1, 2, 2.0)]), cells(&[(1, 0, 1.0), (1, 1, 1.4), (1, 2, 1.5)])],
            0,
        );
        assert_eq!(level_scale(&[p.clone(), p]), vec![1.0, 1.4, 2.0, 1.0], "level 3 was not measured");
    }

    #[test]
    fn pressure_is_the_slowdown_relative_to_the_stream_reference() {
        let p = profile(
            vec![
                cells(&[(1, 0, 1.0), (1, 3, 2.0)]),
                cells(&[(1, 0, 1.0), (1, 3, 1.5)]),
                cells(&[(1, 0, 1.0), (1, 3, 0.9)]),
                cells(&[(1, 0, 1.0), (1, 3, 4.0)]),
                cells(&[(1, 0, 1.0)]),
            ],
            0,
        );
        let pressures: Vec<f64> = (0..5).map(|v| p.pressure(0, v)).collect();
        assert_eq!(pressures, vec![1.0, 0.5, 0.0, 1.0, 0.0]);
        let mixed = ModelProfile { steps: vec![p.steps[0].clone(), p.steps[0].clone()], ..p.clone() };
        assert!((mixed.block_pressure(0..2, &[0, 1], 1) - 0.75).abs() < 1e-12);
        let untuned = ModelProfile { reference: vec![1.0], ..p };
        assert_eq!(untuned.pressure(0, 0), 0.0, "no calibration: no pressure");
    }

    #[test]
    fn references_are_shared_as_the_median_per_level() {
        let mut models = vec![profile(Vec::new(), 0), profile(Vec::new(), 0), profile(Vec::new(), 0)];
        models[0].reference = vec![1.0, 1.1, 3.5];
        models[1].reference = vec![1.0, 1.3, 1.05];
        models[2].reference = vec![1.0, 1.2, 1.6, f64::NAN];
        share_reference(&mut models);
        for m in &models {
            assert_eq!(m.reference, vec![1.0, 1.2, 1.6, 1.0], "a level nobody measured stays neutral");
        }
    }

    #[test]
    fn versions_switch_for_contention_only_beyond_the_margin() {
        let p = profile(
            vec![cells(&[(1, 0, 1.0), (1, 2, 1.5), (1, 3, 2.0)]), cells(&[(1, 0, 1.1), (1, 2, 1.45), (1, 3, 1.5)])],
            0,
        );
        assert_eq!(p.version_for(0, 1, 0), 0);
        assert_eq!(p.version_for(0, 1, 2), 0, "3% faster at level 2: within the margin");
        assert_eq!(p.version_for(0, 1, 3), 1);
    }

    #[test]
    fn a_spike_in_one_cell_starts_no_switch() {
        let solo_best = cells(&[(1, 0, 1.0), (1, 1, 2.1), (1, 2, 1.0), (1, 3, 1.05)]);
        let steady = cells(&[(1, 0, 1.02), (1, 1, 1.0), (1, 2, 1.0), (1, 3, 1.0)]);
        let faster_under_stress = cells(&[(1, 0, 1.7), (1, 1, 1.7), (1, 2, 1.7), (1, 3, 0.6)]);
        let p = profile(vec![solo_best, steady, faster_under_stress], 0);
        assert_eq!(p.version_for(0, 1, 1), 0, "2.1 at level 1 but 1.0 at level 2: a spike");
        assert_eq!(p.version_for(0, 1, 3), 0, "0.6 under contention but 1.7 solo: a spike");
        let robust = cells(&[(1, 0, 1.05), (1, 1, 1.05), (1, 2, 1.05), (1, 3, 1.1)]);
        let sensitive = cells(&[(1, 0, 1.0), (1, 1, 1.2), (1, 2, 1.3), (1, 3, 1.5)]);
        let p = profile(vec![sensitive, robust], 0);
        assert_eq!(p.version_for(0, 1, 1), 1, "1.05 against at most 1.2");
        assert_eq!(p.version_for(0, 1, 3), 1);
    }

    #[test]
    fn best_version_and_preferred_width() {
        let p = profile(vec![cells(&[(1, 0, 4.0), (2, 0, 3.9)]), cells(&[(1, 0, 5.0), (2, 0, 2.0)])], 0);
        assert_eq!(p.best_version(0, 1, 0), (0, 4.0));
        assert_eq!(p.best_version(0, 2, 0), (1, 2.0));
        assert_eq!(p.preferred_width(0, 2), 2);
        let flat = profile(vec![cells(&[(1, 0, 4.0), (2, 0, 3.9)])], 0);
        assert_eq!(flat.preferred_width(0, 2), 1, "within 10% of the best at one core");
    }
}
