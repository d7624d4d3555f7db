"""Webhooks through the real ports: an admin registers an endpoint over HTTP, mail
logged over SMTP makes an event, and a real HTTP receiver in the test gets it, signed
(checked with the standardwebhooks package, the receiver's own check), retried after a
500, timed out when slow; private addresses are refused without the operator's
allow-list, and one portal never reads or changes another's webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers each request with the next of
    ``statuses`` (then 200), after ``delay`` seconds; keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    got: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/inboxlog"

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= count, timeout), (
                f"{len(self.got)} of {count} requests arrived")
            return list(self.got)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.arrived:
                state.got.append(Received({k.lower(): v for k, v in self.headers.items()},
                                          body))
                status = state.statuses.pop(0) if state.statuses else 200
                state.arrived.notify_all()
            time.sleep(state.delay)
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up waiting (the slow case)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server.daemon_threads = True
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose operator allows webhooks to loopback, with fast retries and a
    one-second attempt time-out."""
    running = Server(Path(tmp_path_factory.mktemp("webhooks")), extra_args=(
        "--allow-webhook-hosts", "127.0.0.1:*", "--webhook-first-retry", "0.2",
        "--webhook-timeout", "1")).start()
    yield running
    running.stop()


def _register(server: Server, account: PortalAccount, url: str,
              events: list[str] | None = None) -> dict[str, Any]:
    with server.api(account.admin_token) as api:
        answer = api.post("/api/v1/webhooks", json={"url": url, "events": events or ["*"]})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    assert created["secret"].startswith("whsec_") and created["state"] == "active"
    return created


def _log_email(server: Server, account: PortalAccount, subject: str = "Numbers") -> int:
    """A BCC'd email over SMTP: a ``logged`` event."""
    sent = message(sender=account.user_email, to="buyer@customer.example", subject=subject)
    return logged_id(deliver(server, sent, account.bcc_address, mail_from=account.user_email))


def _deliveries(server: Server, account: PortalAccount, hook_id: int) -> list[dict[str, Any]]:
    with server.api(account.admin_token) as api:
        answer = api.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _until(read: Callable[[], list[dict[str, Any]]],
           done: Callable[[list[dict[str, Any]]], bool], timeout: float = 15) -> list[Any]:
    """Poll the delivery log (the sender records after the receiver answered)."""
    deadline = time.monotonic() + timeout
    while True:
        items = read()
        if done(items) or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def _verified(secret: str, got: Received) -> dict[str, Any]:
    payload: dict[str, Any] = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    return payload


def test_delivered_and_signed(hooks_server: Server, receiver: Receiver) -> None:
    """A logged email reaches the receiver once, with a valid signature, the event id
    as webhook-id, and the event as the API lists it."""
    account = hooks_server.new_portal()
    hook = _register(hooks_server, account, receiver.url, ["logged"])
    email_id = _log_email(hooks_server, account)
    [got] = receiver.wait_for(1)
    payload = _verified(hook["secret"], got)
    with hooks_server.api(account.admin_token) as api:
        [event] = api.get("/api/v1/events").json()["items"]
    assert payload == {"type": "logged", "timestamp": event["at"], "data": event}
    assert event["email_id"] == email_id
    assert got.headers["webhook-id"] == f"evt_{event['id']}"
    assert got.headers["content-type"] == "application/json"
    [delivery] = _until(lambda: _deliveries(hooks_server, account, hook["id"]),
                        lambda items: items[0]["status"] == "delivered")
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["log"][0]["response_code"] == 200
    assert delivery["next_attempt_at"] is None
    forged = Received({**got.headers, "webhook-id": "evt_999999"}, got.body)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        _verified(hook["secret"], forged)


