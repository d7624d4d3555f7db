#!/usr/bin/env bash
# Install Postfix (and postsrsd, the SRS rewriter Debian ships for it) for the forwarding-rule
# tests when missing, and print the directory of Postfix's daemons. The tests run their own
# instance with its own main.cf/master.cf in a temp dir on loopback ports; the system
# service is never configured ("No configuration") nor started.
set -euo pipefail

log() { echo "postfix-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ ! -x /usr/sbin/postfix ] || [ ! -x /usr/sbin/postsrsd ]; then
  log "installing postfix and postsrsd from the system packages"
  # postsrsd's package starts its daemon: deny service starts while installing, unless the
  # machine already has a policy (containers usually deny them all).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix postsrsd >&2
fi
/usr/sbin/postconf -d -h daemon_directory
