"""Which mailbox a forwarding rule forwarded a message from, as the forwarders say it.

A rule forwards a copy of received mail: ``From`` is the original sender, so the only
traces of the user whose mailbox forwarded it are the envelope sender and the headers
the forwarding service adds. What each service writes, and how sure we are of it, is in
``docs/forwarding-rules.md``; in short (most trusted first, the order ``claims`` keeps):

- envelope sender: Gmail's ``user+caf_=dest=domain@gmail.com`` (or the Workspace
  domain), Dovecot Pigeonhole with ``sieve_redirect_envelope_from = recipient``, any
  forwarder that sends as the user (also BATV-signed, ``prvs=tag=user@domain``). An
  SRS address (Postfix + postsrsd, Fastmail, iCloud:
  ``SRS0=hash=tt=domain=local@forwarder``; Microsoft 365:
  ``local+SRS=hash=tt=domain=local@tenant-domain``) names the *original* sender at the
  forwarder's domain, never the user: it is reported, not matched.
- ``Resent-From``/``Resent-Sender`` (RFC 5322 3.6.6: a client's "redirect"/"bounce").
- the forwarder's own headers: Gmail ``X-Forwarded-For: user dest``; Exchange Online
  ``X-MS-Exchange-Inbox-Rules-Loop: user`` (an inbox rule) and
  ``X-MS-Exchange-ForwardingLoop: user;tenant-guid`` (mailbox forwarding); Pigeonhole
  ``X-Sieve-Redirected-From: user``; Yahoo ``X-Yahoo-Forwarded: from user to dest``.
- delivery headers of the mailbox the copy passed through: ``Delivered-To`` (Postfix
  local(8) on alias/.forward, Dovecot LMTP/LDA, Gmail, qmail), ``X-Original-To``
  (Postfix), Fastmail's ``X-Delivered-to``/``X-Resolved-to``, ``Original-Recipient:
  rfc822;user`` (Oracle Messaging Server, iCloud), ``X-Apparently-To`` (Yahoo),
  Gmail's ``X-Forwarded-To`` (where it went: a user's other mailbox in a chain).
- the topmost ``Received: ... for <user>``: a Postfix virtual alias adds no header, and
  this clause, written by the forwarder when it took the mail in, is all there is.

Every one of these is a claim anyone can write. Naming a user only lets the message
be considered as that user's forwarding-rule mail: incoming, logged only when it ties
to a logged thread. It never makes mail outgoing, never skips the privacy rule, and
whether the sender is who it says is the sender-authentication check's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.mail.parsing import ADDRESS, ParsedMessage
from core.types import Envelope

# Where each shape comes from and how sure it is (docs/forwarding-rules.md has the rest):
# "observed" = written by the real Debian server in tests/smtp_ingest/test_forwarding_rules.py;
# "seen" = in forwarded mail as commonly shown, not documented by the provider.

# The forwarder's own headers: (header, how many addresses of each value: 0 = all).
SERVICE_HEADERS: tuple[tuple[str, int], ...] = (
    # Gmail, "user@gmail.com dest@example.com": the first forwarded. Seen; high.
    ("X-Forwarded-For", 1),
    # Exchange Online / Outlook.com inbox rule "Redirect to", "user@contoso.com". Seen; medium.
    ("X-MS-Exchange-Inbox-Rules-Loop", 0),
    # Exchange Online mailbox forwarding, "user@contoso.com;<tenant guid>". Seen; medium.
    ("X-MS-Exchange-ForwardingLoop", 0),
    # Dovecot Pigeonhole redirect, "user@example.com". Observed (Pigeonhole 0.5.19); high.
    ("X-Sieve-Redirected-From", 0),
)
# Delivery headers of a mailbox the copy went through.
DELIVERY_HEADERS: tuple[str, ...] = (
    "Delivered-To",  # RFC 9228; Postfix local(8) (observed), Dovecot LMTP (observed), Gmail
    "X-Original-To",  # Postfix local/virtual delivery (enable_original_recipient); high
    "X-Delivered-To", "X-Resolved-To",  # Fastmail, on mail it delivers. Seen; medium
    "Original-Recipient",  # "rfc822;user@icloud.com": iCloud (Oracle Messaging). Seen; low
    "X-Apparently-To",  # Yahoo's mailbox header; on forwarded copies unverified; low
    "X-Forwarded-To",  # Gmail: where it went (a user's other mailbox in a chain); high
)
# Yahoo: "X-Yahoo-Forwarded: from user@yahoo.com to dest@example.com". Seen; low-medium.
_YAHOO_FROM = re.compile(r"\bfrom\s+<?(" + ADDRESS.pattern + r")", re.IGNORECASE)
# RFC 5321 4.4 Time-stamp-line: "... for <path>;" (also written without the brackets).
# The only trace of a Postfix virtual alias (observed); high.
_RECEIVED_FOR = re.compile(r"\bfor\s+<?(" + ADDRESS.pattern + r")>?\s*;", re.IGNORECASE)
# SRS0=HHH=TT=domain=local@forwarder and SRS1=HHH=first-forwarder==HHH=TT=domain=local@...
# (Shevek's SRS as in libsrs2/postsrsd; "=" may be "+" or "-" after SRS0/SRS1). postsrsd
# 1.10 observed; Fastmail's and iCloud's SRS domain is not relied on.
_SRS = re.compile(r"^srs[01][=+-].*=([^=@]+)=([^=@]*)@([^@]+)$", re.IGNORECASE)
# Microsoft 365: <local>+SRS=<hash>=<timestamp>=<original domain>=<original local>@<domain>,
# the format Microsoft documents for SRS in Office 365; <local> is not relied on.
_MS_SRS = re.compile(r"^[^@]*\+srs=[^=@]+=[^=@]+=([^=@]+)=([^=@]*)@([^@]+)$", re.IGNORECASE)
# BATV (draft-levine-smtp-batv): prvs=<tag>=<local>@<domain>, a signed envelope sender of
# the user's own domain; the address it signs is the user's.
_BATV = re.compile(r"^prvs=[^=@]+=([^@]+@[^@]+)$", re.IGNORECASE)
# Gmail: <user>+caf_=<dest local>=<dest domain>@<user's domain>.
_GMAIL_CAF = re.compile(r"^([^@+]+)\+caf_=(.+)=([^=@]+)@([^@]+)$", re.IGNORECASE)

MAX_CLAIMS = 50  # a header block can repeat a header thousands of times: stop looking


@dataclass(frozen=True)
class Claim:
    """An address the message says is the mailbox it was forwarded from, and where."""

    address: str  # as written (an SRS hash is case-sensitive)
    where: str  # "envelope sender", or the header's name


@dataclass(frozen=True)
class Srs:
    """An SRS-rewritten envelope sender: who rewrote it and for whom."""

    address: str
    forwarder: str  # the rewriting domain
    original: str  # the original sender it encodes


def srs(address: str) -> Srs | None:
    """The SRS reading of an envelope sender, or None when it is not SRS."""
    for pattern in (_SRS, _MS_SRS):
        match = pattern.match(address)
        if match:
            domain, local, forwarder = match.groups()
            return Srs(address, forwarder.lower(), f"{local}@{domain}".lower())
    return None


def gmail_destination(address: str) -> str | None:
    """Where Gmail's ``user+caf_=dest=domain@...`` envelope sender says it forwarded to."""
    match = _GMAIL_CAF.match(address)
    return f"{match.group(2)}@{match.group(3)}".lower() if match else None


