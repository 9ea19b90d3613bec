#!/usr/bin/env bash
# The one command that runs every check on a fresh machine: installs what is
# needed, then lint, format check, type check and the whole pytest suite.
# Test fixtures start the servers they need (registries, token issuer) themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
python3 -m pytest -q -p no:cacheprovider "$@"
