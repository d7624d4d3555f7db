"""The webhook sender waits for work instead of polling, through the real ports: mail
logged over SMTP while the sender is idle reaches the receiver within a second or two
(woken by the commit on SQLite, by PostgreSQL's NOTIFY), a retry goes out at its due
time, and an idle server sends the database no statements (SQLite)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.extension_api.test_webhooks import (
    Receiver,
    _deliveries,
    _log_email,
    _register,
    _until,
    receiver,
)
from tests.support import postgres
from tests.support.server import PortalAccount, Server

__all__ = ["receiver"]  # the fixture, shared
FIRST_RETRY = 2.0  # seconds (times the jitter, [0.5, 1]): long enough to tell a poll
# Without connected inboxes: their lease renewals (every ttl / 3) and the
# acknowledgement outbox's looks are other tasks' statements, not the sender's.
ARGS = ("--allow-webhook-hosts", "127.0.0.1:*", "--webhook-first-retry", str(FIRST_RETRY),
        "--webhook-timeout", "1", "--no-inbox-sync")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = asyncio.run(postgres.create_database()) if request.param == "postgresql" else ""
    running = Server(Path(tmp_path_factory.mktemp(f"wakeup-{request.param}")), db_url=url,
                     extra_args=ARGS).start(timeout=60)
    yield running
    running.stop()
    if url:
        asyncio.run(postgres.drop_database(url))


def _settled(server: Server, account: PortalAccount, hook_id: int, count: int) -> None:
    """Until ``count`` deliveries are recorded delivered: the sender is back to waiting."""
    items = _until(lambda: _deliveries(server, account, hook_id),
                   lambda items: len(items) == count
                   and all(i["status"] == "delivered" for i in items), timeout=20)
    assert [i["status"] for i in items] == ["delivered"] * count


def test_delivered_promptly_while_the_sender_was_idle(server: Server,
                                                      receiver: Receiver) -> None:
    """Mail logged after the sender went back to waiting (its fallback poll is 30 s)
    reaches the receiver within two seconds of the 250."""
    account = server.new_portal()
    hook = _register(server, account, receiver.url, ["logged"])
    _log_email(server, account, subject="First")
    receiver.wait_for(1, timeout=20)
    _settled(server, account, hook["id"], 1)
    for n in range(2, 4):
        sent = time.monotonic()
        _log_email(server, account, subject=f"Number {n}")
        got = receiver.wait_for(n, timeout=40)
        assert got[-1].at - sent < 2.0, f"arrived {got[-1].at - sent:.1f} s after the 250"
        _settled(server, account, hook["id"], n)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_retry_goes_out_at_its_due_time(server: Server, receiver: Receiver) -> None:
    """After a 500 the next attempt is made when it is due (the backoff with jitter,
    1-2 s here), not at the next poll: within half a second of its time."""
    receiver.statuses = [500]
    account = server.new_portal()
    hook = _register(server, account, receiver.url, ["logged"])
    _log_email(server, account)
    first, second = receiver.wait_for(2, timeout=40)
    _settled(server, account, hook["id"], 1)
    [delivery] = _deliveries(server, account, hook["id"])
    failed, delivered = delivery["log"]
    assert failed["response_code"] == 500 and delivered["response_code"] == 200
    due = _time(failed["next_attempt_at"])
    waited = (due - _time(failed["at"])).total_seconds()
    assert FIRST_RETRY * 0.5 - 0.01 <= waited <= FIRST_RETRY + 0.01
    # "at" is when the attempt was recorded, after the receiver answered.
    assert 0 <= (_time(delivered["at"]) - due).total_seconds() < 0.5
    assert waited - 0.1 < second.at - first.at < waited + 0.5


def _statements(server: Server) -> float:
    text = httpx.get(f"{server.base_url}/metrics").text
    return sum(float(v) for v in re.findall(
        r'^inboxlog_db_statements_total\{[^}]*\} ([0-9.e+]+)$', text, re.MULTILINE))


# SQLite: on PostgreSQL the node leases (core.leases) are renewed meanwhile.
@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_an_idle_sender_sends_no_statements(server: Server, receiver: Receiver) -> None:
    """With an endpoint registered and nothing to send, the server sends the database
    no statement for three seconds (the sender polled twice a second before)."""
    account = server.new_portal()
    hook = _register(server, account, receiver.url, ["logged"])
    _log_email(server, account)
    receiver.wait_for(1, timeout=20)
    _settled(server, account, hook["id"], 1)
    before = _statements(server)
    time.sleep(3)  # an absence of statements: nothing to await
    assert _statements(server) - before == 0
