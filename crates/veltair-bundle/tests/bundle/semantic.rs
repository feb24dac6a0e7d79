//! Manifest rules behind valid checksums: the writer refuses a bad manifest with exactly the
//! error the reader gives for a file carrying it, and the message says where the problem is.

use veltair_bundle::{arg::Region, parse, write, BundleError, Manifest};

use crate::common::{resign, sample, sample_bytes};

/// The message both the writer and the reader give for the sample changed by `mutate`.
fn refused_alike(mutate: impl Fn(&mut Manifest)) -> String {
    let s = sample();
    let mut bad = s.manifest.clone();
    mutate(&mut bad);
    let written = write(&s.parts_with(bad)).unwrap_err();
    let read = parse(&resign(&sample_bytes(), &mutate)).unwrap_err();
    assert!(matches!(read, BundleError::Manifest(_)), "{read:?}");
    assert_eq!(written.to_string(), read.to_string());
    read.to_string()
}

#[test]
fn resigned_sample_still_parses() {
    let file = resign(&sample_bytes(), |m| m.model = "renamed".into());
    assert_eq!(parse(&file).unwrap().manifest.model, "renamed");
}

#[test]
fn kernel_index_out_of_range() {
    let msg = refused_alike(|m| m.layers[0].versions[1].kernel = 17);
    assert!(msg.contains("layer `conv1` version 1 names kernel 17, bundle has 4"), "{msg}");
}

#[test]
fn arena_arg_out_of_range() {
    let msg = refused_alike(|m| {
        m.layers[1].versions[2].args[0].region =
            Some(Region::Arena(veltair_bundle::ArenaRegion { offset: 4000, len: 768 }))
    });
    assert!(msg.contains("layer `gemm` version 2 argument 0"), "{msg}");
    assert!(msg.contains("outside the arena of 4096"), "{msg}");
}

#[test]
fn arena_arg_shorter_than_the_kernel_needs() {
    let msg = refused_alike(|m| {
        m.layers[2].versions[0].args[2].region =
            Some(Region::Arena(veltair_bundle::ArenaRegion { offset: 200, len: 9 }))
    });
    assert!(msg.contains("layer `head` version 0 argument 2 has 9 arena elements, kernel 3 needs 10"), "{msg}");
}

#[test]
fn width_range_beyond_the_kernel() {
    let msg = refused_alike(|m| m.layers[0].versions[1].max_width = 9);
    assert!(msg.contains("layer `conv1` version 1 has widths 2..=9"), "{msg}");
}

#[test]
fn zero_min_width() {
    let msg = refused_alike(|m| m.layers[1].versions[0].min_width = 0);
    assert!(msg.contains("layer `gemm` version 0 has widths 0..=4"), "{msg}");
}

#[test]
fn latency_outside_the_width_range() {
    let msg = refused_alike(|m| m.layers[1].versions[2].latencies[0].width = 1);
    assert!(msg.contains("layer `gemm` version 2 has a latency at width 1"), "{msg}");
}

#[test]
fn constant_too_short() {
    let msg = refused_alike(|m| m.layers[0].versions[0].args[1].region = Some(Region::Constant(4)));
    assert!(msg.contains("layer `conv1` version 0 argument 1 is constant 4 of 1 elements, kernel 0 needs 81"), "{msg}");
}

#[test]
fn constant_index_out_of_range() {
    let msg = refused_alike(|m| m.layers[2].versions[1].args[1].region = Some(Region::Constant(5)));
    assert!(msg.contains("layer `head` version 1 argument 1 names constant 5, bundle has 5"), "{msg}");
}

#[test]
fn argument_count_mismatch() {
    let msg = refused_alike(|m| {
        m.layers[2].versions[0].args.pop();
    });
    assert!(msg.contains("layer `head` version 0 passes 2 arguments, kernel 3 takes 3"), "{msg}");
}

#[test]
fn layer_without_versions() {
    let msg = refused_alike(|m| m.layers[1].versions.clear());
    assert!(msg.contains("layer `gemm` has no versions"), "{msg}");
}

#[test]
fn non_finite_floats() {
    let msg = refused_alike(|m| m.layers[2].qos_weight = f64::NAN);
    assert!(msg.contains("layer `head` has qos_weight NaN"), "{msg}");
    let msg = refused_alike(|m| m.layers[0].versions[0].latencies[1].seconds = f64::INFINITY);
    assert!(msg.contains("layer `conv1` version 0 has latency inf s"), "{msg}");
}

#[test]
fn i64_port_outside_the_arena() {
    // 4 I64 elements take 8 slots: at 4089 they end at 4097, one past the arena.
    let msg = refused_alike(|m| m.inputs[1].offset = 4089);
    assert!(msg.contains("input `ids`"), "{msg}");
    assert!(parse(&resign(&sample_bytes(), |m| m.inputs[1].offset = 4088)).is_ok());
}

#[test]
fn unknown_dtype() {
    let msg = refused_alike(|m| m.outputs[0].dtype = 9);
    assert!(msg.contains("output `y` has unknown dtype 9"), "{msg}");
}

#[test]
fn calibration_levels_out_of_order() {
    let msg = refused_alike(|m| m.calibration.as_mut().unwrap().levels.swap(1, 2));
    assert!(msg.contains("calibration level 1 is numbered 2"), "{msg}");
    let msg = refused_alike(|m| m.calibration.as_mut().unwrap().levels[0].slowdown = 0.9);
    assert!(msg.contains("calibration level 0 has slowdown 0.9"), "{msg}");
}

#[test]
fn kernel_offsets_are_checked_by_the_reader() {
    let bad_alignment = parse(&resign(&sample_bytes(), |m| m.kernels[1].code_offset = 48)).unwrap_err();
    assert!(bad_alignment.to_string().contains("kernel 1 code offset 48 is not a multiple of its alignment 64"));
    let overlap = parse(&resign(&sample_bytes(), |m| m.kernels[0].code_len = 65)).unwrap_err();
    assert!(overlap.to_string().contains("kernels 0 and 1 overlap"), "{overlap}");
    let outside = parse(&resign(&sample_bytes(), |m| m.kernels[3].code_len = 65)).unwrap_err();
    assert!(outside.to_string().contains("kernel 3 code (65 bytes at 192) lies outside"), "{outside}");
    let constant = parse(&resign(&sample_bytes(), |m| m.constants[4].elems = 1000)).unwrap_err();
    assert!(constant.to_string().contains("constant 4 (1000 elements"), "{constant}");
}

#[test]
fn writer_checks_its_parts() {
    let s = sample();
    let mut parts = s.parts();
    parts.code.pop();
    assert!(matches!(write(&parts), Err(BundleError::Parts(m)) if m == "3 code slices for 4 kernels"));
    let mut parts = s.parts();
    parts.weights.push(&[]);
    assert!(matches!(write(&parts), Err(BundleError::Parts(m)) if m == "6 weight slices for 5 constants"));
    let mut parts = s.parts();
    parts.manifest.kernels[2].alignment = 48;
    let err = write(&parts).unwrap_err();
    assert!(err.to_string().contains("kernel 2 has alignment 48"), "{err}");
    let mut parts = s.parts();
    parts.manifest.kernels[3].alignment = 8192;
    assert!(write(&parts).is_err());
    let mut parts = s.parts();
    parts.code[1] = &[];
    let err = write(&parts).unwrap_err();
    assert!(err.to_string().contains("kernel 1 has no code"), "{err}");
}
