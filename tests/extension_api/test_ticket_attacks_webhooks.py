"""Hostile webhook receivers, through the real ports: one that answers 200 and then
streams without end is read for at most 64 KB and counts as delivered; one that drips
its answer a byte at a time past the time-out is a time-out, retried; neither holds
the sender longer than the time-out. Private addresses in any spelling are refused at
registration, and the sender's transport connects to the address it checked (DNS
rebinding)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest

from inbox_sync.outbound import Destinations, parse_rules
from inbox_sync.webhooks import WEB_PORTS, PinnedTransport
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Webhooks allowed to loopback, a one-second attempt time-out, slow retries."""
    running = Server(Path(tmp_path_factory.mktemp("hostile-hooks")), extra_args=(
        "--allow-webhook-hosts", "127.0.0.1:*", "--webhook-first-retry", "60",
        "--webhook-timeout", "1")).start()
    yield running
    running.stop()


class _Hostile:
    """A receiver on loopback whose answer is made by ``answer(handler)``; counts the
    bytes it managed to send before the sender hung up."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], int]) -> None:
        self.sent = 0
        self.requests = 0
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                state.requests += 1
                with contextlib.suppress(OSError):  # the sender hung up: as it should
                    state.sent += answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _endless(handler: BaseHTTPRequestHandler) -> int:
    handler.send_response(200)
    handler.send_header("content-type", "application/octet-stream")
    handler.end_headers()
    sent, chunk = 0, b"x" * 16384
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until the sender stops reading
        handler.wfile.write(chunk)
        handler.wfile.flush()
        sent += len(chunk)
    return sent


def _drip(handler: BaseHTTPRequestHandler) -> int:
    handler.send_response(200)
    handler.send_header("content-length", "100")
    handler.end_headers()
    sent = 0
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        sent += 1
        time.sleep(0.1)
    return sent


def _hook_and_event(server: Server, account: PortalAccount, url: str) -> int:
    with server.api(account.admin_token) as api:
        created = api.post("/api/v1/webhooks", json={"url": url, "events": ["logged"]})
    assert created.status_code == 201, created.text
    sent = message(sender=account.user_email, to="buyer@customer.example")
    logged_id(deliver(server, sent, account.bcc_address, mail_from=account.user_email))
    hook_id: int = created.json()["id"]
    return hook_id


def _first_attempt(server: Server, account: PortalAccount, hook_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with server.api(account.admin_token) as api:
            items = api.get(f"/api/v1/webhooks/{hook_id}/deliveries").json()["items"]
        if items and items[0]["attempts"] >= 1:
            found: dict[str, Any] = items[0]
            return found
        time.sleep(0.05)
    raise AssertionError("no attempt recorded")


@pytest.mark.parametrize(("answer", "delivered"), [(_endless, True), (_drip, False)])
def test_a_hostile_receiver_holds_the_sender_no_longer_than_the_time_out(
        hooks_server: Server, answer: Callable[[BaseHTTPRequestHandler], int],
        delivered: bool) -> None:
    """An endless 200 is delivered after at most 64 KB read (plus what the sockets
    buffer); a dripped answer is a time-out; each attempt ends within the time-out."""
    receiver = _Hostile(answer)
    try:
        account = hooks_server.new_portal()
        hook_id = _hook_and_event(hooks_server, account, receiver.url)
        delivery = _first_attempt(hooks_server, account, hook_id)
    finally:
        receiver.close()
    attempt = delivery["log"][0]
    assert attempt["duration_ms"] < 1500, attempt
    if delivered:
        assert delivery["status"] == "delivered" and attempt["response_code"] == 200
    else:
        assert delivery["status"] == "pending" and attempt["error"].startswith("timeout")
    assert receiver.requests == 1
    assert hooks_server.alive()


def test_every_spelling_of_a_private_address_is_refused_at_registration(
        server: Server) -> None:
    """Without the operator's allow-list, a URL whose host the resolver reads as a
    private address, whatever its spelling, or whose port is not 80 or 443, is 422
    when registered (each was accepted as a name and failed only when sending); a
    public address and a name are taken."""
    account = server.new_portal()
    with server.api(account.admin_token) as api:
        for url in ("http://127.1/x", "http://0/x", "http://2130706433/x",
                    "http://017700000001/x", "http://0x7f000001/x", "http://0x7f.1/x",
                    "http://10.1/x", "http://[::ffff:127.0.0.1]/x", "http://[::ffff:a9fe:a9fe]/x",
                    "http://[64:ff9b::a9fe:a9fe]/x", "https://hooks.example.com:22/x",
                    "http://hooks.example.com:6379/x"):
            answer = api.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
            assert answer.status_code == 422, (url, answer.text)
            assert "not an allowed destination" in answer.json()["error"]["message"]
        for url in ("https://8.8.8.8/x", "https://hooks.example.com/x",
                    "https://1e100.example/x"):
            answer = api.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
            assert answer.status_code == 201, (url, answer.text)


async def test_the_webhook_transport_sends_to_the_address_it_checked() -> None:
    """DNS rebinding: the webhook sender's transport resolves the name once, checks that
    address and sends there, the Host header keeping the name; a second answer (a
    private address) is never asked for. A name resolving only to a refused address
    is refused without a connection."""
    got: list[str] = []

    def answer(handler: BaseHTTPRequestHandler) -> int:
        got.append(handler.headers.get("host", ""))
        handler.send_response(204)
        handler.end_headers()
        return 0

    receiver = _Hostile(answer)
    port = receiver.server.server_address[1]
    answers = iter([[("127.0.0.1", port)], [("10.0.0.1", port)]])
    asked: list[str] = []

    def resolver(host: str, _port: int) -> list[tuple[str, int]]:
        asked.append(host)
        return next(answers)

    allowed = Destinations(parse_rules(f"127.0.0.1:{port}"), resolver=resolver)
    try:
        async with httpx2.AsyncClient(transport=PinnedTransport(allowed, verify=False),
                                      follow_redirects=False, trust_env=False) as client:
            response = await client.post(f"http://rebind.example:{port}/hook", content=b"{}")
        assert response.status_code == 204
        assert asked == ["rebind.example"] and got == [f"rebind.example:{port}"]
        private = Destinations(resolver=lambda h, p: [("10.0.0.1", p)]).for_ports(WEB_PORTS)
        async with httpx2.AsyncClient(transport=PinnedTransport(private, verify=False),
                                      trust_env=False) as client:
            with pytest.raises(Exception, match="destination_not_allowed"):
                await client.post("http://hooks.example/hook", content=b"{}")
        assert len(got) == 1
    finally:
        receiver.close()


def test_one_tenants_dead_receivers_do_not_hold_back_anothers(hooks_server: Server) -> None:
    """A portal with twenty endpoints that never answer and a burst of events has at
    most a quarter of the sender's attempt slots: another portal's delivery, due after
    that whole backlog, arrives within a round or two, not after it."""
    def never(handler: BaseHTTPRequestHandler) -> int:
        time.sleep(3)  # past the sender's time-out: it gives up first
        return 0

    hanging = _Hostile(never)
    arrived: list[float] = []

    def quick(handler: BaseHTTPRequestHandler) -> int:
        arrived.append(time.monotonic())
        handler.send_response(204)
        handler.end_headers()
        return 0

    fast = _Hostile(quick)
    try:
        flooder = hooks_server.new_portal()
        with hooks_server.api(flooder.admin_token) as api:
            for n in range(20):
                assert api.post("/api/v1/webhooks", json={
                    "url": f"{hanging.url}/{n}", "events": ["logged"]}).status_code == 201
        smtp = hooks_server.smtp()
        smtp.ehlo("client.test")
        for n in range(8):  # 160 deliveries, each holding a slot for the 1 s time-out
            sent = message(sender=flooder.user_email, to="buyer@customer.example",
                           subject=f"burst {n}")
            logged_id(deliver(hooks_server, sent, flooder.bcc_address,
                              mail_from=flooder.user_email, smtp=smtp))
        smtp.quit()
        deadline = time.monotonic() + 10
        while hanging.requests < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # the backlog is being worked
        victim = hooks_server.new_portal()
        started = time.monotonic()
        _hook_and_event(hooks_server, victim, fast.url)
        while not arrived and time.monotonic() < started + 15:
            time.sleep(0.05)
    finally:
        hanging.close()
        fast.close()
    assert arrived, "the other portal's delivery never arrived"
    # Without the share, the 16 slots work through 160 one-second attempts first (10 s).
    assert arrived[0] - started < 4, arrived[0] - started
