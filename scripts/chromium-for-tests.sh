#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver for the browser tests (tests/pages) when
# missing, and print the browser's path. No browser is ever downloaded: the tests drive
# these two binaries (Selenium is told their paths, so Selenium Manager fetches nothing).
set -euo pipefail

log() { echo "chromium-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing chromium and chromium-driver from the system packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
    chromium-driver >&2
fi
echo /usr/bin/chromium
