//! The schedule each layer kind gets when nothing is tuned: register tiles and cache blocks
//! sized from the shapes (the measured best on this machine's L1/L2 for large GEMMs).

use veltair_codegen::gemm::GemmSchedule;

/// K-block length: the B panel block (`kc × nr` floats) and the packed A tile stay in L1.
const KC: usize = 512;
/// Rows of A packed at once (the packed block stays in L2).
const MC: usize = 64;

/// A GEMM schedule for `m × n × k` on up to `max_threads` threads.
pub fn gemm_schedule(m: usize, k: usize, max_threads: usize) -> GemmSchedule {
    let mr = m.clamp(1, 8);
    GemmSchedule { mr, nr_vecs: 1, kc: KC.min(k), mc: MC.next_multiple_of(mr), k_unroll: 8, max_threads }
}
