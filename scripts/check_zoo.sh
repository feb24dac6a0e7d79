#!/usr/bin/env bash
# The main job on the committed small zoo: for each model in models/small/, `check` it (import,
# list its layers, evaluate with the reference evaluator, compare with the onnxruntime outputs),
# then `run` it on Cranelift-generated code (lower, execute, compare with the same outputs, time
# it). Exits non-zero if any model fails. Extra arguments go to every `check` (e.g. --json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p veltair-compile
status=0
for dir in models/small/*/; do
    name=$(basename "$dir")
    echo "=== $name"
    if ./target/release/veltair-compile check "$dir/model.onnx" --data "$dir/test_data_set_0" "$@" &&
        ./target/release/veltair-compile run "$dir/model.onnx" --data "$dir/test_data_set_0" --repeat 20; then
        results+=("$name: ok (reference evaluator and generated code)")
    else
        results+=("$name: FAILED")
        status=1
    fi
done
echo
printf '%s\n' "${results[@]}"
exit $status
