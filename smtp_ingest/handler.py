"""The aiosmtpd handler: validates recipients, then hands DATA to the core pipeline.

The reply to DATA is sent only after the transaction that stores the message has
committed; any failure before that answers 451 so the sending MTA keeps the message.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session
from limits import RateLimitItemPerSecond

from core import pipeline
from core.accounts import PortalRoute, portal_for_address, was_replaced
from core.errors import (
    MessageTooLarge,
    SenderAuthUnavailable,
    SenderNotAuthenticated,
    StorageUnavailable,
)
from core.runtime import Runtime
from core.sender_auth import AuthResult, SenderAuthPolicy, SmtpFacts
from core.shared_budgets import for_database
from core.types import Channel
from core.types import Envelope as CoreEnvelope
from smtp_ingest import replies

log = logging.getLogger(__name__)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 5321 4.5.3.1.8: a server must accept at least 100 recipients.
MAX_RECIPIENTS = 100

# Guessing logging addresses: a session may fail this many RCPTs, a client address this
# many within the window; the last failure, and every RCPT after it, answers 421 and the
# connection is closed. A sender that knows its logging address never gets near them.
MAX_FAILED_RCPTS_PER_SESSION = 10
MAX_FAILED_RCPTS_PER_IP = 50
FAILED_RCPT_WINDOW_SECONDS = 15 * 60
TOO_MANY_FAILED_RCPTS = "421 4.7.0 Too many unknown recipients, closing the connection"


class FailedRecipients:
    """Counts refused recipients per SMTP session and per client address (bounded); the
    latter not when ``per_ip`` is None (on PostgreSQL: ``SharedAddressFailures``)."""

    def __init__(self, *, per_session: int = MAX_FAILED_RCPTS_PER_SESSION,
                 per_ip: int | None = MAX_FAILED_RCPTS_PER_IP,
                 window: float = FAILED_RCPT_WINDOW_SECONDS, max_ips: int = 100_000) -> None:
        self.per_session, self.per_ip, self.window = per_session, per_ip, window
        self._max_ips = max_ips
        self._sessions: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()
        self._ips: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, ip: str | None) -> deque[float] | None:
        times = self._ips.get(ip) if ip else None
        if times is not None:
            cutoff = time.monotonic() - self.window
            while times and times[0] < cutoff:
                times.popleft()
        return times

    def over(self, session: Session) -> bool:
        """True when this session or its client address has used up its failures."""
        if self._sessions.get(session, 0) >= self.per_session:
            return True
        times = self._recent(_client_key(session))
        return times is not None and self.per_ip is not None and len(times) >= self.per_ip

    def fail(self, session: Session) -> bool:
        """Count one refused recipient; True when that used the last one up."""
        self._sessions[session] = self._sessions.get(session, 0) + 1
        ip = _client_key(session)
        if ip and self.per_ip is not None:
            times = self._recent(ip)
            if times is None:
                times = self._ips[ip] = deque(maxlen=self.per_ip)
                while len(self._ips) > self._max_ips:
                    self._ips.popitem(last=False)
            self._ips.move_to_end(ip)
            times.append(time.monotonic())
        return self.over(session)


class SharedAddressFailures:
    """The per-client-address limit on PostgreSQL, shared by every process and node on
    the database (``serve --workers N`` would otherwise allow N times as many guesses):
    a budget of ``core.shared_budgets`` admitting ``per_ip - 1`` failures per window,
    so that the ``per_ip``-th answers 421 as in one process. A process that saw the
    budget run out remembers it until it refills (``over``, asked before each RCPT,
    costs no round trip); another process learns it at its next failure there."""

    BUDGET = "smtp-failed-rcpt"

    def __init__(self, database_url: str, *, per_ip: int = MAX_FAILED_RCPTS_PER_IP,
                 window: float = FAILED_RCPT_WINDOW_SECONDS, max_ips: int = 100_000) -> None:
        self.budgets = for_database(database_url)
        self.item = RateLimitItemPerSecond(per_ip - 1, int(window))
        self._max_ips = max_ips
        self._blocked: OrderedDict[str, float] = OrderedDict()  # client -> until

    def over(self, key: str | None) -> bool:
        until = self._blocked.get(key) if key else None
        return until is not None and until > time.monotonic()

    async def fail(self, key: str | None) -> bool:
        """Count one refused recipient of ``key``; True when its budget is used up.
        StorageUnavailable when the database cannot be reached."""
        if not key:
            return False
        refused = await self.budgets.take(self.BUDGET, [self.item], key)
        if refused is None:
            return False
        self._blocked[key] = time.monotonic() + refused[1]
        self._blocked.move_to_end(key)
        while len(self._blocked) > self._max_ips:
            self._blocked.popitem(last=False)
        return True


@dataclass
class _Recipients:
    """The portals an SMTP transaction's accepted recipients belong to, as RCPT found
    them: portal id -> its first logging address (RCPT order), the tags given, and its
    ``sender_auth`` policy."""

    portals: dict[int, tuple[str, list[str], str]] = field(default_factory=dict)

    def add(self, address: str, portal: PortalRoute, tag: str | None) -> None:
        _, tags, _ = self.portals.setdefault(portal.id, (address, [], portal.sender_auth))
        if tag:
            tags.append(tag)


class IngestHandler:
    def __init__(self, runtime: Runtime, *, proxies: tuple[str, ...] = ()) -> None:
        """``proxies``: the addresses or networks whose PROXY protocol header is believed
        (``serve --smtp-proxy-from``), when the server expects one."""
        self.runtime = runtime
        self.proxies = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)
        # One process's memory is the whole server's on SQLite; on PostgreSQL the
        # per-address budget is shared by every process on the database.
        self.shared_failures = (None if runtime.db.is_sqlite else
                                SharedAddressFailures(runtime.settings.database_url))
        self.failed_recipients = FailedRecipients(
            per_ip=MAX_FAILED_RCPTS_PER_IP if self.shared_failures is None else None)
        # Per transaction (a RSET or a new MAIL makes a new envelope): whose portals.
        self._recipients: weakref.WeakKeyDictionary[Envelope, _Recipients] = (
            weakref.WeakKeyDictionary())

    async def handle_PROXY(self, server: SMTP, session: Session, envelope: Envelope,
                           proxy_data: ProxyData) -> bool:
        """A PROXY protocol header (``serve --smtp-proxy-protocol``): believed only from a
        trusted proxy, else the connection is closed (anyone else could name any client
        address, and so pass for a trusted network or spend someone else's budget)."""
        peer = _peer(session)
        if not _in_networks(peer, self.proxies):
            log.warning("SMTP connection from %s dropped: it sent a PROXY protocol header "
                        "but is not a trusted proxy (--smtp-proxy-from)", peer)
            return False
        return True

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # No AUTH: the logging address itself is the credential.
        kept = [r for r in responses[:-1] if not r[4:].upper().startswith("AUTH")]
        return [*kept, "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.failed_recipients.over(session) or (
                self.shared_failures is not None
                and self.shared_failures.over(_client_key(session))):
            log.warning("%s: too many unknown recipients, closing", _client(session))
            return TOO_MANY_FAILED_RCPTS
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return replies.TOO_MANY_RECIPIENTS
        try:
            async with self.runtime.db.lookup() as db_session:
                found = await portal_for_address(
                    db_session, address, self.runtime.settings.bcc_domain
                )
                # A rotated address past its grace period: the sender knew a real one,
                # so it is no guess and not counted as one.
                if found is None and await was_replaced(
                        db_session, address, self.runtime.settings.bcc_domain):
                    return replies.ADDRESS_REPLACED
        except StorageUnavailable:
            log.warning("database unavailable at RCPT", exc_info=True)
            return replies.TRANSIENT
        if found is None:
            try:
                used_up = await self._fail(session)
            except StorageUnavailable:
                log.warning("database unavailable counting a failed RCPT", exc_info=True)
                return replies.TRANSIENT
            if used_up:
                log.warning("%s: too many unknown recipients, closing", _client(session))
                return TOO_MANY_FAILED_RCPTS
            return replies.UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        self._recipients.setdefault(envelope, _Recipients()).add(address, *found)
        return replies.RCPT_OK

    async def _fail(self, session: Session) -> bool:
        """Count a refused recipient; True when the session or its address is out."""
        used_up = self.failed_recipients.fail(session)
        if self.shared_failures is not None:
            used_up = await self.shared_failures.fail(_client_key(session)) or used_up
        return used_up

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            results = await pipeline.log_message(
                self.runtime, raw, self._arrival(session, envelope, raw))
        except StorageUnavailable:
            log.warning("database unavailable at DATA", exc_info=True)
            return replies.TRANSIENT
        except Exception:
            # A bug must not lose mail: 451 makes the sender's MTA keep and retry it.
            log.exception("unexpected error while logging a message")
            return replies.TRANSIENT
        return _reply(results)

    async def refuse_oversized(self, session: Session, envelope: Envelope, size: int) -> str:
        """DATA past the size limit (the server did not keep the body): the ingest log
        entry for each portal, and the reply."""
        try:
            await pipeline.record_oversized(
                self.runtime, self._arrival(session, envelope, b""), size)
        except Exception:  # the refusal stands without its entry
            log.exception("could not record an oversized message")
        return replies.TOO_LARGE

    def _arrival(self, session: Session, envelope: Envelope, raw: bytes) -> pipeline.Arrival:
        recipients = self._recipients.get(envelope) or _Recipients()
        peer = _client(session)
        deliveries = tuple(
            pipeline.Delivery(portal_id, CoreEnvelope(
                mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos),
                logging_address=logging_address, peer=peer, tags=tuple(tags),
            ), checks_senders=policy != SenderAuthPolicy.OFF)
            for portal_id, (logging_address, tags, policy) in recipients.portals.items())

        async def authenticate() -> AuthResult | None:
            return await self._authenticate(session, envelope, raw)

        return pipeline.Arrival(Channel.SMTP, deliveries, authenticate)

    async def _authenticate(self, session: Session, envelope: Envelope,
                            raw: bytes) -> AuthResult | None:
        """Sender authentication of one message, once whatever the portals (off the
        event loop, on the authenticator's own threads). A client on a trusted network
        is local submission (None: not checked) or the trusted upstream MTA, whose
        topmost ``Authentication-Results`` counts; anyone else is checked here and
        every ``Authentication-Results`` it sent is ignored."""
        client = _client(session)
        settings, authenticator = self.runtime.settings, self.runtime.sender_auth
        if settings.is_trusted_client(client):
            if not settings.trusted_authserv_ids:
                return None
            return await authenticator.from_upstream_async(raw)
        return await authenticator.check_async(raw, SmtpFacts(
            client or "", session.host_name or "", envelope.mail_from or ""))


