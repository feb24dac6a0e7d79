#!/usr/bin/env bash
# The main job on the committed small zoo: for each model in models/small/, `check` it (import,
# list its layers, evaluate with the reference evaluator, compare with the onnxruntime outputs),
# `run` it on Cranelift-generated code (lower, execute, compare with the same outputs, time it),
# then compile it into a tuned multi-version bundle (target/bundles/) and run that bundle with
# `veltair-run infer`. Finally a short multi-tenant benchmark over all six bundles (about half a
# minute) prints each scheduling policy's QPS-at-QoS. Exits non-zero if any model fails. Extra
# arguments go to every `check` (e.g. --json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p veltair-compile -p veltair-run
mkdir -p target/bundles
status=0
for dir in models/small/*/; do
    name=$(basename "$dir")
    echo "=== $name"
    if ./target/release/veltair-compile check "$dir/model.onnx" --data "$dir/test_data_set_0" "$@" &&
        ./target/release/veltair-compile run "$dir/model.onnx" --data "$dir/test_data_set_0" --repeat 20 &&
        ./target/release/veltair-compile "$dir/model.onnx" --data "$dir/test_data_set_0" --tune quick \
            -o "target/bundles/$name.vbundle" --report "target/bundles/$name.json" &&
        ./target/release/veltair-run infer "target/bundles/$name.vbundle" --data "$dir/test_data_set_0"; then
        results+=("$name: ok (reference evaluator, generated code, bundle)")
    else
        results+=("$name: FAILED")
        status=1
    fi
done
echo
printf '%s\n' "${results[@]}"
echo
echo "=== multi-tenant benchmark (medium mix of the small zoo; JSON and SVG in target/bundles/)"
./target/release/veltair-run bench --mix medium --bundles target/bundles --queries 2000 --steps 5 \
    --json target/bundles/bench.json --svg target/bundles/bench.svg || status=1
exit $status