def test_retried_after_500_then_delivered(hooks_server: Server, receiver: Receiver) -> None:
    """A 500 is retried (after the backoff) with the same webhook-id, then delivered;
    the log shows both attempts."""
    receiver.statuses = [500]
    account = hooks_server.new_portal()
    hook = _register(hooks_server, account, receiver.url)
    _log_email(hooks_server, account)
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert second.headers["inboxlog-delivery-attempt"] == "2"
    _verified(hook["secret"], second)
    [delivery] = _until(lambda: _deliveries(hooks_server, account, hook["id"]),
                        lambda items: items[0]["status"] == "delivered")
    assert [(a["attempt"], a["response_code"]) for a in delivery["log"]] == [(1, 500),
                                                                              (2, 200)]
    assert delivery["log"][0]["next_attempt_at"] is not None
    assert delivery["log"][0]["error"] == "HTTP 500"
    assert len(receiver.got) == 2


def test_a_4xx_is_not_retried(hooks_server: Server, receiver: Receiver) -> None:
    """A 410 fails the delivery for good: one request, status failed."""
    receiver.statuses = [410]
    account = hooks_server.new_portal()
    hook = _register(hooks_server, account, receiver.url)
    _log_email(hooks_server, account)
    receiver.wait_for(1)
    [delivery] = _until(lambda: _deliveries(hooks_server, account, hook["id"]),
                        lambda items: items[0]["status"] == "failed")
    assert delivery["status"] == "failed" and delivery["last_response_code"] == 410
    with hooks_server.api(account.admin_token) as api:
        assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["consecutive_failures"] == 1
    assert len(receiver.got) == 1


def test_a_redirect_is_not_followed(hooks_server: Server, receiver: Receiver) -> None:
    """A 302 (here to the cloud metadata address) fails the delivery; nothing follows it."""
    receiver.statuses = [302]
    account = hooks_server.new_portal()
    hook = _register(hooks_server, account, receiver.url)
    _log_email(hooks_server, account)
    receiver.wait_for(1)
    [delivery] = _until(lambda: _deliveries(hooks_server, account, hook["id"]),
                        lambda items: items[0]["status"] == "failed")
    assert delivery["last_response_code"] == 302
    assert delivery["last_error"].startswith("redirect to 'http://169.254.169.254/")
    assert "not followed" in delivery["last_error"] and len(receiver.got) == 1


def test_a_slow_receiver_times_out(hooks_server: Server, receiver: Receiver) -> None:
    """A receiver that answers after the time-out counts as no answer: retried later."""
    receiver.delay = 2.5
    account = hooks_server.new_portal()
    hook = _register(hooks_server, account, receiver.url)
    _log_email(hooks_server, account)
    receiver.wait_for(1)
    [delivery] = _until(lambda: _deliveries(hooks_server, account, hook["id"]),
                        lambda items: items[0]["attempts"] >= 1)
    attempt = delivery["log"][0]
    assert attempt["error"].startswith("timeout") and attempt["response_code"] is None
    assert 900 <= attempt["duration_ms"] < 2400
    assert attempt["next_attempt_at"] is not None
    with hooks_server.api(account.admin_token) as api:  # stop the retries
        api.delete(f"/api/v1/webhooks/{hook['id']}").raise_for_status()


def test_private_addresses_refused_without_the_allow_list(server: Server,
                                                          receiver: Receiver) -> None:
    """Without --allow-webhook-hosts a loopback address is refused when registered, and
    a name that resolves to one is refused when sending: nothing reaches it."""
    account = server.new_portal()
    with server.api(account.admin_token) as api:
        for url in (receiver.url, "http://[::1]:8080/x", "http://10.0.0.8/x",
                    "http://169.254.169.254/latest/meta-data/"):
            answer = api.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
            assert answer.status_code == 422, (url, answer.text)
            assert "not an allowed destination" in answer.json()["error"]["message"]
    # A name that resolves to loopback, on port 80 (a port off the policy, as the
    # receiver's, is refused at registration; so is 0x7f000001, a name to a URL parser
    # that the resolver reads as 127.0.0.1: test_ticket_attacks_webhooks). Nothing
    # listens there: destination_not_allowed, not a failed connection, is the refusal.
    hooks = [_register(server, account, "http://localhost/hooks/inboxlog")]
    _log_email(server, account)
    for hook in hooks:
        [delivery] = _until(lambda hook=hook: _deliveries(server, account, hook["id"]),
                            lambda items: bool(items) and items[0]["status"] == "failed")
        assert delivery["last_error"].startswith("destination_not_allowed"), delivery
    assert receiver.got == []