def without_tag(address: str) -> str:
    """``you+caf_=...@example.com`` (Gmail's forwarding envelope sender) -> ``you@...``."""
    local, at, domain = address.partition("@")
    return local.split("+", 1)[0] + at + domain


def claims(parsed: ParsedMessage, envelope: Envelope) -> list[Claim]:
    """Every address naming a forwarding mailbox, most trusted first, without repeats."""
    found: list[Claim] = []
    # Where the copy was forwarded to (Gmail's X-Forwarded-To, a Delivered-To of this
    # very delivery) is not where it came from.
    ours = without_tag(envelope.logging_address.lower()) if envelope.logging_address else None

    def add(address: str, where: str) -> None:
        address = address.strip().strip("<>")
        key = address.lower()
        if (address and len(found) < MAX_CLAIMS and without_tag(key) != ours
                and all(c.address.lower() != key for c in found)):
            found.append(Claim(address, where))

    if envelope.mail_from and envelope.mail_from != "<>":
        add(envelope.mail_from, "envelope sender")
    for address in parsed.resent_from:
        add(address.key, "Resent-From")
    for value in _values(parsed, "Resent-Sender"):
        for address in ADDRESS.findall(value)[:1]:
            add(address, "Resent-Sender")
    for name, take in SERVICE_HEADERS:
        for value in _values(parsed, name):
            addresses = ADDRESS.findall(value)
            for address in addresses[:take] if take else addresses:
                add(address, name)
    for value in _values(parsed, "X-Yahoo-Forwarded"):
        for address in _YAHOO_FROM.findall(value):
            add(address, "X-Yahoo-Forwarded")
    for name in DELIVERY_HEADERS:
        for value in _values(parsed, name):
            for address in ADDRESS.findall(value):
                add(address, name)
    received = _values(parsed, "Received")
    if received:
        for address in _RECEIVED_FOR.findall(received[0]):
            add(address, "Received for")
    return found


