#!/usr/bin/env bash
# Install the Debian packages the test suite starts itself, where missing:
# PostgreSQL (initdb/pg_ctl), Mosquitto and Prometheus (prometheus, promtool);
# Alertmanager (amtool) to check the Alertmanager example;
# docker-compose (v1.29, Debian's; Debian 12 packages no Compose v2) only to
# validate docker-compose.yml (tests/test_deploy.py; no container engine needed);
# Node.js and npm for the tests' Node projects (scripts/npm-deps.sh) and
# Chromium for the browser tests (tests/browser); pango for the PDF report
# (WeasyPrint) and poppler-utils for its tests (tests/reports).
# Uses sudo when not root.
set -euo pipefail
need=()
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)   # amtool check-config
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v node >/dev/null || need+=(nodejs)          # the tests' OpenID provider (tests/oidc)
command -v npm >/dev/null || need+=(npm)              # scripts/npm-deps.sh
[ -x /usr/bin/chromium ] || need+=(chromium)          # browser tests (Playwright, executable_path)
# report --format pdf: WeasyPrint (PyPI) loads pango at run time; the report
# tests render the PDF to PNG pages with pdftoppm and read it with pdftotext
ldconfig -p | grep -q 'libpangoft2-1.0.so.0' || need+=(libpango-1.0-0 libpangoft2-1.0-0)
command -v pdftoppm >/dev/null || need+=(poppler-utils)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing ${need[*]} ..." >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
