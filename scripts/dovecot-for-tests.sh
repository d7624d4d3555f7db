#!/usr/bin/env bash
# Install Dovecot's IMAP server for the test suite when missing (the tests run their own
# instance in a temp dir; the system service is not used) and print the binary's path.
# dovecot-imapd brings dovecot-core: doveadm and the quota/imap_quota plugins the tests
# load for a full mailbox come with the two.
set -euo pipefail

log() { echo "dovecot-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ]; then
  log "installing dovecot-imapd from the system packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd openssl >&2
fi
echo /usr/sbin/dovecot
