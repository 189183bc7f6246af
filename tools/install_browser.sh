#!/usr/bin/env bash
# Installs what tests/deploy/test_browser.py needs to drive the Airflow UI: Debian's chromium
# (Playwright's own browser downloads cannot be fetched here) and the pinned playwright package,
# whose wheel carries its driver. Idempotent and quick when everything is already there.
# Usage: tools/install_browser.sh [path/to/venv/python]   (.ci/run calls it before `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"

if [ -x /usr/bin/chromium ]; then
  echo "==> chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
else
  echo "==> installing chromium with apt-get"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  # The package lists may be missing or stale on a fresh machine; install finds nothing without them.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  echo "==> chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
fi

if [ -x "$PY" ]; then
  pin="$(grep -E '^playwright==' requirements-dev.txt || true)"
  if [ -z "$pin" ]; then
    echo "requirements-dev.txt pins no playwright version" >&2
    exit 1
  fi
  if ! "$PY" -c "import playwright" 2>/dev/null; then
    echo "==> installing $pin"
    "$PY" -m pip install --quiet --disable-pip-version-check "$pin"
  fi
  echo "==> $("$PY" -m pip show playwright 2>/dev/null | grep -E '^(Name|Version):' | tr '\n' ' ')"
else
  echo "==> no venv at $PY yet: playwright comes with \`make install\` (requirements-dev.txt)"
fi
