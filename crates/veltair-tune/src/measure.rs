//! Robust timing and calibration of contention levels.
//!
//! [`median_time`] times a workload many times and reports the median after dropping slow
//! outliers (more than three median absolute deviations above the median): this machine is a
//! noisy VM, so only medians, compared within one run, are meaningful. [`calibrate`] defines the
//! contention scale: it times a reference workload alone and under the [`Stressor`] of every
//! level and records the slowdown of each level, which [`Calibration::level_for_slowdown`] later
//! inverts to map a slowdown observed at run time onto the scale.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stress::{level_config, pin_current, StressConfig, StressError, Stressor};

/// Untimed calls of the reference before calibration starts.
const CALIBRATION_WARMUP: usize = 2;
/// Timed calls per block when calibration alternates solo and contended blocks.
const BLOCK: usize = 4;

/// Result of [`median_time`].
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Median of the samples left after outlier rejection (zero when there are no samples).
    pub median: Duration,
    /// Every timed sample, in run order, including the rejected ones.
    pub samples: Vec<Duration>,
    /// How many samples were rejected as outliers.
    pub rejected: usize,
}

/// Calls `f` `warmup` times untimed, then `repeats` times timed, and returns the robust median
/// of the timed calls (see [`robust_median`]).
pub fn median_time(mut f: impl FnMut(), warmup: usize, repeats: usize) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let mut samples = Vec::new();
    for _ in 0..repeats {
        samples.push(time_call(&mut f));
    }
    let (median, rejected) = robust_median(&samples);
    Timing { median, samples, rejected }
}

fn time_call(f: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The median of `samples` after dropping those above `median + 3 * MAD` (median absolute
/// deviation), and the number dropped. Fast outliers are kept: timing noise only adds time.
/// An empty slice gives `(Duration::ZERO, 0)`.
pub fn robust_median(samples: &[Duration]) -> (Duration, usize) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let Some(median) = median_of_sorted(&sorted) else {
        return (Duration::ZERO, 0);
    };
    let mut deviations: Vec<Duration> = sorted.iter().map(|s| s.abs_diff(median)).collect();
    deviations.sort_unstable();
    let mad = median_of_sorted(&deviations).unwrap_or(Duration::ZERO);
    let limit = median.saturating_add(mad.saturating_mul(3));
    let kept = sorted.partition_point(|&s| s <= limit);
    (median_of_sorted(&sorted[..kept]).unwrap_or(median), sorted.len() - kept)
}

/// Median of an ascending slice; the mean of the two middle samples for even lengths.
fn median_of_sorted(sorted: &[Duration]) -> Option<Duration> {
    let upper = *sorted.get(sorted.len() / 2)?;
    if sorted.len() % 2 == 1 {
        return Some(upper);
    }
    let lower = sorted[sorted.len() / 2 - 1];
    Some(lower + (upper - lower) / 2)
}

/// The calibrated contention scale of one reference workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Name of the reference workload; [`calibrate`] leaves it empty for the caller to fill.
    pub reference: String,
    /// Level 0 (solo) first, then levels `1..=levels` in order.
    pub levels: Vec<LevelCalibration>,
}

/// One level of a [`Calibration`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelCalibration {
    /// Contention level (0 = solo).
    pub level: usize,
    /// Median time under this level over the solo median, clamped to at least 1.0.
    pub slowdown: f64,
    /// The stressor configuration that produced this level.
    pub config: StressConfig,
    /// Robust median time of the reference under this level, in seconds.
    pub median_s: f64,
}

impl Calibration {
    /// The contention level whose calibrated slowdown is nearest to `slowdown` (ties go to the
    /// higher level): the highest level whose threshold, the midpoint between its slowdown and
    /// its lower neighbour's, is at most `slowdown`. Calibrated slowdowns are first made
    /// non-decreasing (running maximum over the levels), so the result is monotone in
    /// `slowdown`. Below the first threshold, and for NaN, the lowest level is returned; an
    /// empty calibration gives 0.
    pub fn level_for_slowdown(&self, slowdown: f64) -> usize {
        let mut points: Vec<(usize, f64)> = self.levels.iter().map(|l| (l.level, l.slowdown)).collect();
        points.sort_by_key(|&(level, _)| level);
        let Some(&(mut chosen, mut envelope)) = points.first() else {
            return 0;
        };
        for &(level, calibrated) in &points[1..] {
            let next = envelope.max(calibrated);
            if slowdown >= (envelope + next) / 2.0 {
                chosen = level;
                envelope = next;
            } else {
                break;
            }
        }
        chosen
    }
}

