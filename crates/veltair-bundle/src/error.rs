//! The one error type of the crate: every way a bundle can be refused, by the reader or the writer.

/// Why a bundle could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file does not start with [`crate::MAGIC`].
    #[error("not a veltair bundle: expected magic \"VELTAIR\\0\", found \"{found}\"")]
    BadMagic {
        /// The first bytes of the file, escaped.
        found: String,
    },
    /// The file is a bundle of another format version.
    #[error("unsupported bundle format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The version stored in (or requested for) the file.
        found: u32,
        /// [`crate::FORMAT_VERSION`].
        supported: u32,
    },
    /// The file ends before something it declares.
    #[error("truncated bundle: the {what} needs {needed} bytes, the file has {actual}")]
    Truncated {
        /// What runs past the end.
        what: &'static str,
        /// The file length it needs.
        needed: u64,
        /// The file length there is.
        actual: u64,
    },
    /// A checksum does not match the bytes it covers.
    #[error("checksum mismatch in the {what}: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// `header`, `manifest section`, `code section` or `weights section`.
        what: &'static str,
        /// The CRC32 stored in the header.
        stored: u32,
        /// The CRC32 of the bytes.
        computed: u32,
    },
    /// A padding byte that must be zero is not.
    #[error("nonzero padding byte {value:#04x} at file offset {offset} ({what})")]
    NonzeroPadding {
        /// Which padding.
        what: &'static str,
        /// File offset of the first nonzero byte.
        offset: u64,
        /// Its value.
        value: u8,
    },
    /// The header checksum holds but its fields do not make sense, or the writer got a header it
    /// cannot store.
    #[error("malformed header: {0}")]
    Header(String),
    /// The sections are not where the format puts them.
    #[error("bad section table: {0}")]
    SectionTable(String),
    /// The manifest section is not a valid protobuf `Manifest`.
    #[error("malformed manifest: {0}")]
    ManifestDecode(#[from] prost::DecodeError),
    /// The manifest decodes but breaks a rule of the format (an out-of-range reference, ...).
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// The file goes on after the last section.
    #[error("trailing bytes: the sections end at byte {end}, the file has {actual} bytes")]
    TrailingBytes {
        /// End of the last section.
        end: u64,
        /// File length.
        actual: u64,
    },
    /// The writer's code or weight slices do not match the manifest.
    #[error("bundle parts do not match the manifest: {0}")]
    Parts(String),
    /// A size or offset does not fit the integer types of the format or of this machine.
    #[error("bundle too large: the {0} overflows")]
    Overflow(&'static str),
}

/// `x` as a `usize`, or [`BundleError::Overflow`] naming `what`.
pub(crate) fn to_usize(x: u64, what: &'static str) -> Result<usize, BundleError> {
    usize::try_from(x).map_err(|_| BundleError::Overflow(what))
}

/// `x` as a `u64`, or [`BundleError::Overflow`] naming `what`.
pub(crate) fn to_u64(x: usize, what: &'static str) -> Result<u64, BundleError> {
    u64::try_from(x).map_err(|_| BundleError::Overflow(what))
}
