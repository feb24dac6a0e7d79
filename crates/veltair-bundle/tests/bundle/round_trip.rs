//! Write then parse: the manifest comes back with the writer's offsets, every kernel's code and
//! every constant's values come back bit for bit, and the alignments hold.

use std::borrow::Cow;

use veltair_bundle::{parse, write, BundleParts, BundleView, Header, Manifest, CODE_ALIGN, WEIGHT_ALIGN};

use crate::common::{sample, sample_bytes, Sample};

/// The sample manifest with the offsets the writer must fill, computed independently.
fn expected_manifest(s: &Sample) -> Manifest {
    let mut m = s.manifest.clone();
    let mut end = 0u64;
    for (k, code) in m.kernels.iter_mut().zip(&s.code) {
        k.code_offset = end.next_multiple_of(k.alignment);
        k.code_len = code.len() as u64;
        end = k.code_offset + k.code_len;
    }
    let mut end = 0u64;
    for (c, w) in m.constants.iter_mut().zip(&s.weights) {
        c.offset = end.next_multiple_of(64);
        c.elems = w.len() as u64;
        end = c.offset + 4 * c.elems;
    }
    m
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Checks `view` against the sample it was written from.
fn check_view(s: &Sample, view: &BundleView<'_>, file_len: usize) {
    assert_eq!(view.header, s.header);
    assert_eq!(view.manifest, expected_manifest(s));
    assert_eq!(view.file_len(), file_len);
    assert_eq!(view.code_section().start % CODE_ALIGN, 0);
    assert_eq!(view.weights_section().start % WEIGHT_ALIGN, 0);
    for (k, code) in s.code.iter().enumerate() {
        assert_eq!(view.kernel_code(k), Some(code.as_slice()), "kernel {k}");
        let range = view.kernel_range(k).unwrap();
        assert_eq!(range.start as u64 % view.manifest.kernels[k].alignment, 0, "kernel {k} file offset");
        assert!(view.code_section().contains(&range.start));
    }
    assert_eq!(view.kernel_code(s.code.len()), None);
    for (c, values) in s.weights.iter().enumerate() {
        assert_eq!(bits(&view.constant(c).unwrap()), bits(values), "constant {c}");
        assert_eq!(view.constant_range(c).unwrap().start % WEIGHT_ALIGN, 0, "constant {c} file offset");
    }
    assert!(view.constant(s.weights.len()).is_none());
}

#[test]
fn round_trip_preserves_manifest_code_and_weights() {
    let s = sample();
    let bytes = write(&s.parts()).unwrap();
    let view = parse(&bytes).unwrap();
    check_view(&s, &view, bytes.len());
    assert_eq!(bytes.len(), view.weights_section().end, "the file ends with the weights");
}

#[test]
fn writing_is_deterministic() {
    assert_eq!(sample_bytes(), sample_bytes());
}

#[test]
fn constants_are_borrowed_when_aligned_and_copied_when_not() {
    let s = sample();
    let bytes = write(&s.parts()).unwrap();
    // u32 storage makes the buffer 4-byte aligned; a 1-byte shift misaligns every constant.
    let mut storage = vec![0u32; bytes.len() / 4 + 2];
    let buffer: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
    for shift in [0, 1] {
        buffer[shift..shift + bytes.len()].copy_from_slice(&bytes);
        let view = parse(&buffer[shift..shift + bytes.len()]).unwrap();
        check_view(&s, &view, bytes.len());
        for c in 0..s.weights.len() {
            let borrowed = matches!(view.constant(c).unwrap(), Cow::Borrowed(_));
            assert_eq!(borrowed, shift == 0 && cfg!(target_endian = "little"), "constant {c} at shift {shift}");
        }
    }
}

#[test]
fn empty_bundle_round_trips() {
    let parts = BundleParts {
        header: Header::new("veltair 0.1.0", "aarch64-unknown-linux-gnu", Vec::new()),
        manifest: Manifest { model: "empty".into(), ..Manifest::default() },
        code: Vec::new(),
        weights: Vec::new(),
    };
    let bytes = write(&parts).unwrap();
    let view = parse(&bytes).unwrap();
    assert_eq!(view.manifest, parts.manifest);
    assert_eq!(view.header, parts.header);
    assert_eq!(view.code_section(), CODE_ALIGN..CODE_ALIGN);
    assert_eq!(view.file_len(), CODE_ALIGN);
    assert_eq!(view.kernel_code(0), None);
}

#[test]
fn header_at_its_bounds_round_trips() {
    let mut s = sample();
    let long = |c: char| std::iter::repeat_n(c, veltair_bundle::MAX_STRING_LEN).collect::<String>();
    s.header = Header::new(long('v'), long('t'), vec![long('f'); veltair_bundle::MAX_FEATURES]);
    let bytes = write(&s.parts()).unwrap();
    let view = parse(&bytes).unwrap();
    check_view(&s, &view, bytes.len());
    assert!(view.code_section().start > CODE_ALIGN, "a long header pushes the code to a later page");
}
