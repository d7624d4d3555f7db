"""What one caller may take from the HTTP port, with clear answers (real sockets): bodies
capped while they stream (413), JSON depth (400), CRLF and multi-address input (422
naming the field), event streams per caller (429), Last-Event-ID (400), request budgets
(429 with Retry-After), request heads and idle keep-alive connections that time out."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import PortalAccount, Server


def _raw_request(server: Server, head: str, body: bytes = b"", *,
                 timeout: float = 10) -> tuple[int, dict[str, Any]]:
    """Send a request head (and some body) on a plain socket, read the status and JSON
    answer without sending anything more."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += sock.recv(65536)
        return int(head_part.split()[1]), json.loads(rest[:length])


def _head(method: str, path: str, token: str, extra: str) -> str:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n")


# --- bodies ---------------------------------------------------------------------------


def test_an_oversized_declared_body_is_refused_before_it_is_sent(
    server: Server, account: PortalAccount
) -> None:
    """A JSON body declaring 200 MB, and a raw message declaring 60 MB, answer 413 at
    once: the server does not wait for (or read) the body."""
    status, body = _raw_request(server, _head(
        "PATCH", "/api/v1/settings", account.admin_token, "Content-Length: 209715200\r\n"))
    assert status == 413 and body["error"]["code"] == "too_large"
    status, body = _raw_request(server, _head(
        "POST", "/api/v1/emails/log", account.user_token,
        "Content-Length: 62914560\r\n").replace("application/json", "message/rfc822"))
    assert status == 413 and body["error"]["code"] == "too_large"


def test_a_streamed_body_is_cut_off_at_the_cap(server: Server, account: PortalAccount) -> None:
    """A chunked JSON body that goes past 1 MB answers 413 as soon as it gets there,
    while the client is still sending (it never finishes here)."""
    chunk = b" " * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))  # 1.25 MB
    status, body = _raw_request(server, _head(
        "PATCH", "/api/v1/settings", account.admin_token, "Transfer-Encoding: chunked\r\n"),
        b'f\r\n{"never_log": [\r\n' + chunks)
    assert status == 413 and body["error"]["code"] == "too_large"


