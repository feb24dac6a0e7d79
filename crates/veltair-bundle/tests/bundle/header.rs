//! Header checks: magic and version are reported before the checksum, the header checksum and
//! the section table are enforced, and the writer refuses headers it could not read back.

use veltair_bundle::{parse, write, BundleError, Header, FORMAT_VERSION, MAX_FEATURES, MAX_STRING_LEN};

use crate::common::{reseal_header, sample, sample_bytes, TABLE_AT};

#[test]
fn bad_magic_is_reported_first() {
    let mut bytes = sample_bytes();
    bytes[0] = b'X';
    let err = parse(&bytes).unwrap_err();
    assert!(matches!(&err, BundleError::BadMagic { found } if found == "XELTAIR\\x00"), "{err:?}");
    assert!(err.to_string().starts_with("not a veltair bundle"), "{err}");
    assert!(matches!(parse(b"\x89PNG\r\n\x1a\n"), Err(BundleError::BadMagic { .. })));
    assert!(matches!(parse(b"ELF"), Err(BundleError::BadMagic { .. })));
}

#[test]
fn short_prefix_of_the_magic_is_truncated() {
    assert!(matches!(parse(b""), Err(BundleError::Truncated { what: "header", .. })));
    assert!(matches!(parse(b"VELT"), Err(BundleError::Truncated { what: "header", .. })));
}

#[test]
fn other_format_version_is_reported_before_the_checksum() {
    for reseal in [false, true] {
        let mut bytes = sample_bytes();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        if reseal {
            reseal_header(&mut bytes);
        }
        let err = parse(&bytes).unwrap_err();
        assert!(matches!(err, BundleError::UnsupportedVersion { found: 1, supported: FORMAT_VERSION }), "{err:?}");
        assert_eq!(err.to_string(), "unsupported bundle format version 1; this build reads version 2");
    }
}

#[test]
fn header_checksum_is_enforced() {
    let mut bytes = sample_bytes();
    // The compiler version string follows the section table.
    bytes[TABLE_AT + 60 + 2] ^= 0x20;
    assert!(matches!(parse(&bytes), Err(BundleError::Checksum { what: "header", .. })));
}

#[test]
fn misplaced_section_is_rejected_behind_a_valid_checksum() {
    let mut bytes = sample_bytes();
    let code_offset_at = TABLE_AT + 20;
    let moved = u64::from_le_bytes(bytes[code_offset_at..code_offset_at + 8].try_into().unwrap()) + 4096;
    bytes[code_offset_at..code_offset_at + 8].copy_from_slice(&moved.to_le_bytes());
    reseal_header(&mut bytes);
    let err = parse(&bytes).unwrap_err();
    assert!(matches!(err, BundleError::SectionTable(_)), "{err:?}");
    assert!(err.to_string().contains("code section starts at 8192, the format puts it at 4096"), "{err}");
}

#[test]
fn writer_refuses_headers_it_cannot_store() {
    let s = sample();
    let too_long = "x".repeat(MAX_STRING_LEN + 1);
    let headers = [
        Header { format_version: FORMAT_VERSION + 1, ..s.header.clone() },
        Header::new(too_long.clone(), "x86_64-unknown-linux-gnu", Vec::new()),
        Header::new("veltair", too_long.clone(), Vec::new()),
        Header::new("veltair", "x86_64-unknown-linux-gnu", vec![too_long]),
        Header::new("veltair", "x86_64-unknown-linux-gnu", vec!["avx".into(); MAX_FEATURES + 1]),
    ];
    for header in headers {
        let mut parts = s.parts();
        parts.header = header.clone();
        let err = write(&parts).unwrap_err();
        assert!(
            matches!(err, BundleError::Header(_) | BundleError::UnsupportedVersion { .. }),
            "{header:?} gave {err:?}"
        );
    }
}
