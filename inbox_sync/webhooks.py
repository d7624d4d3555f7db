"""The webhook sender of ``inboxlog serve``: dispatches events into deliveries, claims
due ones and POSTs them, signed, to the portals' endpoints (``core.webhooks`` keeps the
outbox, the retries and the log).

The URL is a user's input, so the connection goes through the operator's destination
policy (``inbox_sync.outbound.Destinations``, the one connected inboxes use): the name
is resolved once, every address checked (public, on the ports 80 and 443; anything
else only when ``--allow-webhook-hosts`` allows it) and the connection made to exactly
that address, TLS verifying the name. No redirect is followed, no proxy from the
environment used, no connection kept alive (a pooled connection to one address could
carry another name's request); each attempt has ``RetryPolicy.timeout`` for everything,
connect to the last byte, and reads at most ``MAX_RESPONSE_BYTES`` of the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2
from sqlalchemy import event

from core import webhooks
from core.credentials import CredentialBox, CredentialsUnreadable
from core.errors import StorageUnavailable
from core.inboxes import Endpoint, InboxError
from core.runtime import Runtime
from core.storage.listen import EVENTS_CHANNEL, Listener
from core.storage.models import Event, utcnow
from core.types import InboxErrorCode, MailProtocol, MailSecurity
from inbox_sync import pinned
from inbox_sync.outbound import Destinations

log = logging.getLogger(__name__)

WEB_PORTS = frozenset({80, 443})
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "inboxlog-webhooks/1"
KEEP_SETTLED = timedelta(days=30)


@dataclass(frozen=True)
class WebhookOptions:
    """``serve``'s webhook settings: the operator's extra destinations, the retries."""

    destinations: Destinations = field(default_factory=Destinations)
    policy: webhooks.RetryPolicy = field(default_factory=webhooks.RetryPolicy)
    # Rounds are woken by work (WebhookSender); these bound the waits between them.
    # The least time between rounds woken by new events; also the poll while events
    # may go unheard (PostgreSQL's LISTEN down) or are left past the cursor.
    poll_interval: float = 1.0
    # The same for events of portals without an active endpoint (as of the last round):
    # the cursor moves on, and an endpoint created without a wake-up is found.
    other_events_poll: float = 5.0
    idle_poll: float = 30.0  # the longest wait with nothing known to be waiting
    dispatch_batches: int = 20  # batches of events one round dispatches at most
    concurrency: int = 16  # attempts in flight at once
    # Of those, at most this share for one portal's endpoints: another tenant's slow or
    # dead receivers never hold them all (core.webhooks.claim).
    portal_share: float = 0.25
    verify: bool = True  # TLS certificates (tests may turn it off)


class _Refused(Exception):
    """The destination policy refused the URL's host (nothing was sent)."""


class PinnedTransport(pinned.PinnedTransport):
    """Sends each request to an allowed address of its host (``inbox_sync.pinned``),
    one connection per delivery."""

    def __init__(self, destinations: Destinations, verify: bool) -> None:
        super().__init__(destinations, httpx2.AsyncHTTPTransport(
            verify=verify, retries=0, trust_env=False,
            limits=httpx2.Limits(max_keepalive_connections=0)))

    def refused(self, host: str, port: int, error: InboxError) -> Exception:
        if error.code == InboxErrorCode.NAME_NOT_FOUND:
            return httpx2.ConnectError(f"name_not_found: {host}")
        return _Refused(f"destination_not_allowed: {host}:{port} is not a public "
                        "address on port 80 or 443, and the operator does not allow "
                        "it (--allow-webhook-hosts)")


def _literal(host: str) -> str | None:
    """The address ``host`` is to the system's resolver, when it is one: IPv6 in
    brackets, and every IPv4 spelling ``inet_aton`` reads (``127.1``, ``0``,
    ``2130706433``, ``0x7f000001``, ``017700000001``), which a URL parser takes for
    names; None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or not host[0].isdigit() or not all(c.isalnum() or c == "." for c in host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def literal_refusal(destinations: Destinations, url: str) -> str | None:
    """Why a URL may never be sent to, as far as it can be told without a lookup (None:
    it may, or its host is a name, decided when sending): a port no rule allows, or a
    host that is an address (in any spelling the resolver reads) off the policy.
    Registration refuses ``http://127.0.0.1/`` at once instead of logging failed
    deliveries."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    refusal = (f"url: {host}:{port} is not an allowed destination: webhooks go only to "
               "public addresses on port 80 or 443, unless the operator allows more")
    if port not in destinations.ports and not any(r.may_match_port(port)
                                                  for r in destinations.rules):
        return refusal
    address = _literal(host)
    if address is None:
        return None
    try:
        destinations.addresses(Endpoint(address, port, MailSecurity.SSL), MailProtocol.HTTPS)
    except InboxError:
        return refusal
    return None


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


