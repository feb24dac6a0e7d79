#!/usr/bin/env bash
# The whole test suite, as README gives it and CI runs it: formatting and lints, every Rust
# test (unit, zoo vs onnxruntime, tract differential, mutation, CLI), then the ONNX backend
# node-test conformance run (generated from the pinned onnx package into target/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
cargo test --workspace

scripts/gen_conformance.sh target/onnx-node-tests
cargo run --release --quiet -p veltair-tests --bin conformance -- \
    target/onnx-node-tests/node --out target/conformance.json --min-pass-rate "${VELTAIR_MIN_CONFORMANCE:-0.95}"
