#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: system packages, lint, types, pytest.
# PostgreSQL runs use 127.0.0.1:5432 (or DROPIN_TEST_POSTGRES_URL) and are skipped, with a
# note in the summary, where no server answers; everything else needs nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

bash scripts/install-system-deps.sh
bash scripts/install-parsers.sh

echo "== ruff" && $bin/ruff check . && $bin/ruff format --check .
echo "== mypy --strict" && $bin/mypy
echo "== pytest"
$bin/python -m pytest "$@"
