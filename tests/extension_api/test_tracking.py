"""Tracked sends over real HTTP: opens and clicks told apart from machines, no open
redirect, the link to the logged copy, events, one-click logging, tokens and CORS."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
GMAIL_PROXY = ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
               "(via ggpht.com GoogleImageProxy)")
READER = "203.0.113.7"  # the recipient, somewhere on the internet


def _send(server: Server, account: PortalAccount, *, links: int = 1, to: str = "amy@buyer.example",
          **flags: bool) -> dict[str, Any]:
    body = "".join(f'<p><a href="https://shop.example/item/{i}?ref=mail&amp;x=1">item {i}</a></p>'
                   for i in range(links))
    with server.api(account.user_token) as api:
        response = api.post("/api/v1/tracked-sends", json={
            "to": [to], "subject": "Our offer", "html": f"<html><body>{body}</body></html>",
            **flags})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _links(send: dict[str, Any]) -> list[str]:
    return re.findall(r'href="([^"]+/t/c/[^"]+)"', send["html"])


def _hit(url: str, *, ip: str = READER, agent: str = CHROME, method: str = "GET") -> httpx.Response:
    return httpx.request(method, url, headers={"User-Agent": agent, "X-Forwarded-For": ip},
                         follow_redirects=False)


def _tracking(server: Server, account: PortalAccount, send: dict[str, Any],
              expected: dict[str, Any]) -> dict[str, Any]:
    """The send's counts once the recorder has flushed (it batches every ~200 ms)."""
    deadline = time.monotonic() + 10
    with server.api(account.user_token) as api:
        while True:
            tracking = api.get(f"/api/v1/tracked-sends/{send['id']}").json()["tracking"]
            if tracking == expected or time.monotonic() > deadline:
                result: dict[str, Any] = tracking
                return result
            time.sleep(0.1)


ZERO = {"opens": 0, "clicks": 0, "machine_opens": 0, "machine_clicks": 0}


def test_tracked_send_rewrites_links_and_appends_a_pixel(
    server: Server, account: PortalAccount
) -> None:
    """Every http(s) link points at /t/c/, a pixel is appended, other links are untouched."""
    with server.api(account.user_token) as api:
        send = api.post("/api/v1/tracked-sends", json={
            "to": ["amy@buyer.example"], "subject": "Hi",
            "html": '<p><a href="https://a.example/x">a</a> <a href="mailto:me@x.example">m</a>'
                    ' <a href=\'http://b.example/y\'>b</a></p>'}).json()
    assert len(_links(send)) == 2
    assert 'href="mailto:me@x.example"' in send["html"]
    assert send["pixel_url"] in send["html"]
    gif = httpx.get(send["pixel_url"], headers={"X-Forwarded-For": READER})
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    assert gif.content.startswith(b"GIF89a") and len(gif.content) < 100
    assert "no-store" in gif.headers["cache-control"] and gif.headers["expires"] == "0"
    locations = [_hit(link).headers["location"] for link in _links(send)]
    assert locations == ["https://a.example/x", "http://b.example/y"]


def test_human_open_and_click_are_counted(server: Server, account: PortalAccount) -> None:
    """A person opening and then clicking counts one open and one click."""
    send = _send(server, account)
    assert _hit(send["pixel_url"]).status_code == 200
    assert _hit(_links(send)[0]).status_code == 302
    assert _tracking(server, account, send, {**ZERO, "opens": 1, "clicks": 1}) == {
        **ZERO, "opens": 1, "clicks": 1}


def test_senders_own_open_is_not_counted(server: Server, account: PortalAccount) -> None:
    """Opens from where the sender created the tracked send are their own: not counted."""
    send = _send(server, account)
    httpx.get(send["pixel_url"], headers={"User-Agent": CHROME})  # from 127.0.0.1, the sender
    _hit(send["pixel_url"])  # then the recipient
    assert _tracking(server, account, send, {**ZERO, "opens": 1}) == {**ZERO, "opens": 1}


