//! The header at file offset 0: magic, format version, toolchain strings, required CPU features,
//! the section table and the header's own checksum (layout in the crate docs).

use crate::error::BundleError;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"VELTAIR\0";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// Longest string (compiler version, target triple, one CPU feature) in bytes.
pub const MAX_STRING_LEN: usize = 256;
/// Most CPU features a header lists.
pub const MAX_FEATURES: usize = 64;

/// Magic, version and header length: what is read before the checksum can be checked.
const PREFIX_LEN: usize = 16;
/// Bytes of one section table entry: offset u64, length u64, CRC32 u32.
const ENTRY_LEN: usize = 20;
/// Bytes of the trailing header checksum.
const CRC_LEN: usize = 4;
/// Shortest header: empty strings and no features.
const MIN_HEADER_LEN: usize = PREFIX_LEN + 3 * ENTRY_LEN + 2 + 2 + 2 + CRC_LEN;
/// Longest header: every string and the feature list at their bounds.
const MAX_HEADER_LEN: usize = MIN_HEADER_LEN + 2 * MAX_STRING_LEN + MAX_FEATURES * (2 + MAX_STRING_LEN);

/// What the runtime checks before it maps anything: who compiled the bundle, for which machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Always [`FORMAT_VERSION`] in a bundle this crate writes or returns.
    pub format_version: u32,
    /// Version of the compiler that wrote the bundle (at most [`MAX_STRING_LEN`] bytes).
    pub compiler_version: String,
    /// Target triple the code was compiled for (at most [`MAX_STRING_LEN`] bytes).
    pub target_triple: String,
    /// CPU features the code requires, e.g. `avx2` (at most [`MAX_FEATURES`] entries).
    pub cpu_features: Vec<String>,
}

impl Header {
    /// A header of the current [`FORMAT_VERSION`].
    pub fn new(
        compiler_version: impl Into<String>,
        target_triple: impl Into<String>,
        cpu_features: Vec<String>,
    ) -> Self {
        Header {
            format_version: FORMAT_VERSION,
            compiler_version: compiler_version.into(),
            target_triple: target_triple.into(),
            cpu_features,
        }
    }
}

/// One entry of the section table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Section {
    /// File offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC32 of the section's bytes.
    pub crc: u32,
}

/// The table entries, in file order.
pub(crate) type SectionTable = [Section; 3];

/// Names of the sections in [`SectionTable`] order, for messages.
pub(crate) const SECTION_NAMES: [&str; 3] = ["manifest section", "code section", "weights section"];

/// Encoded length of `header`, after checking that it can be stored and read back.
pub(crate) fn encoded_len(header: &Header) -> Result<usize, BundleError> {
    if header.format_version != FORMAT_VERSION {
        return Err(BundleError::UnsupportedVersion { found: header.format_version, supported: FORMAT_VERSION });
    }
    if header.cpu_features.len() > MAX_FEATURES {
        return Err(BundleError::Header(format!(
            "{} CPU features listed, at most {MAX_FEATURES} allowed",
            header.cpu_features.len()
        )));
    }
    let strings = [&header.compiler_version, &header.target_triple].into_iter().chain(&header.cpu_features);
    let mut len = MIN_HEADER_LEN;
    for s in strings {
        if s.len() > MAX_STRING_LEN {
            return Err(BundleError::Header(format!(
                "string of {} bytes starting {:?}, at most {MAX_STRING_LEN} allowed",
                s.len(),
                s.chars().take(32).collect::<String>()
            )));
        }
        len += s.len();
    }
    Ok(len + 2 * header.cpu_features.len())
}

