//! A plan as a bundle file and back: the compiler writes its tuned plan with `to_bundle`; the
//! runtime reads one with `open_bundle`, which maps the file, validates all of it (the bundle
//! crate's `parse`) and reads the weights in place. Code is copied into executable memory only
//! later, by the executor's loader, which first checks the CPU features the header names.

use crate::boundary::{typed_floats, typed_ints};
use crate::{Constants, Plan, Port, Step, Storage, Version};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use veltair_bundle::{arg, ArenaRegion, Arg, BundleError, BundleParts, BundleView, DType, Fixed, Header, Manifest};
use veltair_ir::Tensor;
use veltair_load::{ArgRef, MachineCode, MappedFile};

/// Why a bundle file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum BundleLoadError {
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a usable bundle: {source}", .path.display())]
    Format { path: PathBuf, source: BundleError },
}

/// The bundle bytes of `plan` under `header`.
pub fn to_bundle(plan: &Plan, header: Header) -> Result<Vec<u8>, BundleError> {
    let total_macs = plan.steps.iter().map(|s| s.macs).sum::<u64>().max(1) as f64;
    let clamp = |n: usize| n.min(u32::MAX as usize) as u32;
    let arg = |a: &ArgRef| Arg {
        region: Some(match *a {
            ArgRef::Arena { offset, len } => arg::Region::Arena(ArenaRegion { offset: offset as u64, len: len as u64 }),
            ArgRef::Const(c) => arg::Region::Constant(clamp(c)),
        }),
    };
    let manifest = Manifest {
        model: plan.name.clone(),
        inputs: plan.inputs.iter().map(port_to_bundle).collect(),
        outputs: plan.outputs.iter().map(port_to_bundle).collect(),
        arena_elems: plan.arena_elems as u64,
        kernels: plan
            .kernels
            .iter()
            .map(|k| veltair_bundle::Kernel {
                code_offset: 0,
                code_len: 0,
                alignment: k.alignment,
                arg_elems: k.arg_elems.iter().map(|&e| e as u64).collect(),
                max_threads: clamp(k.max_threads),
            })
            .collect(),
        constants: (0..plan.constants.len()).map(|_| veltair_bundle::Constant { offset: 0, elems: 0 }).collect(),
        layers: plan
            .steps
            .iter()
            .map(|s| veltair_bundle::Layer {
                label: s.label.clone(),
                macs: s.macs,
                qos_weight: s.macs as f64 / total_macs,
                versions: s
                    .versions
                    .iter()
                    .map(|v| veltair_bundle::Version {
                        kernel: clamp(v.kernel),
                        args: v.args.iter().map(arg).collect(),
                        schedule: v.schedule.clone(),
                        min_width: 1,
                        max_width: clamp(plan.kernels.get(v.kernel).map_or(1, |k| k.max_threads.min(plan.max_threads))),
                        footprint_bytes: v.footprint,
                        latencies: v.latencies.clone(),
                    })
                    .collect(),
            })
            .collect(),
        calibration: plan.calibration.clone(),
        max_threads: clamp(plan.max_threads),
    };
    let weights = (0..plan.constants.len()).filter_map(|i| plan.constants.get(i)).collect();
    let code = plan.kernels.iter().map(|k| k.bytes.as_slice()).collect();
    veltair_bundle::write(&BundleParts { header, manifest, code, weights })
}

fn port_to_bundle(p: &Port) -> veltair_bundle::Port {
    let storage = match p.storage() {
        Storage::F32 => DType::F32,
        Storage::I64 => DType::I64,
    };
    let fixed = p.fixed.as_ref().map(|t| match Storage::of(t.dtype()) {
        Storage::F32 => Fixed { floats: t.data().to_f64_vec(), ints: Vec::new() },
        Storage::I64 => Fixed { floats: Vec::new(), ints: t.data().to_i64_vec() },
    });
    veltair_bundle::Port {
        name: p.name.clone(),
        shape: p.shape.iter().map(|&d| d as u64).collect(),
        dtype: storage as i32,
        offset: p.offset as u64,
        element: p.dtype.onnx_code(),
        fixed,
    }
}