@pytest.mark.parametrize("path", ["/api/v1/settings", "/api/v1/tracked-sends"])
@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_400(server: Server, account: PortalAccount, path: str,
                                   depth: int) -> None:
    """Nesting past 32 levels answers 400 bad_request, never a 500 (RecursionError)."""
    nested = "[" * depth + "]" * depth
    content = f'{{"never_log": {nested}, "to": {nested}}}'
    token = account.admin_token if path.endswith("settings") else account.user_token
    with server.api(token) as api:
        method = api.patch if path.endswith("settings") else api.post
        response = method(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    assert "nested" in response.json()["error"]["message"]


# --- header injection and one address per recipient ------------------------------------

TRACKED = {"to": ["amy@buyer.example"], "subject": "Offer", "html": "<p>hi</p>"}


@pytest.mark.parametrize(("change", "field"), [
    ({"subject": "Offer\r\nBcc: spy@evil.example"}, "subject"),
    ({"subject": "Offer\nX-Injected: 1"}, "subject"),
    ({"to": ["amy@buyer.example\r\nBcc: spy@evil.example"]}, "to[0]"),
    ({"to": ["amy@buyer.example", "bo@buyer.example, spy@evil.example"]}, "to[1]"),
    ({"to": ["Amy <amy@buyer.example>, spy@evil.example"]}, "to[0]"),
    ({"cc": ["amy@buyer.example spy@evil.example"]}, "cc[0]"),
    ({"to": [{"email": "amy@buyer.example", "name": "Amy\r\nBcc: spy@evil.example"}]},
     "to[0].name"),
    ({"bcc": [{"email": "a@x.example,b@y.example"}]}, "bcc[0].email"),
])
def test_tracked_send_refuses_line_breaks_and_multi_address_entries(
    server: Server, account: PortalAccount, change: dict[str, Any], field: str
) -> None:
    """A line break in the subject, a recipient or a display name, or two addresses in
    one recipient entry, is 422 invalid_input naming the field; nothing is stored."""
    with server.api(account.user_token) as api:
        response = api.post("/api/v1/tracked-sends", json={**TRACKED, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith(f"{field}:")


def test_tracked_send_message_id_with_a_line_break_is_422(
    server: Server, account: PortalAccount
) -> None:
    """The message_id said when a tracked send was sent goes into a header: no CRLF."""
    with server.api(account.user_token) as api:
        send = api.post("/api/v1/tracked-sends", json=TRACKED)
        assert send.status_code == 201
        response = api.post(f"/api/v1/tracked-sends/{send.json()['id']}/sent",
                            json={"message_id": "a@b.example\r\nBcc: spy@evil.example"})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["message"].startswith("message_id:")
        assert api.post(f"/api/v1/tracked-sends/{send.json()['id']}/sent").status_code == 201


@pytest.mark.parametrize(("change", "field"), [
    ({"subject": "Offer\r\nBcc: spy@evil.example"}, "subject"),
    ({"in_reply_to": "<a@b.example>\r\nBcc: spy@evil.example"}, "in_reply_to"),
    ({"to": ["ann@acme.example\r\nBcc: spy@evil.example"]}, "to[0]"),
    ({"to": ["ann@acme.example, spy@evil.example"]}, "to[0]"),
    ({"to": "ann@acme.example spy@evil.example"}, "to[0]"),
    ({"bcc": ["boss@ourco.example", "x@y.example,z@w.example"]}, "bcc[1]"),
])
def test_send_refuses_line_breaks_and_multi_address_entries(
    server: Server, account: PortalAccount, change: dict[str, Any], field: str
) -> None:
    """POST /emails/send checks its fields before anything else: 422 naming the field."""
    body = {"to": ["ann@acme.example"], "subject": "Offer", "text": "Hi", **change}
    with server.api(account.user_token) as api:
        response = api.post("/api/v1/emails/send", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith(f"{field}:")


# --- event streams --------------------------------------------------------------------


@contextlib.contextmanager
def _streams(server: Server, token: str, count: int) -> Iterator[list[httpx.Response]]:
    with httpx.Client(base_url=server.base_url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client, \
            contextlib.ExitStack() as stack:
        yield [stack.enter_context(client.stream("GET", "/api/v1/events/stream?after=0"))
               for _ in range(count)]


def test_event_streams_per_caller_are_capped(server: Server, account: PortalAccount) -> None:
    """Five streams open at once per caller; a sixth is 429 with Retry-After until one
    closes. The admin (another caller) is not affected."""
    with _streams(server, account.user_token, 5) as opened:
        assert [s.status_code for s in opened] == [200] * 5
        with server.api(account.user_token) as api:
            with api.stream("GET", "/api/v1/events/stream") as refused:
                assert refused.status_code == 429  # not a stream: read its body
                assert json.loads(refused.read())["error"]["code"] == "too_many_streams"
                assert int(refused.headers["Retry-After"]) > 0
            assert api.get("/api/v1/me").status_code == 200  # the rest of the API works
        with _streams(server, account.admin_token, 1) as admin:
            assert admin[0].status_code == 200
    deadline = time.monotonic() + 10
    while True:  # the server sees the closed streams go
        with _streams(server, account.user_token, 1) as again:
            if again[0].status_code == 200 or time.monotonic() > deadline:
                assert again[0].status_code == 200
                break
        time.sleep(0.2)


@pytest.mark.parametrize("value", [b"99999999999999999999999", b"9223372036854775808", b"-1",
                                   b"12abc", b"\xb2", "١٢".encode()])
def test_last_event_id_must_be_an_event_id(
    server: Server, account: PortalAccount, value: bytes
) -> None:
    """An overflowing or malformed Last-Event-ID (also a superscript two, which Python
    calls a digit) answers 400, never a stream that dies or a 500."""
    with server.api(account.user_token) as api, api.stream(
            "GET", "/api/v1/events/stream", headers=[(b"Last-Event-ID", value)]) as response:
        assert response.status_code == 400  # not a stream: read its body
        assert json.loads(response.read())["error"]["code"] == "bad_request"


# --- request budgets ------------------------------------------------------------------


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a small request budget: 5 requests per 2 seconds per caller."""
    server = Server(tmp_path_factory.mktemp("budget"),
                    extra_args=("--api-rate-limit", "5 per 2 seconds")).start()
    try:
        yield server
    finally:
        server.stop()


def test_requests_past_the_budget_are_429_with_retry_after(budgeted: Server) -> None:
    """The sixth request in the window is 429 rate_limited with Retry-After; another
    token of the same user shares the budget; another user has their own; after
    Retry-After seconds the caller is served again."""
    account = budgeted.new_portal()
    other = budgeted.new_portal("else@otherco.example")
    with budgeted.api(account.user_token) as api:
        assert [api.get("/api/v1/me").status_code for _ in range(5)] == [200] * 5
        refused = api.get("/api/v1/me")
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 2
    with budgeted.api(other.user_token) as stranger:
        assert stranger.get("/api/v1/me").status_code == 200
    time.sleep(wait + 0.1)
    with budgeted.api(account.user_token) as api:
        created = api.post("/api/v1/tokens", json={"name": "second install"})
        assert created.status_code == 201
        assert [api.get("/api/v1/me").status_code for _ in range(4)] == [200] * 4
    with budgeted.api(created.json()["token"]) as second:
        assert second.get("/api/v1/me").status_code == 429


# --- connections that do not finish ----------------------------------------------------


def _closed_after(sock: socket.socket, limit: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte a second),
    or None if it is still open after ``limit``."""
    start = time.monotonic()
    sock.settimeout(1)
    while time.monotonic() - start < limit:
        if trickle:
            try:
                sock.sendall(trickle[:1])
            except OSError:
                return time.monotonic() - start
            trickle = trickle[1:] or b"X"
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_connections_that_never_finish_their_request_head_are_dropped(server: Server) -> None:
    """A connection that sends nothing, one that trickles its head a byte a second, and
    an idle kept-alive connection are all closed by the server (10 s for a request head,
    5 s idle between requests), while a normal request is served."""
    results: dict[str, float | None] = {}

    def watch(name: str, sock: socket.socket, trickle: bytes = b"") -> None:
        with sock:
            results[name] = _closed_after(sock, 15, trickle)

    silent = socket.create_connection(("127.0.0.1", server.http_port))
    slow = socket.create_connection(("127.0.0.1", server.http_port))
    idle = socket.create_connection(("127.0.0.1", server.http_port))
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    threads = [threading.Thread(target=watch, args=("silent", silent)),
               threading.Thread(target=watch, args=(
                   "slow", slow, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " +
                   b"p" * 100)),
               threading.Thread(target=watch, args=("idle", idle))]
    for thread in threads:
        thread.start()
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    for thread in threads:
        thread.join()
    assert results["silent"] is not None and 9 <= results["silent"] <= 13, results
    assert results["slow"] is not None and 9 <= results["slow"] <= 13, results
    assert results["idle"] is not None and results["idle"] <= 7, results