@pytest.mark.parametrize(
    ("name", "ip", "agent", "method"),
    [
        ("Apple Mail Privacy Protection", "17.58.101.12", "Mozilla/5.0", "GET"),
        ("HEAD request", READER, CHROME, "HEAD"),
        ("Yahoo image proxy", "98.137.11.163", "YahooMailProxy; https://help.yahoo.com", "GET"),
    ],
)
def test_machine_opens_are_not_people(
    server: Server, account: PortalAccount, name: str, ip: str, agent: str, method: str
) -> None:
    """Prefetches and HEAD requests count as machine opens, not opens."""
    send = _send(server, account)
    _hit(send["pixel_url"], ip=ip, agent=agent, method=method)
    assert _tracking(server, account, send, {**ZERO, "machine_opens": 1}) == {
        **ZERO, "machine_opens": 1}, name


def test_gmail_image_proxy_is_a_real_open_once(server: Server, account: PortalAccount) -> None:
    """Gmail's proxy fetch is a person opening the email; its re-fetches add nothing."""
    send = _send(server, account)
    for _ in range(3):
        _hit(send["pixel_url"], ip="66.249.84.21", agent=GMAIL_PROXY)
    assert _tracking(server, account, send, {**ZERO, "opens": 1}) == {**ZERO, "opens": 1}


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
        "Mimecast-URL-Protect/1.0",
        "Barracuda Sentinel (EE)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) SafeLinks/1.0",
    ],
)
def test_link_scanners_are_machine_clicks(
    server: Server, account: PortalAccount, agent: str
) -> None:
    """Security gateways' link checks are machine clicks."""
    send = _send(server, account)
    _hit(send["pixel_url"])
    _hit(_links(send)[0], ip="148.163.0.9", agent=agent)
    assert _tracking(server, account, send, {**ZERO, "opens": 1, "machine_clicks": 1}) == {
        **ZERO, "opens": 1, "machine_clicks": 1}


def test_every_link_within_seconds_is_a_scanner(server: Server, account: PortalAccount) -> None:
    """Three links clicked within a second with a browser agent are a scanner's burst."""
    send = _send(server, account, links=3)
    _hit(send["pixel_url"])
    for link in _links(send):
        _hit(link, ip="40.94.0.3")
    tracking = _tracking(server, account, send, {**ZERO, "opens": 1, "machine_clicks": 2})
    # The first click looks human on its own; the burst betrays the others.
    assert tracking["machine_clicks"] >= 2 and tracking["opens"] == 1


def test_click_seconds_after_the_send_is_a_scanner(server: Server, account: PortalAccount) -> None:
    """A click seconds after the send was handed to the mail server is a scanner at delivery."""
    send = _send(server, account, log=False)
    with server.api(account.user_token) as api:
        assert api.post(f"/api/v1/tracked-sends/{send['id']}/sent").status_code == 200
    _hit(_links(send)[0])
    assert _tracking(server, account, send, {**ZERO, "machine_clicks": 1}) == {
        **ZERO, "machine_clicks": 1}


def test_no_open_redirect(server: Server, account: PortalAccount) -> None:
    """A tampered, foreign-key or made-up click token is a 404, never a redirect."""
    send = _send(server, account)
    genuine = _links(send)[0]
    base, token = genuine.rsplit("/", 1)
    portal, payload, signature = token.split(".")
    evil = base64.urlsafe_b64encode(json.dumps(
        [send["token"], 0, "https://evil.example/phish"]).encode()).decode().rstrip("=")
    for bad in (f"{portal}.{payload}.{signature[:-2]}xx", f"{portal}.{evil}.{signature}",
                "nonsense", f"{portal}.{payload}x.{signature}", f"{payload}.{signature}", ""):
        response = _hit(f"{base}/{bad}")
        assert response.status_code == 404, bad
        assert "location" not in response.headers
    # A genuine token only ever leads to its own URL.
    assert _hit(genuine).headers["location"] == "https://shop.example/item/0?ref=mail&x=1"


