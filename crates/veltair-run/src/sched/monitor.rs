//! The contention estimate:
//! - observed: each executed layer's latency over its profiled solo latency at the same width
//!   and version, smoothed (exponentially weighted), over the same for layers of blocks that ran
//!   alone (the cost of serving without co-runners: cold caches, waking workers, which is not
//!   contention), mapped onto the profiles' level scale where its levels are far enough apart
//!   for timing to tell them from solo;
//! - predicted: the pressure of the layers running right now on other cores (each layer's
//!   pressure is modelled in the profile module from its measured sensitivity to the stressor),
//!   or, where the host has hardware counters, the measured pressure: the engine's
//!   last-level-cache miss rate, smoothed, as a fraction of the highest smoothed rate seen.
//!
//! The estimate is the mean of the two levels once layers have been observed on a scale with a
//! distinguishable level, the predicted level otherwise.

/// Weight of the newest observation in the smoothed slowdown.
const ALPHA: f64 = 0.2;

/// A level's typical slowdown must exceed solo by this fraction for observed slowdowns to be
/// mapped onto it: below, timing noise and the level cannot be told apart.
const DISTINGUISHABLE: f64 = 0.05;

/// Miss-rate samples before the measured pressure is trusted: the highest rate seen must have
/// had a chance to include busy moments.
const WARM_SAMPLES: u64 = 20;

/// The running estimate.
#[derive(Clone, Debug)]
pub struct Monitor {
    /// Typical slowdown at each level (index 0 = 1.0), non-decreasing.
    scale: Vec<f64>,
    smoothed: f64,
    observations: u64,
    /// The smoothed slowdown of layers in blocks that ran alone.
    baseline: f64,
    alone_observations: u64,
    misses: MissRate,
}

/// Smoothed last-level-cache misses per second and the highest smoothed value seen.
#[derive(Clone, Copy, Debug, Default)]
struct MissRate {
    smoothed: f64,
    peak: f64,
    samples: u64,
}

impl Monitor {
    /// A monitor over `scale`: the typical slowdown of each level, level 0 first.
    pub fn new(scale: Vec<f64>) -> Monitor {
        let mut envelope = 1.0f64;
        let scale = std::iter::once(1.0)
            .chain(scale.into_iter().skip(1).map(|s| {
                envelope = envelope.max(if s.is_finite() { s } else { 1.0 });
                envelope
            }))
            .collect();
        Monitor {
            scale,
            smoothed: 1.0,
            observations: 0,
            baseline: 1.0,
            alone_observations: 0,
            misses: MissRate::default(),
        }
    }

    /// Highest level of the scale.
    pub fn levels(&self) -> usize {
        self.scale.len() - 1
    }

    /// Records a layer that took `observed` seconds where its profile says `solo`; `alone` when
    /// no other block ran beside its block.
    pub fn observe(&mut self, observed: f64, solo: f64, alone: bool) {
        if !(observed > 0.0 && solo > 0.0 && observed.is_finite() && solo.is_finite()) {
            return;
        }
        let slowdown = (observed / solo).clamp(0.5, 10.0);
        self.smoothed = smooth(self.smoothed, slowdown, self.observations);
        self.observations += 1;
        if alone {
            self.baseline = smooth(self.baseline, slowdown, self.alone_observations);
            self.alone_observations += 1;
        }
    }

    /// Records the engine's cache misses per second over the last sampling interval (hardware
    /// counters only).
    pub fn observe_miss_rate(&mut self, rate: f64) {
        if !(rate >= 0.0 && rate.is_finite()) {
            return;
        }
        let m = &mut self.misses;
        m.smoothed = smooth(m.smoothed, rate, m.samples);
        m.peak = m.peak.max(m.smoothed);
        m.samples += 1;
    }

    /// The measured pressure, 0..=1: the smoothed miss rate over the highest seen; `None` without
    /// enough counter samples.
    pub fn measured_pressure(&self) -> Option<f64> {
        let m = &self.misses;
        (m.samples >= WARM_SAMPLES && m.peak > 0.0).then(|| m.smoothed / m.peak)
    }

    /// The smoothed cache misses per second (0 without counters).
    pub fn miss_rate(&self) -> f64 {
        self.misses.smoothed
    }

    /// The smoothed observed slowdown.
    pub fn slowdown(&self) -> f64 {
        self.smoothed
    }

    /// The smoothed slowdown over the alone baseline: what co-runners add.
    pub fn interference(&self) -> f64 {
        self.smoothed / self.baseline
    }

    /// The distinguishable level whose typical slowdown is nearest the interference (ties
    /// upward); `None` when no level of the scale is distinguishable from solo.
    pub fn observed_level(&self) -> Option<usize> {
        let interference = self.interference();
        let mut level = None;
        let mut below = 1.0;
        for (l, &s) in self.scale.iter().enumerate().skip(1) {
            if s < 1.0 + DISTINGUISHABLE || s <= below {
                continue;
            }
            level = Some(level.unwrap_or(0));
            if interference >= (below + s) / 2.0 {
                level = Some(l);
            }
            below = s;
        }
        level
    }

