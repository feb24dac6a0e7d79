#!/usr/bin/env bash
# Ensures the repo-local Python venv (.venv/) matches scripts/requirements.txt and prints the
# path of its python on stdout (everything else goes to stderr).
# The venv is (re)built from scratch when missing or when requirements.txt or the base
# interpreter changed (tracked by a hash stored in .venv/.requirements.sha256).
# Usage: PY="$(scripts/pyenv.sh)"; "$PY" scripts/gen_zoo.py   (base interpreter: $PYTHON or python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
base="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

want="$({ cat "$root/scripts/requirements.txt"; "$base" -VV; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "pyenv: creating $venv" >&2
    rm -rf "$venv"
    "$base" -m venv "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q \
        -r "$root/scripts/requirements.txt" >&2
    echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
