"""Tracking: the user's tracked sends with their totals, and per send its opens and
clicks over time as a small chart (server-drawn SVG, no script), with every hit
labelled person, machine or the sender's own, and why."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from core import tracked_sends, web_reads
from core.tracked_sends import StoredHit
from core.types import HitKind, HitVerdict
from extension_api.pages._web import PageError, Viewer, render, runtime_of, signed_in

BARS = 12
MAX_HITS = 500


@dataclass(frozen=True)
class Bar:
    """One slice of time after the send: its hits by verdict."""

    label: str
    opens: int  # a person's
    clicks: int  # a person's
    machine: int
    own: int

    @property
    def total(self) -> int:
        return self.opens + self.clicks + self.machine + self.own


def _span_label(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def bars(hits: list[StoredHit], start: datetime, *, count: int = BARS) -> list[Bar]:
    """``hits`` in ``count`` equal slices from ``start`` to the last hit (an hour at
    least), each labelled by where it ends ("5m", "2h", "3d" after the send)."""
    end = max([start + timedelta(hours=1), *(h.at for h in hits)])
    width = (end - start) / count
    slices: list[list[StoredHit]] = [[] for _ in range(count)]
    for hit in hits:
        index = min(count - 1, max(0, math.floor((hit.at - start) / width)))
        slices[index].append(hit)
    result = []
    for index, inside in enumerate(slices):
        people = [h for h in inside if h.verdict.label is HitVerdict.PERSON]
        result.append(Bar(
            _span_label(width * (index + 1)),
            opens=sum(1 for h in people if h.kind is HitKind.OPEN),
            clicks=sum(1 for h in people if h.kind is HitKind.CLICK),
            machine=sum(1 for h in inside if h.verdict.label is HitVerdict.MACHINE),
            own=sum(1 for h in inside if h.verdict.label is HitVerdict.SENDER)))
    return result


def _send_id(request: Request) -> int:
    value = request.path_params.get("id")
    if not isinstance(value, int) or not 0 < value < 2**63:
        raise PageError(404, "Not found", "There is no such tracked send.")
    return value


@signed_in
async def sends_page(request: Request, viewer: Viewer) -> Response:
    async with runtime_of(request).db.read() as session:
        sends = await web_reads.tracked_sends_of(
            session, viewer.portal_id, None if viewer.is_admin else viewer.user_id)
        counts = {s.id: await tracked_sends.counts_for_send(session, s) for s in sends}
    return render(request, "tracking.html", sends=sends, counts=counts)


@signed_in
async def send_page(request: Request, viewer: Viewer) -> Response:
    async with runtime_of(request).db.read() as session:
        send = await tracked_sends.owned(session, viewer.portal_id, _send_id(request))
        if not viewer.is_admin and send.user_id != viewer.user_id:
            raise PageError(404, "Not found", f"no tracked send {send.id}")
        hits = await tracked_sends.hits_of(session, send, after=0, limit=MAX_HITS)
        counts = await tracked_sends.counts_for_send(session, send)
    shown = bars(hits, send.sent_at or send.created_at)
    return render(request, "tracked_send.html", send=send, hits=hits, counts=counts,
                  bars=shown, top=max([1, *(b.total for b in shown)]))
