#!/usr/bin/env bash
# Install Debian's HAProxy for the multi-node tests (tests/multinode) when missing, and
# print the binary's path. The tests run their own instance (haproxy -db -f CFG) in a
# temp dir on loopback ports; the system service is stopped and disabled, never used.
set -euo pipefail

log() { echo "haproxy-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ ! -x /usr/sbin/haproxy ]; then
  log "installing haproxy from the system packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >&2
  as_root systemctl disable --now haproxy >/dev/null 2>&1 \
    || as_root service haproxy stop >/dev/null 2>&1 || true
fi
echo /usr/sbin/haproxy
