//! Which models a run serves and at what latency targets: `--model NAME=FILE[:QOS_MS]`
//! (repeatable), or `--mix light|medium|heavy|M1,M2,...` over a directory of `NAME.vbundle`
//! files. A model without a target gets a stated multiple of its solo latency at the widest
//! width its bundle was measured at. With the trace seed, these make a workload.

use clap::Args;
use std::path::{Path, PathBuf};
use veltair_exec::{open_bundle, Plan};
use veltair_run::sched::{share_reference, ModelProfile};

/// The light mix of the VELTAIR evaluation.
pub const LIGHT: &[&str] = &["mobilenetv2", "efficientnet_b0", "tiny_yolov2"];
/// The heavy mix.
pub const HEAVY: &[&str] = &["resnet50", "googlenet", "bert_base"];

/// The tenants, their QoS targets and the arrival trace's seed, as given on the command line.
#[derive(Args)]
pub struct WorkloadArgs {
    /// A tenant: `NAME=FILE.vbundle[:QOS_MS]` (repeatable).
    #[arg(long = "model", value_name = "NAME=FILE[:QOS_MS]")]
    pub models: Vec<ModelArg>,
    /// Instead of `--model`: `light`, `medium`, `heavy` or `NAME,NAME,...`, read from `--bundles`.
    #[arg(long)]
    pub mix: Option<String>,
    /// Directory of `NAME.vbundle` files for `--mix`.
    #[arg(long, default_value = "target/bundles")]
    pub bundles: PathBuf,
    /// Seed of the Poisson arrival trace (the same trace for every policy).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// QoS target of a model without one: this many times its solo latency at its bundle's
    /// widest width.
    #[arg(long, default_value_t = 4.0)]
    pub qos_factor: f64,
}

impl WorkloadArgs {
    /// The tenants' plans and profiles (with QoS targets).
    pub fn tenants(&self) -> Result<Vec<(Plan, ModelProfile)>, String> {
        let models = match (&self.mix, self.models.is_empty()) {
            (Some(spec), true) => mix(spec, &self.bundles)?,
            (None, false) => self.models.clone(),
            _ => return Err("give either --model (repeatable) or --mix".into()),
        };
        if self.qos_factor.is_nan() || self.qos_factor <= 0.0 {
            return Err("--qos-factor must be positive".into());
        }
        open(&models, self.qos_factor)
    }
}

/// A `NAME=FILE[:QOS_MS]` argument.
#[derive(Clone, Debug)]
pub struct ModelArg {
    pub name: String,
    pub file: PathBuf,
    pub qos_ms: Option<f64>,
}

impl std::str::FromStr for ModelArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s.split_once('=').ok_or_else(|| format!("expected NAME=FILE[:QOS_MS], got `{s}`"))?;
        let (file, qos_ms) = match rest.rsplit_once(':') {
            Some((f, q)) if q.parse::<f64>().is_ok() => {
                let q: f64 = q.parse().map_err(|_| format!("`{q}` is not a number of milliseconds"))?;
                if !(q > 0.0 && q.is_finite()) {
                    return Err(format!("the QoS target in `{s}` must be a positive number of milliseconds"));
                }
                (f, Some(q))
            }
            _ => (rest, None),
        };
        if name.is_empty() || file.is_empty() {
            return Err(format!("expected NAME=FILE[:QOS_MS], got `{s}`"));
        }
        Ok(ModelArg { name: name.to_string(), file: file.into(), qos_ms })
    }
}

/// The models of a mix: `light`, `heavy`, `medium` (both) or a comma-separated list of names,
/// each read from `DIR/NAME.vbundle`.
fn mix(spec: &str, dir: &Path) -> Result<Vec<ModelArg>, String> {
    let names: Vec<&str> = match spec {
        "light" => LIGHT.to_vec(),
        "heavy" => HEAVY.to_vec(),
        "medium" => LIGHT.iter().chain(HEAVY).copied().collect(),
        list => list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect(),
    };
    if names.is_empty() {
        return Err(format!("the mix `{spec}` names no model"));
    }
    Ok(names
        .into_iter()
        .map(|n| ModelArg { name: n.to_string(), file: dir.join(format!("{n}.vbundle")), qos_ms: None })
        .collect())
}

/// Opens every bundle (fully validated) and builds its profile; a missing target becomes
/// `qos_factor` times the solo latency at the bundle's widest width. The profiles share one
/// calibration reference (`share_reference`).
pub fn open(models: &[ModelArg], qos_factor: f64) -> Result<Vec<(Plan, ModelProfile)>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut loaded = models
        .iter()
        .map(|m| {
            if !seen.insert(&m.name) {
                return Err(format!("model `{}` is given twice", m.name));
            }
            let (plan, _) = open_bundle(&m.file).map_err(|e| e.to_string())?;
            let mut profile = ModelProfile::from_plan(&m.name, &plan, 0.0);
            profile.qos = match m.qos_ms {
                Some(ms) => ms / 1e3,
                None => qos_factor * profile.solo(profile.max_width),
            };
            Ok((plan, profile))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut profiles: Vec<ModelProfile> = loaded.iter().map(|l| l.1.clone()).collect();
    share_reference(&mut profiles);
    for ((_, profile), shared) in loaded.iter_mut().zip(profiles) {
        *profile = shared;
    }
    Ok(loaded)
}
