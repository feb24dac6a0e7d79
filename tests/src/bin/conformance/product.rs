//! The product path: what a user runs. Each test is compiled to a bundle by the
//! `veltair-compile` binary (`--tune none`, shapes and shape-fixing inputs from the first data
//! set) and every data set is run from that bundle by the `veltair-run infer` binary, at one
//! thread and at every core. Each tool is a separate process with a time limit, so a crash or
//! hang of the generated code is recorded, never fatal.

use crate::status::{Outcome, Status};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binaries and a scratch directory for bundles.
pub struct Tools {
    pub compiler: PathBuf,
    pub runtime: PathBuf,
    pub scratch: PathBuf,
    pub widths: Vec<usize>,
}

/// What one tool run ended with.
struct Finished {
    /// `None` when killed by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, or kills it after `timeout` (`None`).
fn run_tool(mut cmd: Command, timeout: Duration) -> Result<Option<Finished>, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    Ok(status.map(|s| Finished { code: s.code(), stdout, stderr }))
}

/// The lines of `text` that say what went wrong, shortened.
fn excerpt(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).take(12).collect();
    lines.join("\n")
}

/// A run that neither passed nor failed in an expected way.
fn crashed(tool: &str, f: &Finished) -> Outcome {
    let how = match f.code {
        Some(code) => format!("{tool} exited with status {code}"),
        None => format!("{tool} was killed by a signal"),
    };
    Outcome::new(Status::Panic, format!("{how}\n{}", excerpt(&f.stderr, |_| true)))
}

/// Runs the test in `dir` (named `name`, unique) through the product path.
pub fn run(tools: &Tools, dir: &Path, name: &str, rtol: f64, atol: f64, timeout: Duration) -> Outcome {
    let sets = veltair_tests::data_dirs(dir);
    let Some(first) = sets.first() else {
        return Outcome::new(Status::Error, "no test_data_set_0");
    };
    let bundle = tools.scratch.join(format!("{}.vbundle", name.replace('/', "__")));
    let outcome = compile_and_infer(tools, dir, first, &sets, &bundle, rtol, atol, timeout);
    let _ = std::fs::remove_file(&bundle);
    outcome
}

#[allow(clippy::too_many_arguments)]
fn compile_and_infer(
    tools: &Tools,
    dir: &Path,
    first: &Path,
    sets: &[PathBuf],
    bundle: &Path,
    rtol: f64,
    atol: f64,
    timeout: Duration,
) -> Outcome {
    let (rtol, atol) = (rtol.to_string(), atol.to_string());
    let mut compile = Command::new(&tools.compiler);
    compile.arg("compile").arg(dir.join("model.onnx")).arg("-o").arg(bundle);
    compile.args(["--tune", "none", "--jobs", "1", "--rtol", &rtol, "--atol", &atol]).arg("--data").arg(first);
    let f = match run_tool(compile, timeout) {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Outcome::new(Status::Hang, format!("veltair-compile: no result within {} s", timeout.as_secs()))
        }
        Err(e) => return Outcome::new(Status::Error, e),
    };
    match f.code {
        Some(0) => {}
        Some(1) => {
            let why = excerpt(&f.stdout, |l| l.contains("MISMATCH") || l.contains("mismatch"));
            return Outcome::new(Status::Mismatch, format!("veltair-compile --data: {why}"));
        }
        Some(2) if f.stderr.contains("cannot be lowered to generated code yet") || f.stderr.contains("not support") => {
            return Outcome::new(Status::Unsupported, excerpt(&f.stderr, |l| !l.trim().is_empty()));
        }
        Some(2) => return Outcome::new(Status::Error, format!("veltair-compile: {}", excerpt(&f.stderr, |_| true))),
        _ => return crashed("veltair-compile", &f),
    }
    for set in sets {
        for &width in &tools.widths {
            let mut infer = Command::new(&tools.runtime);
            infer.arg("infer").arg(bundle).arg("--data").arg(set);
            infer.args(["--threads", &width.to_string(), "--rtol", &rtol, "--atol", &atol]);
            let f = match run_tool(infer, timeout) {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Outcome::new(
                        Status::Hang,
                        format!("veltair-run infer: no result within {} s", timeout.as_secs()),
                    )
                }
                Err(e) => return Outcome::new(Status::Error, e),
            };
            let set_name = set.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            match f.code {
                Some(0) => {}
                Some(1) => {
                    let why = excerpt(&f.stdout, |l| l.contains("MISMATCH"));
                    return Outcome::new(
                        Status::Mismatch,
                        format!("veltair-run infer, {set_name}, {width} thread(s): {why}"),
                    );
                }
                Some(2) => {
                    let why = excerpt(&f.stderr, |_| true);
                    return Outcome::new(
                        Status::Error,
                        format!("veltair-run infer, {set_name}, {width} thread(s): {why}"),
                    );
                }
                _ => return crashed("veltair-run infer", &f),
            }
        }
    }
    Outcome::pass()
}
