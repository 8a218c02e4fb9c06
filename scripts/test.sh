#!/usr/bin/env bash
# Install everything the test suite needs into .venv and run it: lint, types,
# tests.  Safe to run again.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scripts/debian-packages.sh
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
scripts/grafana-schema.sh    # npm: @grafana/schema + typescript for tests/grafana_schema
scripts/npm-deps.sh          # npm ci in tests/*/ (oidc-provider for tests/oidc, axe-core for tests/browser)
.venv/bin/ruff check pbxwatch tests bench asterisk-lab
.venv/bin/ruff format --check pbxwatch tests bench asterisk-lab
.venv/bin/mypy
# three workers on the CI machine's two cores: most of the long tests wait
# on servers and simulated clocks, not the CPU (2 workers: 16 min 45 s,
# 3: 11 min 26 s).  A file's tests stay on one worker, and the files go out
# in the order tests/conftest.py puts them, the longest first (xdist's own
# reorder, by number of tests, left the long one-test files for the end)
.venv/bin/pytest -n "${PYTEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder "$@"