def test_tracked_send_and_its_bcc_copy_are_one_email(
    server: Server, account: PortalAccount
) -> None:
    """The BCC copy of a tracked send is linked by its pixel; /sent then answers that email."""
    send = _send(server, account, to="ben@copy.example")
    copy = EmailMessage()
    copy["From"], copy["To"], copy["Subject"] = account.user_email, "ben@copy.example", "Our offer"
    copy["Message-ID"] = make_msgid()
    copy.set_content("Our offer")
    copy.add_alternative(send["html"], subtype="html")
    email_id = logged_id(deliver(server, copy, account.bcc_address))
    with server.api(account.user_token) as api:
        assert api.get(f"/api/v1/tracked-sends/{send['id']}").json()["email_id"] == email_id
        marked = api.post(f"/api/v1/tracked-sends/{send['id']}/sent", json={})
        assert marked.status_code == 200
        assert marked.json()["id"] == email_id
        assert marked.json()["sources"] == ["bcc", "extension"]
        # Reading the logged copy must not count as the recipient opening or clicking.
        assert "/t/o/" not in marked.json()["html"] and "/t/c/" not in marked.json()["html"]
        assert 'href="https://shop.example/item/0?ref=mail&amp;x=1"' in marked.json()["html"]
    _hit(send["pixel_url"], ip="66.249.84.21", agent=GMAIL_PROXY)  # Gmail: a person, at once
    with server.api(account.user_token) as api:
        deadline = time.monotonic() + 10
        while api.get(f"/api/v1/emails/{email_id}").json()["tracking"]["opens"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_sent_first_then_bcc_copy_is_still_one_email(
    server: Server, account: PortalAccount
) -> None:
    """/sent without a Message-ID logs it; the BCC copy later merges in with its real id."""
    send = _send(server, account, to="cy@order.example")
    with server.api(account.user_token) as api:
        logged = api.post(f"/api/v1/tracked-sends/{send['id']}/sent")
        assert logged.status_code == 201
        email = logged.json()
        assert email["sources"] == ["extension"] and email["direction"] == "outgoing"
        assert "missing Message-ID header" not in email["notes"]
    real_id = make_msgid()
    copy = EmailMessage()
    copy["From"], copy["To"], copy["Subject"] = account.user_email, "cy@order.example", "Our offer"
    copy["Message-ID"] = real_id
    copy.set_content(send["html"], subtype="html")
    assert logged_id(deliver(server, copy, account.bcc_address)) == email["id"]
    with server.api(account.user_token) as api:
        merged = api.get(f"/api/v1/emails/{email['id']}").json()
    assert merged["message_id"] == real_id.strip("<>")
    assert merged["sources"] == ["extension", "bcc"]


def test_reply_is_an_event_and_implies_an_open(server: Server, account: PortalAccount) -> None:
    """A reply to a tracked email (images blocked, no pixel) shows as an open and an event."""
    send = _send(server, account, to="dee@reply.example")
    with server.api(account.user_token) as api:
        email = api.post(f"/api/v1/tracked-sends/{send['id']}/sent",
                         json={"message_id": make_msgid()[1:-1]}).json()
    reply = logged_id(deliver(server, message(
        sender="dee@reply.example", to=account.user_email, subject="Re: Our offer",
        message_id=make_msgid(), in_reply_to=f"<{email['message_id']}>",
        date="Sun, 22 Nov 2099 10:00:00 +0000"), account.bcc_address,
        mail_from=account.user_email))
    with server.api(account.user_token) as api:
        assert api.get(f"/api/v1/emails/{email['id']}").json()["tracking"]["opens"] == 1
        events = api.get("/api/v1/events").json()["items"]
    assert ("reply", reply) in [(e["type"], e["email_id"]) for e in events]


def test_events_feed_and_stream(server: Server, account: PortalAccount) -> None:
    """A human open appears in the feed after the cursor and live on the SSE stream."""
    send = _send(server, account)
    with server.api(account.user_token) as api:
        cursor = api.get("/api/v1/events").json()["cursor"]
        with api.stream("GET", "/api/v1/events/stream", params={"after": cursor},
                        timeout=15) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            _hit(send["pixel_url"])
            event = _next_sse_event(stream.iter_lines())
        assert event["type"] == "open" and event["machine"] is False
        assert event["detail"]["tracked_send_id"] == send["id"]
        feed = api.get("/api/v1/events", params={"after": cursor}).json()
        assert [e["type"] for e in feed["items"]] == ["open"]
        assert feed["cursor"] == event["id"]
    other = server.new_portal("eve@otherco.example")
    with server.api(other.user_token) as api:
        assert api.get("/api/v1/events", params={"after": 0}).json()["items"] == []
        assert api.get(f"/api/v1/tracked-sends/{send['id']}").status_code == 404


def _next_sse_event(lines: Iterator[str]) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data:"):
            result: dict[str, Any] = json.loads(line[5:].strip())
            return result
    raise AssertionError("stream ended without an event")


def test_one_click_logging(server: Server, account: PortalAccount) -> None:
    """POST /emails/log logs the raw message (201), again answers the same email (200)."""
    raw = message(sender="Fay <fay@inbound.example>", to=account.user_email,
                  subject="Question", message_id=make_msgid()).as_bytes()
    with server.api(account.user_token) as api:
        first = api.post("/api/v1/emails/log", content=raw,
                         headers={"Content-Type": "message/rfc822"})
        assert first.status_code == 201
        email = first.json()
        assert email["sources"] == ["extension"] and email["direction"] == "incoming"
        again = api.post("/api/v1/emails/log", content=raw,
                         headers={"Content-Type": "message/rfc822"})
        assert (again.status_code, again.json()["id"]) == (200, email["id"])
        assert api.post("/api/v1/emails/log", content=raw,
                        headers={"Content-Type": "application/json"}).status_code == 415
        assert api.post("/api/v1/emails/log", content=b"  ",
                        headers={"Content-Type": "message/rfc822"}).status_code == 400
        lookup = api.get("/api/v1/contacts/lookup", params={"email": "fay@inbound.example"})
        assert lookup.json()["contact"]["email"] == "fay@inbound.example"
        assert [e["id"] for e in lookup.json()["recent_emails"]] == [email["id"]]
    with server.api(account.admin_token) as api:
        assert api.post("/api/v1/emails/log", content=raw,
                        headers={"Content-Type": "message/rfc822"}).status_code == 403
        assert api.post("/api/v1/tracked-sends", json={"to": ["x@y.example"]}).status_code == 403


def test_tokens_are_created_listed_and_revoked(server: Server, account: PortalAccount) -> None:
    """A new extension token works until revoked, then answers 401; others can't revoke it."""
    with server.api(account.user_token) as api:
        created = api.post("/api/v1/tokens", json={"name": "Chrome at work"})
        assert created.status_code == 201
        token = created.json()
        assert token["token"].startswith("ilu_") and token["name"] == "Chrome at work"
        assert api.post("/api/v1/tokens",
                        json={"user_id": account.user_id + 10_000}).status_code == 403
        assert "token" not in api.get("/api/v1/tokens").json()["items"][0]
    with server.api(token["token"]) as api:
        assert api.get("/api/v1/me").status_code == 200
    other = server.new_portal("zed@otherportal.example")
    with server.api(other.admin_token) as api:
        assert api.delete(f"/api/v1/tokens/{token['id']}").status_code == 404
    with server.api(account.user_token) as api:
        revoked = api.delete(f"/api/v1/tokens/{token['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    with server.api(token["token"]) as api:
        response = api.get("/api/v1/me")
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_cors_allows_the_extension_and_webmail_only(server: Server) -> None:
    """Preflights from the extension and Gmail are allowed; other origins are not."""
    allowed = ("chrome-extension://abcdefghijklmnopabcdefghijklmnop", "https://mail.google.com",
               "https://outlook.office.com")
    for origin in (*allowed, "https://evil.example"):
        response = httpx.options(f"{server.base_url}/api/v1/me", headers={
            "Origin": origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        granted = response.headers.get("access-control-allow-origin")
        assert granted == (origin if origin in allowed else None), origin


def test_no_hit_is_lost_on_a_clean_shutdown(tmp_path: Path) -> None:
    """Hits answered just before SIGTERM are recorded when the server stops cleanly."""
    server = Server(tmp_path / "flush").start()
    try:
        account = server.new_portal()
        send = _send(server, account)
        for _ in range(50):
            assert _hit(send["pixel_url"], ip="17.1.2.3", agent="Mozilla/5.0").status_code == 200
    finally:
        server.stop()
    server.start()
    try:
        assert _tracking(server, account, send, {**ZERO, "machine_opens": 50})[
            "machine_opens"] == 50
    finally:
        server.stop()


def test_cors_origins_are_configurable(tmp_path: Path) -> None:
    """--cors-origins replaces the default list of browser origins."""
    server = Server(tmp_path / "cors", extra_args=(
        "--cors-origins", r"https://crm\.example\.com")).start()
    try:
        for origin, granted in (("https://crm.example.com", True),
                                ("https://mail.google.com", False)):
            response = httpx.options(f"{server.base_url}/api/v1/me", headers={
                "Origin": origin, "Access-Control-Request-Method": "GET"})
            assert (response.headers.get("access-control-allow-origin") == origin) is granted
    finally:
        server.stop()
