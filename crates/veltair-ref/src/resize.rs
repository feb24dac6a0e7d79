//! Resize (nearest, linear, cubic), applied one axis at a time from the last axis to the first,
//! which matches the ONNX reference's recursive N-D interpolation. Computed in f64.

use crate::elementwise::cast_data;
use veltair_ir::{CoordMode, IrError, NearestMode, ResizeAttrs, ResizeMode, Tensor, TensorData};

/// Input taps for one output position: `(input index, weight)`, or `None` to emit the
/// extrapolation value.
pub type Taps = Option<Vec<(usize, f64)>>;

/// The taps of every output position of `axis` when resizing `input` positions to `output`
/// (what code generators need to resample the same way).
pub fn axis_taps(r: &ResizeAttrs, axis: usize, input: usize, output: usize) -> Vec<Taps> {
    (0..output).map(|o| taps(r, axis, o, input, output)).collect()
}

/// The input coordinate that output coordinate `x` maps back to on `axis`. Like the ONNX
/// reference, the "output width" in the formulas is `scale * input` (not the rounded size).
fn source_coord(r: &ResizeAttrs, axis: usize, x: usize, input: usize, output: usize) -> f64 {
    let (x, scale, in_f) = (x as f64, r.scales[axis] as f64, input as f64);
    let out_f = scale * in_f;
    match r.coord {
        CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordMode::HalfPixelSymmetric => {
            let adjustment = output as f64 / out_f;
            let center = in_f / 2.0;
            center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
        }
        CoordMode::PytorchHalfPixel => {
            if out_f == 1.0 {
                -0.5
            } else {
                (x + 0.5) / scale - 0.5
            }
        }
        CoordMode::AlignCorners => {
            if out_f == 1.0 {
                0.0
            } else {
                x * (in_f - 1.0) / (out_f - 1.0)
            }
        }
        CoordMode::Asymmetric => x / scale,
        CoordMode::TfCropAndResize => {
            let (start, end) = (r.roi[axis] as f64, r.roi[axis + r.scales.len()] as f64);
            let span = if out_f == 1.0 {
                (end - start) * (in_f - 1.0) / 2.0
            } else {
                x * (end - start) * (in_f - 1.0) / (out_f - 1.0)
            };
            span + start * (in_f - 1.0)
        }
    }
}

fn nearest_index(mode: NearestMode, c: f64) -> f64 {
    match mode {
        NearestMode::RoundPreferFloor => {
            if c.fract().abs() == 0.5 {
                c.floor()
            } else {
                c.round()
            }
        }
        NearestMode::RoundPreferCeil => {
            if c.fract().abs() == 0.5 {
                c.ceil()
            } else {
                c.round()
            }
        }
        NearestMode::Floor => c.floor(),
        NearestMode::Ceil => c.ceil(),
    }
}

fn cubic_weight(t: f64, a: f64) -> f64 {
    let t = t.abs();
    if t <= 1.0 {
        (a + 2.0) * t.powi(3) - (a + 3.0) * t * t + 1.0
    } else if t < 2.0 {
        a * t.powi(3) - 5.0 * a * t * t + 8.0 * a * t - 4.0 * a
    } else {
        0.0
    }
}

fn taps(r: &ResizeAttrs, axis: usize, x: usize, input: usize, output: usize) -> Taps {
    let c = source_coord(r, axis, x, input, output);
    let last = input as f64 - 1.0;
    if r.coord == CoordMode::TfCropAndResize && !(0.0..=last).contains(&c) {
        return None;
    }
    let clamp = |i: i64| i.clamp(0, input as i64 - 1) as usize;
    if r.mode == ResizeMode::Nearest {
        return Some(vec![(clamp(nearest_index(r.nearest, c) as i64), 1.0)]);
    }
    // As in the ONNX reference: `base` is the input index left of `c`, `frac` in (0, 1].
    let base = c.ceil() - 1.0;
    let frac = c - base;
    let b = base as i64;
    let a = r.cubic_coeff_a as f64;
    let kernel = |t: f64| {
        if r.mode == ResizeMode::Linear {
            (1.0 - t.abs()).max(0.0)
        } else {
            cubic_weight(t, a)
        }
    };
    let raw: Vec<(i64, f64)> = if r.antialias {
        // The filter is stretched by 1/scale when downsampling and its weights normalised.
        let s = (r.scales[axis] as f64).min(1.0);
        let support = if r.mode == ResizeMode::Linear { 1.0 } else { 2.0 };
        let start = (-support / s).floor() as i64 + 1;
        let taps: Vec<(i64, f64)> = (start..2 - start).map(|k| (b + k, kernel((k as f64 - frac) * s))).collect();
        let total: f64 = taps.iter().map(|t| t.1).sum();
        taps.into_iter().map(|(i, w)| (i, w / total)).collect()
    } else if r.mode == ResizeMode::Linear {
        vec![(b, 1.0 - frac), (b + 1, frac)]
    } else {
        (-1..=2).map(|k| (b + k, kernel(frac - k as f64))).collect()
    };
    let inside = |i: i64| i >= 0 && i < input as i64;
    let mut weighted: Vec<(usize, f64)> =
        raw.iter().filter(|(i, _)| !r.exclude_outside || inside(*i)).map(|&(i, w)| (clamp(i), w)).collect();
    if r.exclude_outside {
        let total: f64 = weighted.iter().map(|t| t.1).sum();
        weighted.iter_mut().for_each(|t| t.1 /= total);
    }
    Some(weighted)
}

/// Resizes `x` to `r.out_shape`.
pub fn resize(r: &ResizeAttrs, x: &Tensor) -> Result<Tensor, IrError> {
    let mut shape = x.shape().to_vec();
    let mut data = x.data().to_f64_vec();
    for axis in (0..shape.len()).rev() {
        let (input, output) = (shape[axis], r.out_shape[axis]);
        if input == 0 {
            return Err(IrError::value("Resize of an empty axis"));
        }
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let plan = axis_taps(r, axis, input, output);
        let mut next = Vec::with_capacity(outer * output * inner);
        for o in 0..outer {
            for t in &plan {
                for i in 0..inner {
                    next.push(match t {
                        None => r.extrapolation_value as f64,
                        Some(ts) => ts.iter().map(|&(k, w)| w * data[(o * input + k) * inner + i]).sum(),
                    });
                }
            }
        }
        shape[axis] = output;
        data = next;
    }
    Tensor::new(shape, cast_data(&TensorData::F64(data), x.dtype()))
}
