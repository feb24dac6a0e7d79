//! `veltair-compile MODEL.onnx -o MODEL.vbundle`: import; lower with candidate schedules per
//! layer (compiled in parallel); calibrate contention levels; measure every version of every
//! layer at every width and level; keep each layer's frontier; check the result against the
//! model's test data; write the bundle (atomically) and the JSON report.

use crate::model::{Loaded, ModelArgs};
use crate::summary::{print_summary, Summary};
use crate::Outcome;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use veltair_bundle::Header;
use veltair_codegen::{OptLevel, Target};
use veltair_exec::{synthetic_input, to_bundle, Executor, Plan};
use veltair_ir::Tensor;
use veltair_lower::LowerOptions;
use veltair_tune::{calibrate, explore, select, CandidateReport, Cell, ExploreConfig, LayerReport, PhaseTimes, Report};

/// How much measuring to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TuneMode {
    /// No measurement: the analytical default schedule per layer (deterministic output).
    None,
    /// A few candidates per layer, few repeats (about a minute for ResNet-50 here).
    Quick,
    /// The whole pruned space, more repeats.
    Full,
}

impl TuneMode {
    /// Candidate schedules per GEMM-family layer.
    fn candidates(self) -> usize {
        match self {
            TuneMode::None => 1,
            TuneMode::Quick => 4,
            TuneMode::Full => 12,
        }
    }

    /// (warm-up calls, timed calls) per measurement.
    fn repeats(self) -> (usize, usize) {
        match self {
            TuneMode::None => (0, 0),
            TuneMode::Quick => (1, 5),
            TuneMode::Full => (3, 15),
        }
    }

    fn name(self) -> &'static str {
        match self {
            TuneMode::None => "none",
            TuneMode::Quick => "quick",
            TuneMode::Full => "full",
        }
    }
}

#[derive(Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The bundle to write [default: MODEL with the extension .vbundle].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Versions kept per layer: the fastest in each (width, contention level) cell, at most N.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub versions: usize,
    /// Widest thread count a layer may run on [default: the cores of this machine].
    #[arg(long, value_name = "W")]
    pub max_threads: Option<usize>,
    /// none: analytical schedules only; quick: a few candidates; full: the whole pruned space.
    #[arg(long, value_enum, default_value_t = TuneMode::Quick)]
    pub tune: TuneMode,
    /// Contention levels above solo to calibrate and measure at.
    #[arg(long, default_value_t = 3, value_name = "L")]
    pub levels: usize,
    /// Also write the full measurement table as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Threads compiling kernels [default: the cores of this machine].
    #[arg(long, value_name = "J")]
    pub jobs: Option<usize>,
}

/// Elements of each operand of the calibration's reference kernel: three 8 MiB arrays, more
/// than a core's L2 and well inside the shared L3, so contention there shows.
const REFERENCE_ELEMS: usize = 2 << 20;
/// Name of the calibration's reference workload.
const REFERENCE: &str =
    "generated element-wise add of two 8 MiB f32 arrays into a third (24 MiB: beyond L2, inside L3), 1 thread";

