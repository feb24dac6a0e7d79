//! Where the sections go: the one placement the writer produces and the reader demands. The
//! manifest follows the header directly, the code starts at the next page boundary and the
//! weights at the next 64-byte boundary after the code; the file ends with the weights.

use std::ops::Range;

use crate::error::BundleError;

/// Alignment of the code section's file offset, so the runtime can map it executable in place.
pub const CODE_ALIGN: usize = 4096;
/// Alignment of the weights section's file offset and of each constant within it.
pub const WEIGHT_ALIGN: usize = 64;

/// File ranges of the manifest, code and weights sections, given their lengths.
pub(crate) fn place(header_len: u64, lens: [u64; 3]) -> Result<[Range<u64>; 3], BundleError> {
    let [manifest_len, code_len, weights_len] = lens;
    let manifest = header_len..end(header_len, manifest_len)?;
    let code_start = align_up(manifest.end, CODE_ALIGN as u64)?;
    let code = code_start..end(code_start, code_len)?;
    let weights_start = align_up(code.end, WEIGHT_ALIGN as u64)?;
    let weights = weights_start..end(weights_start, weights_len)?;
    Ok([manifest, code, weights])
}

/// `x` rounded up to a multiple of `align`.
pub(crate) fn align_up(x: u64, align: u64) -> Result<u64, BundleError> {
    x.checked_next_multiple_of(align).ok_or(BundleError::Overflow("section layout"))
}

/// `start + len`, checked.
fn end(start: u64, len: u64) -> Result<u64, BundleError> {
    start.checked_add(len).ok_or(BundleError::Overflow("section layout"))
}
