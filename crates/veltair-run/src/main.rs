//! `veltair-run`: the runtime's command line. `infer` runs a bundle on inputs in the ONNX
//! backend-test layout and compares with the expected outputs; `bench` measures the scheduling
//! policies' QPS-at-QoS on this machine; `simulate` replays them on a modelled machine; `serve`
//! answers KServe v2 requests; `trace` prints the arrival trace `bench` replays. The runtime links the bundle reader, the plan executor and
//! the kernel loader only: no Cranelift, no ONNX importer.

mod bench;
mod experiment;
mod infer;
mod serve_cmd;
mod simulate;
mod svg;
mod table;
mod tenants;
mod testdata;
mod trace_cmd;

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
    /// Compare scheduling policies in a discrete-event simulation driven by the bundles'
    /// profiles, on any number of cores (modelled figures, labelled as such).
    ///
    /// Exit status: 0, or 2 when a bundle or an argument is unusable.
    Simulate(simulate::SimulateArgs),
    /// Measure each scheduling policy's QPS-at-QoS on this machine: the same seeded Poisson
    /// trace over the mix replayed in real time at searched rates; prints the table and writes
    /// JSON and SVG.
    ///
    /// Exit status: 0, or 2 when a bundle or an argument is unusable.
    Bench(bench::BenchArgs),
    /// Serve bundles over KServe / Open Inference Protocol v2 REST (health, metadata, infer,
    /// Prometheus /metrics) until SIGTERM, then answer what is in flight and exit.
    ///
    /// Exit status: 0 after a clean drain, 2 when a bundle, the address or an argument is
    /// unusable.
    Serve(serve_cmd::ServeArgs),
    /// Print, as JSON, the seeded Poisson arrival trace `bench` replays at one rate and the
    /// tenants' QoS targets (for replaying the same queries on another engine).
    ///
    /// Exit status: 0, or 2 when a bundle or an argument is unusable.
    Trace(trace_cmd::TraceArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Infer(args) => infer::infer(&args),
        Command::Simulate(args) => simulate::run(&args).map(|()| true),
        Command::Bench(args) => bench::run(&args).map(|()| true),
        Command::Serve(args) => serve_cmd::run(&args).map(|()| true),
        Command::Trace(args) => trace_cmd::run(&args).map(|()| true),
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
