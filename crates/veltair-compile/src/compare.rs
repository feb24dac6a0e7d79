//! `veltair-compile compare OLD NEW`: the variant sets of two builds (bundles or `--report`
//! JSON files, in any mix) side by side, per layer and per model; exit status 1 when any
//! regression exceeds the threshold, for CI.

use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use veltair_tune::{compare, render_json, render_markdown, render_text, CompareOptions, Report, VariantSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    /// For a pull-request comment.
    Markdown,
    Json,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The baseline: a bundle or a compile report (JSON).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The candidate: a bundle or a compile report (JSON).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Relative slowdown of a layer's (or the model's) best latency in one (width, contention
    /// level) cell that counts as a regression.
    #[arg(long, default_value_t = 0.05)]
    pub threshold: f64,
    /// Absolute slowdowns below this many microseconds never count (timer noise on tiny layers).
    #[arg(long, default_value_t = 5.0, value_name = "US")]
    pub min_delta_us: f64,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Returns whether no regression exceeded the threshold.
pub fn run(args: &CompareArgs) -> Result<bool, String> {
    if !(args.threshold >= 0.0 && args.min_delta_us >= 0.0) {
        return Err("--threshold and --min-delta-us must be non-negative numbers".into());
    }
    let (old, new) = (variant_set(&args.old)?, variant_set(&args.new)?);
    let options = CompareOptions { threshold: args.threshold, min_delta_seconds: args.min_delta_us * 1e-6 };
    let c = compare(&old, &new, &options);
    let text = match args.format {
        Format::Text => render_text(&c, &options),
        Format::Markdown => render_markdown(&c, &options),
        Format::Json => render_json(&c),
    };
    crate::emit(text.trim_end());
    Ok(!c.failed())
}

/// The kept versions of a bundle (recognised by its magic) or a report.
fn variant_set(path: &Path) -> Result<VariantSet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.starts_with(&veltair_bundle::MAGIC) {
        let view =
            veltair_bundle::parse(&bytes).map_err(|e| format!("{} is not a usable bundle: {e}", path.display()))?;
        return Ok(VariantSet::from_manifest(&view.manifest));
    }
    let report: Report = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is neither a bundle nor a compile report: {e}", path.display()))?;
    Ok(VariantSet::from_report(&report))
}
