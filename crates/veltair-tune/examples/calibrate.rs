//! Calibrates three contention levels against four reference workloads, with the kernel on
//! core 0 and the stressor on core 1: sums over a 4 MiB and a 24 MiB array (larger than L2,
//! inside L3), a dependent pointer chase over 8 MiB (latency-bound, inside L3), which contention
//! on the shared cache can slow down, and an L1-resident dependent float chain, which it should
//! barely touch.

use std::hint::black_box;

use veltair_tune::{calibrate, Calibration, StressError};

const LEVELS: usize = 3;
const REPEATS: usize = 40;
const MIB: usize = 1 << 20;

fn main() -> Result<(), StressError> {
    let sum_4 = sum_workload(4);
    let sum_24 = sum_workload(24);
    let ring = chase_ring(8 * MIB / 64);
    let chase = || {
        let mut at = 0;
        for _ in 0..100_000 {
            at = ring[at];
        }
        black_box(at);
    };
    let l1: Vec<f32> = (0..1024u16).map(|i| f32::from(i) * 1e-3).collect();
    let l1_chain = || {
        let mut acc = 0.0f32;
        for _ in 0..2000 {
            for &x in black_box(&l1) {
                acc = acc * 0.999 + x;
            }
        }
        black_box(acc);
    };
    report("sum-4MiB", calibrate(LEVELS, &[0], &[1], sum_4, REPEATS)?);
    report("sum-24MiB", calibrate(LEVELS, &[0], &[1], sum_24, REPEATS)?);
    report("chase-8MiB", calibrate(LEVELS, &[0], &[1], chase, REPEATS)?);
    report("l1-chain-4KiB", calibrate(LEVELS, &[0], &[1], l1_chain, REPEATS)?);
    Ok(())
}

/// Sums an array of `mib` MiB as often as it takes to read 64 MiB.
fn sum_workload(mib: usize) -> impl FnMut() {
    let data: Vec<u64> = (0..(mib * MIB / 8) as u64).collect();
    move || {
        for _ in 0..64 / mib {
            black_box(black_box(&data).iter().fold(0u64, |a, &x| a.wrapping_add(x)));
        }
    }
}

/// A cycle through `lines` cache lines in shuffled order: the first entry of each line holds the
/// index of the next line's first entry, so each step is a dependent load of a new line.
fn chase_ring(lines: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lines).collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..lines).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        order.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    let mut ring = vec![0; lines * 8];
    for (i, &line) in order.iter().enumerate() {
        ring[line * 8] = order[(i + 1) % lines] * 8;
    }
    ring
}

fn report(name: &str, mut calibration: Calibration) {
    calibration.reference = name.to_string();
    println!("{}", calibration.reference);
    for level in &calibration.levels {
        let c = &level.config;
        println!(
            "  level {}  stream {} thrash {} intensity {:.2}  median {:7.3} ms  slowdown {:.2}x",
            level.level,
            c.stream_threads,
            c.thrash_threads,
            c.intensity,
            level.median_s * 1e3,
            level.slowdown
        );
    }
}
