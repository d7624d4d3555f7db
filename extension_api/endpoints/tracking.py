"""The open pixel and the click redirect: answer at once, record in the background.

A click redirects only for a genuine token whose send is stored and not deleted, in the
token's portal, with the token's URL at the token's position, before the link expires
(``serve --tracking-link-days``); anything else is a 404. The send's links come from a
cache (``extension_api.click_links``); the pixel never reads the database (the recorder
drops hits of unknown, deleted or expired sends when it writes its batch).
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from core.metrics import TRACKING_HITS
from core.tracked_sends import expired
from core.tracking import Hit
from core.types import HitKind
from extension_api.tracking_clock import Clock

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
# Browsers and mail apps say a fetch is a prefetch or a preview in one of these.
_PURPOSE_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


def _hit(request: Request, kind: HitKind, position: int | None = None) -> Hit:
    clock: Clock = request.app.state.hit_clock
    headers = request.headers
    purpose = " ".join(headers[name] for name in _PURPOSE_HEADERS if name in headers)
    return Hit(kind=kind, at=clock(), ip=request.client.host if request.client else "",
               user_agent=headers.get("user-agent", ""), method=request.method,
               position=position, purpose=purpose[:200])


def pixel_response() -> Response:
    """The open pixel's answer: the GIF, never cached."""
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


def record_open(request: Request, token: str) -> None:
    """Record an open for ``token`` if it is genuine (a forged one is dropped here)."""
    send_token = request.app.state.signer.verify_open(token)
    if send_token is not None:
        request.app.state.recorder.add(send_token, _hit(request, HitKind.OPEN))
        TRACKING_HITS.labels(HitKind.OPEN.value).inc()


async def pixel(request: Request) -> Response:
    """Always the GIF (a broken image helps nobody); only genuine tokens are recorded.
    A plain GET without an ``Origin`` takes ``extension_api.pixel_lane`` instead."""
    record_open(request, request.path_params["token"])
    return pixel_response()


def _unknown(text: str = "unknown link") -> Response:
    return PlainTextResponse(text, status_code=404, headers=NO_CACHE)


async def click(request: Request) -> Response:
    """302 to the send's own URL at the token's position; anything else is a 404."""
    verified = request.app.state.signer.verify_click(request.path_params["token"])
    if verified is None:
        return _unknown()
    links = await request.app.state.links.get(verified.send_token)
    if links is None or not links.target(verified.position, verified.url,
                                         portal_id=verified.portal_id):
        return _unknown()
    hit = _hit(request, HitKind.CLICK, verified.position)
    if expired(links.created_at, hit.at, request.app.state.link_days):
        return _unknown("this link has expired")
    request.app.state.recorder.add(verified.send_token, hit)
    TRACKING_HITS.labels(HitKind.CLICK.value).inc()
    return RedirectResponse(verified.url, status_code=302, headers=NO_CACHE)
