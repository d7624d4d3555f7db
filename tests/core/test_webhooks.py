"""Webhooks in core: signatures the reference implementation accepts, the retry rules,
and the outbox on both backends (dispatch once, claims disjoint, attempts recorded,
endpoints disabled after failures in a row)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import standardwebhooks
from sqlalchemy import select

from core import accounts, webhooks
from core.credentials import CredentialBox
from core.errors import InvalidInput, NotFound
from core.storage.db import Database
from core.storage.models import Event, WebhookDelivery, WebhookEndpoint, utcnow

BOX = CredentialBox("test secret", purpose=webhooks.SECRET_PURPOSE)
POLICY = webhooks.RetryPolicy(first_retry=60, max_attempts=3, disable_after=4)


def test_signature_is_accepted_by_the_reference_implementation() -> None:
    """A body signed here verifies with the standardwebhooks package; altered, it fails."""
    secret = webhooks.new_secret()
    body = b'{"type":"open","data":{"id":7}}'
    headers = webhooks.signed_headers(secret, "evt_7", body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.replace(b"7", b"8"), headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(webhooks.new_secret()).verify(body, headers)


def test_signature_matches_a_hand_computed_value() -> None:
    """v1 is base64(HMAC-SHA256(key, "id.timestamp.body")): a fixed key and input give
    the value computed separately with openssl (echo -n 'msg_1.1700000000.{}' |
    openssl dgst -sha256 -mac HMAC -macopt hexkey:000102..1f -binary | base64)."""
    secret = "whsec_" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31
    assert webhooks.signature(secret, "msg_1", 1700000000, b"{}") == (
        "v1,fhksJF5ElKjlPoT/jtefCO5XjQPvhf7Dhf/8R1ad9yU=")


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    """Attempt n waits first_retry * 2**(n-1), scaled into [0.5, 1], capped."""
    policy = webhooks.RetryPolicy(first_retry=30, max_delay=3600)
    assert [policy.delay(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert [policy.delay(n, lambda: 0.0) for n in (1, 2, 3)] == [15, 30, 60]
    assert policy.delay(20, lambda: 1.0) == 3600


@pytest.mark.parametrize(("code", "error", "retry"), [
    (500, "HTTP 500", True), (503, "HTTP 503", True), (408, "HTTP 408", True),
    (429, "HTTP 429", True), (400, "HTTP 400", False), (404, "HTTP 404", False),
    (410, "HTTP 410", False), (301, "redirect", False), (None, "timeout", True),
    (None, "connection_failed: ConnectError", True),
    (None, "destination_not_allowed: 10.0.0.1:80", False),
])
def test_what_is_retried(code: int | None, error: str, retry: bool) -> None:
    """5xx, 408, 429 and no answer are retried; other 4xx, redirects, refusals are not."""
    assert webhooks.Attempt(code, 5, error).retryable is retry


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "example.com/hook", "https://", "https://u:p@example.com/",
    "https://example.com/#frag", "https://exa mple.com/", "https://example.com:99999/",
    "javascript:alert(1)", "https://example.com/" + "a" * 2000, "http://[::1/",
])
def test_urls_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="url"):
        webhooks.checked_url(url)


def test_event_types() -> None:
    """Known types each once; "*" means all; an unknown type names its place."""
    assert webhooks.checked_event_types(["open", "reply", "open"]) == ["open", "reply"]
    assert webhooks.checked_event_types(["open", "*"]) == ["*"]
    with pytest.raises(InvalidInput, match=r"events\[1\]"):
        webhooks.checked_event_types(["open", "opened"])
    with pytest.raises(InvalidInput):
        webhooks.checked_event_types([])


def _payload(event: Event) -> str:
    return json.dumps({"type": event.type, "id": event.id})


async def _portal_with_endpoint(db: Database, types: list[str]) -> tuple[int, int]:
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal
        endpoint, _secret = await webhooks.create_endpoint(
            session, BOX, portal.id, url="https://hooks.example/in", event_types=types)
        return portal.id, endpoint.id


async def _events(db: Database, portal_id: int, *types: str) -> list[int]:
    async with db.transaction() as session:
        rows = [Event(portal_id=portal_id, type=t, detail={}) for t in types]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows]


async def _dispatch(db: Database, gaps: webhooks.GapClock | None = None) -> int:
    async with db.transaction() as session:
        return await webhooks.dispatch(session, _payload, gaps=gaps)


async def test_dispatch_once_per_matching_endpoint(database: Database) -> None:
    """Events after an endpoint's creation, of its types and portal, become one delivery
    each; dispatching again writes nothing more. Another portal's endpoint is NotFound
    for every operation."""
    before = await _portal_with_endpoint(database, ["open"])
    portal_id, endpoint_id = await _portal_with_endpoint(database, ["open", "reply"])
    await _events(database, before[0], "open")  # the other portal's
    ids = await _events(database, portal_id, "open", "logged", "reply")
    assert await _dispatch(database) == 3  # the other portal's open too, to its endpoint
    assert await _dispatch(database) == 0
    async with database.read() as session:
        rows = (await session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id))).all()
    assert [(r.event_id, r.event_type, r.status) for r in rows] == [
        (ids[0], "open", "pending"), (ids[2], "reply", "pending")]
    assert json.loads(rows[0].payload) == {"type": "open", "id": ids[0]}
    async with database.transaction() as session:
        for call in (webhooks.endpoint_of(session, before[0], endpoint_id),
                     webhooks.deliveries_of(session, before[0], endpoint_id),
                     webhooks.delete_endpoint(session, before[0], endpoint_id)):
            with pytest.raises(NotFound):
                await call


async def test_a_gap_waits_until_it_settles(database: Database) -> None:
    """PostgreSQL may show a later id before an earlier one commits: the dispatcher
    stops before a gap until it has seen it for the grace time."""
    portal_id, _endpoint = await _portal_with_endpoint(database, ["*"])
    _first, second = await _events(database, portal_id, "open", "open")
    async with database.transaction() as session:
        session.add(Event(id=second + 2, portal_id=portal_id, type="open", detail={}))
    now = [0.0]
    gaps = webhooks.GapClock(grace=10, clock=lambda: now[0])
    assert await _dispatch(database, gaps) == 2
    assert await _dispatch(database, gaps) == 0
    now[0] = 10.0
    assert await _dispatch(database, gaps) == 1


async def _claim(db: Database, lease: float = 60) -> list[webhooks.Claimed]:
    async with db.transaction() as session:
        return await webhooks.claim(session, lease=lease)


async def _record(db: Database, item: webhooks.Claimed, attempt: webhooks.Attempt) -> str:
    async with db.transaction() as session:
        return await webhooks.record(session, item, attempt, POLICY, rand=lambda: 1.0)


async def test_claims_are_disjoint(database: Database) -> None:
    """Two claims at once never get the same delivery; a claim holds until its lease."""
    portal_id, _endpoint = await _portal_with_endpoint(database, ["*"])
    await _events(database, portal_id, *["open"] * 30)
    await _dispatch(database)
    one, two = await asyncio.gather(_claim(database), _claim(database))
    assert sorted([len(one), len(two)]) == [10, 20]  # 20 a claim at most
    ids = [c.delivery_id for c in one + two]
    assert len(set(ids)) == 30
    assert await _claim(database) == []


async def test_retry_then_delivered(database: Database) -> None:
    """A 500 is retried after the backoff, a 200 then settles it, with both attempts
    in the log and the run of failures reset."""
    portal_id, endpoint_id = await _portal_with_endpoint(database, ["*"])
    await _events(database, portal_id, "open")
    await _dispatch(database)
    [item] = await _claim(database)
    assert item.attempt == 1
    assert await _record(database, item, webhooks.Attempt(500, 12, "HTTP 500")) == "pending"
    assert await _claim(database) == []  # not due for a minute
    async with database.transaction() as session:
        delivery = await session.get(WebhookDelivery, item.delivery_id)
        assert delivery is not None and delivery.next_attempt_at is not None
        wait = delivery.next_attempt_at - utcnow()
        assert timedelta(seconds=55) < wait <= timedelta(seconds=60)
        delivery.next_attempt_at = utcnow()
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.consecutive_failures == 1
    [again] = await _claim(database)
    assert again.attempt == 2
    assert await _record(database, again, webhooks.Attempt(204, 8)) == "delivered"
    async with database.read() as session:
        delivery = await session.get(WebhookDelivery, item.delivery_id)
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
    assert delivery is not None and endpoint is not None
    assert [(e["attempt"], e["response_code"]) for e in delivery.log] == [(1, 500), (2, 204)]
    assert delivery.log[0]["next_attempt_at"] is not None
    assert delivery.next_attempt_at is None and endpoint.consecutive_failures == 0


async def test_permanent_failure_and_disabling(database: Database) -> None:
    """A 404 fails the delivery at once; failures in a row disable the endpoint, whose
    other deliveries are then not claimed; temporary failures end after max_attempts."""
    portal_id, endpoint_id = await _portal_with_endpoint(database, ["*"])
    await _events(database, portal_id, *["open"] * 6)
    await _dispatch(database)
    claimed = await _claim(database)
    statuses = [await _record(database, c, webhooks.Attempt(404, 3, "HTTP 404"))
                for c in claimed[:4]]
    assert statuses == ["failed"] * 4
    async with database.transaction() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert (endpoint.state, endpoint.consecutive_failures) == ("disabled", 4)
        assert "4 failed attempts in a row" in endpoint.state_reason
        await session.execute(WebhookDelivery.__table__.update().values(
            next_attempt_at=utcnow()))
    assert await _claim(database) == []
    async with database.transaction() as session:
        await webhooks.change_endpoint(session, portal_id, endpoint_id,
                                       webhooks.EndpointChange(enabled=True))
    resumed = await _claim(database)
    assert len(resumed) == 2  # the two left
    for item in resumed:  # settled, out of the way of what follows
        assert await _record(database, item, webhooks.Attempt(200, 1)) == "delivered"
    # Temporary failures stop after max_attempts: the delivery fails.
    portal_id, _endpoint = await _portal_with_endpoint(database, ["*"])
    await _events(database, portal_id, "click")
    await _dispatch(database)
    results = []
    for _ in range(POLICY.max_attempts):
        [item] = await _claim(database)
        results.append(await _record(database, item, webhooks.Attempt(None, 1, "timeout")))
        async with database.transaction() as session:
            await session.execute(WebhookDelivery.__table__.update().values(
                next_attempt_at=utcnow()))
    assert results == ["pending", "pending", "failed"]


async def test_an_event_that_cannot_be_written_is_skipped(database: Database) -> None:
    """An event the payload builder refuses (say, a type a newer version wrote) is
    skipped with a log line; the events after it still go out."""
    portal_id, _endpoint = await _portal_with_endpoint(database, ["*"])
    await _events(database, portal_id, "from_the_future", "open")

    def payload(event: Event) -> str:
        if event.type == "from_the_future":
            raise ValueError(event.type)
        return _payload(event)

    async with database.transaction() as session:
        assert await webhooks.dispatch(session, payload) == 1
    [item] = await _claim(database)
    assert item.event_type == "open"
