#!/usr/bin/env bash
# The main job without a PBX: install pbxwatch into .venv, then `pbxwatch demo`:
# the built-in PBX simulator (an AMI server playing a municipal working day,
# 60x faster than real time) and pbxwatch connected to it over TCP, storing
# into SQLite (demo-data/), serving metrics on http://127.0.0.1:9108/metrics,
# alerts in the log.  A summary is redrawn every second; Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
exec .venv/bin/pbxwatch demo --config config/lab.yaml "$@"
