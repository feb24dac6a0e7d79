//! The veltair bundle file format, shared by compiler and runtime and holding nothing else: a
//! checksummed header, a prost-encoded [`Manifest`], a page-aligned code section and a 64-byte
//! aligned weights section. [`write()`] produces a bundle, [`parse`] checks every byte of one.
//!
//! # File layout
//!
//! All integers are little-endian. With `H` the header length, `M` the manifest length, `K` the
//! code length and `W` the weights length:
//!
//! | File range | Contents |
//! | --- | --- |
//! | `0..H` | header (below) |
//! | `H..H+M` | manifest: a protobuf [`Manifest`] |
//! | `H+M..C` | zero padding, `C` = `H+M` rounded up to [`CODE_ALIGN`] (4096) |
//! | `C..C+K` | code: kernel `i` at `C + code_offset`, `code_offset` a multiple of its `alignment` |
//! | `C+K..D` | zero padding, `D` = `C+K` rounded up to [`WEIGHT_ALIGN`] (64) |
//! | `D..D+W` | weights: constant `j` as f32 at `D + offset`, `offset` a multiple of 64 |
//!
//! The file ends at `D+W`. Gaps between kernels and between constants are zero too, so every
//! byte is covered by a checksum or must be zero: damaging any single byte makes [`parse`] fail.
//!
//! # Header
//!
//! | Offset | Size | Field |
//! | --- | --- | --- |
//! | 0 | 8 | magic [`MAGIC`], `b"VELTAIR\0"` |
//! | 8 | 4 | format version, u32, [`FORMAT_VERSION`] |
//! | 12 | 4 | header length `H`, u32, including the trailing checksum |
//! | 16 | 20 | manifest section: file offset u64, length u64, CRC32 u32 |
//! | 36 | 20 | code section: file offset u64, length u64, CRC32 u32 |
//! | 56 | 20 | weights section: file offset u64, length u64, CRC32 u32 |
//! | 76 | 2 + n | compiler version: length n u16 (at most [`MAX_STRING_LEN`]), n bytes UTF-8 |
//! | … | 2 + n | target triple, encoded the same way |
//! | … | 2 | CPU feature count f, u16 (at most [`MAX_FEATURES`]) |
//! | … | f × (2 + n) | each CPU feature (e.g. `avx2`), encoded the same way |
//! | `H-4` | 4 | CRC32 of bytes `0..H-4` |
//!
//! The reader checks the magic and the version before the checksum, so a file of another kind or
//! version gets a message saying so.

mod error;
mod header;
mod layout;
mod manifest;
mod read;
mod validate;
mod write;

pub use error::BundleError;
pub use header::{Header, FORMAT_VERSION, MAGIC, MAX_FEATURES, MAX_STRING_LEN};
pub use layout::{CODE_ALIGN, WEIGHT_ALIGN};
pub use manifest::{
    arg, ArenaRegion, Arg, Calibration, Constant, DType, Fixed, Kernel, Latency, Layer, Level, Manifest, Port, Version,
};
pub use read::{parse, BundleView};
pub use write::{write, BundleParts};
