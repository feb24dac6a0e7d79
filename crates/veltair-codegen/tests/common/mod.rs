//! Shared helpers of the kernel tests: deterministic test values and layout conversion.

#![allow(dead_code)]

/// `n` deterministic values in [-1, 1].
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// NCHW data (as the reference evaluator holds it) to NHWC (as the kernels read it).
pub fn nchw_to_nhwc(x: &[f32], batch: usize, c: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for n in 0..batch {
        for ci in 0..c {
            for p in 0..pixels {
                out[(n * pixels + p) * c + ci] = x[(n * c + ci) * pixels + p];
            }
        }
    }
    out
}
