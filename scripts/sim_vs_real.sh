#!/usr/bin/env bash
# Builds veltair-run (release) and runs scripts/sim_vs_real.py (arguments are passed on): the
# simulator replaying a measured bench's settings, and the measured-vs-simulated table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet -p veltair-run
PY="$(scripts/pyenv.sh)"
exec "$PY" scripts/sim_vs_real.py "$@"
