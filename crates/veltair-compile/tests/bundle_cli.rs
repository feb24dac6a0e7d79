//! `veltair-compile MODEL -o FILE.vbundle`, `inspect` and `compare` end to end on a committed
//! zoo model: the bundle is written and checked, inspect reads it back, compare exits 0 on
//! identical variant sets and 1 on an injected regression; `--tune none` is deterministic; bad
//! inputs give exit status 2 and a message.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veltair-compile")).args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn zoo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/small").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veltair-bundle-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn compile_inspect_and_compare() {
    let dir = zoo("mobilenetv2");
    let (bundle, report) = (scratch("m.vbundle"), scratch("m.json"));
    let model = dir.join("model.onnx");
    let data = dir.join("test_data_set_0");
    let o = run(&[
        s(&model),
        "--data",
        s(&data),
        "--tune",
        "quick",
        "--levels",
        "1",
        "--versions",
        "3",
        "-o",
        s(&bundle),
        "--report",
        s(&report),
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("versions kept") && out.contains("all within tolerance"), "{out}");

    let o = run(&["inspect", s(&bundle)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&format!("veltair bundle, format {}", veltair_bundle::FORMAT_VERSION)), "{}", text(&o));
    let o = run(&["inspect", s(&bundle), "--json"]);
    let inspected: Value = serde_json::from_slice(&o.stdout).expect("inspect --json prints JSON");
    let layers = inspected["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    assert!(
        layers.iter().all(|l| (1..=3).contains(&l["versions"].as_array().unwrap().len())),
        "at most --versions kept"
    );

    for (old, new) in [(&bundle, &bundle), (&report, &bundle), (&report, &report)] {
        let o = run(&["compare", s(old), s(new)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(text(&o).contains("no regression"), "{}", text(&o));
    }

    // Inject a regression: every kept version of the heaviest layer twice as slow.
    let mut r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let heaviest = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .max_by_key(|(_, l)| l["macs"].as_u64().unwrap())
        .map(|(i, _)| i)
        .unwrap();
    let layer = &mut r["layers"][heaviest];
    let kept: Vec<usize> = layer["kept"].as_array().unwrap().iter().map(|k| k.as_u64().unwrap() as usize).collect();
    for k in kept {
        for cell in layer["candidates"][k]["latencies"].as_array_mut().unwrap() {
            cell["seconds"] = Value::from(cell["seconds"].as_f64().unwrap() * 2.0);
        }
    }
    let slow = scratch("m-slow.json");
    std::fs::write(&slow, serde_json::to_vec(&r).unwrap()).unwrap();
    let o = run(&["compare", s(&report), s(&slow)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("REGRESSION"), "{}", text(&o));
    let o = run(&["compare", s(&bundle), s(&slow), "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("**FAIL**"), "{}", text(&o));
}

#[test]
fn untuned_bundles_are_deterministic() {
    let dir = zoo("googlenet");
    let model = dir.join("model.onnx");
    let data = dir.join("test_data_set_0");
    let (a, b) = (scratch("g1.vbundle"), scratch("g2.vbundle"));
    for out in [&a, &b] {
        let o = run(&[s(&model), "--data", s(&data), "--tune", "none", "-o", s(out)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "--tune none must be deterministic");
}

#[test]
fn bad_inputs_exit_2_with_a_message() {
    let o = run(&[s(&scratch("missing.onnx")), "-o", s(&scratch("x.vbundle"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("error:"), "{}", text(&o));
    let junk = scratch("junk.vbundle");
    std::fs::write(&junk, b"VELTAIR\0 but not really a bundle").unwrap();
    let o = run(&["inspect", s(&junk)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a usable bundle"), "{}", text(&o));
    let o = run(&["compare", s(&junk), s(&junk)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&[s(&zoo("googlenet").join("model.onnx")), "--versions", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
