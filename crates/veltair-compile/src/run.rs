//! `veltair-compile run`: lower a model to generated code, run it in-process with the
//! executor, compare with backend-test data, and time it (median over repeats), optionally
//! per layer.

use crate::model::{Loaded, ModelArgs};
use crate::Outcome;
use clap::Args;
use serde_json::json;
use std::time::{Duration, Instant};
use veltair_codegen::{OptLevel, Target};
use veltair_exec::{synthetic_input, Executor};
use veltair_ir::Tensor;
use veltair_lower::LowerOptions;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Worker threads every layer runs on.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timed runs (the median is reported); 0 only checks outputs.
    #[arg(long, default_value_t = 0)]
    pub repeat: usize,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Also time every step and list the slowest.
    #[arg(long)]
    pub profile: bool,
    /// Print every step's iteration domain and loop-tiling schedule.
    #[arg(long)]
    pub schedules: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RunArgs) -> Result<Outcome, String> {
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let mut loaded = Loaded::load(&args.model)?;
    loaded.apply_passes();
    let target = Target::x86_64_v3(OptLevel::None)?;
    let started = Instant::now();
    let plan = loaded.lower(&target, &LowerOptions { max_threads: args.threads, ..LowerOptions::default() })?;
    let lower_time = started.elapsed();
    let (kernels, steps) = (plan.kernels.len(), plan.steps.len());
    let mib = |bytes: usize| bytes as f64 / 1048576.0;
    let (arena_mib, constants_mib) = (mib(plan.arena_elems * 4), mib(plan.constant_bytes()));
    if args.schedules && !args.json {
        for (i, step) in plan.steps.iter().enumerate() {
            let version = &step.versions[0];
            println!("step {i} `{}` (kernel {}):", step.label, version.kernel);
            for line in version.schedule.lines() {
                println!("    {line}");
            }
        }
    }
    let mut exec = Executor::new(plan, args.threads).map_err(|e| e.to_string())?;

    let mut all_ok = true;
    let mut checks = Vec::new();
    for (dir, set) in &loaded.data {
        let outputs = exec.run(&set.inputs).map_err(|e| e.to_string())?;
        if outputs.len() != set.outputs.len() {
            return Err(format!("{}: {} outputs, the data has {}", dir.display(), outputs.len(), set.outputs.len()));
        }
        for ((got, want), port) in outputs.into_iter().zip(&set.outputs).zip(&exec.plan().outputs) {
            let cmp = veltair_ir::compare(&got, want, args.model.rtol, args.model.atol);
            all_ok &= cmp.ok;
            checks.push(json!({"data": dir.display().to_string(), "output": port.name, "ok": cmp.ok,
                "max_abs_err": cmp.max_abs, "summary": format!("{cmp:?}")}));
        }
    }

    let refs: Vec<Tensor> = match loaded.data.first() {
        Some((_, set)) => set.inputs.clone(),
        None => exec.plan().inputs.iter().map(synthetic_input).collect(),
    };
    for _ in 0..args.warmup.min(args.repeat) {
        exec.run(&refs).map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(args.repeat);
    let mut step_times: Vec<Vec<Duration>> = vec![Vec::new(); exec.plan().steps.len()];
    for _ in 0..args.repeat {
        let start = Instant::now();
        if args.profile {
            let (_, steps) = exec.run_profiled(&refs).map_err(|e| e.to_string())?;
            for (acc, s) in step_times.iter_mut().zip(steps) {
                acc.push(s.elapsed);
            }
        } else {
            exec.run(&refs).map_err(|e| e.to_string())?;
        }
        times.push(start.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median_ms = median(&mut times).map(ms);
    let mut layers: Vec<(String, f64, u64)> = exec
        .plan()
        .steps
        .iter()
        .zip(step_times.iter_mut())
        .filter_map(|(s, t)| median(t).map(|m| (s.label.clone(), ms(m), s.macs)))
        .collect();
    layers.sort_by(|a, b| b.1.total_cmp(&a.1));

    if args.json {
        let report = json!({
            "model": args.model.path.display().to_string(),
            "threads": args.threads,
            "kernels": kernels, "steps": steps, "arena_mib": arena_mib, "constants_mib": constants_mib,
            "lower_seconds": lower_time.as_secs_f64(),
            "checks": checks,
            "repeat": args.repeat,
            "median_ms": median_ms,
            "runs_ms": times.iter().map(|&d| ms(d)).collect::<Vec<_>>(),
            "layers": layers.iter().map(|(l, t, macs)| json!({"label": l, "median_ms": t, "macs": macs})).collect::<Vec<_>>(),
            "schedules": args.schedules.then(|| exec.plan().steps.iter().map(|s| json!({"label": s.label, "kernel": s.versions[0].kernel, "schedule": s.versions[0].schedule})).collect::<Vec<_>>()),
        });
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialise"));
    } else {
        println!(
            "{}: {steps} steps, {kernels} distinct kernels, arena {arena_mib:.1} MiB, packed constants {constants_mib:.1} MiB, lowered in {:.2} s",
            args.model.path.display(),
            lower_time.as_secs_f64()
        );
        for c in &checks {
            println!(
                "  {} {}: {}",
                c["data"].as_str().unwrap_or(""),
                c["output"].as_str().unwrap_or(""),
                c["summary"].as_str().unwrap_or("")
            );
        }
        if let Some(m) = median_ms {
            println!("  latency at {} thread(s): median {m:.3} ms over {} runs", args.threads, args.repeat);
        }
        for (label, t, macs) in layers.iter().take(15) {
            let gflops = 2.0 * *macs as f64 / (t * 1e6);
            println!("    {t:9.3} ms  {gflops:6.1} GFLOP/s  {label}");
        }
    }
    Ok(if all_ok { Outcome::Ok } else { Outcome::Mismatch })
}

fn median(xs: &mut [Duration]) -> Option<Duration> {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied()
}
