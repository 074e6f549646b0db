#!/usr/bin/env bash
# What the test suite needs beyond the Python packages: Debian's headless Chromium, for the tests that
# render `trackkit report` in a browser (tests/report/test_browser.py). Idempotent and quiet: nothing
# happens when a Chromium is already there (chromium, chromium-browser, google-chrome or
# $TRACKKIT_CHROMIUM). Needs root (or sudo) and apt-get; elsewhere it says what to install.
set -euo pipefail
if [ -n "${TRACKKIT_CHROMIUM:-}" ] && [ -x "${TRACKKIT_CHROMIUM}" ]; then exit 0; fi
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-env: no Chromium and no apt-get here; install Chromium (or set TRACKKIT_CHROMIUM=/path/to/chrome)," \
       "or run the tests with TRACKKIT_SKIP_BROWSER=1" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "setup-test-env: installing chromium (apt-get) for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
command -v chromium >/dev/null 2>&1
