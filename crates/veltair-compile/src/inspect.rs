//! `veltair-compile inspect FILE.vbundle [--json]`: what a bundle holds — header, model
//! signature, sizes, calibration, and every layer's versions with their schedules, footprints
//! and measured latencies. The bundle is fully validated first.

use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use veltair_exec::{open_bundle, Plan, Port, Version};

#[derive(Args)]
pub struct InspectArgs {
    /// The bundle file.
    #[arg(value_name = "FILE.vbundle")]
    pub bundle: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn inspect(args: &InspectArgs) -> Result<(), String> {
    let (plan, header) = open_bundle(&args.bundle).map_err(|e| e.to_string())?;
    let file_bytes = std::fs::metadata(&args.bundle).map_err(|e| e.to_string())?.len();
    let code_bytes: usize = plan.kernels.iter().map(|k| k.bytes.len()).sum();
    if args.json {
        let value = json!({
            "file": args.bundle.display().to_string(),
            "file_bytes": file_bytes,
            "format_version": header.format_version,
            "compiler_version": header.compiler_version,
            "target_triple": header.target_triple,
            "cpu_features": header.cpu_features,
            "model": plan.name,
            "inputs": plan.inputs.iter().map(port_json).collect::<Vec<_>>(),
            "outputs": plan.outputs.iter().map(port_json).collect::<Vec<_>>(),
            "arena_bytes": plan.arena_elems * 4,
            "kernels": plan.kernels.len(),
            "code_bytes": code_bytes,
            "constants": plan.constants.len(),
            "constant_bytes": plan.constant_bytes(),
            "max_threads": plan.max_threads,
            "calibration": plan.calibration.as_ref().map(|c| json!({
                "reference": c.reference,
                "levels": c.levels.iter().map(|l| json!({"level": l.level, "slowdown": l.slowdown,
                    "stream_threads": l.stream_threads, "thrash_threads": l.thrash_threads, "intensity": l.intensity})).collect::<Vec<_>>(),
            })),
            "layers": plan.steps.iter().map(|s| json!({
                "label": s.label,
                "macs": s.macs,
                "versions": s.versions.iter().map(|v| version_json(&plan, v)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        crate::emit(&serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let mib = |b: usize| b as f64 / 1048576.0;
    let mut out = String::new();
    push(
        &mut out,
        format!(
            "{}: veltair bundle, format {}, {:.1} MiB",
            args.bundle.display(),
            header.format_version,
            mib(file_bytes as usize)
        ),
    );
    push(
        &mut out,
        format!(
            "  compiled by veltair {} for {} ({})",
            header.compiler_version,
            header.target_triple,
            header.cpu_features.join(", ")
        ),
    );
    push(&mut out, format!("  model `{}`: {} layers, widths 1-{}", plan.name, plan.steps.len(), plan.max_threads));
    for (kind, ports) in [("input", &plan.inputs), ("output", &plan.outputs)] {
        for p in ports {
            push(&mut out, format!("  {kind} `{}`: {:?} {:?}", p.name, p.dtype, p.shape));
        }
    }
    push(
        &mut out,
        format!(
            "  code {} kernels, {:.2} MiB; weights {} constants, {:.1} MiB; arena {:.1} MiB",
            plan.kernels.len(),
            mib(code_bytes),
            plan.constants.len(),
            mib(plan.constant_bytes()),
            mib(plan.arena_elems * 4)
        ),
    );
    match &plan.calibration {
        Some(c) => {
            let levels: Vec<String> = c.levels.iter().map(|l| format!("{}: {:.2}x", l.level, l.slowdown)).collect();
            push(&mut out, format!("  contention levels ({}): {}", c.reference, levels.join(", ")));
        }
        None => push(&mut out, "  contention levels: not calibrated".to_string()),
    }
    for s in &plan.steps {
        push(&mut out, format!("  {} ({} MACs), {} version(s)", s.label, s.macs, s.versions.len()));
        for v in &s.versions {
            let lat: Vec<String> =
                v.latencies.iter().map(|l| format!("w{} L{} {:.3} ms", l.width, l.level, l.seconds * 1e3)).collect();
            let footprint =
                if v.footprint > 0 { format!(", footprint {} KiB", v.footprint / 1024) } else { String::new() };
            push(&mut out, format!("    {}{footprint}", short_schedule(&v.schedule)));
            if !lat.is_empty() {
                push(&mut out, format!("      {}", lat.join(", ")));
            }
        }
    }
    crate::emit(&out);
    Ok(())
}

/// Appends `line` and a newline.
fn push(out: &mut String, line: String) {
    out.push_str(&line);
    out.push('\n');
}

/// The schedule's tiling choices on one line (its split and parallel steps), or its domain's
/// kind when it has none.
pub fn short_schedule(schedule: &str) -> String {
    let steps: Vec<&str> =
        schedule.lines().map(str::trim).filter(|l| l.starts_with("split") || l.starts_with("parallel")).collect();
    if steps.is_empty() {
        schedule.split(':').next().unwrap_or_default().trim().to_string()
    } else {
        steps.join(", ")
    }
}

fn port_json(p: &Port) -> Value {
    json!({"name": p.name, "shape": p.shape, "dtype": format!("{:?}", p.dtype)})
}

fn version_json(plan: &Plan, v: &Version) -> Value {
    json!({
        "schedule": v.schedule,
        "footprint_bytes": v.footprint,
        "code_bytes": plan.kernels.get(v.kernel).map_or(0, |k| k.bytes.len()),
        "latencies": v.latencies.iter().map(|l| json!({"width": l.width, "level": l.level, "seconds": l.seconds})).collect::<Vec<_>>(),
    })
}
