#!/usr/bin/env bash
# The main job on the committed small zoo: import each model in models/small/, list its layers,
# run the reference evaluator on its test data and compare with the onnxruntime outputs.
# Exits non-zero if any model fails. Extra arguments go to every `check` (e.g. --json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p veltair-compile
status=0
for dir in models/small/*/; do
    name=$(basename "$dir")
    echo "=== $name"
    if ./target/release/veltair-compile check "$dir/model.onnx" --data "$dir/test_data_set_0" "$@"; then
        results+=("$name: ok")
    else
        results+=("$name: FAILED")
        status=1
    fi
done
echo
printf '%s\n' "${results[@]}"
exit $status