/// The header bytes for `header` and `sections`.
pub(crate) fn encode(header: &Header, sections: &SectionTable) -> Result<Vec<u8>, BundleError> {
    let len = encoded_len(header)?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(len).map_err(|_| BundleError::Overflow("header length"))?.to_le_bytes());
    for s in sections {
        out.extend_from_slice(&s.offset.to_le_bytes());
        out.extend_from_slice(&s.len.to_le_bytes());
        out.extend_from_slice(&s.crc.to_le_bytes());
    }
    put_string(&mut out, &header.compiler_version);
    put_string(&mut out, &header.target_triple);
    put_u16(&mut out, header.cpu_features.len());
    for feature in &header.cpu_features {
        put_string(&mut out, feature);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Appends a length checked by [`encoded_len`] as a u16.
fn put_u16(out: &mut Vec<u8>, n: usize) {
    let n = u16::try_from(n).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
}

/// Appends a u16 length and the bytes of a string checked by [`encoded_len`].
fn put_string(out: &mut Vec<u8>, s: &str) {
    put_u16(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Reads the header at the start of `bytes`: the header, its section table and its length.
///
/// Magic and version are checked before the checksum so that a file of another kind or version
/// gets the helpful message.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, SectionTable, usize), BundleError> {
    let truncated = |needed: usize| BundleError::Truncated {
        what: "header",
        needed: u64::try_from(needed).unwrap_or(u64::MAX),
        actual: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
    };
    match bytes.first_chunk::<8>() {
        Some(magic) if *magic == MAGIC => {}
        Some(magic) => return Err(BundleError::BadMagic { found: magic.escape_ascii().to_string() }),
        None if MAGIC.starts_with(bytes) => return Err(truncated(PREFIX_LEN)),
        None => return Err(BundleError::BadMagic { found: bytes.escape_ascii().to_string() }),
    }
    let version = u32_at(bytes, 8).ok_or_else(|| truncated(PREFIX_LEN))?;
    if version != FORMAT_VERSION {
        return Err(BundleError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let stated_len = u32_at(bytes, 12).ok_or_else(|| truncated(PREFIX_LEN))?;
    let len =
        usize::try_from(stated_len).ok().filter(|len| (MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(len)).ok_or_else(
            || BundleError::Header(format!("header length {stated_len} outside {MIN_HEADER_LEN}..={MAX_HEADER_LEN}")),
        )?;
    let (body, stored) =
        bytes.get(..len).and_then(|h| h.split_last_chunk::<CRC_LEN>()).ok_or_else(|| truncated(len))?;
    let stored = u32::from_le_bytes(*stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(BundleError::Checksum { what: "header", stored, computed });
    }
    let mut cursor = Cursor { rest: body.get(PREFIX_LEN..).unwrap_or_default() };
    let mut sections = SectionTable::default();
    for s in &mut sections {
        s.offset = u64::from_le_bytes(cursor.array()?);
        s.len = u64::from_le_bytes(cursor.array()?);
        s.crc = u32::from_le_bytes(cursor.array()?);
    }
    let compiler_version = cursor.string("compiler version")?;
    let target_triple = cursor.string("target triple")?;
    let count = usize::from(u16::from_le_bytes(cursor.array()?));
    if count > MAX_FEATURES {
        return Err(BundleError::Header(format!("{count} CPU features listed, at most {MAX_FEATURES} allowed")));
    }
    let cpu_features = (0..count).map(|_| cursor.string("CPU feature")).collect::<Result<Vec<_>, _>>()?;
    if !cursor.rest.is_empty() {
        return Err(BundleError::Header(format!("{} unused bytes after the CPU features", cursor.rest.len())));
    }
    let header = Header { format_version: version, compiler_version, target_triple, cpu_features };
    Ok((header, sections, len))
}

/// The little-endian u32 at `at`, if the bytes are there.
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..)?.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

/// Reads fields off the checksummed part of the header.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    /// The next `N` bytes.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], BundleError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| BundleError::Header("a field runs past the end of the header".into()))?;
        self.rest = rest;
        Ok(*head)
    }

    /// The next length-prefixed UTF-8 string, named `what` in errors.
    fn string(&mut self, what: &str) -> Result<String, BundleError> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        if len > MAX_STRING_LEN {
            return Err(BundleError::Header(format!("{what} of {len} bytes, at most {MAX_STRING_LEN} allowed")));
        }
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or_else(|| BundleError::Header(format!("{what} runs past the end of the header")))?;
        self.rest = rest;
        String::from_utf8(head.to_vec()).map_err(|_| BundleError::Header(format!("{what} is not UTF-8")))
    }
}