def made_by_inbox_rule(parsed: ParsedMessage, users: Mapping[str, object]) -> bool:
    """Whether a message from a user was written by an Exchange inbox rule, not by hand.

    Exchange Online's (and Outlook.com's) inbox rule "Forward to" sends each matching
    message on as a new ``FW:`` message from the user, stamped, like every message an
    inbox rule sends, with ``X-MS-Exchange-Inbox-Rules-Loop: <the user>`` (seen in such
    mail, not documented: medium). A forward the user writes never has it at the top:
    the headers of what they forward stay inside the forward. Other clients' rules
    (a Thunderbird filter's "Forward") leave no mark and still read as the user's own.
    """
    return any(address.lower() in users
               for value in _values(parsed, "X-MS-Exchange-Inbox-Rules-Loop")
               for address in ADDRESS.findall(value))


def _values(parsed: ParsedMessage, name: str) -> list[str]:
    """A header's values, topmost (the last hop's) first."""
    wanted = name.lower()
    return [value for key, value in parsed.headers if key.lower() == wanted]


def matches(claim: Claim) -> tuple[str, ...]:
    """The user addresses a claim can stand for: itself, and itself without a ``+tag``
    (Gmail's ``+caf_``, sub-addressing) or BATV signature. Never an SRS address's parts:
    its local part is the original sender's, at the forwarder's domain, so a user of
    that domain who shares the sender's local part would be named by accident."""
    if srs(claim.address) is not None:
        return ()
    key = claim.address.lower()
    batv = _BATV.match(key)
    if batv:
        key = batv.group(1)
    return tuple(dict.fromkeys((key, without_tag(key))))


def describe(claim: Claim, logging_address: str | None) -> str:
    """A claim as a refusal states it: where it was seen, the address, what it reads as."""
    text = f"{claim.where} {claim.address}"
    rewritten = srs(claim.address)
    if rewritten is not None:
        return f"{text} (SRS by {rewritten.forwarder} for {rewritten.original})"
    destination = gmail_destination(claim.address)
    if destination is not None:
        to_us = (logging_address is not None
                 and without_tag(destination) == without_tag(logging_address.lower()))
        return f"{text} (Gmail forwarding{' to this address' if to_us else ' to ' + destination})"
    return text
