"""Mail as each provider's forwarding rule hands it on: envelope sender and added headers.

``docs/forwarding-rules.md`` says where each shape comes from and how sure it is. Each
shape takes the forwarding mailbox, the logging address it forwards to and the original
sender, and returns the envelope sender the forwarder uses and the header lines it puts
on top of the message (topmost first). The Postfix and Pigeonhole shapes are what the
real Debian servers wrote in ``tests/smtp_ingest/test_forwarding_rules.py``'s runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

DATE = "Tue, 17 Nov 2026 10:00:05 +0000"
TENANT = "3f2b6c1e-8d4a-4c7b-9e51-0a6d2f7c8b90"


@dataclass(frozen=True)
class Shaped:
    mail_from: str
    headers: tuple[str, ...]

    def apply(self, message: EmailMessage) -> bytes:
        """The message as the forwarder sends it: its header lines on top."""
        top = "".join(f"{line}\r\n" for line in self.headers).encode()
        return top + message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.partition("@")
    return local, domain


def gmail(user: str, logging: str, sender: str) -> Shaped:
    local, domain = _split(user)
    dest_local, dest_domain = _split(logging)
    return Shaped(f"{local}+caf_={dest_local}={dest_domain}@{domain}", (
        f"X-Forwarded-To: {logging}",
        f"X-Forwarded-For: {user} {logging}",
        f"Delivered-To: {user}",
        f"Received: by 2002:a05:7300:5b0f:b0:1b2:9c4e:7d1a with SMTP id q15csp2207458dyf;"
        f"\r\n        {DATE}",
    ))


def _ms_srs(user: str, sender: str) -> str:
    s_local, s_domain = _split(sender)
    return f"{s_local}+SRS=Xk3qP=5Q={s_domain}={s_local}@{_split(user)[1]}"


_CROSS_TENANT = (
    f"X-MS-Exchange-CrossTenant-Id: {TENANT}",
    "X-MS-Exchange-Transport-CrossTenantHeadersStamped: AM9PR07MB7201",
)


def m365_forwarding(user: str, logging: str, sender: str) -> Shaped:
    """Mailbox forwarding (ForwardingSmtpAddress / "Forward all my email")."""
    return Shaped(_ms_srs(user, sender), (
        f"X-MS-Exchange-ForwardingLoop: {user};{TENANT}",
        *_CROSS_TENANT,
    ))


def m365_inbox_rule(user: str, logging: str, sender: str) -> Shaped:
    """An Outlook inbox rule "Redirect to" (Exchange Online, Outlook.com)."""
    return Shaped(_ms_srs(user, sender), (
        f"X-MS-Exchange-Inbox-Rules-Loop: {user}",
        *_CROSS_TENANT,
    ))


def yahoo(user: str, logging: str, sender: str) -> Shaped:
    return Shaped(sender, (f"X-Yahoo-Forwarded: from {user} to {logging}",))


def fastmail(user: str, logging: str, sender: str) -> Shaped:
    s_local, s_domain = _split(sender)
    return Shaped(f"SRS0=zT4r=5Q={s_domain}={s_local}@fastmail.com", (
        f"X-Resolved-to: {user}",
        f"X-Delivered-to: {user}",
        f"X-Mail-from: {sender}",
    ))


def icloud(user: str, logging: str, sender: str) -> Shaped:
    s_local, s_domain = _split(sender)
    return Shaped(f"SRS0=Q2fr=5Q={s_domain}={s_local}@icloud.com", (
        f"Original-recipient: rfc822;{user}",
        f"Received: from mail.customer.example by p00-icloudmta-asmtp-us-west-2a-10-percent-3"
        f"\r\n (Postfix) with ESMTPS id 4Cz1Hc0Bq9z9rwQ for <{user}>; {DATE}",
    ))


def sieve_redirect(user: str, logging: str, sender: str) -> Shaped:
    """Dovecot Pigeonhole ``redirect`` with ``sieve_redirect_envelope_from = sender``."""
    return Shaped(sender, (
        "X-Sieve: Pigeonhole Sieve 0.5.19 (4eae2f79)",
        f"X-Sieve-Redirected-From: {user}",
        f"Delivered-To: {user}",
    ))


def postfix_forward(user: str, logging: str, sender: str) -> Shaped:
    """Postfix local(8) forwarding an alias or ``.forward``."""
    return Shaped(sender, (
        f"Received: by mx.{_split(user)[1]} (Postfix)\r\n\tid D07AE22A068; {DATE}",
        f"Delivered-To: {user}",
        f"Received: from mail.customer.example (mail.customer.example [198.51.100.7])\r\n"
        f"\tby mx.{_split(user)[1]} (Postfix) with ESMTP id CF13322A066\r\n"
        f"\tfor <{user}>; {DATE}",
    ))


def postfix_virtual(user: str, logging: str, sender: str) -> Shaped:
    """Postfix ``virtual_alias_maps``: no header but the receiving hop's ``for``."""
    return Shaped(sender, (
        f"Received: from mail.customer.example (mail.customer.example [198.51.100.7])\r\n"
        f"\tby mx.{_split(user)[1]} (Postfix) with ESMTP id E86D322A068\r\n"
        f"\tfor <{user}>; {DATE}",
    ))


def postsrsd(user: str, logging: str, sender: str) -> Shaped:
    """Postfix local(8) forwarding, envelope sender rewritten by postsrsd."""
    s_local, s_domain = _split(sender)
    forwarded = postfix_forward(user, logging, sender)
    return Shaped(f"SRS0=HT6j=JU={s_domain}={s_local}@{_split(user)[1]}", forwarded.headers)


def resent(user: str, logging: str, sender: str) -> Shaped:
    """A client's "Redirect"/"Bounce" (RFC 5322 3.6.6 resent fields)."""
    return Shaped(user, (
        f"Resent-From: {user}",
        f"Resent-To: {logging}",
        f"Resent-Date: {DATE}",
        "Resent-Message-ID: <resent-1@ourco.example>",
    ))


Shape = Callable[[str, str, str], Shaped]
# provider -> (shape, the forwarding mailbox: an address of the portal user)
SHAPES: dict[str, tuple[Shape, str]] = {
    "gmail": (gmail, "rep.sales@gmail.com"),
    "gmail_workspace": (gmail, "rep@ourco.example"),
    "m365_forwarding": (m365_forwarding, "rep@ourco.example"),
    "m365_inbox_rule": (m365_inbox_rule, "rep@ourco.example"),
    "outlook_com": (m365_inbox_rule, "rep.ourco@outlook.com"),
    "yahoo": (yahoo, "rep.ourco@yahoo.com"),
    "fastmail": (fastmail, "rep.ourco@fastmail.com"),
    "icloud": (icloud, "rep.ourco@icloud.com"),
    "sieve_redirect": (sieve_redirect, "rep@ourco.example"),
    "postfix_forward": (postfix_forward, "rep@ourco.example"),
    "postfix_virtual": (postfix_virtual, "rep@ourco.example"),
    "postsrsd": (postsrsd, "rep@ourco.example"),
    "resent": (resent, "rep@ourco.example"),
}
USER = "rep@ourco.example"
ALIASES = ("rep.sales@gmail.com", "rep.ourco@outlook.com", "rep.ourco@yahoo.com",
           "rep.ourco@fastmail.com", "rep.ourco@icloud.com")


def stranger(mailbox: str) -> str:
    """The same provider's mailbox of someone who is not a user."""
    return "someone.else@" + _split(mailbox)[1]
