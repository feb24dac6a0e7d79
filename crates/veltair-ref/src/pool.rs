//! Pooling: MaxPool (with optional indices), AveragePool and the global forms, over 1, 2 or 3
//! spatial axes (lifted to three like convolution).

use veltair_ir::{IrError, PoolAttrs, Tensor, TensorType};

fn lift(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

/// One pooling window: for every tap inside the input, its flat spatial index; plus the
/// number of taps inside input-or-explicit-padding (the `count_include_pad` divisor).
struct Window {
    taps: Vec<usize>,
    padded_count: usize,
}

/// Iterates the windows of every output position in row-major order.
fn windows(p: &PoolAttrs, in_sp: &[usize], out_sp: &[usize]) -> Vec<Window> {
    let (i, o) = (lift(in_sp, 1), lift(out_sp, 1));
    let (k, s, d) = (lift(&p.kernel, 1), lift(&p.strides, 1), lift(&p.dilations, 1));
    let (pb, pe) = (lift(&p.pads_begin, 0), lift(&p.pads_end, 0));
    // Per axis and output position: the in-input coordinates, and the count within padding.
    let axis_taps = |a: usize, out: usize| -> (Vec<usize>, usize) {
        let mut inside = Vec::new();
        let mut padded = 0;
        for t in 0..k[a] {
            let pos = (out * s[a] + t * d[a]) as isize - pb[a] as isize;
            if pos >= -(pb[a] as isize) && pos < (i[a] + pe[a]) as isize {
                padded += 1;
            }
            if pos >= 0 && (pos as usize) < i[a] {
                inside.push(pos as usize);
            }
        }
        (inside, padded)
    };
    let mut all = Vec::with_capacity(o.iter().product());
    for od in 0..o[0] {
        let (td, cd) = axis_taps(0, od);
        for oh in 0..o[1] {
            let (th, ch) = axis_taps(1, oh);
            for ow in 0..o[2] {
                let (tw, cw) = axis_taps(2, ow);
                let mut taps = Vec::with_capacity(td.len() * th.len() * tw.len());
                for &zd in &td {
                    for &zh in &th {
                        for &zw in &tw {
                            taps.push((zd * i[1] + zh) * i[2] + zw);
                        }
                    }
                }
                all.push(Window { taps, padded_count: cd * ch * cw });
            }
        }
    }
    all
}

/// Spatial flat index in column-major order (MaxPool `storage_order = 1`).
fn column_major(index: usize, in_sp: &[usize]) -> usize {
    let mut rest = index;
    let mut coords = vec![0; in_sp.len()];
    for a in (0..in_sp.len()).rev() {
        coords[a] = rest % in_sp[a];
        rest /= in_sp[a];
    }
    let mut flat = 0;
    let mut stride = 1;
    for a in 0..in_sp.len() {
        flat += coords[a] * stride;
        stride *= in_sp[a];
    }
    flat
}

/// `MaxPool`: the window maximum and the flat input index where it was found.
pub fn max_pool(p: &PoolAttrs, x: &Tensor, out: TensorType) -> Result<Vec<Tensor>, IrError> {
    let v = x.as_f32("MaxPool input")?;
    let in_sp = &x.shape()[2..];
    let wins = windows(p, in_sp, &out.shape[2..]);
    let planes = x.shape()[0] * x.shape()[1];
    let in_plane: usize = in_sp.iter().product();
    let (mut y, mut idx) = (Vec::with_capacity(out.numel()), Vec::with_capacity(out.numel()));
    for pl in 0..planes {
        let xs = &v[pl * in_plane..][..in_plane];
        for w in &wins {
            let mut best = (f32::NEG_INFINITY, 0usize);
            for &t in &w.taps {
                if xs[t] > best.0 || best.0.is_nan() {
                    best = (xs[t], t);
                }
            }
            if w.taps.is_empty() {
                best.0 = f32::NAN;
            }
            y.push(best.0);
            let spatial = if p.column_major_indices { column_major(best.1, in_sp) } else { best.1 };
            idx.push((pl * in_plane + spatial) as i64);
        }
    }
    Ok(vec![Tensor::from_f32(out.shape.clone(), y)?, Tensor::from_i64(out.shape, idx)?])
}

/// `AveragePool`: the window mean over in-input taps, or over all taps within the explicit
/// padding when `count_include_pad`.
pub fn average_pool(p: &PoolAttrs, x: &Tensor, out: TensorType) -> Result<Tensor, IrError> {
    let v = x.as_f32("AveragePool input")?;
    let in_sp = &x.shape()[2..];
    let wins = windows(p, in_sp, &out.shape[2..]);
    let planes = x.shape()[0] * x.shape()[1];
    let in_plane: usize = in_sp.iter().product();
    let mut y = Vec::with_capacity(out.numel());
    for pl in 0..planes {
        let xs = &v[pl * in_plane..][..in_plane];
        for w in &wins {
            let sum: f64 = w.taps.iter().map(|&t| xs[t] as f64).sum();
            let n = if p.count_include_pad { w.padded_count } else { w.taps.len() };
            y.push(if n == 0 { f32::NAN } else { (sum / n as f64) as f32 });
        }
    }
    Tensor::from_f32(out.shape, y)
}

/// `GlobalAveragePool` / `GlobalMaxPool` over all spatial axes.
pub fn global_pool(x: &Tensor, max: bool, out: TensorType) -> Result<Tensor, IrError> {
    let v = x.as_f32("global pooling input")?;
    let planes = x.shape()[0] * x.shape()[1];
    let plane: usize = x.shape()[2..].iter().product();
    let y = (0..planes)
        .map(|pl| {
            let xs = &v[pl * plane..][..plane];
            if max {
                xs.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            } else {
                (xs.iter().map(|&a| a as f64).sum::<f64>() / plane as f64) as f32
            }
        })
        .collect();
    Tensor::from_f32(out.shape, y)
}
