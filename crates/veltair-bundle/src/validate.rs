//! The manifest rules, shared by the writer and the reader so the writer never produces a bundle
//! the reader refuses: every reference in range, every width range consistent, every float finite.

use crate::error::BundleError;
use crate::layout::{CODE_ALIGN, WEIGHT_ALIGN};
use crate::manifest::{arg::Region, Calibration, Constant, DType, Kernel, Layer, Manifest, Port, Version};

/// Bytes per stored constant element (f32).
const ELEM_BYTES: u64 = 4;

/// Checks `m` against itself and the lengths of the code and weights sections.
pub(crate) fn validate(m: &Manifest, code_len: u64, weights_len: u64) -> Result<(), BundleError> {
    check_ports("input", &m.inputs, m.arena_elems)?;
    check_ports("output", &m.outputs, m.arena_elems)?;
    check_kernels(&m.kernels, code_len)?;
    check_constants(&m.constants, weights_len)?;
    for layer in &m.layers {
        check_layer(m, layer)?;
    }
    if let Some(calibration) = &m.calibration {
        check_calibration(calibration)?;
    }
    Ok(())
}

/// Kernel `index`'s alignment must be a power of two no larger than a page.
pub(crate) fn check_alignment(index: usize, alignment: u64) -> Result<(), BundleError> {
    if alignment.is_power_of_two() && alignment <= CODE_ALIGN as u64 {
        Ok(())
    } else {
        Err(invalid(format!("kernel {index} has alignment {alignment}, not a power of two in 1..={CODE_ALIGN}")))
    }
}

/// Byte length of `constant`, checked.
pub(crate) fn constant_bytes(constant: &Constant) -> Option<u64> {
    constant.elems.checked_mul(ELEM_BYTES)
}

fn invalid(message: String) -> BundleError {
    BundleError::Manifest(message)
}

fn check_ports(kind: &str, ports: &[Port], arena_elems: u64) -> Result<(), BundleError> {
    for port in ports {
        let name = &port.name;
        let dtype = DType::try_from(port.dtype)
            .map_err(|_| invalid(format!("{kind} `{name}` has unknown dtype {}", port.dtype)))?;
        if port.fixed.is_some() {
            continue;
        }
        let end = port
            .shape
            .iter()
            .try_fold(dtype.slots(), |slots, &dim| slots.checked_mul(dim))
            .and_then(|slots| port.offset.checked_add(slots));
        if end.is_none_or(|end| end > arena_elems) {
            return Err(invalid(format!(
                "{kind} `{name}` ({dtype:?} {:?} at slot {}) does not fit the arena of {arena_elems} elements",
                port.shape, port.offset
            )));
        }
    }
    Ok(())
}

fn check_kernels(kernels: &[Kernel], code_len: u64) -> Result<(), BundleError> {
    let mut ranges = Vec::with_capacity(kernels.len());
    for (i, k) in kernels.iter().enumerate() {
        check_alignment(i, k.alignment)?;
        if k.code_offset % k.alignment != 0 {
            return Err(invalid(format!(
                "kernel {i} code offset {} is not a multiple of its alignment {}",
                k.code_offset, k.alignment
            )));
        }
        if k.code_len == 0 {
            return Err(invalid(format!("kernel {i} has no code")));
        }
        let end = k.code_offset.checked_add(k.code_len).filter(|&end| end <= code_len).ok_or_else(|| {
            invalid(format!(
                "kernel {i} code ({} bytes at {}) lies outside the code section of {code_len} bytes",
                k.code_len, k.code_offset
            ))
        })?;
        if k.max_threads == 0 {
            return Err(invalid(format!("kernel {i} allows no threads (max_threads 0)")));
        }
        ranges.push((k.code_offset, end, i));
    }
    check_disjoint("kernel", ranges)
}

fn check_constants(constants: &[Constant], weights_len: u64) -> Result<(), BundleError> {
    let mut ranges = Vec::with_capacity(constants.len());
    for (i, c) in constants.iter().enumerate() {
        if c.offset % WEIGHT_ALIGN as u64 != 0 {
            return Err(invalid(format!("constant {i} offset {} is not a multiple of {WEIGHT_ALIGN}", c.offset)));
        }
        let end = constant_bytes(c)
            .and_then(|bytes| c.offset.checked_add(bytes))
            .filter(|&end| end <= weights_len)
            .ok_or_else(|| {
                invalid(format!(
                    "constant {i} ({} elements at {}) lies outside the weights section of {weights_len} bytes",
                    c.elems, c.offset
                ))
            })?;
        ranges.push((c.offset, end, i));
    }
    check_disjoint("constant", ranges)
}

