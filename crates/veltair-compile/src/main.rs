//! `veltair-compile`: the compiler's command line. `check` imports a model, lists its layers
//! and, given ONNX backend-test data, runs the reference evaluator and compares with the
//! expected outputs; `run` lowers the model to generated code, runs and times it in-process.

mod check;
mod model;
mod report;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "veltair-compile", version, about = "Ahead-of-time multi-version compiler for ONNX models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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

/// Paths given on the command line, for messages.
pub fn show(p: &std::path::Path) -> String {
    PathBuf::from(p).display().to_string()
}
