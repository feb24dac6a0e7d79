//! The schedule each layer kind gets when nothing is tuned: register tiles and cache blocks
//! sized from the shapes (the measured best on this machine's L1/L2 for large GEMMs).

use veltair_codegen::gemm::{GemmSchedule, Parallel};

/// Longest k-block: the B panel block (`kc × nr` floats) and the packed A tile stay in L1.
pub const KC: usize = 512;
/// Rows of a register tile: ten f32x4 accumulator chains keep both FMA pipes busy across the
/// 4-cycle FMA latency with slack (eight chains leave none), and fit the 16 xmm registers with
/// the B vector and the rotating broadcast.
pub const MR: usize = 10;
/// Rows of A packed at once (the packed block stays in L2).
const MC: usize = 60;

/// A GEMM schedule for `m × n` with k-blocks of `kc` on up to `max_threads` threads. Threads
/// split the row blocks when there are more of them than panels (each thread then packs only
/// its own rows of A), else the panels.
pub fn gemm_schedule(m: usize, n: usize, kc: usize, max_threads: usize) -> GemmSchedule {
    let mr = m.clamp(1, MR);
    let mc = MC.next_multiple_of(mr);
    let (row_blocks, panels) = (m.div_ceil(mc), n.div_ceil(4));
    let parallel = if row_blocks >= 2 * max_threads && row_blocks > panels { Parallel::Rows } else { Parallel::Panels };
    GemmSchedule { mr, nr_vecs: 1, kc, mc, k_unroll: 8, max_threads, parallel }
}

/// The k-block of a plain GEMM of depth `k`, at most `cap` long.
pub fn matrix_kc(k: usize, cap: usize) -> usize {
    cap.min(k)
}

/// The k-block of a convolution over `c` input channels with GEMM depth `k`, at most `cap`
/// long: whole taps per block (or an equal part of one tap's channels), so A is packed by
/// channel runs.
pub fn conv_kc(c: usize, k: usize, cap: usize) -> usize {
    if k <= cap {
        k
    } else if c <= cap {
        c * (cap / c)
    } else {
        let parts = (c.div_ceil(cap)..=c).find(|d| c.is_multiple_of(*d)).unwrap_or(c);
        c / parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_blocks_are_tap_aligned() {
        for cap in [128, 256, KC] {
            for c in 1..1100 {
                for taps in [1, 9, 25, 49] {
                    let kc = conv_kc(c, c * taps, cap);
                    assert!((1..=cap).contains(&kc), "c {c} taps {taps}: {kc}");
                    assert!(kc.is_multiple_of(c) || c.is_multiple_of(kc), "c {c} taps {taps}: {kc}");
                }
            }
        }
    }
}