def _reply(results: pipeline.Results) -> str:
    """The one reply to DATA for every portal's result: a transient refusal first (the
    sender's MTA retries; for the portals that logged it, the retry is a duplicate, a
    normal outcome), then logged, then accepted but not logged, then refused."""
    logged: list[int] = []
    skipped: list[str] = []
    refused: list[str] = []
    tempfailed: list[str] = []
    for result in results.each:
        if isinstance(result, pipeline.IngestResult):
            if result.email_id is not None:
                logged.append(result.email_id)
            else:
                skipped.append(result.reason or "not logged")
            continue
        error = result.error
        if isinstance(error, MessageTooLarge):
            return replies.too_large(replies.one_line(error.message))
        if isinstance(error, SenderAuthUnavailable):
            tempfailed.append(str(error.decision.answer))
        elif isinstance(error, SenderNotAuthenticated):
            refused.append(str(error.decision.answer))
        else:
            refused.append(replies.sender_not_allowed(replies.one_line(error.message)))
    if tempfailed:
        return tempfailed[0]
    if logged:
        return replies.logged(logged)
    if skipped:
        return replies.not_logged(replies.one_line("; ".join(dict.fromkeys(skipped))))
    return refused[0] if refused else replies.sender_not_allowed(
        "no portal accepted the message")


def _client(session: Session) -> str | None:
    """The SMTP client's address: the PROXY protocol's source when a proxy (HAProxy)
    passed one on, else the peer of the connection."""
    proxy = getattr(session, "proxy_data", None)
    source = getattr(proxy, "src_addr", None) if proxy is not None else None
    if source:
        return str(source)
    return _peer(session)


def _client_key(session: Session) -> str | None:
    """Whom the failed-recipient limit counts: the client's address (behind a proxy, the
    one it passed on), or for IPv6 its /64 (one host's network: a client given a /64
    would otherwise have 2**64 fresh addresses to guess from, and could flush the table
    of everyone else's counts)."""
    peer = _client(session)
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return peer


def _in_networks(address: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _peer(session: Session) -> str | None:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer) if peer else None
