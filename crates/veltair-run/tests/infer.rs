//! `veltair-run infer` on bundles of every committed zoo model: every version of every layer
//! (forced with `--version`) matches the onnxruntime outputs committed beside the model, at one
//! and two threads; bad bundles, data and flags give exit status 2 with a message.

mod zoo_support;

use std::process::{Command, Output};
use veltair_tests::small_zoo;
use zoo_support::{bundle, scratch};

fn infer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veltair-run")).arg("infer").args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_version_of_every_zoo_model_matches() {
    let zoo = small_zoo();
    assert_eq!(zoo.len(), 6);
    for dir in zoo {
        let (path, most, _) = bundle(&dir, 3);
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
    let (path, _, _) = bundle(&dir, 1);
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