def test_management_is_the_admins_and_stays_in_the_portal(
        hooks_server: Server, receiver: Receiver) -> None:
    """A user gets 403; another portal's admin gets 404 for every operation and never
    sees the webhook listed; the secret is shown only at creation."""
    account = hooks_server.new_portal()
    other = hooks_server.new_portal("rep@other.example")
    hook = _register(hooks_server, account, receiver.url, ["open", "reply"])
    path = f"/api/v1/webhooks/{hook['id']}"
    with hooks_server.api(account.user_token) as api:
        assert api.get("/api/v1/webhooks").status_code == 403
        assert api.post("/api/v1/webhooks", json={"url": receiver.url,
                                                  "events": ["*"]}).status_code == 403
        assert api.get(f"{path}/deliveries").status_code == 403
        assert api.delete(path).status_code == 403
    with hooks_server.api(other.admin_token) as api:
        assert api.get("/api/v1/webhooks").json() == {"items": []}
        assert api.get(path).status_code == 404
        assert api.patch(path, json={"enabled": False}).status_code == 404
        assert api.get(f"{path}/deliveries").status_code == 404
        assert api.delete(path).status_code == 404
    with hooks_server.api(account.admin_token) as api:
        [listed] = api.get("/api/v1/webhooks").json()["items"]
        assert listed["events"] == ["open", "reply"] and "secret" not in listed
        off = api.patch(path, json={"enabled": False}).json()
        assert (off["state"], off["state_reason"]) == ("disabled", "disabled by the admin")
        assert api.patch(path, json={"enabled": True}).json()["state"] == "active"
        assert api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["opens"]}
                        ).status_code == 422
        assert api.get(f"{path}/deliveries", params={"status": "lost"}).status_code == 400
        assert api.delete(path).status_code == 200
        assert api.get(path).status_code == 404


def test_bad_bodies_are_4xx(hooks_server: Server) -> None:
    """Malformed registrations are 400/422 with the field named, never a 500."""
    account = hooks_server.new_portal()
    with hooks_server.api(account.admin_token) as api:
        for body, status in ((b"not json", 400), (b"[]", 400),
                             (json.dumps({"url": "https://x.example"}).encode(), 422),
                             (json.dumps({"url": "ftp://x.example", "events": ["*"]}
                                         ).encode(), 422),
                             (json.dumps({"url": "https://x.example", "events": []}
                                         ).encode(), 422)):
            answer = api.post("/api/v1/webhooks", content=body,
                              headers={"content-type": "application/json"})
            assert answer.status_code == status, (body, answer.text)
        assert api.get("/api/v1/webhooks/99999999999999999999").status_code == 404
        assert httpx.codes.is_client_error(
            api.get("/api/v1/webhooks/1/deliveries", params={"before": "x"}).status_code)


def test_ticket_events_are_sent_too(hooks_server: Server, receiver: Receiver) -> None:
    """A customer's mail to a team inbox over SMTP: the ticket_created event reaches a
    webhook subscribed to it, signed; the logged email's event does not (not chosen)."""
    account = hooks_server.new_portal("lead@desk.example")
    with hooks_server.api(account.admin_token) as api:
        inbox = api.post("/api/v1/team-inboxes", json={
            "name": "Support", "address": "support@desk.example",
            "members": [{"user_id": account.user_id}]})
        assert inbox.status_code == 201, inbox.text
    hook = _register(hooks_server, account, receiver.url, ["ticket_created"])
    mail = message(sender="customer@buyer.example", to="support@desk.example",
                   subject="Printer on fire")
    code, text = deliver(hooks_server, mail, inbox.json()["forwarding_address"],
                         mail_from="customer@buyer.example")
    assert code == 250, text
    [got] = receiver.wait_for(1)
    payload = _verified(hook["secret"], got)
    assert payload["type"] == "ticket_created"
    assert payload["data"]["detail"]["team_inbox_id"] == inbox.json()["id"]
    [delivery] = _until(lambda: _deliveries(hooks_server, account, hook["id"]),
                        lambda items: items[0]["status"] == "delivered")
    assert delivery["event_type"] == "ticket_created"
