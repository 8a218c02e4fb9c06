#!/usr/bin/env bash
# The main job without a PBX: install pbxwatch into .venv, serve the recorded
# lab day (mixed_load: 215 calls) from the built-in AMI server, read it over
# TCP with the real AMI client and print a summary per outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
exec .venv/bin/pbxwatch replay tests/fixtures/ami/mixed_load.ami --config config/lab.yaml --via-tcp "$@"
