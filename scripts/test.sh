#!/usr/bin/env bash
# The whole test suite, as README gives it and CI runs it: formatting and lints, every Rust
# test (unit, zoo vs onnxruntime, tract differential, mutation, CLI), then the ONNX backend
# conformance run (node tests generated from the pinned onnx package into target/, plus the
# wheel's model tests) on both paths: the reference evaluator, and veltair-compile's bundle run
# by veltair-run infer. It fails on any wrong answer, panic or hang, and when a path passes fewer
# tests than the committed artifacts/conformance.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
cargo test --workspace

scripts/gen_conformance.sh target/onnx-node-tests
cargo build --release --quiet -p veltair-compile -p veltair-run -p veltair-tests --bins
target/release/conformance target/onnx-node-tests --out target/conformance.json --baseline artifacts/conformance.json
