#!/usr/bin/env bash
# Install Dovecot's IMAP server for the test suite when missing (the tests run their own
# instance in a temp dir; the system service is not used) and print the binary's path.
# dovecot-imapd brings dovecot-core: doveadm and the quota/imap_quota plugins the tests
# load for a full mailbox come with the two. dovecot-lmtpd and dovecot-sieve (Pigeonhole)
# are the Sieve `redirect` forwarder of the forwarding-rule tests.
set -euo pipefail

log() { echo "dovecot-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/lmtp ] \
    || [ ! -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ]; then
  log "installing dovecot-imapd, dovecot-lmtpd and dovecot-sieve from the system packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd \
    dovecot-lmtpd dovecot-sieve openssl >&2
fi
echo /usr/sbin/dovecot
