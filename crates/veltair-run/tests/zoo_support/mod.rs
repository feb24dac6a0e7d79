//! Test support: bundles of the committed zoo models built with the compiler's libraries (the
//! runtime itself links none of them), written to a per-process scratch directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use veltair_bundle::Header;
use veltair_codegen::{OptLevel, Target};
use veltair_exec::to_bundle;
use veltair_lower::{lower, LowerOptions};
use veltair_tests::{compiled_graph, prepare_case, PreparedCase};

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veltair-run-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes a bundle of the zoo model in `dir` with up to `versions` versions per layer; returns
/// its path, the most versions any layer has, and the prepared test case.
pub fn bundle(dir: &Path, versions: usize) -> (PathBuf, usize, PreparedCase) {
    let case = prepare_case(dir).unwrap();
    let graph = compiled_graph(&case);
    let target = Target::x86_64_v3(OptLevel::None).unwrap();
    let plan = lower(&graph, &target, &LowerOptions { max_threads: 2, versions, ..LowerOptions::default() }).unwrap();
    let most = plan.steps.iter().map(|s| s.versions.len()).max().unwrap();
    let features = target.features().iter().map(|f| f.to_string()).collect();
    let bytes = to_bundle(&plan, Header::new("test", "x86_64-unknown-linux-gnu", features)).unwrap();
    // A file of its own per call: a running server maps its bundle, and rewriting a mapped file
    // in place would change the weights under it.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let path = scratch(&format!("{}-{versions}-{call}.vbundle", dir.file_name().unwrap().to_string_lossy()));
    std::fs::write(&path, bytes).unwrap();
    (path, most, case)
}
