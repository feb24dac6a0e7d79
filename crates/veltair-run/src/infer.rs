//! `veltair-run infer FILE.vbundle --data DIR`: load and validate the bundle, run it on the
//! directory's inputs and compare with its expected outputs (numpy `allclose`: |got - want|
//! <= atol + rtol · |want| per element, NaN matching NaN), optionally timing repeated runs or
//! forcing one version per layer.

use crate::testdata::{numbered, read_tensor};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veltair_exec::{open_bundle, Executor, Step, Version};
use veltair_ir::{compare, Tensor};

#[derive(Args)]
pub struct InferArgs {
    /// The bundle file.
    #[arg(value_name = "FILE.vbundle")]
    pub bundle: PathBuf,
    /// A directory in the ONNX backend-test layout (`input_N.pb`, `output_N.pb`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Worker threads every layer runs on.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Run version V of every layer (the last one where a layer has fewer) instead of each
    /// layer's fastest solo version at this width (by the bundle's measurements; the first
    /// version where none were made).
    #[arg(long, value_name = "V")]
    pub version: Option<usize>,
    /// Timed runs after the checked one.
    #[arg(long, default_value_t = 0)]
    pub repeat: usize,
    /// Relative tolerance of the comparison.
    #[arg(long, default_value_t = 1e-3)]
    pub rtol: f64,
    /// Absolute tolerance of the comparison.
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
}

/// Returns whether every output matched.
pub fn infer(args: &InferArgs) -> Result<bool, String> {
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let (plan, _) = open_bundle(&args.bundle).map_err(|e| e.to_string())?;
    if args.threads > plan.max_threads {
        return Err(format!(
            "--threads {}: the bundle was compiled for at most {} threads",
            args.threads, plan.max_threads
        ));
    }
    let read = |prefix| -> Result<Vec<Tensor>, String> {
        numbered(&args.data, prefix)?.iter().map(|p| read_tensor(p).map(|(_, t)| t)).collect()
    };
    let (inputs, expected) = (read("input")?, read("output")?);
    if inputs.len() != plan.inputs.len() || expected.len() != plan.outputs.len() {
        return Err(format!(
            "{} holds {} inputs and {} outputs, the model has {} and {}",
            args.data.display(),
            inputs.len(),
            expected.len(),
            plan.inputs.len(),
            plan.outputs.len()
        ));
    }
    let mut exec = Executor::new(plan.clone(), args.threads).map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    for (i, step) in plan.steps.iter().enumerate() {
        let v = match args.version {
            Some(v) => v.min(step.versions.len() - 1),
            None => solo_best(step, args.threads),
        };
        exec.choose(i, v).map_err(|e| e.to_string())?;
    }
    let outputs = exec.run(&inputs).map_err(|e| e.to_string())?;
    let mut all_ok = true;
    for ((got, want), port) in outputs.iter().zip(&expected).zip(&plan.outputs) {
        let c = compare(got, want, args.rtol, args.atol);
        all_ok &= c.ok;
        let status = match (&c.mismatch, c.ok) {
            (Some(why), _) => format!("MISMATCH: {why}"),
            (None, true) => "ok".to_string(),
            (None, false) => "MISMATCH".to_string(),
        };
        println!(
            "{} `{}`: {status} (max abs error {:.2e}, max rel error {:.2e})",
            args.data.display(),
            port.name,
            c.max_abs,
            c.max_rel
        );
    }
    if args.repeat > 0 {
        let mut times: Vec<Duration> = (0..args.repeat)
            .map(|_| {
                let start = Instant::now();
                exec.run(&inputs).map(|_| start.elapsed())
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        times.sort_unstable();
        let median = times[times.len() / 2].as_secs_f64() * 1e3;
        println!("latency at {} thread(s): median {median:.3} ms over {} runs", args.threads, args.repeat);
    }
    Ok(all_ok)
}

/// The version of `step` measured fastest without contention at `width` (the first when no
/// version was measured there).
fn solo_best(step: &Step, width: usize) -> usize {
    let solo = |v: &Version| {
        v.latencies.iter().find(|l| l.width as usize == width && l.level == 0).map_or(f64::INFINITY, |l| l.seconds)
    };
    (0..step.versions.len()).min_by(|&a, &b| solo(&step.versions[a]).total_cmp(&solo(&step.versions[b]))).unwrap_or(0)
}
