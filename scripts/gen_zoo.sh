#!/usr/bin/env bash
# Runs scripts/gen_zoo.py in the repo venv (created on demand by scripts/pyenv.sh).
# Usage: scripts/gen_zoo.sh [--small | --full] [MODEL ...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/pyenv.sh")"
exec "$py" "$here/gen_zoo.py" "$@"