/// Calibrates `levels` contention levels with the workload `reference`.
///
/// The calling thread is pinned to `kernel_cores[0]` (and left pinned). For each `l` in
/// `1..=levels`, a [`Stressor`] running [`level_config`]`(l, levels, free_cores.len())` is
/// started on `free_cores`, and `repeats` solo and `repeats` contended calls of `reference` are
/// timed in alternating blocks (the stressor paused, then running), so that the drift of a noisy
/// machine affects both alike; the level's slowdown is the ratio of the two robust medians.
/// Level 0 reports the robust median of all solo calls. Errors: zero levels or repeats, no kernel core, no free
/// core ([`StressError::NoFreeCore`]: contention cannot be measured at this width, record the
/// levels as not measured), a core in both lists, or a pinning/stressor failure.
pub fn calibrate(
    levels: usize,
    kernel_cores: &[usize],
    free_cores: &[usize],
    mut reference: impl FnMut(),
    repeats: usize,
) -> Result<Calibration, StressError> {
    if levels == 0 {
        return Err(StressError::NoLevels);
    }
    if repeats == 0 {
        return Err(StressError::NoRepeats);
    }
    let Some(&kernel_core) = kernel_cores.first() else {
        return Err(StressError::NoKernelCore);
    };
    if free_cores.is_empty() {
        return Err(StressError::NoFreeCore);
    }
    if let Some(&core) = free_cores.iter().find(|c| kernel_cores.contains(c)) {
        return Err(StressError::CoreOverlap(core));
    }
    pin_current(kernel_core)?;
    for _ in 0..CALIBRATION_WARMUP {
        reference();
    }
    let mut all_solo = Vec::new();
    let mut contended_levels = Vec::new();
    for level in 1..=levels {
        let config = level_config(level, levels, free_cores.len());
        let stressor = Stressor::start(&config, free_cores)?;
        let (solo, contended) = interleave(&mut reference, &stressor, repeats);
        drop(stressor);
        let (solo_median, _) = robust_median(&solo);
        let (median, _) = robust_median(&contended);
        all_solo.extend(solo);
        contended_levels.push(LevelCalibration {
            level,
            slowdown: slowdown(median, solo_median),
            config,
            median_s: median.as_secs_f64(),
        });
    }
    let (solo_median, _) = robust_median(&all_solo);
    let solo_level =
        LevelCalibration { level: 0, slowdown: 1.0, config: StressConfig::idle(), median_s: solo_median.as_secs_f64() };
    let levels = std::iter::once(solo_level).chain(contended_levels).collect();
    Ok(Calibration { reference: String::new(), levels })
}

/// Times `repeats` solo and `repeats` contended calls of `reference`, alternating blocks of up to
/// [`BLOCK`] calls with `stressor` paused and running. The first call after each switch is not
/// timed: it absorbs the switch (refilling what the stressor evicted, or the stressor waking up).
fn interleave(reference: &mut impl FnMut(), stressor: &Stressor, repeats: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut solo, mut contended) = (Vec::new(), Vec::new());
    while contended.len() < repeats {
        let block = BLOCK.min(repeats - contended.len());
        for (paused, samples) in [(true, &mut solo), (false, &mut contended)] {
            stressor.set_paused(paused);
            reference();
            for _ in 0..block {
                samples.push(time_call(reference));
            }
        }
    }
    (solo, contended)
}

