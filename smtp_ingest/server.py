"""The SMTP listener: aiosmtpd on the caller's event loop, with inboxlog's limits."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from typing import Any, Protocol

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from core import metrics
from core.pipeline import MAX_MESSAGE_BYTES
from core.runtime import Runtime
from smtp_ingest import replies
from smtp_ingest._data import DataReader, Outcome
from smtp_ingest.handler import IngestHandler

log = logging.getLogger(__name__)

IDLE_TIMEOUT_SECONDS = 300
# Behind a proxy, the PROXY protocol header must arrive this soon after the connection;
# the proxy sends it at once, so a connection without one is not from the proxy.
PROXY_HEADER_TIMEOUT_SECONDS = 5
# RFC 5321 caps lines at 1000 octets, but real clients send longer ones; refusing them
# would lose mail. This bounds memory per line instead.
LINE_LENGTH_LIMIT = 64 * 1024

# aiosmtpd's own reply for the limit it enforces at MAIL FROM SIZE=, and ours instead.
_REWRITES = {
    "552 Error: message size exceeds fixed maximum message size": replies.TOO_LARGE,
}


# A path as nearly every client writes it, "<local@domain>" with a dot-atom on both
# sides (ASCII; any other shape goes to aiosmtpd's parser): what the stdlib's parser
# makes of it is the text itself.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class Handler(Protocol):
    """What the server asks of its handler besides aiosmtpd's hooks."""

    async def refuse_oversized(self, session: Session, envelope: Envelope, size: int) -> str:
        """DATA past the size limit, whose body was not kept: the reply to give."""
        ...


class InboxlogSMTP(SMTP):
    """aiosmtpd's SMTP with enhanced status codes on its limit replies, and DATA
    received in large reads (see ``smtp_ingest._data``)."""

    line_length_limit = LINE_LENGTH_LIMIT

    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.handler = handler

    _timed_out = False

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's MAIL FROM / RCPT TO path and the parameters after it, without
        what it costs a plain ``<local@domain>`` (about 55 of its 57 µs: the stdlib's
        header parser, and a ``typing.Protocol`` class it defines at each call)."""
        plain = _PLAIN_PATH.match(arg) if arg else None
        rest = arg[plain.end():] if plain is not None else ""
        if rest[:1] in (" ", "\t"):  # the parser skips the white space after ">"
            rest = rest.lstrip()
        elif rest:
            plain = None
        if plain is None or rest.startswith("("):  # a comment: the parser's business
            return super()._getaddr(arg)
        address = plain.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    def _timeout_cb(self) -> None:
        self._timed_out = True
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def _handle_client(self) -> None:
        """aiosmtpd's session loop, saying why a connection that had to open with a
        PROXY protocol header was dropped (aiosmtpd closes it without a word)."""
        try:
            await super()._handle_client()
        except asyncio.CancelledError:
            if self._proxy_timeout is not None and self.session is not None and (
                    self.session.proxy_data is None):
                if self._timed_out:
                    log.warning("SMTP connection from %s dropped: no PROXY protocol header "
                                "within %s s (--smtp-proxy-protocol: only the proxy may "
                                "connect)", _address(self.session), self._proxy_timeout)
                else:  # a bare TCP health check, say
                    log.info("SMTP connection from %s closed before its PROXY protocol "
                             "header", _address(self.session))
            raise
        session = self.session
        if session is not None and session.proxy_data is not None and not session.proxy_data:
            log.warning("SMTP connection from %s dropped: not a valid PROXY protocol "
                        "header (%s)", _address(session), session.proxy_data.error)

    async def push(self, status: str) -> None:  # type: ignore[override]
        await super().push(_REWRITES.get(status, status))
        if status.startswith("421") and self.transport is not None:
            # 421: the server closes the connection (RFC 5321 3.8), e.g. after too many
            # unknown recipients.
            self.transport.close()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd 1.4.6's DATA, with the same replies, and the body read by DataReader
        (its per-line loop held the event loop for seconds on a 45 MB message)."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        body = DataReader(size_limit=self.data_size_limit, line_limit=self.line_length_limit)
        try:
            await body.receive(self._reader)
        except asyncio.CancelledError:
            # The connection was lost during DATA (aiosmtpd's handling).
            log.info("connection lost during DATA")
            body.close()
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:  # the same, seen first by the reader
            log.info("connection lost during DATA")
            body.close()
            self._writer.close()
            raise asyncio.CancelledError from None
        except Exception:
            # Out of step with the client, the rest of its body would be read as
            # commands: drop the connection, its MTA will try again.
            log.exception("error while receiving DATA")
            body.close()
            self._writer.close()
            raise asyncio.CancelledError from None
        if body.outcome is not Outcome.RECEIVED:
            await self._refuse(body)
            return
        content = await body.content()
        # decode_data is off: both are the bytes as received, dot-stuffing undone.
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self._reply_to_data("250 OK" if status is MISSING else status)

    async def _reply_to_data(self, reply: str) -> None:
        metrics.SMTP_REPLIES.labels(reply[:3]).inc()
        await self.push(reply)

    async def _refuse(self, body: DataReader) -> None:
        assert self.envelope is not None
        if body.outcome is Outcome.TOO_MUCH:
            # The handler's DATA hook never sees this body: it answers for it here.
            assert self.session is not None
            reply = await self.handler.refuse_oversized(self.session, self.envelope,
                                                        body.size)
        elif body.outcome is Outcome.TOO_LONG:
            reply = replies.LINE_TOO_LONG
        else:
            log.error("DATA could not be kept: %s", body.outcome.value)
            reply = replies.TRANSIENT
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self._reply_to_data(reply)


def _address(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


async def start_smtp_server(
    runtime: Runtime, host: str = "127.0.0.1", port: int = 0, *,
    tls_context: ssl.SSLContext | None = None, hostname: str | None = None,
    sock: socket.socket | None = None, proxy_from: tuple[str, ...] = (),
) -> asyncio.Server:
    """Listen for SMTP on ``host:port`` (or on the bound socket ``sock``, shared by the
    worker processes of ``serve --workers``) in the running loop; returns the asyncio
    server. With ``proxy_from`` (addresses or networks of the proxies), every connection
    must open with a PROXY protocol header from one of them, naming the client."""
    loop = asyncio.get_running_loop()
    handler = IngestHandler(runtime, proxies=proxy_from)

    def factory() -> SMTP:
        return InboxlogSMTP(
            handler,
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            hostname=hostname or runtime.settings.smtp_hostname,
            tls_context=tls_context,
            timeout=IDLE_TIMEOUT_SECONDS,
            proxy_protocol_timeout=PROXY_HEADER_TIMEOUT_SECONDS if proxy_from else None,
            loop=loop,
        )

    if sock is not None:
        return await loop.create_server(factory, sock=sock)
    return await loop.create_server(factory, host=host, port=port)
