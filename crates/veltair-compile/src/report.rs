//! What `check` reports, as text for people and as one JSON object for tools.

use crate::model::PassCounts;
use serde_json::{json, Value};
use veltair_ir::Comparison;
use veltair_ir::{Graph, NodeStats};

/// One listed layer (graph node).
pub struct LayerRow {
    pub name: String,
    pub op: String,
    pub output: String,
    pub stats: NodeStats,
}

pub struct OutputResult {
    pub name: String,
    pub cmp: Comparison,
}

pub struct DataResult {
    pub dir: String,
    pub outputs: Vec<OutputResult>,
}

pub struct CheckReport {
    pub model: String,
    pub opset: i64,
    pub layers: Vec<LayerRow>,
    /// Inputs specialised to their sample values because they fix shapes.
    pub bound_inputs: Vec<String>,
    /// `None` when the passes were skipped.
    pub passes: Option<PassCounts>,
    pub data: Vec<DataResult>,
}

pub fn layer_rows(graph: &Graph) -> Vec<LayerRow> {
    graph
        .nodes
        .iter()
        .map(|n| LayerRow {
            name: n.name.clone(),
            op: n.source_op.clone(),
            output: graph.value(n.outputs[0]).ty.to_string(),
            stats: NodeStats::of(graph, n),
        })
        .collect()
}

fn io(graph: &Graph, ids: &[veltair_ir::ValueId]) -> Vec<Value> {
    ids.iter()
        .map(|&id| {
            let v = graph.value(id);
            json!({"name": v.name, "dtype": v.ty.dtype.to_string(), "shape": v.ty.shape})
        })
        .collect()
}

/// JSON-safe number (infinite errors become null).
fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

impl CheckReport {
    fn total_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.stats.macs).sum()
    }

    pub fn to_json(&self, graph: &Graph) -> Value {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| json!({"name": l.name, "op": l.op, "output": l.output, "macs": l.stats.macs, "param_bytes": l.stats.param_bytes}))
            .collect();
        let data: Vec<Value> = self
            .data
            .iter()
            .map(|d| {
                let outs: Vec<Value> = d
                    .outputs
                    .iter()
                    .map(|o| json!({"name": o.name, "max_abs_err": num(o.cmp.max_abs), "max_rel_err": num(o.cmp.max_rel), "ok": o.cmp.ok, "mismatch": o.cmp.mismatch}))
                    .collect();
                json!({"dir": d.dir, "ok": d.outputs.iter().all(|o| o.cmp.ok), "outputs": outs})
            })
            .collect();
        json!({
            "model": self.model,
            "opset": self.opset,
            "inputs": io(graph, &graph.inputs),
            "outputs": io(graph, &graph.outputs),
            "bound_inputs": self.bound_inputs,
            "passes": self.passes.as_ref().map(|p| json!({"folded_batch_norms": p.folded_batch_norms, "silus": p.silus, "gelus": p.gelus, "fused_nodes": p.fused_nodes, "lifted_1d_layers": p.lifted_1d_layers, "im2col_convs": p.im2col_convs, "expanded_norms": p.expanded_norms, "separated_3d_pools": p.separated_3d_pools})),
            "layers": layers,
            "totals": {"layers": self.layers.len(), "macs": self.total_macs(), "weight_bytes": graph.weight_bytes()},
            "data": data,
        })
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn print_text(r: &CheckReport, graph: &Graph) {
    println!("model {} (opset {})", r.model, r.opset);
    for (kind, ids) in [("input", &graph.inputs), ("output", &graph.outputs)] {
        for &id in ids.iter() {
            let v = graph.value(id);
            println!("  {kind:6} {:24} {}", v.name, v.ty);
        }
    }
    if !r.bound_inputs.is_empty() {
        println!("  inputs fixed to their data values (they determine shapes): {}", r.bound_inputs.join(", "));
    }
    if let Some(p) = &r.passes {
        println!(
            "  passes: {} BatchNormalization folded into convolutions, {} x·sigmoid(x) made SiLU, {} erf GELUs made GELU, {} element-wise nodes fused into layers, {} 1-D layers recast as 2-D, {} convolutions as explicit im2col, {} normalisations expanded, {} 3-D poolings as two 2-D ones",
            p.folded_batch_norms,
            p.silus,
            p.gelus,
            p.fused_nodes,
            p.lifted_1d_layers,
            p.im2col_convs,
            p.expanded_norms,
            p.separated_3d_pools
        );
    }
    let name_w = r.layers.iter().map(|l| l.name.len()).max().unwrap_or(4).clamp(4, 40);
    let op_w = r.layers.iter().map(|l| l.op.len()).max().unwrap_or(2).clamp(2, 48);
    println!();
    println!("{:>5}  {:name_w$}  {:op_w$}  {:24}  {:>14}  {:>12}", "#", "name", "op", "output", "MACs", "params");
    for (i, l) in r.layers.iter().enumerate() {
        let name: String = l.name.chars().take(name_w).collect();
        println!(
            "{:>5}  {:name_w$}  {:op_w$}  {:24}  {:>14}  {:>12}",
            i, name, l.op, l.output, l.stats.macs, l.stats.param_bytes
        );
    }
    println!();
    println!(
        "totals: {} layers, {:.3} GMACs, weights {}",
        r.layers.len(),
        r.total_macs() as f64 / 1e9,
        mib(graph.weight_bytes() as u64)
    );
    for d in &r.data {
        println!();
        println!("data {}:", d.dir);
        for o in &d.outputs {
            let verdict = if o.cmp.ok { "ok" } else { "MISMATCH" };
            match &o.cmp.mismatch {
                Some(m) => println!("  {:24} {verdict}: {m}", o.name),
                None => println!(
                    "  {:24} {verdict}  max abs err {:.3e}, max rel err {:.3e}",
                    o.name, o.cmp.max_abs, o.cmp.max_rel
                ),
            }
        }
    }
}
