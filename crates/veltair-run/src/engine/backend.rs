//! The engine behind the HTTP layer: model signatures from the plans' ports, submissions
//! translated both ways (never blocking: a full model answers busy), and the engine's metrics —
//! queue and compute time per model, QoS misses, conflicts, version choices and the contention
//! estimate — in Prometheus text.

use super::{Engine, SubmitError as EngineError};
use crate::serve::metrics::{family, label};
use crate::serve::{Backend, DataType, ModelInfo, PortInfo, Reply, SubmitError, Tensor, TensorData};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use veltair_exec::{Plan, Port};
use veltair_ir::DType;

/// The protocol datatype of a port; `None` for element types the HTTP layer does not carry yet.
fn datatype(p: &Port) -> Option<DataType> {
    match p.dtype {
        DType::F32 => Some(DataType::Fp32),
        DType::I64 => Some(DataType::Int64),
        _ => None,
    }
}

fn port_info(p: &Port) -> PortInfo {
    PortInfo { name: p.name.clone(), datatype: datatype(p).unwrap_or(DataType::Fp32), shape: p.shape.clone() }
}

/// Refuses a plan with a port the HTTP layer cannot carry (before serving starts).
pub fn check_servable(plan: &Plan) -> Result<(), String> {
    match plan.inputs.iter().chain(&plan.outputs).find(|p| datatype(p).is_none()) {
        Some(p) => Err(format!(
            "port `{}` is {}; the HTTP server carries FP32 and INT64 tensors so far (`veltair-run infer` runs any type)",
            p.name, p.dtype
        )),
        None => Ok(()),
    }
}

fn to_engine(t: Tensor) -> veltair_ir::Tensor {
    let data = match t.data {
        TensorData::F32(v) => veltair_ir::TensorData::F32(v),
        TensorData::I64(v) => veltair_ir::TensorData::I64(v),
    };
    veltair_ir::Tensor::new(t.shape, data).expect("the server checked the element count against the shape")
}

fn from_engine(name: String, t: veltair_ir::Tensor) -> Tensor {
    let shape = t.shape().to_vec();
    let data = match t.data() {
        veltair_ir::TensorData::I64(v) => TensorData::I64(v.clone()),
        other => TensorData::F32(other.to_f64_vec().into_iter().map(|x| x as f32).collect()),
    };
    Tensor { name, shape, data }
}

impl Backend for Engine {
    fn models(&self) -> Vec<ModelInfo> {
        self.tenants()
            .iter()
            .map(|t| ModelInfo {
                name: t.name.clone(),
                inputs: t.plan.inputs.iter().map(port_info).collect(),
                outputs: t.plan.outputs.iter().map(port_info).collect(),
            })
            .collect()
    }

    fn ready(&self, model: &str) -> bool {
        self.accepting() && self.model(model).is_some()
    }

    fn submit(&self, model: &str, inputs: Vec<Tensor>, done: Box<dyn FnOnce(Reply) + Send>) -> Result<(), SubmitError> {
        let index = self.model(model).ok_or_else(|| SubmitError::UnknownModel(model.to_string()))?;
        let names: Vec<String> = self.tenants()[index].plan.outputs.iter().map(|p| p.name.clone()).collect();
        let inputs = inputs.into_iter().map(to_engine).collect();
        let reply = Box::new(move |result: super::Reply| {
            done(result.map(|values| names.into_iter().zip(values).map(|(name, t)| from_engine(name, t)).collect()))
        });
        Engine::submit(self, index, inputs, reply).map_err(|e| match e {
            EngineError::UnknownModel(m) => SubmitError::UnknownModel(m),
            EngineError::Busy => SubmitError::Busy,
            EngineError::ShuttingDown => SubmitError::ShuttingDown,
        })
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        let shared = &self.shared;
        family(&mut out, "veltair_queue_seconds", "histogram", "Time from arrival to the first block's start.");
        for (t, m) in shared.tenants.iter().zip(&shared.metrics) {
            m.queue.render(&mut out, "veltair_queue_seconds", &label("model", &t.name));
        }
        family(&mut out, "veltair_compute_seconds", "histogram", "Time from the first block's start to the answer.");
        for (t, m) in shared.tenants.iter().zip(&shared.metrics) {
            m.compute.render(&mut out, "veltair_compute_seconds", &label("model", &t.name));
        }
        family(&mut out, "veltair_qos_misses_total", "counter", "Queries answered later than their model's target.");
        for (t, m) in shared.tenants.iter().zip(&shared.metrics) {
            let _ = writeln!(
                out,
                "veltair_qos_misses_total{{{}}} {}",
                label("model", &t.name),
                m.qos_misses.load(Ordering::Relaxed)
            );
        }
        let stats = self.stats();
        family(&mut out, "veltair_conflicts_total", "counter", "Blocks that ran on fewer cores than planned.");
        let _ = writeln!(out, "veltair_conflicts_total {}", stats.conflicts);
        family(&mut out, "veltair_blocks_total", "counter", "Layer blocks started.");
        let _ = writeln!(out, "veltair_blocks_total {}", stats.blocks);
        family(&mut out, "veltair_version_choices_total", "counter", "Layer runs per model and version index.");
        let mut choices: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        for (&(model, _, version), &n) in &stats.version_choices {
            *choices.entry((model, version)).or_default() += n;
        }
        for ((model, version), n) in choices {
            let name = shared.tenants.get(model).map_or("?", |t| t.name.as_str());
            let _ = writeln!(
                out,
                "veltair_version_choices_total{{{},{}}} {n}",
                label("model", name),
                label("version", &version.to_string())
            );
        }
        let contention = self.contention();
        family(&mut out, "veltair_contention_level", "gauge", "Estimated contention level (0 = none).");
        let _ = writeln!(out, "veltair_contention_level {}", contention.level);
        family(
            &mut out,
            "veltair_observed_slowdown",
            "gauge",
            "Smoothed slowdown of executed layers over their profiles.",
        );
        let _ = writeln!(out, "veltair_observed_slowdown {}", contention.slowdown);
        family(
            &mut out,
            "veltair_hardware_counters",
            "gauge",
            "1 when hardware counters (cache misses) measure pressure, 0 when it is modelled from profiles.",
        );
        let _ = writeln!(out, "veltair_hardware_counters {}", u8::from(contention.counters));
        if contention.counters {
            family(&mut out, "veltair_cache_miss_rate", "gauge", "Smoothed last-level-cache misses per second.");
            let _ = writeln!(out, "veltair_cache_miss_rate {}", contention.miss_rate);
        }
        out
    }
}
