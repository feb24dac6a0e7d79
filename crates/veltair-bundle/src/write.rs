//! The writer: lays out the sections, fills the offsets into a copy of the manifest, validates it
//! with the reader's rules and produces the file bytes.

use prost::Message;

use crate::error::{to_u64, to_usize, BundleError};
use crate::header::{self, Header, Section, SectionTable};
use crate::layout::{self, WEIGHT_ALIGN};
use crate::manifest::Manifest;
use crate::validate::{self, check_alignment};

/// Everything a bundle is made of. Offsets and lengths in the manifest's kernels and constants
/// are ignored and filled by [`write()`].
#[derive(Clone, Debug)]
pub struct BundleParts<'a> {
    /// The header; its `format_version` must be [`crate::FORMAT_VERSION`].
    pub header: Header,
    /// The manifest.
    pub manifest: Manifest,
    /// Machine code of each kernel, one per `manifest.kernels`, in the same order.
    pub code: Vec<&'a [u8]>,
    /// Values of each constant, one per `manifest.constants`, in the same order.
    pub weights: Vec<&'a [f32]>,
}

/// The bundle file for `parts`.
pub fn write(parts: &BundleParts) -> Result<Vec<u8>, BundleError> {
    let mut manifest = parts.manifest.clone();
    if parts.code.len() != manifest.kernels.len() {
        return Err(BundleError::Parts(format!(
            "{} code slices for {} kernels",
            parts.code.len(),
            manifest.kernels.len()
        )));
    }
    if parts.weights.len() != manifest.constants.len() {
        return Err(BundleError::Parts(format!(
            "{} weight slices for {} constants",
            parts.weights.len(),
            manifest.constants.len()
        )));
    }
    let header_len = to_u64(header::encoded_len(&parts.header)?, "header length")?;

    let mut code_len = 0u64;
    for (i, (kernel, code)) in manifest.kernels.iter_mut().zip(&parts.code).enumerate() {
        check_alignment(i, kernel.alignment)?;
        kernel.code_offset = layout::align_up(code_len, kernel.alignment)?;
        kernel.code_len = to_u64(code.len(), "code length")?;
        code_len = add(kernel.code_offset, kernel.code_len, "code section")?;
    }
    let mut weights_len = 0u64;
    for (constant, values) in manifest.constants.iter_mut().zip(&parts.weights) {
        constant.offset = layout::align_up(weights_len, WEIGHT_ALIGN as u64)?;
        constant.elems = to_u64(values.len(), "constant length")?;
        let bytes = validate::constant_bytes(constant).ok_or(BundleError::Overflow("weights section"))?;
        weights_len = add(constant.offset, bytes, "weights section")?;
    }
    validate::validate(&manifest, code_len, weights_len)?;

    let manifest_bytes = manifest.encode_to_vec();
    let manifest_len = to_u64(manifest_bytes.len(), "manifest length")?;
    let ranges = layout::place(header_len, [manifest_len, code_len, weights_len])?;
    let [_, code_range, weights_range] = &ranges;
    let mut out = Vec::with_capacity(to_usize(weights_range.end, "file length")?);
    out.resize(to_usize(header_len, "header length")?, 0);
    out.extend_from_slice(&manifest_bytes);
    for (kernel, code) in manifest.kernels.iter().zip(&parts.code) {
        pad_to(&mut out, code_range.start, kernel.code_offset)?;
        out.extend_from_slice(code);
    }
    pad_to(&mut out, weights_range.start, 0)?;
    for (constant, values) in manifest.constants.iter().zip(&parts.weights) {
        pad_to(&mut out, weights_range.start, constant.offset)?;
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }

    let mut table = SectionTable::default();
    for (entry, range) in table.iter_mut().zip(&ranges) {
        let start = to_usize(range.start, "file length")?;
        let end = to_usize(range.end, "file length")?;
        let bytes = out.get(start..end).ok_or(BundleError::Overflow("file length"))?;
        *entry = Section { offset: range.start, len: range.end - range.start, crc: crc32fast::hash(bytes) };
    }
    let header_bytes = header::encode(&parts.header, &table)?;
    out.get_mut(..header_bytes.len()).ok_or(BundleError::Overflow("header length"))?.copy_from_slice(&header_bytes);
    Ok(out)
}

/// `a + b`, or an overflow of `what`.
fn add(a: u64, b: u64, what: &'static str) -> Result<u64, BundleError> {
    a.checked_add(b).ok_or(BundleError::Overflow(what))
}

/// Zero-pads `out` up to file offset `base + offset`.
fn pad_to(out: &mut Vec<u8>, base: u64, offset: u64) -> Result<(), BundleError> {
    out.resize(to_usize(add(base, offset, "file length")?, "file length")?, 0);
    Ok(())
}