    /// The estimate given the `predicted` level from what is running now.
    pub fn level(&self, predicted: usize) -> usize {
        let predicted = predicted.min(self.levels());
        match self.observed_level() {
            Some(observed) if self.observations > 0 => (observed + predicted).div_ceil(2),
            _ => predicted,
        }
    }
}

/// The exponentially weighted mean after `seen` earlier values (the first value stands alone).
fn smooth(mean: f64, value: f64, seen: u64) -> f64 {
    if seen == 0 {
        value
    } else {
        ALPHA * value + (1.0 - ALPHA) * mean
    }
}

/// The level that co-runners with `pressures` (each: pressure in 0..=1 times the cores it
/// holds) cause for a layer on `own` of `cores` cores, on a scale of `levels`.
pub fn predicted_level(pressures: f64, own: usize, cores: usize, levels: usize) -> usize {
    let others = cores.saturating_sub(own);
    if others == 0 || levels == 0 {
        return 0;
    }
    let fraction = (pressures / others as f64).clamp(0.0, 1.0);
    (fraction * levels as f64).round() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_slowdowns_map_onto_the_scale() {
        let mut m = Monitor::new(vec![1.0, 1.1, 1.3, 1.6]);
        assert_eq!(m.level(2), 2, "no observation yet: the prediction");
        for _ in 0..50 {
            m.observe(1.6e-3, 1e-3, false);
        }
        assert_eq!(m.observed_level(), Some(3));
        assert_eq!(m.level(1), 2, "mean of observed 3 and predicted 1, rounded up");
        for _ in 0..50 {
            m.observe(1e-3, 1e-3, false);
        }
        assert_eq!(m.observed_level(), Some(0));
        m.observe(f64::NAN, 1e-3, false);
        m.observe(1e-3, 0.0, false);
        assert!(m.slowdown() < 1.01);
    }

    #[test]
    fn the_cost_of_running_alone_is_not_contention() {
        let mut m = Monitor::new(vec![1.0, 1.1, 1.3, 1.6]);
        for _ in 0..50 {
            m.observe(1.3e-3, 1e-3, true);
        }
        assert!((m.slowdown() - 1.3).abs() < 1e-9);
        assert_eq!(m.observed_level(), Some(0), "every layer ran alone");
        for _ in 0..50 {
            m.observe(1.69e-3, 1e-3, false);
        }
        assert!((m.interference() - 1.3).abs() < 1e-4);
        assert_eq!(m.observed_level(), Some(2), "1.3x over the alone baseline");
    }

    #[test]
    fn flat_or_broken_scales_never_claim_contention() {
        for scale in [vec![1.0, 1.0, f64::NAN, 0.5], vec![1.0, 0.9998, 1.0001, 1.0005]] {
            let mut m = Monitor::new(scale);
            m.observe(5e-3, 1e-3, false);
            assert_eq!(m.observed_level(), None);
            assert_eq!(m.level(0), 0, "the prediction alone");
            assert_eq!(m.level(3), 3);
            assert_eq!(m.levels(), 3);
        }
    }

    #[test]
    fn only_distinguishable_levels_are_observed() {
        let mut m = Monitor::new(vec![1.0, 1.01, 1.2, 1.5]);
        m.observe(1.004e-3, 1e-3, false);
        assert_eq!(m.observed_level(), Some(0));
        m.observe(1.1e-3, 1e-3, false);
        assert_eq!(
            m.observed_level(),
            Some(0),
            "level 1 (1.01x) cannot be told from solo, and 1.02x is nearer solo than level 2"
        );
    }

    #[test]
    fn miss_rates_count_once_warm_and_against_their_peak() {
        let mut m = Monitor::new(vec![1.0, 1.1, 1.3]);
        for _ in 1..WARM_SAMPLES {
            m.observe_miss_rate(4e6);
        }
        assert_eq!(m.measured_pressure(), None, "not warm yet");
        m.observe_miss_rate(f64::NAN);
        m.observe_miss_rate(-1.0);
        assert_eq!(m.measured_pressure(), None, "broken samples are not samples");
        m.observe_miss_rate(4e6);
        assert_eq!(m.measured_pressure(), Some(1.0));
        for _ in 0..100 {
            m.observe_miss_rate(1e6);
        }
        let p = m.measured_pressure().unwrap();
        assert!((p - 0.25).abs() < 0.01, "a quarter of the peak rate, got {p}");
        assert!((m.miss_rate() - 1e6).abs() < 1e4);
    }

    #[test]
    fn prediction_needs_other_cores_and_pressure() {
        assert_eq!(predicted_level(1.0, 2, 2, 3), 0, "a block holding every core has no co-runner");
        assert_eq!(predicted_level(1.0, 1, 2, 3), 3);
        assert_eq!(predicted_level(0.1, 1, 2, 3), 0);
        assert_eq!(predicted_level(16.0, 32, 64, 3), 2);
    }
}
