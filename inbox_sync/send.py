"""Sending CRM email through a user's own SMTP server, and checking that login.

``send`` is the whole path: build the message, send it (aiosmtplib), append the copy
to Sent, log it as ``crm_send``. Nothing is logged unless the server accepted it.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

import aiosmtplib

from core.inboxes import Endpoint, InboxError, SendRequest
from core.models import utcnow
from inbox_sync.errors import OVERQUOTA, THROTTLED, address_error, login_error


@dataclass(frozen=True)
class Outgoing:
    message: EmailMessage
    message_id: str  # without <>
    recipients: tuple[str, ...]


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def smtp_error(exc: BaseException, endpoint: Endpoint) -> InboxError:
    """An aiosmtplib failure as the precise InboxError (protocol ``smtp``)."""
    for item in _cause_chain(exc):
        if isinstance(item, OSError) and not isinstance(item, aiosmtplib.SMTPException):
            return address_error(item, endpoint, "smtp")
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return login_error(exc, endpoint, "smtp")
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError | aiosmtplib.SMTPTimeoutError):
        return InboxError("timeout", f"SMTP server {where} did not answer in time",
                          protocol="smtp")
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectResponseError
                  | aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPHeloError):
        return InboxError("no_smtp", f"{where} does not speak SMTP: {exc}", protocol="smtp")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return InboxError("tls_failure" if "STARTTLS" in str(exc).upper() else "no_smtp",
                          f"SMTP server {where}: {exc}", protocol="smtp")
    text = str(exc)
    if THROTTLED.search(text) or getattr(exc, "code", 0) == 421:
        return InboxError("throttled", f"the SMTP server is throttling: {text}",
                          protocol="smtp")
    if OVERQUOTA.search(text):
        return InboxError("mailbox_full", f"the SMTP server refused: {text}", protocol="smtp")
    return InboxError("send_rejected", f"the SMTP server refused the message: {text}",
                      protocol="smtp")


def _client(endpoint: Endpoint, timeout: float,
            context: ssl.SSLContext | None) -> aiosmtplib.SMTP:
    context = context or ssl.create_default_context()
    return aiosmtplib.SMTP(
        hostname=endpoint.host, port=endpoint.port, timeout=timeout,
        use_tls=endpoint.security == "ssl", start_tls=endpoint.security == "starttls",
        tls_context=context,
    )


@contextlib.asynccontextmanager
async def _logged_in(endpoint: Endpoint, username: str, password: str, timeout: float,
                     context: ssl.SSLContext | None) -> AsyncIterator[aiosmtplib.SMTP]:
    """A connected, secured, logged-in client; SMTP and network failures become
    InboxError, and the connection is closed whatever happens."""
    client = _client(endpoint, timeout, context)
    try:
        await client.connect()
        await client.login(username, password)  # submission always authenticates
        yield client
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise smtp_error(exc, endpoint) from None
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


async def check_login(endpoint: Endpoint, username: str, password: str, *,
                      timeout: float = 20, context: ssl.SSLContext | None = None) -> None:
    """Connect, secure and log in to the SMTP server; raise InboxError when that fails."""
    async with _logged_in(endpoint, username, password, timeout, context):
        pass


async def deliver(endpoint: Endpoint, username: str, password: str, outgoing: Outgoing, *,
                  timeout: float = 60, context: ssl.SSLContext | None = None) -> None:
    """Send through the user's server; returns only when it accepted every recipient."""
    async with _logged_in(endpoint, username, password, timeout, context) as client:
        errors, _reply = await client.send_message(outgoing.message,
                                                   recipients=list(outgoing.recipients))
    if errors:
        refused = ", ".join(f"{rcpt} ({resp.code} {resp.message})"
                            for rcpt, resp in errors.items())
        raise InboxError("send_rejected", f"the SMTP server refused {refused}", protocol="smtp")


def compose(request: SendRequest, sender: str, sender_name: str, *, html: str) -> Outgoing:
    """The RFC 5322 message for a send request; ``html`` is its HTML body, already
    rewritten for tracking when that was asked (``core.tracked_sends.create``)."""
    message = EmailMessage()
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = make_msgid(domain=domain)
    message["From"] = formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = ", ".join(request.to)
    if request.cc:
        message["Cc"] = ", ".join(request.cc)
    message["Subject"] = request.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id
    if request.in_reply_to:
        reference = "<" + request.in_reply_to.strip().strip("<>") + ">"
        message["In-Reply-To"] = reference
        message["References"] = reference
    message.set_content(request.text or " ")
    if html:
        message.add_alternative(html, subtype="html")
    recipients = tuple(dict.fromkeys((*request.to, *request.cc, *request.bcc)))
    return Outgoing(message, message_id.strip("<>"), recipients)
