"""Tracked sends in storage: creating them, recording hits, linking the logged email."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core import queries
from core.errors import InvalidInput
from core.storage import statements
from core.storage.models import Email, Event, TrackedLink, TrackedSend, TrackingHit
from core.tracking import TokenSigner, new_send_token, rewrite_html
from core.tracking_verdicts import (
    BURST,
    CLICK_BURST,
    RECENT_MAX,
    Counts,
    History,
    Hit,
    Seen,
    Send,
    Verdict,
    burst_partners,
    classify,
    count,
)
from core.types import EventType, HitKind

MAX_RECIPIENTS = 500


def _addresses(value: Sequence[str], field: str) -> list[str]:
    from core.accounts import normalize_address

    if len(value) > MAX_RECIPIENTS:
        raise InvalidInput(f"{field} must be a list of at most {MAX_RECIPIENTS} addresses")
    return [normalize_address(address) for address in value]


@dataclass(frozen=True)
class TrackedSendRequest:
    """An email about to be sent, to be made trackable: its recipients (one address
    each), subject and HTML, what to track, and whether to log it once sent."""

    to: Sequence[str]
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    html: str = ""
    track_opens: bool = True
    track_clicks: bool = True
    log: bool = True


MAX_HTML = 5_000_000
MAX_SUBJECT = 998


@dataclass(frozen=True)
class NewTrackedSend:
    send: TrackedSend
    pixel_url: str | None


async def create(
    session: AsyncSession, *, portal_id: int, user_id: int, request: TrackedSendRequest,
    signer: TokenSigner, base_url: str, creator_ip: str,
) -> NewTrackedSend:
    """Rewrite a tracked send's HTML, and store it; InvalidInput for an address that is
    not one, no recipient in ``to``, or a subject or HTML over its limit."""
    if len(request.html) > MAX_HTML or len(request.subject) > MAX_SUBJECT:
        raise InvalidInput("html or subject too long")
    to = _addresses(request.to, "to")
    if not to:
        raise InvalidInput("to must name at least one recipient")
    token = new_send_token()
    rewritten = rewrite_html(request.html, base_url=base_url, send_token=token,
                             portal_id=portal_id, signer=signer,
                             track_opens=request.track_opens,
                             track_clicks=request.track_clicks)
    send = TrackedSend(
        portal_id=portal_id, user_id=user_id, token=token, to=to,
        cc=_addresses(request.cc, "cc"), bcc=_addresses(request.bcc, "bcc"),
        subject=request.subject, html=rewritten.html, creator_ip=creator_ip[:64],
        track_opens=request.track_opens, track_clicks=request.track_clicks, log=request.log,
    )
    session.add(send)
    await session.flush()
    session.add_all(TrackedLink(tracked_send_id=send.id, position=i, url=url)
                    for i, url in enumerate(rewritten.links))
    pixel = (f"{base_url.rstrip('/')}/t/o/{signer.open_token(token, portal_id=portal_id)}"
             if request.track_opens else None)
    return NewTrackedSend(send, pixel)


async def owned(session: AsyncSession, portal_id: int, send_id: int) -> TrackedSend:
    """The portal's tracked send ``send_id``; NotFound otherwise."""
    return await queries.owned(session, TrackedSend, portal_id, send_id)


async def by_tokens(session: AsyncSession, portal_id: int, tokens: list[str]) -> list[TrackedSend]:
    """The portal's tracked sends for these tokens, in the tokens' order."""
    if not tokens:
        return []
    found = {s.token: s for s in await session.scalars(select(TrackedSend).where(
        TrackedSend.token.in_(tokens), TrackedSend.portal_id == portal_id))}
    return [found[t] for t in tokens if t in found]


@dataclass(frozen=True)
class Links:
    """What a click on one of a send's links needs to know, kept in a cache: the send is
    stored and not deleted (its logged email, if any, is not), and its links."""

    portal_id: int
    created_at: datetime
    urls: dict[int, str]  # position -> original URL

    def target(self, position: int, url: str, *, portal_id: int | None) -> bool:
        """Whether a genuine token (of ``portal_id``, None for the first format) for this
        position and URL is one of this send's links."""
        return ((portal_id is None or portal_id == self.portal_id)
                and self.urls.get(position) == url)


def expired(created_at: datetime, at: datetime, link_days: int | None) -> bool:
    """Whether a send's links have expired at ``at`` (never without ``link_days``)."""
    return link_days is not None and at >= created_at + timedelta(days=link_days)


