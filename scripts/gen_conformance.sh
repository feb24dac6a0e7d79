#!/usr/bin/env bash
# Generates the ONNX backend node conformance tests of the pinned onnx version
# (see scripts/requirements.txt) into DIR/node/<test_name>/ (model.onnx + test_data_set_0/), and
# copies the wheel's simple/, pytorch-converted/ and pytorch-operator/ model tests beside it.
# DIR defaults to target/onnx-node-tests under the repo root; each folder is replaced wholesale.
# Usage: scripts/gen_conformance.sh [DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/pyenv.sh")"
dir="${1:-$here/../target/onnx-node-tests}"

start=$SECONDS
mkdir -p "$dir"
"$py" "$here/gen_conformance.py" "$dir"
echo "gen_conformance: $(find "$dir"/* -mindepth 1 -maxdepth 1 -type d | wc -l) tests in" \
     "$(cd "$dir" && echo *)," \
     "$(du -sh "$dir" | cut -f1) in $(cd "$dir" && pwd) ($((SECONDS - start))s," \
     "onnx $("$py" -c 'import onnx; print(onnx.__version__)'))"
