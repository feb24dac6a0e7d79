//! Kernel benchmarks: GEMM at 256³/512³/1024³, representative ResNet-50 / MobileNetV2
//! convolutions and depthwise convolutions on one thread, next to the 128-bit FMA peak of generated code and the 256-bit
//! FMA peak, all measured in the same run. Throughput is in
//! FLOP/s (criterion's "elem/s").

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::hint::black_box;
use veltair_codegen::depthwise::{compile_depthwise, DepthwiseSpec};
use veltair_codegen::epilogue::Epilogue;
use veltair_codegen::gemm::{compile_gemm, pack_b, ASource, Bias, GemmSchedule, GemmSpec, Parallel};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::probe::{fma_peak_kernel, peak_flops, CHAINS};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::UnaryOp;
use veltair_load::{fma_peak_256, LoadedKernel, MachineCode};

const PEAK_ITERS: usize = 200_000;

fn peaks(c: &mut Criterion) {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let kernel = LoadedKernel::load(&fma_peak_kernel(PEAK_ITERS, &target).unwrap()).unwrap();
    let mut out = vec![0f32; CHAINS * 4];
    let mut g = c.benchmark_group("peak");
    g.throughput(Throughput::Elements(peak_flops(PEAK_ITERS) as u64));
    g.bench_function("fma_f32x4_generated", |b| b.iter(|| kernel.run(&mut [&mut out], 1).unwrap()));
    g.throughput(Throughput::Elements((PEAK_ITERS * 12 * 8 * 2) as u64));
    g.bench_function("fma_f32x8_intrinsics", |b| b.iter(|| black_box(fma_peak_256(black_box(PEAK_ITERS as u64)))));
    g.finish();
}

/// The best schedules of a survey on this machine (`examples/gemm_speed.rs`; see
/// artifacts/kernels.md): one k-block up to K = 1024, with taller row blocks for it.
fn schedule(size: usize) -> GemmSchedule {
    let kc = if size >= 1024 { 1024 } else { 512 };
    GemmSchedule { mr: 10, nr_vecs: 1, kc, mc: 60, k_unroll: 8, max_threads: 1, parallel: Parallel::Panels }
}

fn gemm(c: &mut Criterion) {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let mut g = c.benchmark_group("gemm_1thread");
    for size in [256, 512, 1024] {
        let spec = GemmSpec {
            m: size,
            n: size,
            k: size,
            a: ASource::Matrix,
            bias: Bias::None,
            epilogue: Epilogue::default(),
            out: None,
        };
        let s = schedule(size);
        let kernel = LoadedKernel::load(&compile_gemm(&spec, &s, &target).unwrap()).unwrap();
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

/// Times one kernel on one thread over buffers of 0.1s, at `flops` per call.
fn bench_code(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, flops: u64, code: &MachineCode) {
    let kernel = LoadedKernel::load(code).unwrap();
    let mut bufs: Vec<Vec<f32>> = code.arg_elems.iter().map(|&n| vec![0.1f32; n]).collect();
    g.throughput(Throughput::Elements(flops));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut args: Vec<&mut [f32]> = bufs.iter_mut().map(|v| v.as_mut_slice()).collect();
            kernel.run(&mut args, 1).unwrap()
        })
    });
}

/// Batch-1 geometry of a square `k × k` convolution over an `hw × hw × c` image.
fn square_conv(hw: usize, c: usize, k: usize, stride: usize, pad: usize) -> ConvGeometry {
    let o = (hw + 2 * pad - k) / stride + 1;
    let (stride, pad) = ((stride, stride), (pad, pad));
    ConvGeometry { batch: 1, h: hw, w: hw, c, kh: k, kw: k, stride, dilation: (1, 1), pad, oh: o, ow: o }
}

/// Representative convolutions (NHWC, batch 1) as implicit-im2col GEMMs:
/// (name, h=w, c_in, c_out, kernel, stride, pad).
const CONVS: [(&str, usize, usize, usize, usize, usize, usize); 4] = [
    ("resnet50_3x3_56x56x64", 56, 64, 64, 3, 1, 1),
    ("resnet50_1x1_56x56x256to64", 56, 256, 64, 1, 1, 0),
    ("resnet50_3x3s2_28x28x128", 56, 128, 128, 3, 2, 1),
    ("mobilenetv2_1x1_28x28x32to192", 28, 32, 192, 1, 1, 0),
];

fn convs(c: &mut Criterion) {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let mut g = c.benchmark_group("conv_1thread");
    for (name, hw, cin, cout, k, stride, pad) in CONVS {
        let geo = square_conv(hw, cin, k, stride, pad);
        let spec = GemmSpec {
            m: geo.m(),
            n: cout,
            k: geo.k(),
            a: ASource::Conv2d(geo),
            bias: Bias::PerCol,
            epilogue: Epilogue::unary(UnaryOp::Relu),
            out: None,
        };
        // k-blocks of whole taps, as the lowering chooses them (channel-run packing).
        let kc = if geo.k() <= 512 { geo.k() } else { cin * (512 / cin).max(1) };
        let s =
            GemmSchedule { mr: 10, nr_vecs: 1, kc, mc: 60, k_unroll: 8, max_threads: 1, parallel: Parallel::Panels };
        let code = compile_gemm(&spec, &s, &target).unwrap();
        bench_code(&mut g, name, (2 * geo.m() * geo.k() * cout) as u64, &code);
    }
    g.finish();
}

/// Representative depthwise convolutions (NHWC, batch 1): (name, h=w, channels, kernel, stride).
const DEPTHWISE: [(&str, usize, usize, usize, usize); 3] = [
    ("mobilenetv2_dw3x3_56x56x144", 56, 144, 3, 1),
    ("mobilenetv2_dw3x3s2_112x112x96", 112, 96, 3, 2),
    ("efficientnet_dw5x5_28x28x240", 28, 240, 5, 1),
];

fn depthwise(c: &mut Criterion) {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let mut g = c.benchmark_group("depthwise_1thread");
    for (name, hw, ch, k, stride) in DEPTHWISE {
        let pad = k / 2;
        let geometry = square_conv(hw, ch, k, stride, pad);
        let spec = DepthwiseSpec {
            geometry,
            bias: true,
            epilogue: Epilogue::unary(UnaryOp::Clip { min: Some(0.0), max: Some(6.0) }),
        };
        let code = compile_depthwise(&spec, &target).unwrap();
        bench_code(&mut g, name, (2 * geometry.m() * ch * k * k) as u64, &code);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = peaks, gemm, convs, depthwise
}
criterion_main!(benches);
