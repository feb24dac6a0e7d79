//! Calibrates three contention levels against two reference workloads, with the kernel on core 0
//! and the stressor on core 1: an LLC-resident sum (4 MiB: larger than L2, inside L3), which
//! contention on the shared cache should slow down, and an L1-resident dependent float chain,
//! which it should barely touch.

use std::hint::black_box;

use veltair_tune::{calibrate, Calibration, StressError};

const LEVELS: usize = 3;
const REPEATS: usize = 40;

fn main() -> Result<(), StressError> {
    let llc: Vec<u64> = (0..(4 << 20) / 8).collect();
    let llc_sum = || {
        for _ in 0..16 {
            black_box(black_box(&llc).iter().fold(0u64, |a, &x| a.wrapping_add(x)));
        }
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
    report("llc-sum-4MiB", calibrate(LEVELS, &[0], &[1], llc_sum, REPEATS)?);
    report("l1-chain-4KiB", calibrate(LEVELS, &[0], &[1], l1_chain, REPEATS)?);
    Ok(())
}

fn report(name: &str, mut calibration: Calibration) {
    calibration.reference = name.to_string();
    println!("{}", calibration.reference);
    for level in &calibration.levels {
        let c = &level.config;
        println!(
            "  level {}  stream {} thrash {} intensity {:.2}  median {:8.3} ms  slowdown {:.2}x",
            level.level,
            c.stream_threads,
            c.thrash_threads,
            c.intensity,
            level.median_s * 1e3,
            level.slowdown
        );
    }
}
