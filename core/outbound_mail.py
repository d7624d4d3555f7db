"""Mail inboxlog sends itself (address confirmations now, sign-in links later) through
the operator's outbound SMTP relay, ``serve --smtp-relay URL``.

The relay is operator configuration, never user input: inboxlog connects only to the
host named there. A user's own SMTP server (a connected inbox) is ``inbox_sync``'s,
behind its destination policy; nothing here reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from core.errors import RelayFailed

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpRelay:
    """``smtp://[user:pass@]host[:port]`` (STARTTLS when the relay offers it; port 25)
    or ``smtps://[user:pass@]host[:port]`` (TLS from the first byte; port 465)."""

    host: str
    port: int
    implicit_tls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpRelay:
        """The relay a URL names; ValueError saying what is wrong."""
        parts = urlsplit(url.strip())
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("the scheme is smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("a relay URL is scheme://[user:password@]host[:port] only")
        port = parts.port or DEFAULT_PORTS[parts.scheme]  # .port raises on a bad one
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
        if bool(username) != bool(password):
            raise ValueError("a user name and a password go together")
        return cls(parts.hostname, port, parts.scheme == "smtps", username, password)

    def __str__(self) -> str:
        """The URL without the password (for logs and errors)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{user}{self.host}:{self.port}"


class OutboundMail:
    """Sends a message through the relay; one connection per message (this mail is rare:
    a confirmation, a sign-in link)."""

    def __init__(self, relay: SmtpRelay, sender: str, *, timeout: float = 30) -> None:
        self.relay, self.sender, self.timeout = relay, sender, timeout

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """Hand ``message`` to the relay for ``recipient``, the envelope sender
        ``self.sender``; RelayFailed when it is not accepted."""
        relay = self.relay
        try:
            await aiosmtplib.send(
                message, sender=self.sender, recipients=[recipient],
                hostname=relay.host, port=relay.port, use_tls=relay.implicit_tls,
                start_tls=False if relay.implicit_tls else None,
                username=relay.username or None, password=relay.password or None,
                timeout=self.timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise RelayFailed(f"the server's SMTP relay did not accept the message: "
                              f"{detail}") from exc
