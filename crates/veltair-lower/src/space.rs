//! The schedule space of a GEMM-family layer (plain GEMMs, convolutions as implicit GEMMs,
//! Winograd's batched GEMMs) and the analytical model that prunes it: candidate register and
//! cache tilings spanning small to large cache footprints, each with its working set per cache
//! level, so the tuner measures only plausible versions.

use crate::schedule::{gemm_schedule, KC, MR};
use veltair_codegen::gemm::{GemmSchedule, Parallel};

/// The per-core cache capacities the model sizes working sets against (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSizes {
    pub l1: u64,
    pub l2: u64,
    /// The shared last-level cache.
    pub l3: u64,
}

impl Default for CacheSizes {
    /// Zen 3, this project's reference machine: 32 KiB L1d, 1 MiB L2 per core, 32 MiB L3.
    fn default() -> Self {
        CacheSizes { l1: 32 << 10, l2: 1 << 20, l3: 32 << 20 }
    }
}

/// Bytes a schedule keeps live at each cache level, per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// The micro-kernel's stream: one packed A tile and one B panel over a k-block.
    pub l1: u64,
    /// The packed A block plus the B panel it is multiplied with.
    pub l2: u64,
    /// Swept once per row block: the whole B k-block plus the C rows written.
    pub outer: u64,
}

impl Footprint {
    pub fn of(s: &GemmSchedule, m: usize, n: usize, k: usize) -> Footprint {
        let (kc, mc) = (s.kc.min(k) as u64, s.mc.min(m.next_multiple_of(s.mr)) as u64);
        let (mr, nr, n) = (s.mr as u64, s.nr() as u64, n as u64);
        Footprint { l1: 4 * kc * (mr + nr), l2: 4 * kc * (mc + nr), outer: 4 * (kc * n + mc * n) }
    }

    /// The one number reports and bundles carry: the largest working set the loop nest
    /// reuses (the packed A block with the B k-block it sweeps).
    pub fn total(&self) -> u64 {
        self.l2 + self.outer
    }
}

/// A candidate schedule with its modelled working sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub schedule: GemmSchedule,
    pub footprint: Footprint,
}

/// K-block caps the space tries (the k-block itself is derived per layer, e.g. tap-aligned).
const KC_CAPS: [usize; 3] = [128, 256, KC];
/// Row-block heights (multiples of the register tile's rows).
const MC_CHOICES: [usize; 4] = [2 * MR, 6 * MR, 12 * MR, 24 * MR];

/// Up to `limit` candidate schedules for an `m × n × k` GEMM on up to `max_threads` threads,
/// the default schedule first. `kc_for(cap)` is the layer's k-block for a cap on its length.
/// Candidates whose micro-kernel stream exceeds L1 or whose packed A block exceeds half of L2
/// are pruned; equivalent ones (same effective blocks) are merged; the rest are thinned to
/// `limit` evenly across the range of footprints.
pub fn gemm_candidates(
    (m, n, k): (usize, usize, usize),
    kc_for: impl Fn(usize) -> usize,
    max_threads: usize,
    caches: &CacheSizes,
    limit: usize,
) -> Vec<Candidate> {
    let default = gemm_schedule(m, n, kc_for(KC), max_threads);
    let candidate = |schedule: GemmSchedule| Candidate { schedule, footprint: Footprint::of(&schedule, m, n, k) };
    let effective = |s: &GemmSchedule| {
        let parallel = if max_threads > 1 { Some(s.parallel) } else { None };
        (s.kc.min(k), s.mc.min(m.next_multiple_of(s.mr)), parallel)
    };
    let mut seen = vec![effective(&default)];
    let mut others = Vec::new();
    for cap in KC_CAPS {
        for mc in MC_CHOICES {
            for parallel in [Parallel::Panels, Parallel::Rows] {
                let s = GemmSchedule { kc: kc_for(cap), mc: mc.next_multiple_of(default.mr), parallel, ..default };
                let c = candidate(s);
                let fits = c.footprint.l1 <= caches.l1 && c.footprint.l2 <= caches.l2 / 2;
                if fits && !seen.contains(&effective(&s)) {
                    seen.push(effective(&s));
                    others.push(c);
                }
            }
        }
    }
    others.sort_by_key(|c| (c.footprint.total(), c.schedule.kc, c.schedule.mc));
    let keep = limit.saturating_sub(1).min(others.len());
    let mut out = vec![candidate(default)];
    if keep > 0 {
        // Evenly spaced picks from smallest to largest footprint.
        let last = others.len() - 1;
        for i in 0..keep {
            let at = if keep == 1 { last } else { i * last / (keep - 1) };
            out.push(others[at]);
        }
        out.dedup_by_key(|c| c.schedule);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{conv_kc, matrix_kc};

    #[test]
    fn default_first_all_fit_and_distinct() {
        let caches = CacheSizes::default();
        for (m, n, k, c) in [(3136, 64, 576, 64), (49, 2048, 512, 512), (196, 256, 2304, 256), (7, 10, 3, 3)] {
            for threads in [1, 2] {
                let conv = gemm_candidates((m, n, k), |cap| conv_kc(c, k, cap), threads, &caches, 8);
                assert_eq!(conv[0].schedule, gemm_schedule(m, n, conv_kc(c, k, KC), threads));
                assert!(!conv.is_empty() && conv.len() <= 8);
                for (i, a) in conv.iter().enumerate() {
                    assert!(a.footprint.l1 <= caches.l1, "{a:?}");
                    assert!(a.schedule.mc.is_multiple_of(a.schedule.mr));
                    assert!(conv[..i].iter().all(|b| b.schedule != a.schedule));
                }
                let plain = gemm_candidates((m, n, k), |cap| matrix_kc(k, cap), threads, &caches, 1);
                assert_eq!(plain.len(), 1);
            }
        }
    }

    #[test]
    fn large_layers_span_footprints() {
        let c = gemm_candidates((3136, 256, 2304), |cap| conv_kc(256, 2304, cap), 2, &CacheSizes::default(), 6);
        assert_eq!(c.len(), 6);
        let totals: Vec<u64> = c.iter().map(|c| c.footprint.total()).collect();
        let (lo, hi) = (totals.iter().min().unwrap(), totals.iter().max().unwrap());
        assert!(hi >= &(4 * lo), "{totals:?}");
    }
}
