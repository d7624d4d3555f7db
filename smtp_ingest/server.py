"""The SMTP listener: aiosmtpd on the caller's event loop, with inboxlog's limits."""

from __future__ import annotations

import asyncio
import ssl

from aiosmtpd.smtp import SMTP

from core.audit import NotLoggedReason
from core.pipeline import MAX_MESSAGE_BYTES
from core.runtime import Runtime
from smtp_ingest import replies
from smtp_ingest.handler import IngestHandler

IDLE_TIMEOUT_SECONDS = 300
# RFC 5321 caps lines at 1000 octets, but real clients send longer ones; refusing them
# would lose mail. This bounds memory per line instead.
LINE_LENGTH_LIMIT = 64 * 1024

_TOO_MUCH_DATA = "552 Error: Too much mail data"
# aiosmtpd's own replies for the limits it enforces, and ours in their place.
_REWRITES = {
    _TOO_MUCH_DATA: replies.TOO_LARGE,
    "552 Error: message size exceeds fixed maximum message size": replies.TOO_LARGE,
    "500 Line too long (see RFC5321 4.5.3.1.6)": replies.LINE_TOO_LONG,
}


class InboxlogSMTP(SMTP):
    """aiosmtpd's SMTP with enhanced status codes on its built-in limit replies."""

    line_length_limit = LINE_LENGTH_LIMIT

    async def push(self, status: str) -> None:  # type: ignore[override]
        if status == _TOO_MUCH_DATA and self.envelope is not None:
            # aiosmtpd refused the body itself; the handler never saw it. Audit it here.
            handler: IngestHandler = self.event_handler
            await handler.record_refusal(self.envelope, NotLoggedReason.TOO_LARGE,
                                         "message exceeds the size limit", size=0)
        await super().push(_REWRITES.get(status, status))


async def start_smtp_server(
    runtime: Runtime, host: str, port: int, *, tls_context: ssl.SSLContext | None = None,
    hostname: str | None = None,
) -> asyncio.Server:
    """Listen for SMTP on ``host:port`` in the running loop; returns the asyncio server."""
    loop = asyncio.get_running_loop()
    handler = IngestHandler(runtime)

    def factory() -> SMTP:
        return InboxlogSMTP(
            handler,
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            hostname=hostname or runtime.settings.smtp_hostname,
            tls_context=tls_context,
            timeout=IDLE_TIMEOUT_SECONDS,
            loop=loop,
        )

    return await loop.create_server(factory, host=host, port=port)
