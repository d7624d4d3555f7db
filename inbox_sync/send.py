"""Sending CRM email through a user's own SMTP server, and checking that login.

``send`` is the whole path: build the message, send it (aiosmtplib), append the copy
to Sent, log it as ``crm_send``. Nothing is logged unless the server accepted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any, NamedTuple

import aiosmtplib

from core.inboxes import Endpoint, InboxError, SendRequest
from core.storage.models import utcnow
from core.types import InboxErrorCode, MailProtocol, MailSecurity
from inbox_sync.errors import (
    OVERQUOTA,
    SMTP_MAILBOX_FULL,
    THROTTLED,
    address_error,
    login_error,
    printable,
    violation_error,
)
from inbox_sync.imap import Bearer

# Opens the TCP connection to an endpoint, to an address the policy allows (the service
# runs ``outbound.Destinations.connect`` on its network executor).
Connect = Callable[[Endpoint], Awaitable[socket.socket]]

# A whole SMTP conversation, in socket time-outs: logging in, and a send (the message
# may be 50 MB). Each reply also has its own time-out; aiosmtplib caps a reply line at
# 8 KB and a reply at 32 KB.
LOGIN_TIMEOUTS = 3
SEND_TIMEOUTS = 10


class _Violation(Exception):
    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit, self.detail = limit, detail


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
        if isinstance(item, InboxError):
            return item
        if isinstance(item, _Violation):
            return violation_error(item, MailProtocol.SMTP)
        if isinstance(item, OSError) and not isinstance(item, aiosmtplib.SMTPException):
            return address_error(item, endpoint, MailProtocol.SMTP)
    where = f"{endpoint.host}:{endpoint.port}"
    if (isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code < 0
            and "too long" in exc.message):
        return violation_error(_Violation("reply length", "a reply over 8 KB a line or "
                                          "32 KB in all"), MailProtocol.SMTP)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return login_error(exc, endpoint, MailProtocol.SMTP)
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError | aiosmtplib.SMTPTimeoutError):
        return InboxError(InboxErrorCode.TIMEOUT,
                          f"SMTP server {where} did not answer in time",
                          protocol=MailProtocol.SMTP)
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectResponseError
                  | aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPHeloError) or (
            isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code < 0):
        # What it sent is not repeated: it may be another service's banner.
        return InboxError(InboxErrorCode.NO_SMTP,
                          f"{where} does not speak SMTP (no valid greeting or reply)",
                          protocol=MailProtocol.SMTP)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        code = (InboxErrorCode.TLS_FAILURE if "STARTTLS" in str(exc).upper()
                else InboxErrorCode.NO_SMTP)
        return InboxError(code, f"SMTP server {where}: {exc}", protocol=MailProtocol.SMTP)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return refusal_error([Refusal(r.code, r.message, r.recipient) for r in exc.recipients])
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return refusal_error([Refusal(exc.code, exc.message)])
    return refusal_error([Refusal(0, str(exc))])


class Refusal(NamedTuple):
    """One SMTP reply refusing the message (or one of its recipients)."""

    code: int  # the reply code; 0 when there was no reply
    text: str
    recipient: str = ""  # "": the whole message


def refusal_error(refusals: list[Refusal]) -> InboxError:
    """SMTP replies refusing the message, as one InboxError: ``throttled`` when the
    server asked us to come back later (421, rate limits), ``mailbox_full`` when every
    refusal says a mailbox is full (X.2.2, quota texts), else ``send_rejected``."""
    said = ", ".join(f"{r.recipient} ({r.code} {printable(r.text)})" if r.recipient
                     else f"{r.code} {printable(r.text)}".strip() for r in refusals)
    if any(r.code == 421 or THROTTLED.search(r.text) for r in refusals):
        return InboxError(InboxErrorCode.THROTTLED, "the SMTP server is throttling this "
                          f"account, try again later: {said}", protocol=MailProtocol.SMTP)
    if all(SMTP_MAILBOX_FULL.match(r.text) or OVERQUOTA.search(r.text) for r in refusals):
        return InboxError(InboxErrorCode.MAILBOX_FULL,
                          f"the SMTP server refused, mailbox full: {said}",
                          protocol=MailProtocol.SMTP)
    return InboxError(InboxErrorCode.SEND_REJECTED, f"the SMTP server refused {said}",
                      protocol=MailProtocol.SMTP)


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, remembering the last reply (on a 421 it closes the
    connection itself, and what the next command raises no longer says why) and whether
    the DATA command was issued (from then on the server may have the message)."""

    last_reply: aiosmtplib.SMTPResponse | None = None
    data_started = False

    async def execute_command(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.last_reply = await super().execute_command(*args, **kwargs)
        return self.last_reply

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        # Not when the connection is already closed (a 421 to RCPT closes it): then
        # DATA never goes out.
        self.data_started = self.protocol is not None
        return await super().data(*args, **kwargs)


def _client(endpoint: Endpoint, timeout: float, context: ssl.SSLContext | None,
            sock: socket.socket) -> _Client:
    """A client on ``sock``, already connected to a checked address; ``hostname`` is
    the name, so TLS verifies the certificate against it (and sends it as SNI)."""
    context = context or ssl.create_default_context()
    return _Client(
        hostname=endpoint.host, sock=sock, timeout=timeout,
        use_tls=endpoint.security == MailSecurity.SSL,
        start_tls=endpoint.security == MailSecurity.STARTTLS,
        tls_context=context,
    )


@contextlib.asynccontextmanager
async def _logged_in(endpoint: Endpoint, username: str, password: str | Bearer,
                     timeout: float,
                     context: ssl.SSLContext | None, connect: Connect
                     ) -> AsyncIterator[_Client]:
    """A connected, secured, logged-in client; SMTP and network failures become
    InboxError, and the connection is closed whatever happens."""
    client: _Client | None = None
    budget = asyncio.timeout(LOGIN_TIMEOUTS * timeout)
    try:
        async with budget:
            sock = await connect(endpoint)
            client = _client(endpoint, timeout, context, sock)
            await client.connect()
            # Submission always authenticates: a password, or an OAuth access token.
            if isinstance(password, Bearer):
                await client.auth_xoauth2(username, password.token)
            else:
                await client.login(username, password)
    except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
        if client is not None:
            client.close()
        if budget.expired():
            raise violation_error(_Violation("connection time", "logging in took longer "
                                             f"than {LOGIN_TIMEOUTS * timeout:.0f} s"),
                                  MailProtocol.SMTP) from None
        raise _failure(exc, client, endpoint, token=isinstance(password, Bearer)) from None
    try:
        yield client
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise _failure(exc, client, endpoint) from None
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _failure(exc: BaseException, client: _Client | None, endpoint: Endpoint, *,
             token: bool = False) -> InboxError:
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected) and client is not None:
        last = client.last_reply
        if last is not None and last.code == 421:  # "closing connection": not a lost line
            return refusal_error([Refusal(last.code, last.message)])
    if token and isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return login_error(exc, endpoint, MailProtocol.SMTP, token=True)
    return smtp_error(exc, endpoint)


