//! Quick single-thread GFLOP/s survey of GEMM schedules (a development aid; the committed
//! numbers come from `cargo bench`).

use std::time::Instant;
use veltair_codegen::epilogue::Epilogue;
use veltair_codegen::gemm::{compile_gemm, pack_b, ASource, Bias, GemmSchedule, GemmSpec, Parallel};
use veltair_codegen::{OptLevel, Target};
use veltair_load::LoadedKernel;

fn main() {
    let size: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(512);
    let spec = GemmSpec {
        m: size,
        n: size,
        k: size,
        a: ASource::Matrix,
        bias: Bias::None,
        epilogue: Epilogue::default(),
        out: None,
    };
    for opt in [OptLevel::None] {
        let target = Target::x86_64_v3(opt).unwrap();
        for (mr, nv) in [(12, 1), (8, 1)] {
            for kc in [256, 512] {
                for (mc_tiles, u) in [(4, 1), (8, 4), (8, 8), (16, 4), (32, 4)] {
                    let s = GemmSchedule {
                        mr,
                        nr_vecs: nv,
                        kc,
                        mc: mc_tiles * mr,
                        k_unroll: u,
                        max_threads: 1,
                        parallel: Parallel::Panels,
                    };
                    let code = compile_gemm(&spec, &s, &target).unwrap();
                    let kernel = LoadedKernel::load(&code).unwrap();
                    let mut a = vec![0.5f32; size * size];
                    let mut bp = pack_b(&spec, &s, &vec![0.25f32; size * size]);
                    let mut c = vec![0f32; size * size];
                    let mut scratch = vec![0f32; *code.arg_elems.last().unwrap()];
                    let mut times = Vec::new();
                    for _ in 0..7 {
                        let t = Instant::now();
                        kernel.run(&mut [&mut a, &mut bp, &mut c, &mut scratch], 1).unwrap();
                        times.push(t.elapsed().as_secs_f64());
                    }
                    times.sort_by(f64::total_cmp);
                    let gflops = 2.0 * (size as f64).powi(3) / times[3] / 1e9;
                    println!(
                        "{opt:?} mr {mr:2} nr {:2} kc {kc:4} mc {:3} u {u}: {gflops:6.1} GFLOP/s ({} bytes)",
                        4 * nv,
                        s.mc,
                        code.bytes.len()
                    );
                }
            }
        }
    }
}
