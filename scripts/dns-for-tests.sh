#!/usr/bin/env bash
# A real authoritative DNS server for the sender-authentication tests: Debian's NSD,
# unprivileged on a loopback port, serving the zone `test.` with SPF, DKIM and DMARC
# records. Installs nsd (and openssl) when missing: CI runs on a fresh machine.
#
#   scripts/dns-for-tests.sh DIR [PORT]
#
# DIR receives the zone, nsd.conf, the DKIM keys (DIR/keys/<selector>.<domain>.pem, made
# with openssl here, their public halves published in the zone) and nsd.pid. The server
# runs in the background; the last line printed on stdout is its port, once it answers.
# Stop it with `kill "$(cat DIR/nsd.pid)"`.
#
# The zone `broken.test.` is configured without a zone file: NSD answers SERVFAIL for it,
# a domain whose DNS is temporarily broken. A domain whose server never answers cannot be
# made with an authoritative server alone (a stub resolver asking NSD for a delegated name
# gets a referral, not a timeout); the tests point the resolver's stub zone `slow.test` at
# a loopback port that never answers instead.
set -euo pipefail

log() { echo "dns-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

DIR=${1:?usage: dns-for-tests.sh DIR [PORT]}
PORT=${2:-}

if [ ! -x /usr/sbin/nsd ] || ! command -v openssl >/dev/null; then
  log "installing nsd and openssl from the system packages"
  # nsd's package would start the system service: deny service starts while installing,
  # unless the machine already has a policy.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsd openssl >&2
fi

mkdir -p "$DIR/keys"
DIR=$(cd "$DIR" && pwd)
if [ -z "$PORT" ]; then
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

# One DKIM key per selector.domain; the zone publishes each public key.
dkim_record() {  # selector domain -> a TXT record line
  local selector=$1 domain=$2 pem="$DIR/keys/$1.$2.pem" pub
  [ -s "$pem" ] || openssl genrsa -out "$pem" 2048 2>/dev/null
  pub=$(openssl rsa -in "$pem" -pubout -outform DER 2>/dev/null | openssl base64 -A)
  # TXT strings hold 255 characters at most: split the key into quoted chunks.
  local chunks="" rest="v=DKIM1; k=rsa; p=$pub"
  while [ -n "$rest" ]; do chunks+="\"${rest:0:200}\" "; rest=${rest:200}; done
  echo "$selector._domainkey.$domain. 300 IN TXT ( $chunks)"
}

KEYS="s1.example.test s1.mail.example.test s1.strict.test s1.mail.strict.test s1.quarantine.test
  s1.sampled.test s1.monitor.test s1.nodmarc.test s1.forwarder.test s1.evil.test"
for key in $KEYS; do  # in parallel: RSA key generation is most of the start-up time
  [ -s "$DIR/keys/$key.pem" ] || openssl genrsa -out "$DIR/keys/$key.pem" 2048 2>/dev/null &
done
wait

# Loopback addresses for tests through the SMTP port (127.0.0.1 is a trusted network there):
# 127.0.0.6 plays the good domains' mail servers, 127.0.0.7 the forwarder, 127.0.0.5 the
# outsider (evil.test authorizes it).
SPF_OK='"v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.6 ip6:2001:db8::/32 -all"'
cat >"$DIR/test.zone" <<EOF
\$ORIGIN test.
\$TTL 300
@ IN SOA ns.test. hostmaster.test. $(date +%s) 3600 600 86400 60
@ IN NS ns.test.
ns IN A 127.0.0.1

; example.test: the portal's company. SPF -all, DKIM, DMARC p=reject (relaxed) with
; sp=quarantine for subdomains that publish nothing of their own.
example.test. IN TXT $SPF_OK
mail.example.test. IN TXT $SPF_OK
news.example.test. IN TXT $SPF_OK
_dmarc.example.test. IN TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.test"
; own.example.test has a DMARC record of its own, which wins over the organizational one.
own.example.test. IN TXT $SPF_OK
_dmarc.own.example.test. IN TXT "v=DMARC1; p=none"

; strict.test: strict DKIM and SPF alignment.
strict.test. IN TXT $SPF_OK
mail.strict.test. IN TXT $SPF_OK
_dmarc.strict.test. IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s"

; quarantine.test: p=quarantine; sampled.test: p=reject for none of the mail (pct=0).
quarantine.test. IN TXT $SPF_OK
_dmarc.quarantine.test. IN TXT "v=DMARC1; p=quarantine"
sampled.test. IN TXT $SPF_OK
_dmarc.sampled.test. IN TXT "v=DMARC1; p=reject; pct=0"

; monitor.test: p=none. softfail.test: SPF ~all, no DMARC. nodmarc.test: SPF -all, no
; DMARC. nothing.test: a domain that publishes nothing at all.
monitor.test. IN TXT $SPF_OK
_dmarc.monitor.test. IN TXT "v=DMARC1; p=none"
softfail.test. IN TXT "v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.6 ~all"
nodmarc.test. IN TXT $SPF_OK
nothing.test. IN A 192.0.2.99

; forwarder.test: a mailbox provider that forwards and ARC-seals (like Gmail).
forwarder.test. IN TXT "v=spf1 ip4:203.0.113.0/24 ip4:127.0.0.7 -all"
_dmarc.forwarder.test. IN TXT "v=DMARC1; p=reject"

; evil.test: an attacker's own domain, correctly set up for its own mail.
evil.test. IN TXT "v=spf1 ip4:198.51.100.0/24 ip4:127.0.0.5 -all"
_dmarc.evil.test. IN TXT "v=DMARC1; p=reject"

; permerror.test: two SPF records (RFC 7208 permerror) and two DMARC records (none).
permerror.test. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
permerror.test. IN TXT "v=spf1 -all"
_dmarc.permerror.test. IN TXT "v=DMARC1; p=reject"
_dmarc.permerror.test. IN TXT "v=DMARC1; p=none"

; slow.test is delegated; the tests' resolver sends its queries to a silent port.
slow.test. IN NS ns.slow.test.
ns.slow.test. IN A 127.0.0.1

$(dkim_record s1 example.test)
$(dkim_record s1 mail.example.test)
$(dkim_record s1 strict.test)
$(dkim_record s1 mail.strict.test)
$(dkim_record s1 quarantine.test)
$(dkim_record s1 sampled.test)
$(dkim_record s1 monitor.test)
$(dkim_record s1 nodmarc.test)
$(dkim_record s1 forwarder.test)
$(dkim_record s1 evil.test)
EOF

cat >"$DIR/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$PORT
  do-ip6: no
  username: ""
  chroot: ""
  database: ""
  zonesdir: "$DIR"
  zonelistfile: "$DIR/zone.list"
  xfrdfile: "$DIR/xfrd.state"
  xfrdir: "$DIR"
  pidfile: "$DIR/nsd.pid.internal"
  logfile: "$DIR/nsd.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
  refuse-any: yes
remote-control:
  control-enable: no
zone:
  name: test.
  zonefile: test.zone
zone:
  name: broken.test.
  zonefile: broken.zone.missing
EOF

/usr/sbin/nsd-checkconf "$DIR/nsd.conf" >&2
/usr/sbin/nsd-checkzone test. "$DIR/test.zone" >&2
setsid /usr/sbin/nsd -d -c "$DIR/nsd.conf" </dev/null >>"$DIR/nsd.log" 2>&1 &
echo $! >"$DIR/nsd.pid"

# Ready when it answers the zone's SOA (a raw query: no dig needed).
for _ in $(seq 1 100); do
  if python3 - "$PORT" <<'PY' 2>/dev/null
import socket, sys
q = bytes.fromhex("abcd01000001000000000000") + b"\x04test\x00" + b"\x00\x06\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
answer = s.recv(512)
sys.exit(0 if answer[:2] == b"\xab\xcd" and answer[3] & 0x0F == 0 else 1)
PY
  then
    echo "$PORT"
    exit 0
  fi
  if ! kill -0 "$(cat "$DIR/nsd.pid")" 2>/dev/null; then
    log "nsd exited:"; cat "$DIR/nsd.log" >&2; exit 1
  fi
  sleep 0.05
done
log "nsd did not answer on 127.0.0.1:$PORT"; cat "$DIR/nsd.log" >&2
kill "$(cat "$DIR/nsd.pid")" 2>/dev/null || true
exit 1
