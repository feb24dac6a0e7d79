//! Plans written as bundles and read back: every version of every layer of every committed zoo
//! model still matches onnxruntime when run from the mapped file; pruning versions keeps the
//! plan consistent; a bundle needing a CPU feature the host lacks is refused before any code
//! runs.

use std::path::PathBuf;
use veltair_bundle::Header;
use veltair_codegen::{OptLevel, Target};
use veltair_exec::{open_bundle, to_bundle, Executor, Plan};
use veltair_lower::{lower, LowerOptions};
use veltair_tests::{compiled_graph, prepare_case, small_zoo, PreparedCase};

fn lowered(case: &PreparedCase, versions: usize) -> Plan {
    let graph = compiled_graph(case);
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    lower(&graph, &target, &LowerOptions { max_threads: 2, versions, ..LowerOptions::default() }).unwrap()
}

fn header(features: &[&str]) -> Header {
    Header::new("test", "x86_64-unknown-linux-gnu", features.iter().map(|f| f.to_string()).collect())
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veltair-bundles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `plan` with version `v` (or the last) of every step forced, at `threads`, and checks
/// the first data set against onnxruntime.
fn check_version(name: &str, case: &PreparedCase, plan: &Plan, v: usize, threads: usize) {
    let mut exec = Executor::new(plan.clone(), threads).unwrap();
    for (i, step) in plan.steps.iter().enumerate() {
        exec.choose(i, v.min(step.versions.len() - 1)).unwrap();
    }
    let got = exec.run(&case.feeds[0]).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got.len(), case.expected[0].len(), "{name}: output count");
    for (g, want) in got.into_iter().zip(&case.expected[0]) {
        let cmp = veltair_ir::compare(&g, want, 1e-3, 1e-4);
        assert!(cmp.ok, "{name}, version {v} at {threads} threads, from a bundle: {cmp:?}");
    }
}

#[test]
fn every_version_runs_from_a_bundle() {
    for dir in small_zoo() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = prepare_case(&dir).unwrap();
        let plan = lowered(&case, 3);
        let path = temp_file(&format!("{name}.vbundle"));
        std::fs::write(&path, to_bundle(&plan, header(&["avx2", "fma"])).unwrap()).unwrap();
        let (read, header) = open_bundle(&path).unwrap();
        assert_eq!(header.cpu_features, ["avx2", "fma"]);
        assert_eq!(read.steps, plan.steps, "{name}: steps differ after the round trip");
        assert_eq!(
            read.kernels.iter().map(|k| &k.bytes).collect::<Vec<_>>(),
            plan.kernels.iter().map(|k| &k.bytes).collect::<Vec<_>>()
        );
        assert_eq!(read.constant_bytes(), plan.constant_bytes());
        let most = read.steps.iter().map(|s| s.versions.len()).max().unwrap();
        for v in 0..most {
            check_version(&name, &case, &read, v, 1 + v % 2);
        }
    }
}

#[test]
fn pruned_plans_drop_unused_kernels_and_still_match() {
    let dir = small_zoo().into_iter().find(|d| d.ends_with("resnet50")).unwrap();
    let case = prepare_case(&dir).unwrap();
    let mut plan = lowered(&case, 3);
    let before = plan.kernels.len();
    let keep: Vec<Vec<usize>> = plan.steps.iter().map(|s| vec![s.versions.len() - 1]).collect();
    plan.retain_versions(&keep).unwrap();
    assert!(plan.steps.iter().all(|s| s.versions.len() == 1));
    assert!(plan.kernels.len() < before, "{} kernels before, {} after", before, plan.kernels.len());
    let used: std::collections::HashSet<usize> = plan.steps.iter().map(|s| s.versions[0].kernel).collect();
    assert_eq!(used.len(), plan.kernels.len(), "every kept kernel is used");
    check_version("resnet50 pruned", &case, &plan, 0, 2);
    assert!(plan.retain_versions(&[vec![7]]).is_err());
}

#[test]
fn bundles_needing_missing_cpu_features_are_refused() {
    let dir = small_zoo().into_iter().next().unwrap();
    let case = prepare_case(&dir).unwrap();
    let plan = lowered(&case, 1);
    let path = temp_file("needs-more.vbundle");
    std::fs::write(&path, to_bundle(&plan, header(&["avx2", "no-such-feature"])).unwrap()).unwrap();
    let (read, _) = open_bundle(&path).unwrap();
    let Err(err) = Executor::new(read, 1) else { panic!("loading must fail") };
    let err = err.to_string();
    assert!(err.contains("lacks features") && err.contains("no-such-feature"), "{err}");
}

#[test]
fn damaged_bundle_files_are_refused_with_the_path() {
    let dir = small_zoo().into_iter().next().unwrap();
    let plan = lowered(&prepare_case(&dir).unwrap(), 1);
    let mut bytes = to_bundle(&plan, header(&["avx2"])).unwrap();
    let path = temp_file("damaged.vbundle");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = open_bundle(&path).expect_err("a damaged bundle must be refused").to_string();
    assert!(err.contains("damaged.vbundle") && err.contains("not a usable bundle"), "{err}");
    let missing = open_bundle(&temp_file("absent.vbundle")).expect_err("no such file").to_string();
    assert!(missing.contains("cannot read"), "{missing}");
}
