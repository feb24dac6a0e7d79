//! Graph passes: rewrites of a graph into an equivalent one that later stages prefer. Today:
//! BatchNormalization folded into the convolution that feeds it.

use crate::{Graph, Op, Tensor, TensorData, ValueId};

/// How many nodes read each value (graph outputs count as readers).
fn reader_counts(graph: &Graph) -> Vec<usize> {
    let mut counts = vec![0; graph.values.len()];
    for id in graph.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).chain(&graph.outputs) {
        counts[id.0] += 1;
    }
    counts
}

fn constant_f32(graph: &Graph, id: Option<ValueId>) -> Option<&[f32]> {
    match graph.value(id?).constant.as_ref()?.data() {
        TensorData::F32(v) => Some(v),
        _ => None,
    }
}

/// Folds every inference-mode BatchNormalization whose input is a convolution with constant
/// weights read by nothing else: the convolution's weights and bias absorb the normalisation
/// (`w' = w·s`, `b' = (b − mean)·s + beta` with `s = scale / sqrt(var + eps)` per output
/// channel) and take over the BatchNormalization's output. Returns the number folded.
pub fn fold_batch_norm(graph: &mut Graph) -> usize {
    let readers = reader_counts(graph);
    let producer: std::collections::HashMap<ValueId, usize> =
        graph.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |&o| (o, i))).collect();
    let mut folded = Vec::new();
    for bn in 0..graph.nodes.len() {
        let Op::BatchNorm { epsilon } = graph.nodes[bn].op else { continue };
        let Some(x) = graph.nodes[bn].inputs[0] else { continue };
        let Some(&conv) = producer.get(&x) else { continue };
        if !matches!(graph.nodes[conv].op, Op::Conv(_)) || readers[x.0] != 1 {
            continue;
        }
        let p: Vec<Option<&[f32]>> = (1..5).map(|i| constant_f32(graph, graph.nodes[bn].inputs[i])).collect();
        let (Some(scale), Some(beta), Some(mean), Some(var)) = (p[0], p[1], p[2], p[3]) else { continue };
        let conv_node = &graph.nodes[conv];
        let Some(w) = constant_f32(graph, conv_node.inputs[1]) else { continue };
        let w_ty = graph.value(conv_node.inputs[1].expect("conv has weights")).ty.clone();
        let out_channels = w_ty.shape[0];
        let bias = match conv_node.inputs.get(2).copied().flatten() {
            Some(b) => match constant_f32(graph, Some(b)) {
                Some(v) => v.to_vec(),
                None => continue,
            },
            None => vec![0.0; out_channels],
        };
        let factor: Vec<f64> =
            (0..out_channels).map(|c| scale[c] as f64 / (var[c] as f64 + epsilon as f64).sqrt()).collect();
        let per_channel = w.len() / out_channels;
        let new_w: Vec<f32> = w.iter().enumerate().map(|(i, &v)| (v as f64 * factor[i / per_channel]) as f32).collect();
        let new_b: Vec<f32> = (0..out_channels)
            .map(|c| ((bias[c] as f64 - mean[c] as f64) * factor[c] + beta[c] as f64) as f32)
            .collect();
        let name = graph.nodes[conv].name.clone();
        let w_id =
            graph.add_constant(format!("{name}:weight+bn"), Tensor::from_f32(w_ty.shape, new_w).expect("same shape"));
        let b_id = graph.add_constant(
            format!("{name}:bias+bn"),
            Tensor::from_f32(vec![out_channels], new_b).expect("one per channel"),
        );
        let y = graph.nodes[bn].outputs[0];
        let conv_node = &mut graph.nodes[conv];
        conv_node.inputs.resize(3, None);
        conv_node.inputs[1] = Some(w_id);
        conv_node.inputs[2] = Some(b_id);
        conv_node.outputs[0] = y;
        folded.push(bn);
    }
    let mut index = 0;
    graph.nodes.retain(|_| {
        index += 1;
        !folded.contains(&(index - 1))
    });
    folded.len()
}
