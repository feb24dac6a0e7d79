//! The reader: checks every byte of a bundle (header, section placement, padding, checksums,
//! manifest rules) and then hands out borrowed views of the code and weights.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use prost::Message;

use crate::error::{to_u64, to_usize, BundleError};
use crate::header::{self, Header, SECTION_NAMES};
use crate::layout;
use crate::manifest::Manifest;
use crate::validate::{self, constant_bytes};

/// A parsed bundle borrowing the file bytes.
#[derive(Clone)]
pub struct BundleView<'a> {
    /// The header.
    pub header: Header,
    /// The manifest, with the offsets the writer filled.
    pub manifest: Manifest,
    bytes: &'a [u8],
    code: Range<usize>,
    weights: Range<usize>,
}

/// Parses and fully validates a bundle.
pub fn parse(bytes: &[u8]) -> Result<BundleView<'_>, BundleError> {
    let (header, table, header_len) = header::decode(bytes)?;
    let file_len = to_u64(bytes.len(), "file length")?;
    let expected = layout::place(to_u64(header_len, "header length")?, table.map(|s| s.len))?;
    for ((entry, range), name) in table.iter().zip(&expected).zip(SECTION_NAMES) {
        if entry.offset != range.start {
            return Err(BundleError::SectionTable(format!(
                "the {name} starts at {}, the format puts it at {}",
                entry.offset, range.start
            )));
        }
    }
    let [manifest_range, code_range, weights_range] = expected;
    let end = weights_range.end;
    if file_len < end {
        return Err(BundleError::Truncated { what: "sections", needed: end, actual: file_len });
    }
    if file_len > end {
        return Err(BundleError::TrailingBytes { end, actual: file_len });
    }
    let manifest_range = to_range(&manifest_range)?;
    let code = to_range(&code_range)?;
    let weights = to_range(&weights_range)?;
    check_zero(bytes, manifest_range.end..code.start, "before the code section")?;
    check_zero(bytes, code.end..weights.start, "before the weights section")?;
    for ((entry, range), name) in table.iter().zip([&manifest_range, &code, &weights]).zip(SECTION_NAMES) {
        let computed = crc32fast::hash(slice(bytes, range)?);
        if computed != entry.crc {
            return Err(BundleError::Checksum { what: name, stored: entry.crc, computed });
        }
    }
    let manifest = Manifest::decode(slice(bytes, &manifest_range)?)?;
    validate::validate(&manifest, to_u64(code.len(), "code length")?, to_u64(weights.len(), "weights length")?)?;
    let view = BundleView { header, manifest, bytes, code, weights };
    let kernels = (0..view.manifest.kernels.len()).map(|k| view.kernel_range(k));
    check_gaps(bytes, &view.code, kernels, "in the code section")?;
    let constants = (0..view.manifest.constants.len()).map(|c| view.constant_range(c));
    check_gaps(bytes, &view.weights, constants, "in the weights section")?;
    Ok(view)
}

impl<'a> BundleView<'a> {
    /// File offsets of the code section; the start is a multiple of [`crate::CODE_ALIGN`].
    pub fn code_section(&self) -> Range<usize> {
        self.code.clone()
    }

    /// File offsets of the weights section; the start is a multiple of [`crate::WEIGHT_ALIGN`].
    pub fn weights_section(&self) -> Range<usize> {
        self.weights.clone()
    }

    /// File offsets of kernel `k`'s code, if there is such a kernel.
    pub fn kernel_range(&self, k: usize) -> Option<Range<usize>> {
        let kernel = self.manifest.kernels.get(k)?;
        sub_range(&self.code, kernel.code_offset, kernel.code_len)
    }

    /// Kernel `k`'s machine code, if there is such a kernel.
    pub fn kernel_code(&self, k: usize) -> Option<&'a [u8]> {
        self.bytes.get(self.kernel_range(k)?)
    }

    /// File offsets of constant `c`'s bytes, if there is such a constant.
    pub fn constant_range(&self, c: usize) -> Option<Range<usize>> {
        let constant = self.manifest.constants.get(c)?;
        sub_range(&self.weights, constant.offset, constant_bytes(constant)?)
    }

    /// Constant `c`'s values: borrowed from the file when its bytes are suitably aligned in
    /// memory (and the machine is little-endian), else copied.
    pub fn constant(&self, c: usize) -> Option<Cow<'a, [f32]>> {
        let bytes = self.bytes.get(self.constant_range(c)?)?;
        if cfg!(target_endian = "little") {
            if let Ok(values) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
                return Some(Cow::Borrowed(values));
            }
        }
        Some(Cow::Owned(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    }

    /// Length of the whole file in bytes.
    pub fn file_len(&self) -> usize {
        self.bytes.len()
    }
}

impl fmt::Debug for BundleView<'_> {
    /// Everything but the file bytes, which may be large.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleView")
            .field("header", &self.header)
            .field("manifest", &self.manifest)
            .field("file_len", &self.bytes.len())
            .field("code", &self.code)
            .field("weights", &self.weights)
            .finish()
    }
}

/// `range` as file offsets of this machine.
fn to_range(range: &Range<u64>) -> Result<Range<usize>, BundleError> {
    Ok(to_usize(range.start, "file length")?..to_usize(range.end, "file length")?)
}

/// `bytes[range]`, or a truncation error.
fn slice<'b>(bytes: &'b [u8], range: &Range<usize>) -> Result<&'b [u8], BundleError> {
    bytes.get(range.clone()).ok_or_else(|| BundleError::Truncated {
        what: "sections",
        needed: u64::try_from(range.end).unwrap_or(u64::MAX),
        actual: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
    })
}

/// The file range of `len` bytes at `offset` within `section`, if it lies inside.
fn sub_range(section: &Range<usize>, offset: u64, len: u64) -> Option<Range<usize>> {
    let start = section.start.checked_add(usize::try_from(offset).ok()?)?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= section.end).then_some(start..end)
}

/// Every byte of `bytes[range]` is zero.
fn check_zero(bytes: &[u8], range: Range<usize>, what: &'static str) -> Result<(), BundleError> {
    match slice(bytes, &range)?.iter().zip(range).find(|(&b, _)| b != 0) {
        None => Ok(()),
        Some((&value, at)) => Err(BundleError::NonzeroPadding { what, offset: to_u64(at, "file length")?, value }),
    }
}

/// Every byte of `section` outside `items` (validated, disjoint file ranges) is zero.
fn check_gaps(
    bytes: &[u8],
    section: &Range<usize>,
    items: impl Iterator<Item = Option<Range<usize>>>,
    what: &'static str,
) -> Result<(), BundleError> {
    let mut used = items
        .map(|item| item.ok_or_else(|| BundleError::Manifest(format!("an item lies outside its section ({what})"))))
        .collect::<Result<Vec<_>, _>>()?;
    used.sort_unstable_by_key(|r| (r.start, r.end));
    let mut cursor = section.start;
    for item in used.iter().chain([&(section.end..section.end)]) {
        check_zero(bytes, cursor..item.start.max(cursor), what)?;
        cursor = cursor.max(item.end);
    }
    Ok(())
}
