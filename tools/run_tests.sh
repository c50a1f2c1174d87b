#!/usr/bin/env bash
# The test command: set up the environment if needed, lint, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
VENV="${V2XDET_VENV:-.venv}"
"$VENV/bin/ruff" check .
"$VENV/bin/python" -m pytest "$@"