# Set in the sender's own task (and so in its attempts'): its commits wake nobody.
_SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("webhook_sender",
                                                               default=False)


class WebhookSender:
    """The background task: rounds that dispatch new events and start attempts for due
    deliveries, ``concurrency`` at most in flight.

    It waits for work instead of polling: a round runs when events are committed for a
    portal with an active endpoint (in this process: a commit on SQLite, whose one
    process writes them all; from any process or node: PostgreSQL's NOTIFY on
    ``events``, core.storage.listen), at most once per ``poll_interval`` (other
    portals' events: once per ``other_events_poll``); at once when the API changes an
    endpoint (``wake``) or an attempt ends (its slot is free); when the earliest
    pending delivery is due (a retry); and at least every ``idle_poll`` (mail logged by
    another process on SQLite, such as ``inboxlog ingest``). While PostgreSQL's LISTEN
    connection is down, events are polled for every ``poll_interval``, as before.
    """

    def __init__(self, runtime: Runtime, payload_of: Callable[[Event], str],
                 options: WebhookOptions | None = None) -> None:
        self.runtime, self.payload_of = runtime, payload_of
        self.options = options or WebhookOptions()
        self.destinations = self.options.destinations.for_ports(WEB_PORTS)
        self._box: CredentialBox | None = None
        self._gaps = None if runtime.db.is_sqlite else webhooks.GapClock()
        self._inflight: set[asyncio.Task[None]] = set()
        self._busy: Counter[int] = Counter()  # attempts in flight per portal
        self._task: asyncio.Task[None] | None = None
        self._stir = asyncio.Event()  # something may have changed: look at the flags
        self._urgent = False  # run a round now
        self._events = False  # events were committed: a round within poll_interval
        self._other_events = False  # only for other portals: within other_events_poll
        self._portals: set[int] = set()  # with an active endpoint, as of the last round
        self._listener: Listener | None = None
        self._listening: asyncio.Task[None] | None = None
        self._hooked: list[Any] = []  # the sync engines whose commits wake it (SQLite)
        self._client: httpx2.AsyncClient | None = None
        self._last_prune = 0.0
        self._behind = False  # events were left past the cursor in the last round

    @property
    def box(self) -> CredentialBox:
        if self._box is None:
            self._box = webhooks.secret_box(self.runtime.settings.secret_key)
        return self._box

    def refusal(self, url: str) -> str | None:
        return literal_refusal(self.destinations, url)

    def start(self) -> None:
        if self._task is None:
            self._client = httpx2.AsyncClient(
                transport=PinnedTransport(self.destinations, self.options.verify),
                follow_redirects=False, trust_env=False,
                timeout=self.options.policy.timeout)
            self._task = asyncio.create_task(self._run(), name="webhook-sender")
            self._hear_events()

    def wake(self) -> None:
        """Run a round now (an endpoint was created, enabled or changed)."""
        self._urgent = True
        self._stir.set()

    def events_committed(self, portals: Iterable[int] | None = None) -> None:
        """Events of ``portals`` (None: of any) were committed: a round soon if an
        active endpoint may want them, else later."""
        if self._portals and (portals is None or not self._portals.isdisjoint(portals)):
            self._events = True
        else:
            self._other_events = True
        self._stir.set()

    def _hear_events(self) -> None:
        db = self.runtime.db
        if not db.is_sqlite:
            self._listener = Listener(db.url, EVENTS_CHANNEL, self._notified)
            self._listening = asyncio.create_task(self._listener.run_forever(),
                                                  name="webhook-events-listener")
            return
        # SQLite: one process writes every event, through these two engines. Any commit
        # there may carry events (they are written many ways: ORM, Core, the driver).
        # The ingest engine has no public name in core.storage.db.
        for engine in {db.write_engine, getattr(db, "_ingest_engine", db.write_engine)}:
            event.listen(engine.sync_engine, "commit", self._committed)
            self._hooked.append(engine.sync_engine)

    def _committed(self, _connection: Any) -> None:
        if not _SENDING.get():
            self.events_committed()

    def _notified(self, payload: str) -> None:
        """NOTIFY of events committed (their portals, comma-separated; empty: maybe any,
        or the LISTEN connection (re)connected)."""
        portals = [int(p) for p in payload.split(",") if p.strip().isdigit()]
        self.events_committed(portals or None)

    async def stop(self) -> None:
        for engine in self._hooked:
            event.remove(engine, "commit", self._committed)
        self._hooked.clear()
        for task in (self._task, self._listening):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._listening = self._listener = None
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        _SENDING.set(True)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.run_once()
                wait = await self._quiet_for()
            except StorageUnavailable:
                log.warning("webhooks: the database is unavailable; trying again")
                wait = self.options.poll_interval
            except Exception:  # never let the sender die: deliveries would pile up
                log.exception("the webhook sender failed; it goes on")
                wait = self.options.poll_interval
            await self._pause(started, wait)

    async def _quiet_for(self) -> float:
        """How long nothing is known to be waiting: until the earliest due delivery,
        ``idle_poll`` at most; ``poll_interval`` while events are left past the cursor
        or may go unheard."""
        if self._behind or (self._listener is not None and not self._listener.connected):
            return self.options.poll_interval
        async with self.runtime.db.read() as session:
            due = await webhooks.next_due(session)
        if due is None:
            return self.options.idle_poll
        until = (due - utcnow()).total_seconds()
        # Due already but not claimed (no slot free, or another node's claim under way):
        # an attempt's end wakes it; the poll backs that up.
        return min(self.options.idle_poll,
                   until + 0.005 if until > 0 else self.options.poll_interval)

    async def _pause(self, started: float, seconds: float) -> None:
        """Wait ``seconds``, less when woken: at once by ``wake`` or a free slot, by
        committed events no sooner than ``poll_interval`` after the round ``started``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._urgent:
            if self._events:
                deadline = min(deadline, started + self.options.poll_interval)
            elif self._other_events:
                deadline = min(deadline, started + self.options.other_events_poll)
            now = loop.time()
            if now >= deadline:
                break
            self._stir.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stir.wait(), deadline - now)
        self._urgent = self._events = self._other_events = False

    async def run_once(self) -> int:
        """One round: dispatch, then start the due attempts there is room for; how many
        attempts it started."""
        db = self.runtime.db
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            async with db.transaction() as session:
                await webhooks.prune(session, KEEP_SETTLED)
        async with db.read() as session:
            # Read first: events committed from now on wake the next round if theirs.
            self._portals = await webhooks.active_portals(session)
            events, due = await webhooks.work_waiting(session)
        self._behind = False
        for _ in range(self.options.dispatch_batches if events else 0):
            async with db.transaction() as session:
                done = await webhooks.dispatch_batch(session, self.payload_of, gaps=self._gaps)
            due = due or done.deliveries > 0
            self._behind = done.full or done.held
            if not done.full:
                break
        free = self.options.concurrency - len(self._inflight)
        if free <= 0 or not due:
            return 0
        lease = self.options.policy.timeout + 30
        per_portal = max(1, int(self.options.concurrency * self.options.portal_share))
        async with db.transaction() as session:
            claimed = await webhooks.claim(session, lease=lease, limit=free,
                                           per_portal=per_portal, busy=self._busy)
        for item in claimed:
            self._busy[item.portal_id] += 1
            task = asyncio.create_task(self._deliver(item), name=f"webhook-{item.delivery_id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self.wake()  # a slot is free, and a retry may be due at a new time

    async def _deliver(self, item: webhooks.Claimed) -> None:
        try:
            attempt = await self.attempt(item)
            async with self.runtime.db.transaction() as session:
                await webhooks.record(session, item, attempt, self.options.policy)
        except StorageUnavailable:
            # Not recorded: the claim runs out and the delivery is tried again.
            log.warning("webhooks: attempt %d of delivery %d not recorded (database "
                        "unavailable); it will be retried", item.attempt, item.delivery_id)
        finally:
            self._busy[item.portal_id] -= 1
            if self._busy[item.portal_id] <= 0:
                del self._busy[item.portal_id]

    async def attempt(self, item: webhooks.Claimed) -> webhooks.Attempt:
        """POST one delivery; never raises for what the receiver or the network did."""
        assert self._client is not None, "start() first"
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            secret = self.box.decrypt(item.secret)
        except CredentialsUnreadable:
            return webhooks.Attempt(None, 0, "secret_unreadable: the server's secret key "
                                    "changed; create the webhook again")
        body = item.payload.encode()
        headers = {"content-type": "application/json", "user-agent": USER_AGENT,
                   "inboxlog-event-type": item.event_type,
                   "inboxlog-delivery-attempt": str(item.attempt),
                   **webhooks.signed_headers(secret, webhooks.message_id(item.event_id), body)}
        try:
            async with asyncio.timeout(self.options.policy.timeout):
                async with self._client.stream("POST", item.url, content=body,
                                               headers=headers) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
        except TimeoutError:
            return webhooks.Attempt(None, took(), f"timeout: no complete answer within "
                                    f"{self.options.policy.timeout:g} s")
        except _Refused as exc:
            return webhooks.Attempt(None, took(), str(exc))
        except httpx2.TimeoutException:
            return webhooks.Attempt(None, took(), "timeout")
        except (httpx2.HTTPError, OSError, ValueError) as exc:
            detail = str(exc) if str(exc).startswith("name_not_found") else type(exc).__name__
            return webhooks.Attempt(None, took(), f"connection_failed: {detail}")
        code = response.status_code
        error = "" if 200 <= code < 300 else (
            f"redirect to {response.headers.get('location', '')[:200]!r} not followed"
            if 300 <= code < 400 else f"HTTP {code}")
        return webhooks.Attempt(code, took(), error, _retry_after(response))