async def check_login(endpoint: Endpoint, username: str, password: str | Bearer, *,
                      connect: Connect, timeout: float = 20,
                      context: ssl.SSLContext | None = None) -> None:
    """Connect (through ``connect``), secure and log in to the SMTP server; raise
    InboxError when that fails."""
    async with _logged_in(endpoint, username, password, timeout, context, connect):
        pass


async def deliver(endpoint: Endpoint, username: str, password: str | Bearer,
                  outgoing: Outgoing, *,
                  connect: Connect, timeout: float = 60,
                  context: ssl.SSLContext | None = None) -> dict[str, str]:
    """Send through the user's server. Returns once the server accepted the message for
    at least one recipient (it is then on its way), with the recipients it refused:
    address -> reply.

    Raises InboxError ``send_unconfirmed`` when the transaction broke off without a reply
    once DATA was issued (a time-out, a lost connection): the server may have accepted
    the message, so it must not be taken as unsent. Any other InboxError means nothing
    was sent: the server could not be reached or logged in to, or it refused with a
    reply."""
    async with _logged_in(endpoint, username, password, timeout, context,
                          connect) as client:
        try:
            async with asyncio.timeout(SEND_TIMEOUTS * timeout):
                errors, _reply = await client.send_message(
                    outgoing.message, recipients=list(outgoing.recipients))
        except (aiosmtplib.SMTPException, OSError) as exc:
            # A reply refusing it (SMTPResponseException, SMTPRecipientsRefused) means
            # the server does not have it, at any step.
            if (client.data_started and not isinstance(
                    exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused)):
                raise unconfirmed_error(exc, endpoint, outgoing.message_id) from None
            raise
    return {rcpt: f"{resp.code} {resp.message}" for rcpt, resp in errors.items()}


def unconfirmed_error(exc: BaseException, endpoint: Endpoint, message_id: str) -> InboxError:
    """The transaction broke off after DATA with no reply: whether the server accepted
    the message cannot be known."""
    what = ("it did not answer in time" if any(isinstance(e, TimeoutError)
                                               for e in _cause_chain(exc))
            else f"the connection was lost: {exc}")
    return InboxError(
        InboxErrorCode.SEND_UNCONFIRMED,
        f"the message <{message_id}> may have been sent: the SMTP server "
        f"{endpoint.host}:{endpoint.port} received it but did not confirm it ({what}). "
        "Check the Sent folder (or ask the recipients) before sending it again; "
        "it is not logged", protocol=MailProtocol.SMTP)


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
