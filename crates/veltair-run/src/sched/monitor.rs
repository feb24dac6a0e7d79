//! The contention estimate, from software signals only (no hardware counters here):
//! - observed: each executed layer's latency over its profiled solo latency at the same width
//!   and version, smoothed (exponentially weighted), mapped onto the profiles' level scale;
//! - predicted: the pressure of the layers running right now on other cores (each layer's
//!   pressure is modelled in the profile module from its measured sensitivity to the stressor).
//!
//! Running inside a server costs something even with no co-runner: caches cold after other
//! tenants, workers to wake (measured here at 1.03-1.38x). That is not contention, so the
//! monitor learns it per width from layers whose block ran with no other block on the machine
//! (the baseline), and reads contention only from layers that ran beside others, as their
//! slowdown over their width's baseline.
//!
//! The estimate is the mean of the two levels once layers have been observed beside others, the
//! predicted level before.

/// Weight of the newest observation in the smoothed slowdowns.
const ALPHA: f64 = 0.2;

/// An exponentially weighted mean of slowdowns; 1 before the first.
#[derive(Clone, Copy, Debug, Default)]
struct Smoothed {
    value: f64,
    observations: u64,
}

impl Smoothed {
    fn add(&mut self, slowdown: f64) {
        self.value = if self.observations == 0 { slowdown } else { ALPHA * slowdown + (1.0 - ALPHA) * self.value };
        self.observations += 1;
    }

    fn get(&self) -> f64 {
        if self.observations == 0 {
            1.0
        } else {
            self.value
        }
    }
}

/// The running estimate.
#[derive(Clone, Debug)]
pub struct Monitor {
    /// Typical slowdown at each level (index 0 = 1.0), non-decreasing.
    scale: Vec<f64>,
    /// Layers that ran beside others: slowdown over their width's baseline.
    contention: Smoothed,
    /// Per width (index = width): the slowdown of layers that ran with no co-runner.
    baseline: Vec<Smoothed>,
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
        Monitor { scale, contention: Smoothed::default(), baseline: Vec::new() }
    }

    /// Highest level of the scale.
    pub fn levels(&self) -> usize {
        self.scale.len() - 1
    }

    /// Records a layer that took `observed` seconds at `width` where its profile says `solo`;
    /// `shared` when other blocks ran at some point beside its block.
    pub fn observe(&mut self, observed: f64, solo: f64, width: usize, shared: bool) {
        if !(observed > 0.0 && solo > 0.0 && observed.is_finite() && solo.is_finite()) {
            return;
        }
        let slowdown = (observed / solo).clamp(0.5, 10.0);
        if shared {
            let baseline = self.baseline(width);
            self.contention.add(slowdown / baseline);
        } else {
            if self.baseline.len() <= width {
                self.baseline.resize(width + 1, Smoothed::default());
            }
            self.baseline[width].add(slowdown);
        }
    }

    /// The smoothed slowdown of layers at `width` that ran with no co-runner (1 before any).
    pub fn baseline(&self, width: usize) -> f64 {
        self.baseline.get(width).map_or(1.0, Smoothed::get)
    }

    /// The smoothed slowdown of layers that ran beside others, over their baseline.
    pub fn slowdown(&self) -> f64 {
        self.contention.get()
    }

    /// The level whose typical slowdown is nearest the observed one (ties upward).
    pub fn observed_level(&self) -> usize {
        let slowdown = self.slowdown();
        let mut level = 0;
        for l in 1..self.scale.len() {
            if slowdown >= (self.scale[l - 1] + self.scale[l]) / 2.0 && self.scale[l] > self.scale[l - 1] {
                level = l;
            }
        }
        level
    }

    /// The estimate given the `predicted` level from what is running now.
    pub fn level(&self, predicted: usize) -> usize {
        let predicted = predicted.min(self.levels());
        if self.contention.observations == 0 {
            predicted
        } else {
            (self.observed_level() + predicted).div_ceil(2)
        }
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
            m.observe(1.6e-3, 1e-3, 1, true);
        }
        assert_eq!(m.observed_level(), 3);
        assert_eq!(m.level(1), 2, "mean of observed 3 and predicted 1, rounded up");
        for _ in 0..50 {
            m.observe(1e-3, 1e-3, 1, true);
        }
        assert_eq!(m.observed_level(), 0);
        m.observe(f64::NAN, 1e-3, 1, true);
        m.observe(1e-3, 0.0, 1, true);
        assert!(m.slowdown() < 1.01);
    }

    #[test]
    fn flat_or_broken_scales_never_claim_contention() {
        let mut m = Monitor::new(vec![1.0, 1.0, f64::NAN, 0.5]);
        m.observe(5e-3, 1e-3, 1, true);
        assert_eq!(m.observed_level(), 0);
        assert_eq!(m.levels(), 3);
    }

    #[test]
    fn the_cost_of_running_alone_is_a_baseline_not_contention() {
        let mut m = Monitor::new(vec![1.0, 1.1, 1.3, 1.6]);
        for _ in 0..50 {
            m.observe(1.35e-3, 1e-3, 2, false);
            m.observe(1.1e-3, 1e-3, 1, false);
        }
        assert_eq!(m.level(0), 0, "nothing ran beside another block yet");
        assert!((m.baseline(2) - 1.35).abs() < 1e-9 && (m.baseline(1) - 1.1).abs() < 1e-9);
        assert_eq!(m.baseline(4), 1.0, "a width never seen alone");
        for _ in 0..50 {
            m.observe(1.43e-3, 1e-3, 1, true);
        }
        assert!((m.slowdown() - 1.3).abs() < 1e-9);
        assert_eq!(m.observed_level(), 2, "1.43x at width 1 over its 1.1x baseline: 1.3x");
    }

    #[test]
    fn prediction_needs_other_cores_and_pressure() {
        assert_eq!(predicted_level(1.0, 2, 2, 3), 0, "a block holding every core has no co-runner");
        assert_eq!(predicted_level(1.0, 1, 2, 3), 3);
        assert_eq!(predicted_level(0.1, 1, 2, 3), 0);
        assert_eq!(predicted_level(16.0, 32, 64, 3), 2);
    }
}
