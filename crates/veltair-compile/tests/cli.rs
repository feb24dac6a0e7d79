//! The `veltair-compile` command line (`check` and `run`): exit codes 0/1/2, text and JSON
//! output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veltair-compile"))
}

fn zoo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/small").join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_passes_on_zoo_data_and_prints_layers() {
    let dir = zoo("resnet50");
    let o = run(&[
        "check",
        dir.join("model.onnx").to_str().unwrap(),
        "--data",
        dir.join("test_data_set_0").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Conv") && out.contains("totals:") && out.contains(" ok "), "{out}");
}

#[test]
fn check_json_is_one_object_with_totals_and_errors() {
    let dir = zoo("bert_base");
    let o = run(&[
        "check",
        dir.join("model.onnx").to_str().unwrap(),
        "--data",
        dir.join("test_data_set_0").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert!(v["totals"]["macs"].as_u64().unwrap() > 0);
    assert!(v["layers"].as_array().unwrap().iter().any(|l| l["op"] == "LayerNormalization"));
    assert_eq!(v["data"][0]["ok"], true);
    assert!(v["data"][0]["outputs"][0]["max_abs_err"].as_f64().unwrap() < 1e-3);
}

#[test]
fn mismatching_outputs_exit_1() {
    let dir = zoo("mobilenetv2");
    let data = std::env::temp_dir().join(format!("veltair-cli-mismatch-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(dir.join("test_data_set_0/input_0.pb"), data.join("input_0.pb")).unwrap();
    // The expected output of another model with the same output shape ([1, 10]).
    std::fs::copy(zoo("googlenet").join("test_data_set_0/output_0.pb"), data.join("output_0.pb")).unwrap();
    let o = run(&["check", dir.join("model.onnx").to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("MISMATCH"));
    // A huge tolerance accepts it.
    let o = run(&["check", dir.join("model.onnx").to_str().unwrap(), "--data", data.to_str().unwrap(), "--atol", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn unimportable_models_exit_2_with_a_message() {
    let missing = run(&["check", "/nonexistent/model.onnx"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("cannot read"), "{}", text(&missing));

    let bytes = std::fs::read(zoo("resnet50").join("model.onnx")).unwrap();
    let truncated = std::env::temp_dir().join(format!("veltair-cli-trunc-{}.onnx", std::process::id()));
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let o = run(&["check", truncated.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a valid ONNX model"), "{}", text(&o));
    std::fs::remove_file(&truncated).unwrap();
}

#[test]
fn dynamic_batch_needs_a_pin_or_data() {
    let model = zoo("resnet50").join("model.onnx");
    let o = run(&["check", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--input-shape"), "{}", text(&o));
    let o = run(&["check", model.to_str().unwrap(), "--input-shape", "input=2x3x64x64", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([2, 3, 64, 64]));
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 10]));
    let bad = run(&["check", model.to_str().unwrap(), "--input-shape", "input=2xAx64"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn run_executes_generated_code_checks_times_and_profiles() {
    let dir = zoo("efficientnet_b0");
    let model = dir.join("model.onnx");
    let data = dir.join("test_data_set_0");
    let args = ["run", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--threads", "2"];
    let o = run(&[&args[..], &["--repeat", "3", "--profile", "--schedules", "--json"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["checks"][0]["ok"], true);
    assert_eq!(v["runs_ms"].as_array().unwrap().len(), 3);
    assert!(v["median_ms"].as_f64().unwrap() > 0.0);
    assert!(!v["layers"].as_array().unwrap().is_empty());
    let schedules = v["schedules"].as_array().unwrap();
    assert!(schedules.iter().any(|s| s["schedule"].as_str().unwrap().contains("depthwise2d")), "{schedules:?}");

    // Another model's expected output: a mismatch, exit 1.
    let wrong = std::env::temp_dir().join(format!("veltair-cli-run-mismatch-{}", std::process::id()));
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::copy(data.join("input_0.pb"), wrong.join("input_0.pb")).unwrap();
    std::fs::copy(zoo("resnet50").join("test_data_set_0/output_0.pb"), wrong.join("output_0.pb")).unwrap();
    let o = run(&["run", model.to_str().unwrap(), "--data", wrong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    std::fs::remove_dir_all(&wrong).unwrap();

    let o = run(&["run", model.to_str().unwrap(), "--threads", "0", "--input-shape", "images=1x3x32x32"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--threads"), "{}", text(&o));
}
