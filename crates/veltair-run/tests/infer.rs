//! `veltair-run infer` on bundles of every committed zoo model: every version of every layer
//! (forced with `--version`) matches the onnxruntime outputs committed beside the model, at one
//! and two threads; bad bundles, data and flags give exit status 2 with a message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use veltair_bundle::Header;
use veltair_codegen::{OptLevel, Target};
use veltair_exec::to_bundle;
use veltair_ir::passes::{fold_batch_norm, fuse_epilogues, recognize_gelu, recognize_silu};
use veltair_lower::{lower, LowerOptions};
use veltair_tests::{prepare_case, small_zoo};

fn infer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veltair-run")).arg("infer").args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veltair-run-infer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes a bundle of the zoo model in `dir` with up to `versions` versions per layer; returns
/// its path and the most versions any layer has.
fn bundle(dir: &Path, versions: usize) -> (PathBuf, usize) {
    let case = prepare_case(dir).unwrap();
    let mut graph = case.graph.clone();
    fold_batch_norm(&mut graph);
    recognize_silu(&mut graph);
    recognize_gelu(&mut graph);
    fuse_epilogues(&mut graph);
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let plan = lower(&graph, &target, &LowerOptions { max_threads: 2, versions, ..LowerOptions::default() }).unwrap();
    let most = plan.steps.iter().map(|s| s.versions.len()).max().unwrap();
    let features = target.features().iter().map(|f| f.to_string()).collect();
    let bytes = to_bundle(&plan, Header::new("test", "x86_64-unknown-linux-gnu", features)).unwrap();
    let path = scratch(&format!("{}-{versions}.vbundle", dir.file_name().unwrap().to_string_lossy()));
    std::fs::write(&path, bytes).unwrap();
    (path, most)
}

#[test]
fn every_version_of_every_zoo_model_matches() {
    let zoo = small_zoo();
    assert_eq!(zoo.len(), 6);
    for dir in zoo {
        let (path, most) = bundle(&dir, 3);
        assert!(most > 1, "{}: one version per layer only", dir.display());
        let data = dir.join("test_data_set_0");
        for v in 0..most {
            let threads = (1 + v % 2).to_string();
            let o = infer(&[
                path.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--version",
                &v.to_string(),
                "--threads",
                &threads,
            ]);
            assert_eq!(o.status.code(), Some(0), "{} version {v}: {}", dir.display(), text(&o));
            assert!(text(&o).contains(": ok"), "{}", text(&o));
        }
    }
}

#[test]
fn bad_inputs_exit_2_with_a_message() {
    let dir = small_zoo().into_iter().next().unwrap();
    let (path, _) = bundle(&dir, 1);
    let data = dir.join("test_data_set_0");
    let (p, d) = (path.to_str().unwrap(), data.to_str().unwrap());
    let mut damaged = std::fs::read(&path).unwrap();
    let at = damaged.len() - 10;
    damaged[at] ^= 1;
    let bad = scratch("damaged.vbundle");
    std::fs::write(&bad, damaged).unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (vec![bad.to_str().unwrap(), "--data", d], "not a usable bundle"),
        (vec![p, "--data", "/nonexistent"], "cannot read"),
        (vec![p, "--data", d, "--threads", "0"], "at least 1"),
        (vec![p, "--data", d, "--threads", "9"], "at most 2 threads"),
    ];
    for (args, message) in cases {
        let o = infer(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(message), "{args:?}: {}", text(&o));
    }
}