async def links_of(session: AsyncSession, send_token: str) -> Links | None:
    """The send's links, or None when it is not stored or deleted: its logged email is
    deleted (until it is restored; purging the email deletes the send)."""
    row = (await session.execute(
        select(TrackedSend.id, TrackedSend.portal_id, TrackedSend.created_at, Email.deleted_at)
        .outerjoin(Email, Email.id == TrackedSend.email_id)
        .where(TrackedSend.token == send_token))).first()
    if row is None or row.deleted_at is not None:
        return None
    urls = {position: url for position, url in await session.execute(
        select(TrackedLink.position, TrackedLink.url)
        .where(TrackedLink.tracked_send_id == row.id))}
    return Links(row.portal_id, row.created_at, urls)


_INSERT_HITS = statements.Insert(TrackingHit.__table__)
_INSERT_EVENTS = statements.Insert(Event.__table__)


@dataclass(frozen=True)
class _Batch:
    """One send's new hits with what classifying them needs, as plain data (it is
    worked on in a thread, away from the session)."""

    send_id: int
    portal_id: int
    user_id: int
    email_id: int | None
    send: Send
    links: dict[int, tuple[int, str]]  # position -> (link id, url)
    history: History
    hits: list[Hit]


async def record_hits(session: AsyncSession, hits: Iterable[tuple[str, Hit]], *,
                      link_days: int | None = None) -> int:
    """Store and classify a batch of hits (send token, hit); hits of unknown or deleted
    sends (their logged email deleted), or past ``link_days`` after the send, are skipped.

    Adds one event per counted hit to the sender's feed; returns how many.
    """
    by_send: dict[str, list[Hit]] = defaultdict(list)
    for token, hit in hits:
        by_send[token].append(hit)
    sends = {s.token: s for s, deleted_at in await session.execute(
        select(TrackedSend, Email.deleted_at)
        .outerjoin(Email, Email.id == TrackedSend.email_id)
        .where(TrackedSend.token.in_(list(by_send)))) if deleted_at is None}
    batches = []
    for token, all_hits in by_send.items():
        send = sends.get(token)
        if send is None:
            continue
        new_hits = [h for h in all_hits if not expired(send.created_at, h.at, link_days)]
        if not new_hits:
            continue
        new_hits.sort(key=lambda h: h.at)
        links = {link.position: (link.id, link.url) for link in await session.scalars(
            select(TrackedLink).where(TrackedLink.tracked_send_id == send.id))}
        batches.append(_Batch(
            send.id, send.portal_id, send.user_id, send.email_id,
            Send(sent_at=send.sent_at, sender_ips=frozenset({send.creator_ip} - {""})),
            links, await _history(session, send.id, since=new_hits[0].at - BURST), new_hits))
    # Classifying thousands of hits is CPU work: keep it off the event loop, so the
    # pixel keeps answering while a batch is recorded.
    rows, events, revised = await asyncio.to_thread(_classify, batches)
    # Compiled once and run by the driver (executemany), not ORM objects nor the ORM's
    # bulk insert (a tenth of the pixel's CPU): the pixel's throughput rests on this.
    run = await statements.of_session(session)
    await run.insert(_INSERT_HITS, rows)
    await run.insert(_INSERT_EVENTS, events)
    for batch, seen in revised:
        await _revise(session, batch, seen)
    return len(events)


async def _revise(session: AsyncSession, batch: _Batch, seen: list[Seen]) -> None:
    """Mark stored clicks as the burst's they turned out to be, and their events too
    (a live stream already showed them as people: the feed and the counts now agree)."""
    await session.execute(update(TrackingHit).where(TrackingHit.id.in_([s.id for s in seen]))
                          .values(machine=True, reason=CLICK_BURST))
    for event in await session.scalars(select(Event).where(
            Event.portal_id == batch.portal_id, Event.type == EventType.CLICK.value,
            Event.machine.is_(False), Event.at.in_([s.at for s in seen]))):
        if event.detail.get("tracked_send_id") == batch.send_id:
            event.machine = True
            event.detail = {**event.detail, "reason": CLICK_BURST}


def _classify(batches: list[_Batch]) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], list[tuple[_Batch, list[Seen]]]]:
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    revised: list[tuple[_Batch, list[Seen]]] = []
    for batch in batches:
        for i, hit in enumerate(batch.hits):
            verdict = classify(hit, history=batch.history, send=batch.send,
                               upcoming=batch.hits[i + 1:i + 1 + RECENT_MAX])
            if partners := burst_partners(hit, verdict, batch.history):
                revised.append((batch, partners))
                batch.history.recent = [
                    replace(s, machine=True) if s in partners else s
                    for s in batch.history.recent]
            batch.history.add(hit, verdict)
            link = batch.links.get(hit.position) if hit.position is not None else None
            rows.append({
                "tracked_send_id": batch.send_id, "kind": hit.kind, "at": hit.at,
                "ip": hit.ip[:64], "user_agent": hit.user_agent[:1000],
                "method": hit.method[:10], "link_id": link[0] if link else None,
                "machine": verdict.machine, "counted": verdict.counted,
                "reason": verdict.reason, "client": verdict.client[:60],
            })
            if verdict.counted:
                events.append({
                    "portal_id": batch.portal_id, "user_id": batch.user_id, "type": hit.kind,
                    "email_id": batch.email_id, "at": hit.at, "machine": verdict.machine,
                    "detail": {"tracked_send_id": batch.send_id, "reason": verdict.reason,
                               "client": verdict.client, **({"url": link[1]} if link else {})},
                })
    return rows, events, revised


