"""The open pixel and the click redirect: answer at once, record in the background."""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from core.metrics import TRACKING_HITS
from core.tracking import Hit
from extension_api.tracking_clock import Clock

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
# Browsers and mail apps say a fetch is a prefetch or a preview in one of these.
_PURPOSE_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


def _hit(request: Request, kind: str, position: int | None = None) -> Hit:
    clock: Clock = request.app.state.hit_clock
    headers = request.headers
    purpose = " ".join(headers[name] for name in _PURPOSE_HEADERS if name in headers)
    return Hit(kind=kind, at=clock(), ip=request.client.host if request.client else "",
               user_agent=headers.get("user-agent", ""), method=request.method,
               position=position, purpose=purpose[:200])


async def pixel(request: Request) -> Response:
    """Always the GIF (a broken image helps nobody); only genuine tokens are recorded."""
    send_token = request.app.state.signer.verify_open(request.path_params["token"])
    if send_token is not None:
        request.app.state.recorder.add(send_token, _hit(request, "open"))
        TRACKING_HITS.labels("open").inc()
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


async def click(request: Request) -> Response:
    """302 to the URL signed into the token; anything else is a 404, never a redirect."""
    verified = request.app.state.signer.verify_click(request.path_params["token"])
    if verified is None:
        return PlainTextResponse("unknown link", status_code=404, headers=NO_CACHE)
    send_token, position, url = verified
    request.app.state.recorder.add(send_token, _hit(request, "click", position))
    TRACKING_HITS.labels("click").inc()
    return RedirectResponse(url, status_code=302, headers=NO_CACHE)
