//! Direct convolution and transposed convolution over 1, 2 or 3 spatial axes (1-D and 2-D are
//! evaluated as 3-D with leading unit axes).

use veltair_ir::{ConvAttrs, IrError, Tensor, TensorType};

/// Geometry lifted to exactly three spatial axes.
struct Geometry {
    input: [usize; 3],
    output: [usize; 3],
    kernel: [usize; 3],
    stride: [usize; 3],
    dilation: [usize; 3],
    pad: [usize; 3],
}

fn lift(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

fn geometry(a: &ConvAttrs, input: &[usize], output: &[usize]) -> Geometry {
    Geometry {
        input: lift(&input[2..], 1),
        output: lift(&output[2..], 1),
        kernel: lift(&a.kernel, 1),
        stride: lift(&a.strides, 1),
        dilation: lift(&a.dilations, 1),
        pad: lift(&a.pads_begin, 0),
    }
}

/// Range of output positions `o` with `0 <= o*stride - pad + k*dilation < input`.
fn valid_outputs(out: usize, input: usize, stride: usize, offset: isize) -> std::ops::Range<usize> {
    // Position o reads input index o*stride + offset.
    let lo = if offset >= 0 { 0 } else { ((-offset) as usize).div_ceil(stride) };
    let hi = if (input as isize) <= offset { 0 } else { ((input as isize - offset) as usize).div_ceil(stride) };
    lo.min(out)..hi.min(out)
}

fn bias_init(bias: Option<&Tensor>, m: usize) -> Result<f32, IrError> {
    Ok(match bias {
        Some(b) => b.as_f32("Conv bias")?[m],
        None => 0.0,
    })
}

/// `Conv`: y[n, m, o] = b[m] + sum over c in m's group and kernel taps of w[m, c, k] * x[n, c, o*s - p + k*d].
pub fn conv(a: &ConvAttrs, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, out: TensorType) -> Result<Tensor, IrError> {
    let (xs, ws) = (x.as_f32("Conv input")?, w.as_f32("Conv weight")?);
    let g = geometry(a, x.shape(), &out.shape);
    let (batch, channels, m_all) = (x.shape()[0], x.shape()[1], out.shape[1]);
    let (cg, mg) = (channels / a.group, m_all / a.group);
    let in_plane: usize = g.input.iter().product();
    let out_plane: usize = g.output.iter().product();
    let k_plane: usize = g.kernel.iter().product();
    let mut y = vec![0f32; out.numel()];
    for n in 0..batch {
        for m in 0..m_all {
            let group = m / mg;
            let yo = &mut y[(n * m_all + m) * out_plane..][..out_plane];
            yo.fill(bias_init(bias, m)?);
            for c in 0..cg {
                let xi = &xs[(n * channels + group * cg + c) * in_plane..][..in_plane];
                let wk = &ws[(m * cg + c) * k_plane..][..k_plane];
                accumulate_taps(&g, xi, wk, yo);
            }
        }
    }
    Tensor::from_f32(out.shape, y)
}

/// Adds the contribution of one input plane through one kernel to one output plane.
fn accumulate_taps(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    let [ih, iw] = [g.input[1], g.input[2]];
    let [oh, ow] = [g.output[1], g.output[2]];
    let mut tap = 0;
    for kd in 0..g.kernel[0] {
        let off_d = (kd * g.dilation[0]) as isize - g.pad[0] as isize;
        let rd = valid_outputs(g.output[0], g.input[0], g.stride[0], off_d);
        for kh in 0..g.kernel[1] {
            let off_h = (kh * g.dilation[1]) as isize - g.pad[1] as isize;
            let rh = valid_outputs(oh, ih, g.stride[1], off_h);
            for kw in 0..g.kernel[2] {
                let wv = w[tap];
                tap += 1;
                let off_w = (kw * g.dilation[2]) as isize - g.pad[2] as isize;
                let rw = valid_outputs(ow, iw, g.stride[2], off_w);
                for od in rd.clone() {
                    let id = (od * g.stride[0]) as isize + off_d;
                    for oy in rh.clone() {
                        let iy = (oy * g.stride[1]) as isize + off_h;
                        let xrow = (id as usize * ih + iy as usize) * iw;
                        let yrow = (od * oh + oy) * ow;
                        for ox in rw.clone() {
                            let ix = ((ox * g.stride[2]) as isize + off_w) as usize;
                            y[yrow + ox] += wv * x[xrow + ix];
                        }
                    }
                }
            }
        }
    }
}

/// `ConvTranspose`: every input element scatters x[n, c, i] * w[c, m, k] to y[n, m, i*s - p + k*d].
pub fn conv_transpose(
    a: &ConvAttrs,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out: TensorType,
) -> Result<Tensor, IrError> {
    let (xs, ws) = (x.as_f32("ConvTranspose input")?, w.as_f32("ConvTranspose weight")?);
    let g = geometry(a, x.shape(), &out.shape);
    let (batch, channels, m_all) = (x.shape()[0], x.shape()[1], out.shape[1]);
    let (cg, mg) = (channels / a.group, m_all / a.group);
    let in_plane: usize = g.input.iter().product();
    let out_plane: usize = g.output.iter().product();
    let k_plane: usize = g.kernel.iter().product();
    let mut y = vec![0f32; out.numel()];
    for n in 0..batch {
        for m in 0..m_all {
            let b = bias_init(bias, m)?;
            y[(n * m_all + m) * out_plane..][..out_plane].fill(b);
        }
        for c in 0..channels {
            let group = c / cg;
            let xi = &xs[(n * channels + c) * in_plane..][..in_plane];
            for mi in 0..mg {
                let m = group * mg + mi;
                let wk = &ws[(c * mg + mi) * k_plane..][..k_plane];
                let yo = &mut y[(n * m_all + m) * out_plane..][..out_plane];
                scatter_taps(&g, xi, wk, yo);
            }
        }
    }
    Tensor::from_f32(out.shape, y)
}

fn scatter_taps(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    let out = |i: usize, k: usize, axis: usize| -> Option<usize> {
        let o = (i * g.stride[axis] + k * g.dilation[axis]) as isize - g.pad[axis] as isize;
        (o >= 0 && (o as usize) < g.output[axis]).then_some(o as usize)
    };
    let mut tap = 0;
    for kd in 0..g.kernel[0] {
        for kh in 0..g.kernel[1] {
            for kw in 0..g.kernel[2] {
                let wv = w[tap];
                tap += 1;
                for id in 0..g.input[0] {
                    let Some(od) = out(id, kd, 0) else { continue };
                    for iy in 0..g.input[1] {
                        let Some(oy) = out(iy, kh, 1) else { continue };
                        for ix in 0..g.input[2] {
                            let Some(ox) = out(ix, kw, 2) else { continue };
                            let xv = x[(id * g.input[1] + iy) * g.input[2] + ix];
                            y[(od * g.output[1] + oy) * g.output[2] + ox] += wv * xv;
                        }
                    }
                }
            }
        }
    }
}
