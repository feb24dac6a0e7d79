//! The reference path: the importer and the reference evaluator, in this process. Each test runs
//! on its own thread with a time limit, so a panic or hang is recorded, never fatal.

use crate::status::{Outcome, Status};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use veltair_tests::{prepare_case, CaseError};

/// Runs the test in `dir` through the reference evaluator within `timeout`.
pub fn run(dir: &Path, rtol: f64, atol: f64, timeout: Duration) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let d = dir.to_path_buf();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| evaluate(&d, rtol, atol));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => Outcome::new(
            Status::Panic,
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
        Err(_) => Outcome::new(Status::Hang, format!("no result within {} s", timeout.as_secs())),
    }
}

fn evaluate(dir: &Path, rtol: f64, atol: f64) -> Outcome {
    let case = match prepare_case(dir) {
        Ok(c) => c,
        Err(CaseError::Import(e)) if e.is_unsupported() => return Outcome::new(Status::Unsupported, e.to_string()),
        Err(CaseError::Import(e)) => return Outcome::new(Status::Error, e.to_string()),
        Err(CaseError::Run(m)) => return Outcome::new(Status::Error, m),
    };
    for (feeds, expected) in case.feeds.iter().zip(&case.expected) {
        let got = match veltair_ref::evaluate(&case.graph, feeds) {
            Ok(g) => g,
            Err(e) => return Outcome::new(Status::Error, e.to_string()),
        };
        if got.len() != expected.len() {
            return Outcome::new(Status::Mismatch, format!("{} outputs, {} expected", got.len(), expected.len()));
        }
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            let c = veltair_ir::compare(g, e, rtol, atol);
            if !c.ok {
                let why = c
                    .mismatch
                    .unwrap_or_else(|| format!("max abs err {:.3e}, max rel err {:.3e}", c.max_abs, c.max_rel));
                return Outcome::new(Status::Mismatch, format!("output #{i}: {why}"));
            }
        }
    }
    Outcome::pass()
}
