//! Kernel benchmarks: GEMM at 256³/512³/1024³ on one thread, next to the 128-bit FMA peak of
//! generated code and the 256-bit FMA peak, all measured in the same run. Throughput is in
//! FLOP/s (criterion's "elem/s").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use veltair_codegen::gemm::{compile_gemm, pack_b, Activation, Bias, GemmSchedule, GemmSpec};
use veltair_codegen::probe::{fma_peak_kernel, peak_flops, CHAINS};
use veltair_codegen::{fma_peak_256, LoadedKernel, OptLevel, Target};

const PEAK_ITERS: usize = 200_000;

fn peaks(c: &mut Criterion) {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let kernel = LoadedKernel::load(&fma_peak_kernel(PEAK_ITERS, &target).unwrap(), &target).unwrap();
    let mut out = vec![0f32; CHAINS * 4];
    let mut g = c.benchmark_group("peak");
    g.throughput(Throughput::Elements(peak_flops(PEAK_ITERS) as u64));
    g.bench_function("fma_f32x4_generated", |b| b.iter(|| kernel.run(&mut [&mut out], 1).unwrap()));
    g.throughput(Throughput::Elements((PEAK_ITERS * 12 * 8 * 2) as u64));
    g.bench_function("fma_f32x8_intrinsics", |b| b.iter(|| black_box(fma_peak_256(black_box(PEAK_ITERS as u64)))));
    g.finish();
}

/// The best schedules of a survey on this machine (see artifacts/kernels.md).
fn schedule(_size: usize) -> GemmSchedule {
    GemmSchedule { mr: 8, nr_vecs: 1, kc: 512, mc: 64, k_unroll: 8, max_threads: 1 }
}

fn gemm(c: &mut Criterion) {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let mut g = c.benchmark_group("gemm_1thread");
    for size in [256, 512, 1024] {
        let spec = GemmSpec { m: size, n: size, k: size, bias: Bias::None, activation: Activation::None };
        let s = schedule(size);
        let kernel = LoadedKernel::load(&compile_gemm(&spec, &s, &target).unwrap(), &target).unwrap();
        let mut a: Vec<f32> = (0..size * size).map(|i| (i % 7) as f32 * 0.1).collect();
        let mut bp = pack_b(&spec, &s, &(0..size * size).map(|i| (i % 5) as f32 * 0.1).collect::<Vec<_>>());
        let mut out = vec![0f32; size * size];
        let mut scratch = vec![0f32; *spec.arg_elems(&s).last().unwrap()];
        g.throughput(Throughput::Elements(2 * (size as u64).pow(3)));
        g.bench_function(format!("{size}^3"), |b| {
            b.iter(|| kernel.run(&mut [&mut a, &mut bp, &mut out, &mut scratch], 1).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = peaks, gemm
}
criterion_main!(benches);
