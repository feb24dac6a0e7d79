//! `veltair-compile`: the compiler's command line. `veltair-compile MODEL -o FILE.vbundle`
//! (the `compile` subcommand) builds a tuned multi-version bundle; `inspect` shows what a
//! bundle holds; `check` imports a model, lists its layers and, given ONNX backend-test data,
//! runs the reference evaluator and compares with the expected outputs; `run` lowers the model
//! to generated code, runs and times it in-process.

mod check;
mod compare;
mod compile;
mod inspect;
mod model;
mod report;
mod run;
mod summary;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "veltair-compile",
    version,
    about = "Ahead-of-time multi-version compiler for ONNX models",
    after_help = "`veltair-compile MODEL.onnx -o MODEL.vbundle [OPTIONS]` is short for `veltair-compile compile ...`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a model into a bundle: several code versions per layer, measured solo and under
    /// calibrated contention, the frontier kept (the default command).
    ///
    /// Exit status: 0 when the bundle is written (and outputs match `--data`), 1 when an output
    /// mismatches (the bundle is still written), 2 when the model cannot be compiled.
    Compile(compile::CompileArgs),
    /// Print what a bundle holds: header, signature, sizes, calibration, every layer's versions.
    ///
    /// Exit status: 0, or 2 when the file is not a valid bundle.
    Inspect(inspect::InspectArgs),
    /// Compare the variant sets of two builds (bundles or reports): versions that appeared or
    /// disappeared per layer, and the change of each layer's and the model's best latency at
    /// every width and contention level.
    ///
    /// Exit status: 0 when no change exceeds the threshold, 1 when one does, 2 when an input
    /// cannot be read.
    Compare(compare::CompareArgs),
    /// Import a model, list its layers and totals, and optionally check the reference
    /// evaluator against expected outputs.
    ///
    /// Exit status: 0 when the model imports (and every output is within tolerance),
    /// 1 when an output mismatches, 2 when the model cannot be imported or evaluated.
    Check(check::CheckArgs),
    /// Lower a model to generated machine code and run it in-process: compare with
    /// backend-test data (`--data`) and time it (`--repeat`, `--profile` per layer).
    ///
    /// Exit status: 0 when it runs (and every output is within tolerance), 1 when an output
    /// mismatches, 2 when the model cannot be imported, lowered or run.
    Run(run::RunArgs),
}

/// A `NAME=DIMS` pin such as `input=1x3x224x224`.
#[derive(Clone, Debug)]
pub struct InputShape {
    pub name: String,
    pub dims: Vec<usize>,
}

impl std::str::FromStr for InputShape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, dims) =
            s.rsplit_once('=').ok_or_else(|| format!("expected NAME=DIMS (e.g. input=1x3x224x224), got '{s}'"))?;
        let dims = if dims.is_empty() || dims == "scalar" {
            Vec::new()
        } else {
            dims.split(['x', 'X', ','])
                .map(|d| d.trim().parse::<usize>().map_err(|_| format!("'{d}' in '{s}' is not a dimension")))
                .collect::<Result<_, _>>()?
        };
        Ok(InputShape { name: name.to_string(), dims })
    }
}

/// Where a run of the command ended.
pub enum Outcome {
    Ok,
    Mismatch,
}

/// Subcommand names and the flags that are not a model path.
const NOT_A_MODEL: &[&str] =
    &["compile", "inspect", "compare", "check", "run", "help", "-h", "--help", "-V", "--version"];

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| !NOT_A_MODEL.iter().any(|n| a == n)) {
        argv.insert(1, "compile".into());
    }
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        Command::Compile(args) => compile::compile(&args),
        Command::Inspect(args) => inspect::inspect(&args).map(|()| Outcome::Ok),
        Command::Compare(args) => compare::run(&args).map(|ok| if ok { Outcome::Ok } else { Outcome::Mismatch }),
        Command::Check(args) => check::run(&args),
        Command::Run(args) => run::run(&args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Mismatch) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints `text` and a newline to stdout; a closed pipe (`| head`) just ends the output.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.write_all(b"\n"));
}

/// Paths given on the command line, for messages.
pub fn show(p: &std::path::Path) -> String {
    PathBuf::from(p).display().to_string()
}
