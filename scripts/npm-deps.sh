#!/usr/bin/env bash
# Install the npm packages of the tests' Node projects: `npm ci` (exactly the
# committed package-lock.json) in every tests/*/ folder with a package.json
# whose node_modules is missing or was installed from another lock file.
# tests/grafana_schema is left to scripts/grafana-schema.sh (it installs into
# .venv/grafana-schema).  Node and npm come from Debian
# (scripts/debian-packages.sh).  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node/npm missing: install nodejs and npm (scripts/debian-packages.sh)" >&2
  exit 1
fi
for manifest in tests/*/package.json; do
  dir=$(dirname "$manifest")
  [ "$dir" = tests/grafana_schema ] && continue
  if [ ! -f "$dir/package-lock.json" ]; then
    echo "$dir: package-lock.json missing (run npm install there and commit it)" >&2
    exit 1
  fi
  stamp="$dir/node_modules/.npm-deps.lock"
  if [ ! -d "$dir/node_modules" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "npm ci in $dir ..." >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
done
