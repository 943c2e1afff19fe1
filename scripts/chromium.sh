#!/usr/bin/env bash
# chromium.sh: install Debian's Chromium for the storefront's browser tests (once; later runs only check).
# The tests find it on PATH or through CHROMIUM; chromedp drives it headless.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
bash scripts/apt-install.sh chromium fonts-dejavu-core
