"""The open pixel's fast lane (``extension_api.pixel_lane``), over real HTTP: the same
answer and the same recorded open as through the app's routes, which still take every
request the lane must not (an ``Origin``, a ``HEAD``, a longer path)."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx

from tests.support.server import PortalAccount, Server

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
EXTENSION = "chrome-extension://" + "a" * 32


def _send(server: Server, account: PortalAccount) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        response = api.post("/api/v1/tracked-sends", json={
            "to": ["amy@buyer.example"], "subject": "Our offer", "html": "<p>Hello</p>"})
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def _fetch(url: str, ip: str, *, method: str = "GET", origin: str | None = None
           ) -> httpx.Response:
    headers = {"User-Agent": CHROME, "X-Forwarded-For": ip}
    if origin is not None:
        headers["Origin"] = origin
    return httpx.request(method, url, headers=headers)


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    """Every header but the server's date and CORS's ``Vary: Origin``, in order."""
    return [(k, v) for k, v in response.headers.multi_items() if k not in ("date", "vary")]


def _tracking(server: Server, account: PortalAccount, send: dict[str, Any],
              opens: int, machine_opens: int = 0) -> dict[str, Any]:
    """The send's counts once the recorder flushed them (it batches every ~200 ms)."""
    deadline = time.monotonic() + 10
    with server.api(account.user_token) as api:
        while True:
            tracking: dict[str, Any] = api.get(
                f"/api/v1/tracked-sends/{send['id']}").json()["tracking"]
            if (tracking["opens"], tracking["machine_opens"]) == (opens, machine_opens) or (
                    time.monotonic() > deadline):
                return tracking
            time.sleep(0.1)


def test_the_lane_answers_as_the_route_does(server: Server, account: PortalAccount) -> None:
    """A plain GET (the lane) and a GET with an Origin CORS does not allow (the routes)
    get the same status, headers and GIF, and both opens are recorded."""
    send = _send(server, account)
    lane = _fetch(send["pixel_url"], "203.0.113.7")
    routed = _fetch(send["pixel_url"], "198.51.100.9", origin="https://elsewhere.example")
    assert lane.status_code == routed.status_code == 200
    assert lane.content == routed.content == GIF
    assert _headers(lane) == _headers(routed)
    assert "vary" not in lane.headers  # nothing varies by Origin for a request without one
    assert lane.headers["cache-control"].startswith("no-store")
    assert lane.headers["content-type"] == "image/gif"
    # Two people at two addresses: two opens.
    assert _tracking(server, account, send, opens=2)["opens"] == 2


def test_requests_the_lane_leaves_to_the_app(server: Server, account: PortalAccount) -> None:
    """An allowed Origin still gets CORS's header, a HEAD its GIF's headers, and a path
    with more segments the router's 404; each of the three fetches is recorded once."""
    send = _send(server, account)
    with_origin = _fetch(send["pixel_url"], "203.0.113.7", origin=EXTENSION)
    assert with_origin.status_code == 200
    assert with_origin.headers["access-control-allow-origin"] == EXTENSION
    plain = _fetch(send["pixel_url"], "203.0.113.8")
    assert "access-control-allow-origin" not in plain.headers
    head = _fetch(send["pixel_url"], "203.0.113.9", method="HEAD")
    assert head.status_code == 200
    assert head.headers["content-type"] == "image/gif"
    assert _fetch(send["pixel_url"] + "/more", "203.0.113.7").status_code == 404
    # A GET with a body over the API's limit: still BodyLimit's 413, and no open.
    too_large = httpx.request("GET", send["pixel_url"], content=b"x" * (1024 * 1024 + 1),
                              headers={"User-Agent": CHROME, "X-Forwarded-For": "203.0.113.10"})
    assert too_large.status_code == 413
    deadline = time.monotonic() + 10
    with server.api(account.user_token) as api:
        while True:  # the verdicts are the classifier's (a burst of three): count them all
            tracking = api.get(f"/api/v1/tracked-sends/{send['id']}").json()["tracking"]
            if tracking["opens"] + tracking["machine_opens"] >= 3 or (
                    time.monotonic() > deadline):
                break
            time.sleep(0.1)
    assert tracking["opens"] + tracking["machine_opens"] == 3


def test_a_forged_token_gets_the_gif_and_records_nothing(
        server: Server, account: PortalAccount) -> None:
    """The lane verifies the token as the route does: a forgery is answered, not counted."""
    send = _send(server, account)
    forged = send["pixel_url"][:-4] + ("AAAA" if not send["pixel_url"].endswith("AAAA")
                                       else "BBBB")
    response = _fetch(forged, "203.0.113.7")
    assert response.status_code == 200
    assert response.content == GIF
    assert _fetch(send["pixel_url"], "203.0.113.8").status_code == 200
    # Hits are recorded in order: once the genuine one is, so would the forgery be.
    assert _tracking(server, account, send, opens=1)["opens"] == 1
