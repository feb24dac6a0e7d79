//! Damaged files: every single-byte flip, every truncation, trailing bytes, random multi-byte
//! damage and nonzero padding behind valid checksums are all refused, without panicking.

use veltair_bundle::{parse, BundleError};

use crate::common::{reseal_section, sample_bytes, section, Rng};

#[test]
fn every_single_byte_flip_is_rejected() {
    let bytes = sample_bytes();
    assert!(parse(&bytes).is_ok());
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x5a;
        assert!(parse(&damaged).is_err(), "flipping byte {i} of {} was accepted", bytes.len());
    }
}

#[test]
fn every_truncation_is_rejected_as_truncated() {
    let bytes = sample_bytes();
    for len in 0..bytes.len() {
        match parse(&bytes[..len]) {
            Err(BundleError::Truncated { actual, .. }) => assert_eq!(actual, len as u64),
            other => panic!("truncating to {len} bytes gave {other:?}"),
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    for extra in [&[0u8][..], &[1, 2, 3]] {
        let mut bytes = sample_bytes();
        let end = bytes.len() as u64;
        bytes.extend_from_slice(extra);
        match parse(&bytes) {
            Err(BundleError::TrailingBytes { end: e, actual }) => {
                assert_eq!((e, actual), (end, end + extra.len() as u64));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn random_multi_byte_damage_is_rejected() {
    let bytes = sample_bytes();
    let mut rng = Rng::new(42);
    for case in 0..3000 {
        let mut damaged = bytes.clone();
        for _ in 0..2 + rng.below(15) {
            let at = rng.below(damaged.len());
            damaged[at] ^= rng.byte() | 1;
        }
        assert!(parse(&damaged).is_err(), "damage case {case} was accepted");
    }
}

#[test]
fn random_garbage_is_rejected() {
    let bytes = sample_bytes();
    let mut rng = Rng::new(7);
    for case in 0..500 {
        let len = rng.below(bytes.len() + 100);
        let mut garbage = rng.bytes(len);
        // Half the cases keep a valid prefix so they get past the magic and version checks.
        let keep = if case % 2 == 0 { 16.min(len) } else { 0 };
        garbage[..keep].copy_from_slice(&bytes[..keep]);
        assert!(parse(&garbage).is_err(), "garbage case {case} was accepted");
    }
}

#[test]
fn nonzero_padding_between_sections_is_named() {
    let mut bytes = sample_bytes();
    let (code_start, _, _) = section(&bytes, 1);
    bytes[code_start - 1] = 0x11;
    match parse(&bytes) {
        Err(BundleError::NonzeroPadding { offset, value, what }) => {
            assert_eq!((offset, value), (code_start as u64 - 1, 0x11));
            assert!(what.contains("code section"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nonzero_padding_inside_a_section_is_rejected_behind_a_valid_crc() {
    let mut bytes = sample_bytes();
    // Kernel 0 is 37 bytes at 0 and kernel 1 starts at 64: byte 40 of the code is padding.
    let (code_start, _, _) = section(&bytes, 1);
    bytes[code_start + 40] = 0xcc;
    reseal_section(&mut bytes, 1);
    match parse(&bytes) {
        Err(BundleError::NonzeroPadding { offset, value, what }) => {
            assert_eq!((offset, value), (code_start as u64 + 40, 0xcc));
            assert_eq!(what, "in the code section");
        }
        other => panic!("{other:?}"),
    }
    // Constant 1 (3 values at 384) ends at 396 of the weights and constant 2 starts at 448.
    let mut bytes = sample_bytes();
    let (weights_start, _, _) = section(&bytes, 2);
    bytes[weights_start + 400] = 1;
    reseal_section(&mut bytes, 2);
    assert!(matches!(parse(&bytes), Err(BundleError::NonzeroPadding { what: "in the weights section", .. })));
}

#[test]
fn section_checksum_mismatch_names_the_section() {
    let mut bytes = sample_bytes();
    let (weights_start, _, _) = section(&bytes, 2);
    bytes[weights_start] ^= 1;
    match parse(&bytes) {
        Err(e @ BundleError::Checksum { what: "weights section", .. }) => {
            assert!(e.to_string().contains("checksum mismatch in the weights section"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