/// No two of the `(start, end, index)` ranges overlap.
fn check_disjoint(what: &str, mut ranges: Vec<(u64, u64, usize)>) -> Result<(), BundleError> {
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        if let [(_, end_a, a), (start_b, _, b)] = pair {
            if start_b < end_a {
                return Err(invalid(format!("{what}s {a} and {b} overlap")));
            }
        }
    }
    Ok(())
}

fn check_layer(m: &Manifest, layer: &Layer) -> Result<(), BundleError> {
    let label = &layer.label;
    if layer.versions.is_empty() {
        return Err(invalid(format!("layer `{label}` has no versions")));
    }
    if !layer.qos_weight.is_finite() {
        return Err(invalid(format!("layer `{label}` has qos_weight {}", layer.qos_weight)));
    }
    for (v, version) in layer.versions.iter().enumerate() {
        check_version(m, &format!("layer `{label}` version {v}"), version)?;
    }
    Ok(())
}

/// Checks one version; `at` names it in messages.
fn check_version(m: &Manifest, at: &str, version: &Version) -> Result<(), BundleError> {
    let k = version.kernel;
    let kernel = usize::try_from(k)
        .ok()
        .and_then(|k| m.kernels.get(k))
        .ok_or_else(|| invalid(format!("{at} names kernel {k}, bundle has {}", m.kernels.len())))?;
    if version.args.len() != kernel.arg_elems.len() {
        return Err(invalid(format!(
            "{at} passes {} arguments, kernel {k} takes {}",
            version.args.len(),
            kernel.arg_elems.len()
        )));
    }
    for (a, (arg, &need)) in version.args.iter().zip(&kernel.arg_elems).enumerate() {
        match &arg.region {
            None => return Err(invalid(format!("{at} argument {a} has no region"))),
            Some(Region::Arena(r)) => {
                if r.offset.checked_add(r.len).is_none_or(|end| end > m.arena_elems) {
                    return Err(invalid(format!(
                        "{at} argument {a} (arena {} elements at {}) lies outside the arena of {} elements",
                        r.len, r.offset, m.arena_elems
                    )));
                }
                if r.len < need {
                    return Err(invalid(format!(
                        "{at} argument {a} has {} arena elements, kernel {k} needs {need}",
                        r.len
                    )));
                }
            }
            Some(Region::Constant(c)) => {
                let constant = usize::try_from(*c).ok().and_then(|c| m.constants.get(c)).ok_or_else(|| {
                    invalid(format!("{at} argument {a} names constant {c}, bundle has {}", m.constants.len()))
                })?;
                if constant.elems < need {
                    return Err(invalid(format!(
                        "{at} argument {a} is constant {c} of {} elements, kernel {k} needs {need}",
                        constant.elems
                    )));
                }
            }
        }
    }
    let (min, max) = (version.min_width, version.max_width);
    if min == 0 || min > max || max > kernel.max_threads {
        return Err(invalid(format!(
            "{at} has widths {min}..={max}, not within 1..={} of kernel {k}",
            kernel.max_threads
        )));
    }
    for latency in &version.latencies {
        if !(min..=max).contains(&latency.width) {
            return Err(invalid(format!(
                "{at} has a latency at width {}, outside its widths {min}..={max}",
                latency.width
            )));
        }
        if !latency.seconds.is_finite() || latency.seconds < 0.0 {
            return Err(invalid(format!(
                "{at} has latency {} s at width {} level {}",
                latency.seconds, latency.width, latency.level
            )));
        }
    }
    Ok(())
}

fn check_calibration(calibration: &Calibration) -> Result<(), BundleError> {
    for (i, level) in calibration.levels.iter().enumerate() {
        if usize::try_from(level.level).ok() != Some(i) {
            return Err(invalid(format!("calibration level {i} is numbered {}", level.level)));
        }
        if !level.slowdown.is_finite() || level.slowdown < 1.0 {
            return Err(invalid(format!(
                "calibration level {i} has slowdown {}, below 1 or not finite",
                level.slowdown
            )));
        }
        if !level.intensity.is_finite() {
            return Err(invalid(format!("calibration level {i} has intensity {}", level.intensity)));
        }
    }
    Ok(())
}
