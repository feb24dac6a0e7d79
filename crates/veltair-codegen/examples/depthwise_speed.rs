//! Quick single-thread GFLOP/s survey of the depthwise convolutions of MobileNetV2 and
//! EfficientNet-B0 (a development aid; the committed numbers come from `cargo bench`). FLOPs are
//! nominal (`2·OH·OW·C·kh·kw`, taps in the padding included). An optional argument keeps only the
//! layers whose name contains it.

use std::time::Instant;
use veltair_codegen::depthwise::{compile_depthwise, DepthwiseSpec};
use veltair_codegen::epilogue::Epilogue;
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::{OptLevel, Target};
use veltair_ir::UnaryOp;
use veltair_load::LoadedKernel;

/// (name, h=w, channels, kernel, stride, SiLU rather than Clip(0, 6)); "same" padding.
const LAYERS: [(&str, usize, usize, usize, usize, bool); 11] = [
    ("mbv2_112x112x32_3x3", 112, 32, 3, 1, false),
    ("mbv2_112x112x96_3x3s2", 112, 96, 3, 2, false),
    ("mbv2_56x56x144_3x3", 56, 144, 3, 1, false),
    ("mbv2_14x14x576_3x3", 14, 576, 3, 1, false),
    ("mbv2_7x7x960_3x3", 7, 960, 3, 1, false),
    ("effb0_112x112x32_3x3_silu", 112, 32, 3, 1, true),
    ("effb0_56x56x144_5x5s2_silu", 56, 144, 5, 2, true),
    ("effb0_28x28x240_5x5_silu", 28, 240, 5, 1, true),
    ("effb0_7x7x1152_5x5_silu", 7, 1152, 5, 1, true),
    ("effb0_28x28x240_5x5_clip", 28, 240, 5, 1, false),
    ("effb0_7x7x1152_5x5_clip", 7, 1152, 5, 1, false),
];

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    for (name, hw, c, k, stride, silu) in LAYERS {
        if !name.contains(&filter) {
            continue;
        }
        let (pad, o) = (k / 2, (hw + 2 * (k / 2) - k) / stride + 1);
        let (stride, pad) = ((stride, stride), (pad, pad));
        let geometry =
            ConvGeometry { batch: 1, h: hw, w: hw, c, kh: k, kw: k, stride, dilation: (1, 1), pad, oh: o, ow: o };
        let act = match silu {
            true => UnaryOp::Silu,
            false => UnaryOp::Clip { min: Some(0.0), max: Some(6.0) },
        };
        let spec = DepthwiseSpec { geometry, bias: true, epilogue: Epilogue::unary(act) };
        let code = compile_depthwise(&spec, &target).unwrap();
        let kernel = LoadedKernel::load(&code).unwrap();
        let flops = (2 * geometry.m() * c * k * k) as f64;
        // Several placements of the buffers relative to each other (cache-set and 4K aliasing
        // between loads and stores vary with them): the median and best of the placements.
        let mut rates: Vec<f64> = (0..5)
            .map(|trial| {
                let shift = |i: usize| 64 * trial * i;
                let mut bufs: Vec<Vec<f32>> = code
                    .arg_elems
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| (0..n + shift(i)).map(|j| ((i + j) % 7) as f32 * 0.1).collect())
                    .collect();
                let mut best = f64::INFINITY;
                let start = Instant::now();
                while start.elapsed().as_secs_f64() < 0.2 {
                    let mut args: Vec<&mut [f32]> =
                        bufs.iter_mut().enumerate().map(|(i, v)| &mut v[shift(i)..]).collect();
                    let t = Instant::now();
                    kernel.run(&mut args, 1).unwrap();
                    best = best.min(t.elapsed().as_secs_f64());
                }
                flops / best / 1e9
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        println!("{name:28} {:6.1} GFLOP/s median, {:6.1} best ({} bytes)", rates[2], rates[4], code.bytes.len());
    }
}
