"""Recording hits on both backends: verdicts use the stored history across batches (a
burst's first click, stored as a person, is revised with its event), and the hits read
back carry them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import accounts, tracked_sends
from core.storage.db import Database
from core.storage.models import Event, utcnow
from core.tracking import Hit, TokenSigner

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/132.0.0.0 Safari/537.36")
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


async def test_history_carries_across_batches(database: Database) -> None:
    """A burst's second click in a later batch revises the first; Gmail counts once."""
    async with database.transaction() as session:
        portal = await accounts.create_portal(session, "P")
        user = await accounts.add_user(session, portal.portal.id, "rep@p.example", name="R")
        created = await tracked_sends.create(
            session, portal_id=portal.portal.id, user_id=user.user.id,
            request=tracked_sends.TrackedSendRequest(
                to=["a@b.example"], html='<a href="https://x.example/1">1</a>'
                '<a href="https://x.example/2">2</a>'),
            signer=TokenSigner("s"), base_url="https://t.example", creator_ip="198.51.100.1")
        send = created.send
        send.sent_at = utcnow() - timedelta(hours=1)
        token = send.token
    now = utcnow()
    batches = [
        [Hit("open", now, "66.249.84.21", GMAIL, "GET"),
         Hit("click", now + timedelta(seconds=1), "198.51.100.77", CHROME, "GET", 0)],
        [Hit("open", now + timedelta(seconds=2), "66.249.84.22", GMAIL, "GET"),
         Hit("click", now + timedelta(seconds=2), "198.51.100.77", CHROME, "GET", 1)],
    ]
    for batch in batches:
        async with database.transaction() as session:
            await tracked_sends.record_hits(session, [(token, hit) for hit in batch])
    async with database.read() as session:
        stored = await tracked_sends.owned(session, portal.portal.id, send.id)
        hits = await tracked_sends.hits_of(session, stored, after=0, limit=10)
        counts = await tracked_sends.counts_for_send(session, stored)
        events = (await session.scalars(select(Event).where(
            Event.portal_id == portal.portal.id).order_by(Event.id))).all()
    assert [(h.kind, h.verdict.label, h.verdict.counted) for h in hits] == [
        ("open", "person", True), ("click", "machine", True),
        ("open", "person", False), ("click", "machine", True)]
    assert {hits[1].verdict.reason, hits[3].verdict.reason} == {
        "several links clicked within seconds"}
    assert [(e.type, e.machine) for e in events] == [
        ("open", False), ("click", True), ("click", True)]
    assert events[1].detail["reason"] == "several links clicked within seconds"
    assert hits[0].verdict.reason == "Gmail image proxy, 1 h after the send"
    assert (hits[1].position, hits[1].url, hits[1].ip) == (0, "https://x.example/1",
                                                            "198.51.100.77")
    assert (counts.opens, counts.clicks, counts.machine_clicks) == (1, 0, 2)
    page = await _page(database, portal.portal.id, send.id, after=hits[1].id)
    assert [h.id for h in page] == [hits[2].id]


async def _page(database: Database, portal_id: int, send_id: int, *, after: int) -> list:
    async with database.read() as session:
        stored = await tracked_sends.owned(session, portal_id, send_id)
        return await tracked_sends.hits_of(session, stored, after=after, limit=1)
