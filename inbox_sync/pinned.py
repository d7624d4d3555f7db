"""An HTTP transport that connects only to allowed addresses of the URL's host: the host
is resolved once, through ``Destinations``, and the request sent to that address while
the Host header and TLS (SNI, certificate check) keep the name. So a name that resolves
to a private address, or re-resolves between the check and the connect, is never
reached. OAuth providers (``inbox_sync.oauth``) and webhooks (``inbox_sync.webhooks``)
say in ``refused`` what a refusal means to their callers."""

from __future__ import annotations

import asyncio

import httpx2

from core.inboxes import Endpoint, InboxError
from core.types import MailProtocol, MailSecurity
from inbox_sync.outbound import Destinations


class PinnedTransport(httpx2.AsyncBaseTransport):
    """Sends each request to an allowed address of its host, through ``inner``."""

    def __init__(self, destinations: Destinations, inner: httpx2.AsyncHTTPTransport) -> None:
        self.destinations = destinations
        self._inner = inner

    def refused(self, host: str, port: int, error: InboxError) -> Exception:
        """What to raise when ``host`` is not found or not an allowed destination."""
        return httpx2.ConnectError(f"{error.code.value}: {host}:{port}")

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            addresses = await asyncio.to_thread(
                self.destinations.addresses, Endpoint(host, port, MailSecurity.SSL),
                MailProtocol.HTTPS)
        except InboxError as exc:
            raise self.refused(host, port, exc) from None
        request.url = request.url.copy_with(host=addresses[0])
        request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
