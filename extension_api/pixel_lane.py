"""The open pixel's fast lane: ``GET /t/o/{token}`` answered before the rest of the app.

Every open of every tracked email is one of these requests, and a mail client may
fetch the pixel many times: it is the API's busiest route by far. Through the whole app
it passes CORS, the body limit, the exception handlers and the router's match against
every route; none of them has anything to do for an image fetched without an
``Origin`` or a body (CORS adds headers only to a cross-origin request, and
``record_open`` raises nothing a handler maps). This middleware, first after
Starlette's own error middleware (``extension_api.app``), answers such a request with
exactly what the route would (``tracking.pixel_response``) and records the open the
same way (``tracking.record_open``); anything else, a pixel fetched with an ``Origin``,
with a body, or by ``HEAD`` included, goes through the app as before. Measured in `make bench`'s
tracking-pixel row (bench/NOTES.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from extension_api.endpoints import tracking

PREFIX = "/t/o/"
_ANSWER = tracking.pixel_response()


class PixelLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _plain_open(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        tracking.record_open(Request(scope, receive), token)
        # A copy: a server or middleware may extend the list it is handed.
        await send({"type": "http.response.start", "status": _ANSWER.status_code,
                    "headers": list(_ANSWER.raw_headers)})
        await send({"type": "http.response.body", "body": _ANSWER.body})


def _plain_open(scope: Scope) -> str | None:
    """The token of a ``GET /t/o/{token}`` the route would match, sent without an
    ``Origin`` or a body; else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    token = path[len(PREFIX):]
    if not token or "/" in token:
        return None
    for name, value in scope["headers"]:
        # A GET may still carry a body: BodyLimit's business (its 413), as before.
        if name == b"origin" or name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() not in (b"", b"0")):
            return None
    return token
