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
# two workers (the CI machine has two cores).  Three took 11 min 26 s
# instead of 16 min 45 s, but the failover test (tests/chaos/test_failover.py)
# then failed twice in two fresh-clone runs (a call stored that the simulator
# never made): a failover bug that the heavier load lets through, open in
# issue 22.  Back to three once it is fixed.  A file's tests stay on one
# worker, the files in the order tests/conftest.py gives, the longest first
.venv/bin/pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
