#!/usr/bin/env bash
# Builds veltair-compile, veltair-run and tract_bench (release), makes sure the full-size zoo and the pinned
# venv exist, then runs scripts/bench_peers.py (arguments are passed on).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet -p veltair-compile -p veltair-run -p veltair-tests --features veltair-tests/tract \
    --bin veltair-compile --bin veltair-run --bin tract_bench
[[ -f models/full/resnet50/model.onnx ]] || scripts/gen_zoo.sh --full
PY="$(scripts/pyenv.sh)"
exec "$PY" scripts/bench_peers.py "$@"
