"""Webhooks from two `inboxlog serve` nodes on one PostgreSQL database: mail logged on
either node reaches the receiver once per event (dispatch and claims never overlap),
each delivery in one attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.extension_api.test_webhooks import (
    Receiver,
    _deliveries,
    _log_email,
    _register,
    _until,
    _verified,
    receiver,
)
from tests.support import postgres
from tests.support.server import Server

__all__ = ["receiver"]  # the fixture, shared
EMAILS = 12


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    url = asyncio.run(postgres.create_database())
    # Nodes share the server key, as they must: it encrypts the webhooks' secrets.
    args = ("--secret-key", "one key for every node", "--allow-webhook-hosts",
            "127.0.0.1:*", "--webhook-first-retry", "0.2")
    first = Server(tmp_path / "a", db_url=url, extra_args=args).start(timeout=60)
    second = Server(tmp_path / "b", db_url=url, extra_args=args).start(timeout=60)
    yield first, second
    first.stop()
    second.stop()
    asyncio.run(postgres.drop_database(url))


def test_each_event_is_sent_once_from_two_nodes(nodes: tuple[Server, Server],
                                                receiver: Receiver) -> None:
    """Mail logged on both nodes: every event arrives once, signed; every delivery took
    one attempt."""
    first, second = nodes
    account = first.new_portal()
    hook = _register(first, account, receiver.url, ["logged"])
    for n in range(EMAILS):
        _log_email(first if n % 2 else second, account, subject=f"Numbers {n}")
    got = receiver.wait_for(EMAILS)
    ids = [g.headers["webhook-id"] for g in got]
    assert len(set(ids)) == EMAILS
    for item in got:
        _verified(hook["secret"], item)
    items = _until(lambda: _deliveries(second, account, hook["id"]),
                   lambda items: len(items) == EMAILS
                   and all(i["status"] == "delivered" for i in items))
    assert sorted((i["status"], i["attempts"]) for i in items) == [("delivered", 1)] * EMAILS
    assert len(receiver.got) == EMAILS
