//! Measuring every version of every layer of a plan: at each width the plan and the machine
//! allow, solo and, where cores are left over for the stressor, at each contention level
//! (levels alternate at every step). The steps run in order on the model's real inputs, so each
//! is timed on its real data with its producer's output warm in cache, as in a real run.

use crate::{level_config, median_time, StressError, Stressor};
use veltair_bundle::Latency;
use veltair_exec::{ExecError, Executor, Plan};
use veltair_ir::Tensor;

/// How to measure.
#[derive(Clone, Debug)]
pub struct ExploreConfig {
    /// Contention levels above solo (level 0).
    pub levels: usize,
    pub warmup: usize,
    pub repeats: usize,
    /// Core ids to use: the measured kernel runs on the first `width`, the stressor on the rest.
    pub cores: Vec<usize>,
}

/// Why measuring failed.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("{0}")]
    Exec(#[from] ExecError),
    #[error("{0}")]
    Stress(#[from] StressError),
    #[error("no cores to measure on")]
    NoCores,
}

/// Latencies per step, per version, per (width, level) cell.
pub type Measurements = Vec<Vec<Vec<Latency>>>;

/// The widths measured: 1 up to the plan's width, as far as there are cores.
pub fn widths(plan: &Plan, cores: usize) -> std::ops::RangeInclusive<usize> {
    1..=plan.max_threads.min(cores).max(1)
}

/// Contention levels measurable at `width`: only solo when no core is left for the stressor
/// (a layer holding every core has no co-runners, so it never meets contention anyway).
pub fn levels_at(width: usize, cores: usize, levels: usize) -> usize {
    if width < cores {
        levels
    } else {
        0
    }
}

/// Measures every version of every step of `plan` on `inputs`. `progress(done, total)` is
/// called after each step's versions are measured in one (width, level) cell.
pub fn explore(
    plan: &Plan,
    inputs: &[Tensor],
    config: &ExploreConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<Measurements, ExploreError> {
    let cores = &config.cores;
    let main = *cores.first().ok_or(ExploreError::NoCores)?;
    let cells: usize = widths(plan, cores.len()).map(|w| 1 + levels_at(w, cores.len(), config.levels)).sum();
    let total = cells * plan.steps.len();
    let mut out: Measurements = plan.steps.iter().map(|s| vec![Vec::new(); s.versions.len()]).collect();
    let mut done = 0;
    core_affinity::set_for_current(core_affinity::CoreId { id: main });
    for width in widths(plan, cores.len()) {
        let mut exec = Executor::pinned(plan.clone(), &cores[..width.min(cores.len())])?;
        let free = &cores[width.min(cores.len())..];
        let levels = levels_at(width, cores.len(), config.levels);
        // One stressor per level, all paused but the one measured: levels alternate at every
        // step, so slow drift of a shared machine affects them alike.
        let stressors = (1..=levels)
            .map(|l| {
                let s = Stressor::start(&level_config(l, config.levels, free.len()), free)?;
                s.set_paused(true);
                Ok(s)
            })
            .collect::<Result<Vec<_>, StressError>>()?;
        exec.load_inputs(inputs)?;
        for (i, step) in plan.steps.iter().enumerate() {
            for level in 0..=levels {
                for (l, s) in stressors.iter().enumerate() {
                    s.set_paused(l + 1 != level);
                }
                for v in 0..step.versions.len() {
                    exec.run_step(i, v)?;
                    let timing = median_time(
                        || {
                            let _ = exec.run_step(i, v);
                        },
                        config.warmup,
                        config.repeats,
                    );
                    let seconds = timing.median.as_secs_f64();
                    out[i][v].push(Latency { width: width as u32, level: level as u32, seconds });
                }
            }
            done += 1 + levels;
            progress(done, total);
        }
    }
    Ok(out)
}