pub fn compile(args: &CompileArgs) -> Result<Outcome, String> {
    let start = Instant::now();
    let mut times = PhaseTimes::default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_threads = args.max_threads.unwrap_or(cores);
    let jobs = args.jobs.unwrap_or(cores);
    if max_threads == 0 || jobs == 0 || args.versions == 0 {
        return Err("--max-threads, --jobs and --versions must be at least 1".into());
    }
    let output = args.output.clone().unwrap_or_else(|| args.model.path.with_extension("vbundle"));

    let mut loaded = Loaded::load(&args.model)?;
    loaded.apply_passes();
    times.import = start.elapsed().as_secs_f64();

    let phase = Instant::now();
    let target = Target::x86_64_v3(OptLevel::None)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().map_err(|e| e.to_string())?;
    let options = LowerOptions { max_threads, versions: args.tune.candidates(), ..LowerOptions::default() };
    let mut plan = pool.install(|| loaded.lower(&target, &options))?;
    times.lower = phase.elapsed().as_secs_f64();
    let candidates: usize = plan.steps.iter().map(|s| s.versions.len()).sum();

    let feeds: Vec<Tensor> = match loaded.data.first() {
        Some((_, set)) => set.inputs.clone(),
        None => plan.inputs.iter().map(synthetic_input).collect(),
    };
    let core_ids: Vec<usize> = (0..cores).collect();
    let levels = if cores > 1 && args.tune != TuneMode::None { args.levels } else { 0 };

    if levels > 0 {
        let phase = Instant::now();
        let cal = calibrate_levels(&target, levels, &core_ids, args.tune)?;
        plan.calibration = Some(to_bundle_calibration(&cal));
        times.calibrate = phase.elapsed().as_secs_f64();
    }

    let layers = if args.tune == TuneMode::None {
        plan.steps.iter().map(|s| LayerReport::new(s.label.clone(), s.macs, candidates_of(s), vec![0])).collect()
    } else {
        let phase = Instant::now();
        let layers = tune(&mut plan, &feeds, args, levels, core_ids)?;
        times.tune = phase.elapsed().as_secs_f64();
        layers
    };

    let checks = verify(&plan, &loaded, max_threads.min(cores), &args.model)?;

    let phase = Instant::now();
    let features = target.features().iter().map(|f| f.to_string()).collect();
    let header = Header::new(env!("CARGO_PKG_VERSION"), "x86_64-unknown-linux-gnu", features);
    let bytes = to_bundle(&plan, header).map_err(|e| format!("cannot encode the bundle: {e}"))?;
    write_atomically(&output, &bytes)?;
    times.write = phase.elapsed().as_secs_f64();
    times.total = start.elapsed().as_secs_f64();

    let report = Report {
        model: plan.name.clone(),
        compiler_version: env!("CARGO_PKG_VERSION").into(),
        tune: args.tune.name().into(),
        max_threads,
        levels,
        calibration_reference: if levels > 0 { REFERENCE.into() } else { String::new() },
        calibration: plan
            .calibration
            .iter()
            .flat_map(|c| &c.levels)
            .map(|l| veltair_tune::LevelReport {
                level: l.level,
                slowdown: l.slowdown,
                stream_threads: l.stream_threads,
                thrash_threads: l.thrash_threads,
                intensity: l.intensity,
            })
            .collect(),
        switches: layers.iter().flat_map(LayerReport::contention_switches).collect(),
        layers,
        versions: plan.steps.iter().map(|s| s.versions.len()).sum(),
        bundle_bytes: bytes.len() as u64,
        seconds: times,
    };
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        write_atomically(path, json.as_bytes())?;
    }
    let all_ok = checks.iter().all(|c| c.ok);
    print_summary(&Summary { report: &report, output: &output, candidates, checks: &checks });
    Ok(if all_ok { Outcome::Ok } else { Outcome::Mismatch })
}

/// Measures every candidate of every layer, keeps each layer's frontier in `plan` (with its
/// latencies) and returns the per-layer report rows.
fn tune(
    plan: &mut Plan,
    feeds: &[Tensor],
    args: &CompileArgs,
    levels: usize,
    cores: Vec<usize>,
) -> Result<Vec<LayerReport>, String> {
    let (warmup, repeats) = args.tune.repeats();
    let config = ExploreConfig { levels, warmup, repeats, cores };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("tuning {bar:30} {pos}/{len} layer measurements, {elapsed} elapsed, ETA {eta}")
            .map_err(|e| e.to_string())?,
    );
    let measured = explore(plan, feeds, &config, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .map_err(|e| format!("measuring versions: {e}"))?;
    bar.finish_and_clear();
    let mut keep = Vec::with_capacity(plan.steps.len());
    for (step, lat) in plan.steps.iter_mut().zip(&measured) {
        for (version, l) in step.versions.iter_mut().zip(lat) {
            version.latencies = l.clone();
        }
        keep.push(select(lat, args.versions));
    }
    let layers = plan
        .steps
        .iter()
        .zip(&keep)
        .map(|(s, k)| LayerReport::new(s.label.clone(), s.macs, candidates_of(s), k.clone()))
        .collect();
    plan.retain_versions(&keep)?;
    Ok(layers)
}

