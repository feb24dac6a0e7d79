#!/usr/bin/env bash
# Compiles the generated full-size zoo (models/full/, made by `scripts/gen_zoo.sh --full`) into
# tuned multi-version bundles in target/bundles-full/, one after another (tuning times kernels:
# nothing else should run meanwhile). Each bundle's report is NAME.json and the compiler's
# summary, headed by the exact command, NAME.log. These are the bundles of artifacts/bench.md.
# Usage: scripts/compile_full.sh [TUNE]   (default quick)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tune="${1:-quick}"
[ -d models/full ] || { echo "models/full/ is missing: run scripts/gen_zoo.sh --full first" >&2; exit 1; }
cargo build --release --quiet -p veltair-compile
out=target/bundles-full
mkdir -p "$out"
for dir in models/full/*; do
    name=$(basename "$dir")
    cmd=(./target/release/veltair-compile "$dir/model.onnx" --data "$dir/test_data_set_0" --tune "$tune"
        -o "$out/$name.vbundle" --report "$out/$name.json")
    echo "=== $name"
    { echo "\$ ${cmd[*]}"; "${cmd[@]}"; } 2>&1 | tee "$out/$name.log"
done