async def _history(session: AsyncSession, send_id: int, since: datetime) -> History:
    """The summary of a send's stored hits that classification needs."""
    opened = await session.scalar(select(TrackingHit.id).where(
        TrackingHit.tracked_send_id == send_id, TrackingHit.kind == HitKind.OPEN.value,
        TrackingHit.counted.is_(True), TrackingHit.machine.is_(False)).limit(1))
    gmail = await session.scalar(select(TrackingHit.id).where(
        TrackingHit.tracked_send_id == send_id, TrackingHit.kind == HitKind.OPEN.value,
        TrackingHit.counted.is_(True), TrackingHit.machine.is_(False),
        TrackingHit.user_agent.contains("GoogleImageProxy"),
    ).limit(1))
    recent = await session.execute(
        select(TrackingHit.at, TrackingHit.kind, TrackedLink.position, TrackingHit.ip,
               TrackingHit.machine, TrackingHit.id)
        .outerjoin(TrackedLink, TrackedLink.id == TrackingHit.link_id)
        .where(TrackingHit.tracked_send_id == send_id, TrackingHit.at >= since)
        .order_by(TrackingHit.at.desc()).limit(RECENT_MAX))
    seen = [Seen(at, HitKind(kind), position, ip, machine, hit_id)
            for at, kind, position, ip, machine, hit_id in recent]
    return History(person_opened=opened is not None, gmail_counted=gmail is not None,
                   recent=seen[::-1])


@dataclass(frozen=True)
class StoredHit:
    """A recorded hit as the API shows it."""

    id: int
    kind: HitKind
    at: datetime
    verdict: Verdict
    ip: str
    position: int | None
    url: str | None


async def hits_of(session: AsyncSession, send: TrackedSend, *, after: int,
                  limit: int) -> list[StoredHit]:
    """A send's hits after the hit id ``after``, oldest first, at most ``limit``."""
    rows = await session.execute(
        select(TrackingHit, TrackedLink.position, TrackedLink.url)
        .outerjoin(TrackedLink, TrackedLink.id == TrackingHit.link_id)
        .where(TrackingHit.tracked_send_id == send.id, TrackingHit.id > after)
        .order_by(TrackingHit.id).limit(limit))
    result = []
    for hit, position, url in rows:
        result.append(StoredHit(
            hit.id, HitKind(hit.kind), hit.at,
            Verdict(hit.machine, hit.counted, hit.reason, hit.client), hit.ip, position, url))
    return result


async def counts_for(session: AsyncSession, emails: Sequence[Email]) -> dict[int, Counts]:
    """Tracking totals per email id, for emails linked to a tracked send."""
    ids = [e.id for e in emails]
    if not ids:
        return {}
    sends = {s.id: s.email_id for s in await session.scalars(
        select(TrackedSend).where(TrackedSend.email_id.in_(ids)))}
    if not sends:
        return {}
    rows: dict[int, list[tuple[str, bool, bool]]] = defaultdict(list)
    for send_id, kind, machine, counted in await session.execute(
            select(TrackingHit.tracked_send_id, TrackingHit.kind, TrackingHit.machine,
                   TrackingHit.counted).where(TrackingHit.tracked_send_id.in_(list(sends)))):
        rows[send_id].append((kind, machine, counted))
    replied = await replied_to(session, [e for e in sends.values() if e is not None])
    result = {}
    for send_id, email_id in sends.items():
        assert email_id is not None
        result[email_id] = count(rows.get(send_id, []), replied=email_id in replied)
    return result


async def counts_for_send(session: AsyncSession, send: TrackedSend) -> Counts:
    """Tracking totals of one tracked send, logged or not."""
    rows = [(k, m, c) for k, m, c in await session.execute(
        select(TrackingHit.kind, TrackingHit.machine, TrackingHit.counted)
        .where(TrackingHit.tracked_send_id == send.id))]
    replied = (send.email_id is not None
               and send.email_id in await replied_to(session, [send.email_id]))
    return count(rows, replied=replied)


async def replied_to(session: AsyncSession, email_ids: list[int]) -> set[int]:
    """Which of these emails got an incoming reply later in their thread."""
    reply = aliased(Email)
    return set(await session.scalars(select(Email.id).where(
        Email.id.in_(email_ids),
        exists().where(reply.thread_id == Email.thread_id, reply.direction == "incoming",
                       reply.sent_at > Email.sent_at, reply.deleted_at.is_(None)))))
