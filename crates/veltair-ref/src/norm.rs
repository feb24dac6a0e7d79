//! Normalisations: Softmax/LogSoftmax, LayerNormalization, BatchNormalization (inference),
//! InstanceNormalization and LRN. Statistics are accumulated in f64.

use veltair_ir::shape::broadcast_index;
use veltair_ir::{IrError, Tensor};

/// Softmax (or LogSoftmax) along `axis`; with `coerce_2d` over all axes from `axis` on.
pub fn softmax(x: &Tensor, axis: usize, log: bool, coerce_2d: bool) -> Result<Tensor, IrError> {
    let v = x.as_f32("Softmax input")?;
    let shape = x.shape();
    let outer: usize = shape[..axis].iter().product();
    let (dim, inner) =
        if coerce_2d { (shape[axis..].iter().product(), 1) } else { (shape[axis], shape[axis + 1..].iter().product()) };
    let mut y = vec![0f32; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * dim + k) * inner + i;
            let max = (0..dim).map(|k| v[at(k)] as f64).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..dim).map(|k| (v[at(k)] as f64 - max).exp()).sum();
            for k in 0..dim {
                let z = v[at(k)] as f64 - max;
                y[at(k)] = if log { z - sum.ln() } else { z.exp() / sum } as f32;
            }
        }
    }
    Tensor::from_f32(shape.to_vec(), y)
}

/// LayerNormalization over the axes from `axis` on. Returns y, mean and inverse std-dev.
pub fn layer_norm(
    x: &Tensor,
    scale: &Tensor,
    bias: Option<&Tensor>,
    axis: usize,
    eps: f32,
) -> Result<Vec<Tensor>, IrError> {
    let v = x.as_f32("LayerNormalization input")?;
    let norm_shape = &x.shape()[axis..];
    let n: usize = norm_shape.iter().product();
    let rows = v.len().checked_div(n).unwrap_or(0);
    let sc = scale.as_f32("LayerNormalization scale")?;
    let sc_idx = broadcast_index(scale.shape(), norm_shape);
    let bias_vals = match bias {
        Some(b) => Some((b.as_f32("LayerNormalization bias")?, broadcast_index(b.shape(), norm_shape))),
        None => None,
    };
    let mut y = vec![0f32; v.len()];
    let (mut means, mut inv_stds) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for r in 0..rows {
        let row = &v[r * n..][..n];
        let mean = row.iter().map(|&a| a as f64).sum::<f64>() / n as f64;
        let var = row.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for k in 0..n {
            let mut out = (row[k] as f64 - mean) * inv * sc[sc_idx[k]] as f64;
            if let Some((b, bi)) = &bias_vals {
                out += b[bi[k]] as f64;
            }
            y[r * n + k] = out as f32;
        }
        means.push(mean as f32);
        inv_stds.push(inv as f32);
    }
    let mut stat_shape = x.shape().to_vec();
    stat_shape[axis..].iter_mut().for_each(|d| *d = 1);
    Ok(vec![
        Tensor::from_f32(x.shape().to_vec(), y)?,
        Tensor::from_f32(stat_shape.clone(), means)?,
        Tensor::from_f32(stat_shape, inv_stds)?,
    ])
}

/// Applies `f(channel, value)` to every element of an `[N, C, ...]` tensor.
fn per_channel(x: &Tensor, mut f: impl FnMut(usize, usize, &[f32]) -> Vec<f32>) -> Result<Tensor, IrError> {
    let v = x.as_f32("normalization input")?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let plane: usize = x.shape()[2..].iter().product();
    let mut y = Vec::with_capacity(v.len());
    for b in 0..n {
        for ch in 0..c {
            y.extend(f(b, ch, &v[(b * c + ch) * plane..][..plane]));
        }
    }
    Tensor::from_f32(x.shape().to_vec(), y)
}

/// BatchNormalization in inference mode: (x - mean) / sqrt(var + eps) * scale + bias.
pub fn batch_norm(x: &Tensor, params: [&Tensor; 4], eps: f32) -> Result<Tensor, IrError> {
    let [scale, bias, mean, var] = params.map(|p| p.as_f32("BatchNormalization parameter"));
    let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
    per_channel(x, |_, c, plane| {
        let inv = 1.0 / (var[c] as f64 + eps as f64).sqrt();
        plane.iter().map(|&a| ((a as f64 - mean[c] as f64) * inv * scale[c] as f64 + bias[c] as f64) as f32).collect()
    })
}

/// InstanceNormalization: per sample and channel over the spatial axes.
pub fn instance_norm(x: &Tensor, scale: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor, IrError> {
    let (scale, bias) = (scale.as_f32("InstanceNormalization scale")?, bias.as_f32("InstanceNormalization bias")?);
    per_channel(x, |_, c, plane| {
        let n = plane.len().max(1) as f64;
        let mean = plane.iter().map(|&a| a as f64).sum::<f64>() / n;
        let var = plane.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + eps as f64).sqrt();
        plane.iter().map(|&a| ((a as f64 - mean) * inv * scale[c] as f64 + bias[c] as f64) as f32).collect()
    })
}

/// LRN across channels: x / (bias + alpha/size * sum of squares over the channel window)^beta.
pub fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<Tensor, IrError> {
    let v = x.as_f32("LRN input")?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let plane: usize = x.shape()[2..].iter().product();
    // ONNX: channels c − floor((size − 1) / 2) ..= c + ceil((size − 1) / 2).
    let (lo, hi) = ((size - 1) / 2, size / 2);
    let mut y = vec![0f32; v.len()];
    for b in 0..n {
        for ch in 0..c {
            let first = ch.saturating_sub(lo);
            let last = (ch + hi).min(c - 1);
            for p in 0..plane {
                let sq: f64 = (first..=last).map(|k| (v[(b * c + k) * plane + p] as f64).powi(2)).sum();
                let at = (b * c + ch) * plane + p;
                let denom = (bias as f64 + alpha as f64 / size as f64 * sq).powf(beta as f64);
                y[at] = (v[at] as f64 / denom) as f32;
            }
        }
    }
    Tensor::from_f32(x.shape().to_vec(), y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrn_windows_of_even_size_reach_ceil_half_ahead() {
        // size 2: each channel's window is itself and the next one (ONNX: lo 0, hi 1).
        let x = Tensor::from_f32(vec![1, 3, 1, 1], vec![1.0, 2.0, 3.0]).unwrap();
        let y = lrn(&x, 2, 2.0, 1.0, 0.0).unwrap();
        let want = [1.0 / (1.0 + 4.0), 2.0 / (4.0 + 9.0), 3.0 / 9.0];
        for (g, w) in y.as_f32("y").unwrap().iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }
}