/// `contended / solo`, clamped to at least 1.0 (and 1.0 when undefined).
fn slowdown(contended: Duration, solo: Duration) -> f64 {
    let ratio = contended.as_secs_f64() / solo.as_secs_f64();
    if ratio.is_finite() {
        ratio.max(1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&x| Duration::from_micros(x)).collect()
    }

    fn synthetic(slowdowns: &[f64]) -> Calibration {
        let levels = slowdowns
            .iter()
            .enumerate()
            .map(|(level, &slowdown)| LevelCalibration {
                level,
                slowdown,
                config: level_config(level, slowdowns.len() - 1, 1),
                median_s: 0.001 * slowdown,
            })
            .collect();
        Calibration { reference: "synthetic".into(), levels }
    }

    #[test]
    fn robust_median_of_clean_samples_rejects_nothing() {
        assert_eq!(robust_median(&us(&[30, 10, 20])), (Duration::from_micros(20), 0));
        assert_eq!(robust_median(&us(&[10, 20, 30, 40])), (Duration::from_micros(25), 0));
        assert_eq!(robust_median(&[]), (Duration::ZERO, 0));
    }

    #[test]
    fn robust_median_drops_slow_outliers_only() {
        // Median 102, MAD 2: the limit is 108, so 500 and 900 go and the fast 90 stays.
        let (median, rejected) = robust_median(&us(&[100, 101, 102, 103, 104, 500, 900, 90, 102]));
        assert_eq!(rejected, 2);
        assert_eq!(median, Duration::from_micros(102));
        let (median, rejected) = robust_median(&us(&[10, 10, 10, 10, 1000]));
        assert_eq!((median, rejected), (Duration::from_micros(10), 1));
    }

    #[test]
    fn robust_median_survives_extreme_durations() {
        let samples = [Duration::MAX, Duration::MAX, Duration::ZERO];
        assert_eq!(robust_median(&samples), (Duration::MAX, 0));
    }

    #[test]
    fn median_time_runs_warmup_and_repeats() {
        let mut calls = 0;
        let timing = median_time(|| calls += 1, 3, 7);
        assert_eq!(calls, 10);
        assert_eq!(timing.samples.len(), 7);
        assert!(timing.rejected < 7);
        assert!(timing.samples.iter().any(|&s| s >= timing.median));
        let empty = median_time(|| {}, 0, 0);
        assert_eq!((empty.median, empty.samples.len(), empty.rejected), (Duration::ZERO, 0, 0));
    }

    #[test]
    fn calibrate_rejects_bad_input() {
        let noop = || {};
        assert!(matches!(calibrate(0, &[0], &[1], noop, 5), Err(StressError::NoLevels)));
        assert!(matches!(calibrate(3, &[0], &[1], noop, 0), Err(StressError::NoRepeats)));
        assert!(matches!(calibrate(3, &[], &[1], noop, 5), Err(StressError::NoKernelCore)));
        assert!(matches!(calibrate(3, &[0, 1], &[], noop, 5), Err(StressError::NoFreeCore)));
        assert!(matches!(calibrate(3, &[0, 1], &[1], noop, 5), Err(StressError::CoreOverlap(1))));
        let message = calibrate(3, &[0, 1], &[], noop, 5).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("cannot be measured"), "{message}");
    }

    #[test]
    fn calibrate_fake_reference_returns_ordered_levels() {
        let cores: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
        let [kernel, free, ..] = cores[..] else {
            // A single-core host cannot run a stressor beside the kernel; nothing to calibrate.
            return;
        };
        let mut calls = 0usize;
        let data: Vec<u64> = (0..4096).collect();
        let reference = || {
            calls += 1;
            std::hint::black_box(data.iter().sum::<u64>());
        };
        let calibration = calibrate(2, &[kernel], &[free], reference, 5).expect("calibrate");
        // Per level: 5 solo and 5 contended calls in blocks of `BLOCK`, plus one untimed call
        // after each of the switches.
        let blocks = 5usize.div_ceil(BLOCK);
        assert_eq!(calls, CALIBRATION_WARMUP + 2 * (2 * 5 + 2 * blocks));
        let levels: Vec<usize> = calibration.levels.iter().map(|l| l.level).collect();
        assert_eq!(levels, [0, 1, 2]);
        assert_eq!(calibration.levels[0].slowdown, 1.0);
        assert_eq!(calibration.levels[0].config, StressConfig::idle());
        for (l, level) in calibration.levels.iter().enumerate() {
            assert!(level.slowdown >= 1.0, "{level:?}");
            assert!(level.median_s >= 0.0);
            assert_eq!(level.config, level_config(l, 2, 1));
        }
    }

    #[test]
    fn slowdown_is_clamped_and_defined() {
        let ms = Duration::from_millis;
        assert_eq!(slowdown(ms(3), ms(2)), 1.5);
        assert_eq!(slowdown(ms(1), ms(2)), 1.0);
        assert_eq!(slowdown(ms(1), Duration::ZERO), 1.0);
        assert_eq!(slowdown(Duration::ZERO, Duration::ZERO), 1.0);
    }

    #[test]
    fn level_for_slowdown_uses_midpoints() {
        let calibration = synthetic(&[1.0, 1.2, 1.5, 2.0]);
        let cases = [(0.5, 0), (1.0, 0), (1.09, 0), (1.1, 1), (1.3, 1), (1.35, 2), (1.74, 2), (1.75, 3), (9.0, 3)];
        for (observed, level) in cases {
            assert_eq!(calibration.level_for_slowdown(observed), level, "observed {observed}");
        }
        assert_eq!(calibration.level_for_slowdown(f64::NAN), 0);
        assert_eq!(Calibration { reference: String::new(), levels: Vec::new() }.level_for_slowdown(2.0), 0);
    }

    #[test]
    fn level_for_slowdown_is_monotone_even_for_noisy_calibrations() {
        let mut noisy = synthetic(&[1.0, 1.5, 1.3, 2.0, 1.9]);
        noisy.levels.reverse();
        let mut previous = 0;
        for step in 0..=300 {
            let level = noisy.level_for_slowdown(0.8 + f64::from(step) * 0.005);
            assert!(level >= previous, "level fell from {previous} to {level} at step {step}");
            previous = level;
        }
        assert_eq!(previous, 4);
    }
}
