#!/usr/bin/env bash
# Install the npm packages of the Grafana schema check (tests/grafana_schema:
# @grafana/schema 11 and typescript, pinned in its package-lock.json) into
# .venv/grafana-schema, beside the Python test dependencies.  Without node and
# npm it says so and the test is skipped.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node/npm missing: tests/grafana_schema (Grafana 11 schema check) will be skipped" >&2
  exit 0
fi
src=tests/grafana_schema
dest=.venv/grafana-schema
mkdir -p "$dest"
if ! cmp -s "$src/package-lock.json" "$dest/package-lock.json" || [ ! -x "$dest/node_modules/.bin/tsc" ]; then
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  npm ci --prefix "$dest" --no-audit --no-fund --loglevel=error
fi
