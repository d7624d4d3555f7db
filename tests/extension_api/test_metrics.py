"""/metrics over real HTTP: the tracking counters move with the pixel and the links."""

from __future__ import annotations

import re

import httpx

from tests.support.server import PortalAccount, Server


def _hits(server: Server, kind: str) -> float:
    """``inboxlog_tracking_hits_total{kind=...}`` as /metrics shows it now (0 before the
    first hit of that kind: the series does not exist yet)."""
    response = httpx.get(f"{server.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = re.search(rf'^inboxlog_tracking_hits_total\{{kind="{kind}"\}} (\S+)$',
                      response.text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_pixel_and_click_hits_are_counted(server: Server, account: PortalAccount) -> None:
    """A genuine pixel load and a genuine click each add one to their kind's counter;
    a tampered pixel token (still answered with the GIF) adds nothing."""
    with server.api(account.user_token) as api:
        send = api.post("/api/v1/tracked-sends", json={
            "to": ["amy@buyer.example"], "subject": "Metrics",
            "html": '<p><a href="https://shop.example/item">item</a></p>'}).json()
    click = re.findall(r'href="([^"]+/t/c/[^"]+)"', send["html"])[0]
    opens, clicks = _hits(server, "open"), _hits(server, "click")

    assert httpx.get(send["pixel_url"]).status_code == 200
    assert _hits(server, "open") == opens + 1
    assert httpx.get(send["pixel_url"] + "x").status_code == 200  # tampered: not counted
    assert _hits(server, "open") == opens + 1

    assert httpx.get(click, follow_redirects=False).status_code == 302
    assert _hits(server, "click") == clicks + 1
    assert _hits(server, "open") == opens + 1
