"""Telling people from machines in a tracked send's opens and clicks. Pure: no database.

Every hit gets a verdict (person or machine, counted or not), the reason in words a
salesperson can read ("Outlook desktop (Windows), 2 h after the send"; "Apple Mail
Privacy Protection prefetch") and the client family. The signals, strongest first:

- the request itself: HEAD, or a prefetch header (``Purpose``/``Sec-Purpose``/``X-Purpose``
  ``prefetch`` or ``preview``, ``X-Moz: prefetch``);
- where it comes from: the sender's own address (not counted), or the published ranges
  of Apple's privacy proxies and of security gateways (``core.tracking_ranges``);
- the user agent (``core.tracking_clients``): Gmail's image proxy (a person opening,
  counted once), prefetching proxies, bots and scanners, bare or missing agents;
- time: a hit within seconds of the send being handed to the mail server is a machine
  at delivery, and so is a click within a minute of it that no open preceded (a reader
  with images blocked clicks too, but not before reading);
- bursts: three links clicked within 5 s or two within a second, opens from several
  addresses within seconds, a hit right after a machine's from the same address. Hits
  later in the same batch are looked at too, so the first click of a burst is caught
  with the others; when the rest of a burst comes in a later batch, ``burst_partners``
  names the stored clicks to revise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core import tracking_clients as clients
from core.tracking_ranges import Ranges, published
from core.types import ClientKind, HitKind, HitVerdict, RangeKind

BURST = timedelta(seconds=5)
# A person may open two links in tabs a few seconds apart; a scanner fires within one.
QUICK = timedelta(seconds=1)
AT_DELIVERY = timedelta(seconds=10)
CLICK_UNOPENED_AT_DELIVERY = timedelta(seconds=60)
RECENT_MAX = 50  # earlier hits remembered for bursts; more says nothing new
_PREFETCH_WORDS = ("prefetch", "preview", "prerender")


@dataclass(frozen=True)
class Hit:
    kind: HitKind
    at: datetime
    ip: str
    user_agent: str
    method: str
    position: int | None = None  # the link, for clicks
    purpose: str = ""  # Purpose, Sec-Purpose, X-Purpose and X-Moz headers, joined

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", HitKind(self.kind))  # refuses anything else


@dataclass(frozen=True)
class Seen:
    """An earlier hit, as much of it as bursts need."""

    at: datetime
    kind: HitKind
    position: int | None
    ip: str
    machine: bool
    id: int | None = None  # the stored hit's, for the ones read back from the database

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", HitKind(self.kind))  # read back as a string


@dataclass
class History:
    """What classification needs of a send's earlier hits, kept small: whether a person
    opened it, whether Gmail's proxy already counted, and the last few seconds' hits."""

    person_opened: bool = False
    gmail_counted: bool = False
    recent: list[Seen] = field(default_factory=list)

    def add(self, hit: Hit, verdict: Verdict) -> None:
        if hit.kind == HitKind.OPEN and verdict.counted and not verdict.machine:
            self.person_opened = True
            self.gmail_counted = self.gmail_counted or verdict.client == GMAIL_FAMILY
        self.recent = [s for s in self.recent if hit.at - s.at <= BURST][-RECENT_MAX + 1:]
        self.recent.append(Seen(hit.at, hit.kind, hit.position, hit.ip, verdict.machine))


@dataclass(frozen=True)
class Send:
    """What classification knows of the send: when it was handed to the mail server
    (None until the extension says it was sent) and where its sender was."""

    sent_at: datetime | None = None
    sender_ips: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    machine: bool
    counted: bool
    reason: str
    client: str = ""

    @property
    def label(self) -> HitVerdict:
        """person, machine, or sender (the sender's own open)."""
        if self.machine:
            return HitVerdict.MACHINE
        return HitVerdict.SENDER if self.reason == SENDER_REASON else HitVerdict.PERSON


SENDER_REASON = "the sender's own open"
CLICK_BURST = "several links clicked within seconds"
GMAIL_FAMILY = clients.Client("Gmail (image proxy)", ClientKind.GMAIL_PROXY).family


def _ago(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 0:
        return "before the send"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} after the send"
    return f"{seconds:.0f} s after the send"


def _prefetch(purpose: str) -> bool:
    value = purpose.lower()
    return any(word in value for word in _PREFETCH_WORDS)


def classify(hit: Hit, *, history: History, send: Send, upcoming: Sequence[Hit] = (),
             ranges: Ranges | None = None) -> Verdict:
    """Decide whether a hit is a person or a machine, and whether it counts.

    ``history`` sums up the send's earlier hits; ``upcoming`` are the hits after this
    one in the same batch (in time order; only the first seconds are looked at).
    """
    client = clients.identify(hit.user_agent)
    family = client.family

    def machine(reason: str) -> Verdict:
        return Verdict(True, True, reason[:100], family)

    if hit.method.upper() == "HEAD":
        return machine("HEAD request")
    if _prefetch(hit.purpose):
        return machine("prefetch (its Purpose header says so)")
    if hit.ip in send.sender_ips:
        return Verdict(False, False, SENDER_REASON, family)
    since = hit.at - send.sent_at if send.sent_at is not None else None
    after = f", {_ago(since)}" if since is not None else ""
    if client.kind == ClientKind.GMAIL_PROXY:
        # Gmail fetches images through its proxy when a person opens the email, and
        # caches them: the first fetch is a real open, later ones say nothing.
        if history.gmail_counted:
            return Verdict(False, False, "Gmail image proxy, already counted", family)
        return Verdict(False, True, f"Gmail image proxy{after}", family)
    network = (ranges or published()).lookup(hit.ip)
    if network is not None and network.kind == RangeKind.SCANNER:
        return machine(f"{network.label} (published range)")
    if client.kind == ClientKind.BOT:
        return machine(family)
    if client.kind == ClientKind.PREFETCH_PROXY:
        return machine(f"{family} prefetch")
    apple_agent = client.kind in (ClientKind.BARE, ClientKind.NONE) or family in (
        "Apple Mail (Mac)", "Apple Mail or a mail app (iOS)")
    if network is not None and network.kind == RangeKind.APPLE and apple_agent:
        return machine("Apple Mail Privacy Protection prefetch")
    if client.kind == ClientKind.BARE:
        return machine("Apple Mail Privacy Protection prefetch (its bare agent)")
    if client.kind == ClientKind.NONE:
        return machine("no user agent")
    window = [s for s in history.recent if hit.at - s.at <= BURST]
    ahead = [h for h in upcoming[:RECENT_MAX] if h.at - hit.at <= BURST]
    if any(s.machine and s.ip == hit.ip for s in window):
        return machine("right after a machine's fetch from the same address")
    if hit.kind == HitKind.CLICK:
        near = [(s.position, hit.at - s.at) for s in window if s.kind == HitKind.CLICK] + [
            (h.position, h.at - hit.at) for h in ahead if h.kind == HitKind.CLICK]
        others = {position for position, _ in near if position != hit.position}
        if len(others) >= 2 or any(p != hit.position and d <= QUICK for p, d in near):
            return machine(CLICK_BURST)
        if since is not None and since < AT_DELIVERY:
            return machine(f"clicked {since.total_seconds():.0f} s after the send: at delivery")
        if (since is not None and since < CLICK_UNOPENED_AT_DELIVERY
                and not history.person_opened):
            return machine(f"clicked {since.total_seconds():.0f} s after the send, "
                           "before any open: a scanner at delivery")
    else:
        addresses = {s.ip for s in window} | {h.ip for h in ahead}
        if len(addresses - {hit.ip}) >= 2:
            return machine("opened from several addresses within seconds")
        if (since is not None and since < AT_DELIVERY
                and client.kind in (ClientKind.BROWSER, ClientKind.UNKNOWN)):
            return machine(f"opened {since.total_seconds():.0f} s after the send by a "
                           "browser: a scanner at delivery")
    return Verdict(False, True, f"{family}{after}"[:100], family)


def burst_partners(hit: Hit, verdict: Verdict, history: History) -> list[Seen]:
    """Stored clicks that a click burst now betrays: they were recorded as people in an
    earlier batch, before the rest of the burst arrived. Call before ``history.add``."""
    if verdict.reason != CLICK_BURST:
        return []
    return [s for s in history.recent if s.id is not None and not s.machine
            and s.kind == HitKind.CLICK and s.position != hit.position and hit.at - s.at <= BURST]


@dataclass(frozen=True)
class Counts:
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


def count(hits: list[tuple[str, bool, bool]], *, replied: bool) -> Counts:
    """Totals from (kind, machine, counted) rows. A human click or a reply implies an
    open, even when the pixel never loaded (images blocked)."""
    opens = sum(1 for k, m, c in hits if k == HitKind.OPEN and c and not m)
    clicks = sum(1 for k, m, c in hits if k == HitKind.CLICK and c and not m)
    if opens == 0 and (clicks or replied):
        opens = 1
    return Counts(
        opens=opens, clicks=clicks,
        machine_opens=sum(1 for k, m, c in hits if k == HitKind.OPEN and m and c),
        machine_clicks=sum(1 for k, m, c in hits if k == HitKind.CLICK and m and c),
    )