fn candidates_of(step: &veltair_exec::Step) -> Vec<CandidateReport> {
    step.versions
        .iter()
        .map(|v| CandidateReport {
            schedule: v.schedule.clone(),
            footprint_bytes: v.footprint,
            latencies: v.latencies.iter().map(Cell::from).collect(),
        })
        .collect()
}

/// Calibrates the contention levels on the reference kernel (on core 0, the stressor on the
/// others).
fn calibrate_levels(
    target: &Target,
    levels: usize,
    cores: &[usize],
    mode: TuneMode,
) -> Result<veltair_tune::Calibration, String> {
    use veltair_codegen::pointwise::{compile_pointwise, PointwiseSpec, PointwiseStep};
    let n = REFERENCE_ELEMS;
    let add = PointwiseStep::Binary { op: veltair_ir::BinaryOp::Add, input: 1, operand_first: false };
    let spec = PointwiseSpec { out_shape: vec![n], inputs: vec![vec![n], vec![n]], steps: vec![add] };
    let code = compile_pointwise(&spec, target).map_err(|e| e.to_string())?;
    let kernel = veltair_load::LoadedKernel::load(&code).map_err(|e| e.to_string())?;
    let (mut x, mut y, mut out) = (vec![0.5f32; n], vec![0.25f32; n], vec![0f32; n]);
    let repeats = mode.repeats().1.max(5) * 2;
    let mut cal = calibrate(
        levels,
        &cores[..1],
        &cores[1..],
        || {
            let _ = kernel.run(&mut [&mut x, &mut y, &mut out], 1);
        },
        repeats,
    )
    .map_err(|e| format!("calibrating contention levels: {e}"))?;
    cal.reference = REFERENCE.into();
    Ok(cal)
}

fn to_bundle_calibration(cal: &veltair_tune::Calibration) -> veltair_bundle::Calibration {
    veltair_bundle::Calibration {
        reference: cal.reference.clone(),
        levels: cal
            .levels
            .iter()
            .map(|l| veltair_bundle::Level {
                level: l.level as u32,
                slowdown: l.slowdown,
                stream_threads: l.config.stream_threads as u32,
                thrash_threads: l.config.thrash_threads as u32,
                intensity: l.config.intensity,
            })
            .collect(),
    }
}

/// One output compared with the model's test data.
pub struct Check {
    pub data: String,
    pub output: String,
    pub ok: bool,
    pub max_abs: f64,
}

/// Runs the compiled plan on every data set once per version index `v` (every layer running
/// its version `v`, or its last where it has fewer), so every kept version of every layer is
/// compared with the expected outputs.
fn verify(plan: &Plan, loaded: &Loaded, threads: usize, model: &ModelArgs) -> Result<Vec<Check>, String> {
    if loaded.data.is_empty() {
        return Ok(Vec::new());
    }
    let mut exec = Executor::new(plan.clone(), threads).map_err(|e| e.to_string())?;
    let most = plan.steps.iter().map(|s| s.versions.len()).max().unwrap_or(1);
    let mut checks = Vec::new();
    for v in 0..most {
        for (i, step) in plan.steps.iter().enumerate() {
            exec.choose(i, v.min(step.versions.len() - 1)).map_err(|e| e.to_string())?;
        }
        for (dir, set) in &loaded.data {
            let outputs = exec.run(&set.inputs).map_err(|e| e.to_string())?;
            if outputs.len() != set.outputs.len() {
                return Err(format!(
                    "{}: {} outputs, the data has {}",
                    dir.display(),
                    outputs.len(),
                    set.outputs.len()
                ));
            }
            for ((got, want), port) in outputs.into_iter().zip(&set.outputs).zip(&plan.outputs) {
                let cmp = veltair_ir::compare(&got, want, model.rtol, model.atol);
                checks.push(Check {
                    data: format!("{} (version {v})", dir.display()),
                    output: port.name.clone(),
                    ok: cmp.ok,
                    max_abs: cmp.max_abs,
                });
            }
        }
    }
    Ok(checks)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place, so a reader
/// (or a runtime mapping the old bundle) never sees a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot move the bundle into {}: {e}", path.display())
    })
}