/// Maps and validates the bundle at `path`; returns its plan (weights read in place) and
/// header.
pub fn open_bundle(path: &Path) -> Result<(Plan, Header), BundleLoadError> {
    let file = Arc::new(MappedFile::open(path).map_err(|source| BundleLoadError::Io { path: path.into(), source })?);
    let format = |source| BundleLoadError::Format { path: path.into(), source };
    let view = veltair_bundle::parse(file.bytes()).map_err(format)?;
    let ranges = (0..view.manifest.constants.len()).filter_map(|c| view.constant_range(c)).collect();
    let constants = Constants::mapped(file.clone(), ranges)
        .ok_or_else(|| format(BundleError::Manifest("constants are not aligned f32 data in the file".into())))?;
    Ok((from_bundle(&view, constants).map_err(format)?, view.header.clone()))
}

/// The plan a validated bundle describes, with `constants` standing for its weights. Every
/// index and range was checked by `parse`; the ports' element types are checked here.
pub fn from_bundle(view: &BundleView, constants: Constants) -> Result<Plan, BundleError> {
    let m = &view.manifest;
    let features = &view.header.cpu_features;
    let kernels = (0..m.kernels.len())
        .map(|k| {
            let meta = &m.kernels[k];
            MachineCode {
                bytes: view.kernel_code(k).unwrap_or_default().to_vec(),
                alignment: meta.alignment,
                arg_elems: meta.arg_elems.iter().map(|&e| e as usize).collect(),
                max_threads: meta.max_threads as usize,
                features: features.clone(),
            }
        })
        .collect();
    let arg = |a: &Arg| match &a.region {
        Some(arg::Region::Arena(r)) => ArgRef::Arena { offset: r.offset as usize, len: r.len as usize },
        Some(arg::Region::Constant(c)) => ArgRef::Const(*c as usize),
        None => ArgRef::Arena { offset: 0, len: 0 },
    };
    let steps = m
        .layers
        .iter()
        .map(|l| Step {
            label: l.label.clone(),
            macs: l.macs,
            versions: l
                .versions
                .iter()
                .map(|v| Version {
                    kernel: v.kernel as usize,
                    args: v.args.iter().map(arg).collect(),
                    schedule: v.schedule.clone(),
                    footprint: v.footprint_bytes,
                    latencies: v.latencies.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(Plan {
        name: m.model.clone(),
        kernels,
        constants,
        arena_elems: m.arena_elems as usize,
        inputs: m.inputs.iter().map(port_from_bundle).collect::<Result<_, _>>()?,
        outputs: m.outputs.iter().map(port_from_bundle).collect::<Result<_, _>>()?,
        steps,
        max_threads: m.max_threads as usize,
        calibration: m.calibration.clone(),
    })
}

fn port_from_bundle(p: &veltair_bundle::Port) -> Result<Port, BundleError> {
    let bad = |why: String| BundleError::Manifest(format!("port `{}`: {why}", p.name));
    let dtype = veltair_ir::DType::from_onnx_code(p.element)
        .ok_or_else(|| bad(format!("unknown element type code {}", p.element)))?;
    let storage = if p.dtype == DType::I64 as i32 { Storage::I64 } else { Storage::F32 };
    if storage != Storage::of(dtype) {
        return Err(bad(format!("{dtype} elements stored as {storage:?}")));
    }
    let shape: Vec<usize> = p.shape.iter().map(|&d| d as usize).collect();
    let fixed = match &p.fixed {
        None => None,
        Some(f) => {
            let data = match storage {
                Storage::F32 => typed_floats(dtype, f.floats.iter().copied()),
                Storage::I64 => typed_ints(dtype, f.ints.iter().copied()),
            };
            Some(Tensor::new(shape.clone(), data).map_err(|e| bad(format!("fixed value: {e}")))?)
        }
    };
    Ok(Port { name: p.name.clone(), shape, dtype, offset: p.offset as usize, fixed })
}
