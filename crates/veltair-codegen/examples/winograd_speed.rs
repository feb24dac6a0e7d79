//! Single-thread timing of ResNet-50 3x3 convolutions (bias and ReLU fused) as Winograd
//! convolutions, phase by phase (input transform, one GEMM per transform position, output
//! transform), against the implicit-im2col GEMM (a development aid).

use std::time::Instant;
use veltair_codegen::epilogue::Epilogue;
use veltair_codegen::gemm::{compile_gemm, pack_b, ASource, Bias, GemmSchedule, GemmSpec, Parallel};
use veltair_codegen::im2col::ConvGeometry;
use veltair_codegen::winograd::{
    compile_input_transform, compile_output_transform, transform_weights, WinogradSpec, WinogradTile,
};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::UnaryOp;
use veltair_load::LoadedKernel;

const RUNS: usize = 15;

/// Deterministic values in [-1, 1].
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + seed * 104729) % 2001) as f32 / 1000.0 - 1.0).collect()
}

/// Median seconds of `RUNS` calls of `f`, which returns the seconds it measured.
fn median(mut f: impl FnMut() -> f64) -> f64 {
    let mut times: Vec<f64> = (0..RUNS).map(|_| f()).collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let sched =
        GemmSchedule { mr: 8, nr_vecs: 1, kc: 512, mc: 64, k_unroll: 8, max_threads: 1, parallel: Parallel::Panels };
    let epilogue = Epilogue::unary(UnaryOp::Relu);
    for (hw, c, cout) in [(56, 64, 64), (14, 256, 256)] {
        let g = ConvGeometry {
            batch: 1,
            h: hw,
            w: hw,
            c,
            kh: 3,
            kw: 3,
            stride: (1, 1),
            dilation: (1, 1),
            pad: (1, 1),
            oh: hw,
            ow: hw,
        };
        let flops = 2.0 * (g.m() * g.k() * cout) as f64;
        let mut x = values(g.input_elems(), 1);
        let w_oihw = values(cout * c * 9, 2);
        let mut bias = values(cout, 3);
        let mut out = vec![0f32; g.m() * cout];
        println!("{hw}x{hw}, {c} -> {cout} channels, pad 1 ({:.0} MFLOP direct), 1 thread:", flops / 1e6);

        let spec = GemmSpec {
            m: g.m(),
            n: cout,
            k: g.k(),
            a: ASource::Conv2d(g),
            bias: Bias::PerCol,
            epilogue: epilogue.clone(),
            out: None,
        };
        let code = compile_gemm(&spec, &sched, &target).unwrap();
        let kernel = LoadedKernel::load(&code).unwrap();
        let mut bmat = vec![0f32; g.k() * cout];
        for co in 0..cout {
            for ci in 0..c {
                for tap in 0..9 {
                    bmat[(tap * c + ci) * cout + co] = w_oihw[(co * c + ci) * 9 + tap];
                }
            }
        }
        let mut bp = pack_b(&spec, &sched, &bmat);
        let mut scratch = vec![0f32; code.arg_elems[4]];
        let t = median(|| timed(|| kernel.run(&mut [&mut x, &mut bp, &mut bias, &mut out, &mut scratch], 1).unwrap()));
        println!("  implicit-im2col GEMM   {:8.3} ms  {:5.1} GFLOP/s", t * 1e3, flops / t / 1e9);

        for tile in [WinogradTile::F4x4, WinogradTile::F2x2] {
            let wspec = WinogradSpec { geometry: g, cout, tile };
            let input = LoadedKernel::load(&compile_input_transform(&wspec, &target).unwrap()).unwrap();
            let gemm = wspec.gemm_spec();
            let gemm_kernel = LoadedKernel::load(&compile_gemm(&gemm, &sched, &target).unwrap()).unwrap();
            let output_code = compile_output_transform(&wspec, true, &epilogue, &target).unwrap();
            let output = LoadedKernel::load(&output_code).unwrap();
            let mut packed: Vec<Vec<f32>> =
                transform_weights(&wspec, &w_oihw).iter().map(|u| pack_b(&gemm, &sched, u)).collect();
            let mut v = vec![0f32; wspec.v_elems()];
            let mut m = vec![0f32; wspec.m_elems()];
            let mut gemm_scratch = vec![0f32; gemm.arg_elems(&sched)[3]];
            let (v_stride, m_stride) = (wspec.v_stride(), wspec.m_stride());
            let t_in = median(|| timed(|| input.run(&mut [&mut x, &mut v], 1).unwrap()));
            let t_gemm = median(|| {
                timed(|| {
                    for (xi, (vx, mx)) in v.chunks_exact_mut(v_stride).zip(m.chunks_exact_mut(m_stride)).enumerate() {
                        gemm_kernel.run(&mut [vx, &mut packed[xi], mx, &mut gemm_scratch], 1).unwrap();
                    }
                })
            });
            let t_out = median(|| timed(|| output.run(&mut [&mut m, &mut bias, &mut out], 1).unwrap()));
            let total = t_in + t_gemm + t_out;
            let gemm_flops = 2.0 * (tile.positions() * gemm.m * gemm.k * gemm.n) as f64;
            println!(
                "  Winograd {tile:?} ({} tiles) {:8.3} ms  {:5.1} effective GFLOP/s: input {:.3} ms, {} GEMMs {:.3} ms \
                 ({:.1} GFLOP/s), output {:.3} ms",
                gemm.m,
                total * 1e3,
                flops / total / 1e9,
                t_in * 1e3,
                tile.positions(),
                t_gemm * 1e3,
                gemm_flops / t_gemm / 1e9,
                t_out * 1e3
            );
        }
    }
}
