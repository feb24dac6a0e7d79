#!/usr/bin/env bash
# Ensures a repo-local Python venv matches its requirements and prints the path of its python
# on stdout (everything else goes to stderr): .venv/ for scripts/requirements.txt, or with an
# argument NAME, .venv-NAME/ for scripts/requirements-NAME.txt.
# The venv is (re)built from scratch when missing or when requirements.txt or the base
# interpreter changed (tracked by a hash stored in .venv/.requirements.sha256).
# Usage: PY="$(scripts/pyenv.sh [NAME])"; "$PY" scripts/gen_zoo.py   (base interpreter: $PYTHON or python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suffix="${1:+-$1}"
venv="$root/.venv$suffix"
requirements="$root/scripts/requirements$suffix.txt"
base="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

want="$({ cat "$requirements"; "$base" -VV; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "pyenv: creating $venv" >&2
    rm -rf "$venv"
    "$base" -m venv "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q \
        -r "$requirements" >&2
    echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
