//! `veltair-run serve`: loads the tenants' bundles, starts the engine on every core and serves
//! KServe v2 REST until SIGTERM (or ctrl-c), then drains: in-flight queries are answered before
//! the process exits.

use crate::tenants::{open, ModelArg};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use veltair_run::engine::{check_servable, Engine, Tenant};
use veltair_run::sched::{level_scale, Policy};

#[derive(Args)]
pub struct ServeArgs {
    /// A tenant: `NAME=FILE.vbundle[:QOS_MS]` (repeatable).
    #[arg(long = "model", value_name = "NAME=FILE[:QOS_MS]")]
    pub models: Vec<ModelArg>,
    /// A JSON file `{"models": [{"name": ..., "file": ..., "qos_ms": ...}]}` with more tenants.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Scheduling policy (model-wise, layer-wise, layer-block, veltair).
    #[arg(long, default_value = "veltair")]
    pub policy: String,
    /// Queries of one model in flight (queued or running) before it answers 503.
    #[arg(long, default_value_t = 64)]
    pub capacity: usize,
    /// QoS target of a model without one: this many times its solo latency at its bundle's
    /// widest width.
    #[arg(long, default_value_t = 4.0)]
    pub qos_factor: f64,
    /// Milliseconds an idle worker keeps polling for work (yielding its core to other threads)
    /// before it sleeps. Polling keeps the cores from halting, which on a VM costs the next
    /// layers 20-30%; it shows as busy CPU while the server idles.
    #[arg(long, default_value_t = 0)]
    pub idle_poll_ms: u64,
}

pub fn run(args: &ServeArgs) -> Result<(), String> {
    let mut models = args.models.clone();
    if let Some(path) = &args.config {
        models.extend(config(path)?);
    }
    if models.is_empty() {
        return Err("no model to serve: give --model NAME=FILE.vbundle[:QOS_MS] or --config FILE".into());
    }
    let policy = Policy::parse(&args.policy)?;
    let loaded = open(&models, args.qos_factor)?;
    let scale = level_scale(&loaded.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>());
    let tenants = loaded
        .into_iter()
        .zip(&models)
        .map(|((plan, profile), m)| {
            check_servable(&plan).map_err(|e| format!("{}: {e}", m.file.display()))?;
            Tenant::new(plan, profile, args.capacity).map_err(|e| format!("{}: {e}", m.file.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = Arc::new(
        Engine::start(tenants, policy, cores, scale, Duration::from_millis(args.idle_poll_ms))
            .map_err(|e| e.to_string())?,
    );
    for t in engine.tenants() {
        eprintln!("veltair-run: model `{}` (QoS {:.1} ms), policy {}", t.name, t.profile.qos * 1e3, policy.name());
    }
    veltair_run::serve::run_blocking(engine.clone(), args.listen)
        .map_err(|e| format!("serving on {}: {e}", args.listen))?;
    engine.drain();
    Ok(())
}

/// The tenants a config file lists.
fn config(path: &PathBuf) -> Result<Vec<ModelArg>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let list =
        value["models"].as_array().ok_or_else(|| format!("{}: expected {{\"models\": [...]}}", path.display()))?;
    list.iter()
        .map(|m| {
            let name = m["name"].as_str().ok_or_else(|| format!("{}: a model without \"name\"", path.display()))?;
            let file =
                m["file"].as_str().ok_or_else(|| format!("{}: model `{name}` has no \"file\"", path.display()))?;
            let qos_ms = match &m["qos_ms"] {
                serde_json::Value::Null => None,
                q => Some(
                    q.as_f64()
                        .filter(|q| *q > 0.0)
                        .ok_or_else(|| format!("{}: bad qos_ms for `{name}`", path.display()))?,
                ),
            };
            Ok(ModelArg { name: name.to_string(), file: file.into(), qos_ms })
        })
        .collect()
}
