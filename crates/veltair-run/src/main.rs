//! `veltair-run`: the runtime's command line. `infer` runs a bundle on inputs in the ONNX
//! backend-test layout and compares with the expected outputs. The runtime links the bundle
//! reader, the plan executor and the kernel loader only: no Cranelift, no ONNX importer.

mod infer;
mod testdata;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "veltair-run", version, about = "Runtime for veltair bundles")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a bundle on backend-test inputs (`input_N.pb`) and compare with `output_N.pb`.
    ///
    /// Exit status: 0 when every output is within tolerance, 1 when one mismatches, 2 when the
    /// bundle or the data cannot be loaded or run.
    Infer(infer::InferArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Infer(args) => infer::infer(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
