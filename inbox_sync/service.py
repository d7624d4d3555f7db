"""The connector service: connects inboxes, keeps each one synced in the background
(IDLE where the server has it, polling otherwise), sends through them.

At most one IMAP connection per inbox (providers cap concurrent connections): every
use goes through the inbox's lock, and a background IDLE gives the connection up
within a second when something else needs it. Among the nodes sharing the database,
only the one holding an inbox's lease runs its worker (``schedule.InboxLeases``).
Connections go only where ``options.destinations`` allows; opening them (DNS, TCP, TLS,
login) runs on the network executor, a bounded number at a time per user and per portal
(``network``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from core import accounts, inboxes, leases
from core.credentials import CredentialBox
from core.errors import InvalidInput
from core.inboxes import (
    ConnectRequest,
    Endpoint,
    InboxError,
    SendRequest,
    SendResult,
    SyncReport,
)
from core.oauth import (
    OAuthProvider,
    OAuthResult,
    StateBox,
)
from core.runtime import Runtime
from core.storage.models import Inbox, User, utcnow
from core.types import (
    FolderRole,
    InboxAuth,
    InboxErrorCode,
    InboxStatus,
    MailProtocol,
    MailSecurity,
)
from inbox_sync import detect, send, sent_log, sync
from inbox_sync.crm_send import CrmSender
from inbox_sync.errors import connection_ended
from inbox_sync.folders import sync_targets
from inbox_sync.imap import Bearer, ImapSession, Login, SentCopy
from inbox_sync.network import NetworkLimits, NetworkWork
from inbox_sync.oauth import (
    OAuthClient,
    TokenKeeper,
    Tokens,
)
from inbox_sync.oauth_connect import OAuthConnect
from inbox_sync.outbound import Destinations
from inbox_sync.owner import Owner
from inbox_sync.schedule import InboxLeases
from inbox_sync.spool import SendSpool
from inbox_sync.team_mailbox import TeamMailbox

log = logging.getLogger(__name__)

# SMTP servers that file what they send in the Sent folder themselves: Gmail's (an
# APPEND would make a second copy). An OAuth provider says so itself (``files_sent``).
FILES_SENT_HOSTS = ("smtp.gmail.com", "smtp.googlemail.com")
# Failures that are a status of their own while the worker keeps retrying.
_STATUS_OF = {InboxErrorCode.THROTTLED: InboxStatus.THROTTLED,
              InboxErrorCode.MAILBOX_FULL: InboxStatus.MAILBOX_FULL,
              InboxErrorCode.REMOTE_PROTOCOL_VIOLATION: InboxStatus.REMOTE_PROTOCOL_VIOLATION}


@dataclass(frozen=True)
class OAuthOptions:
    """The operator's OAuth providers (configured ones only) and where their
    authorization servers may be reached: public addresses on 443, plus ``destinations``
    rules (``--allow-oauth-hosts``)."""

    providers: dict[str, OAuthProvider] = field(default_factory=dict)
    redirect_uri: str = ""  # <base-url>/oauth/callback
    destinations: Destinations = field(default_factory=Destinations)
    verify: ssl.SSLContext | bool = True


@dataclass(frozen=True)
class ServiceOptions:
    background: bool = True  # run a sync worker per inbox
    poll_interval: float = 60  # seconds between polls when the server has no IDLE
    idle_seconds: float = 25 * 60  # re-issue IDLE before the 29-minute server limit
    disconnect_after: timedelta = timedelta(hours=24)  # unreachable this long: give up
    backoff_first: float = 5
    backoff_max: float = 600
    timeout: float = 30  # socket time-out of one IMAP or SMTP operation
    spool_scan_every: float = 60  # look for sent email still to log this often
    batch_uids: int = sync.BATCH_UIDS
    ssl_context: ssl.SSLContext | None = None  # trust store for IMAP/SMTP TLS
    # Where connections may go: public addresses on mail ports, plus the operator's rules.
    destinations: Destinations = field(default_factory=Destinations)
    network: NetworkLimits = field(default_factory=NetworkLimits)
    oauth: OAuthOptions = field(default_factory=OAuthOptions)
    # How long an inbox's lease lasts unrenewed: a dead node's inboxes are synced by
    # another within about 4/3 of it (INBOXLOG_LEASE_SECONDS, default 30).
    lease_seconds: float = field(default_factory=leases.ttl_from_env)


@dataclass
class _Slot:
    """One inbox's connection, the lock that serializes its use, its worker task."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: ImapSession | None = None
    waiting: int = 0
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    owner: Owner | None = None
    resynced_for: int | None = None  # the UIDNEXT a sync was last repeated for
    secret: str | None = None  # the stored credentials the last login here was tried with


class InboxService:
    """Implements ``core.inboxes.InboxConnector``, ``TeamMailboxConnector`` (delegated to
    ``inbox_sync.team_mailbox``) and ``core.oauth.OAuthConnector`` (delegated to
    ``inbox_sync.oauth_connect``): the HTTP adapter finds all three as one object."""

    def __init__(self, runtime: Runtime, options: ServiceOptions | None = None) -> None:
        self.runtime = runtime
        self.options = options or ServiceOptions()
        self.box = CredentialBox(runtime.settings.secret_key)
        self._slots: dict[int, _Slot] = {}
        self._closing = False
        self.network = NetworkWork(self.options.network)
        self.spool = SendSpool(runtime.settings.data_dir / "send-spool")
        sending: set[str] = set()  # spool entries a send in progress logs itself
        self.pending_logs = sent_log.PendingLogs(
            runtime, self.spool, lambda path: path.stem in sending,
            first=self.options.backoff_first, most=self.options.backoff_max,
            scan_every=self.options.spool_scan_every)
        oauth = self.options.oauth
        self.oauth_client = OAuthClient(oauth.redirect_uri, oauth.destinations,
                                        oauth.verify, self.options.timeout)
        self.tokens = TokenKeeper(runtime, self.box, self.oauth_client, oauth.providers)
        self.states = StateBox(runtime.settings.secret_key)
        self.sender = CrmSender(runtime, self.box, self.spool, self.pending_logs, sending,
                                self._copy_to_sent, timeout=self.options.timeout,
                                ssl_context=self.options.ssl_context,
                                network=self.network, connect=self._smtp_socket,
                                credential=self._credential, files_sent=self._files_sent)
        self._pending_task: asyncio.Task[None] | None = None
        self.leases = InboxLeases(runtime, ttl=self.options.lease_seconds,
                                  start=self._start_worker, stop=self._stop_worker)
        self._lease_task: asyncio.Task[None] | None = None
        # The team mailbox's connect and send steps (inbox_sync.team_mailbox): core's
        # ticket replies send through it.
        self.team_mailbox = TeamMailbox(self)
        self.oauth_connect = OAuthConnect(self)  # connecting an inbox with OAuth 2.0
        inboxes.register_team_mailer(runtime, self.team_mailbox)

    # -- lifetime -------------------------------------------------------------------

    async def start(self) -> None:
        """Start logging what earlier sends left to log (retried until the database
        takes it), and a worker for every inbox not disconnected whose lease this node
        gets (at once, and as leases free up). Returns at once."""
        await asyncio.to_thread(self.spool.set_aside_unfinished)
        if not self._closing and self._pending_task is None:
            self._pending_task = asyncio.create_task(self.pending_logs.run_forever(),
                                                     name="send-spool")
        if self.options.background and not self._closing and self._lease_task is None:
            self._lease_task = asyncio.create_task(self.leases.run_forever(),
                                                   name="inbox-leases")

    async def stop(self) -> None:
        """Stop every worker and close every connection (within about a second), then
        release this node's inbox leases for another node to take at once."""
        self._closing = True
        tasks = [s.task for s in self._slots.values() if s.task is not None]
        for extra in (self._pending_task, self._lease_task):
            if extra is not None:
                tasks.append(extra)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in self._slots.values():
            if slot.session is not None:
                # A worker thread may still be in IDLE on it: cut the socket, do not talk.
                slot.session.abort()
                slot.session = None
        self.network.shutdown()
        if self._lease_task is not None:
            await self.leases.release_all()

    def _slot(self, inbox_id: int) -> _Slot:
        return self._slots.setdefault(inbox_id, _Slot())

    def _start_worker(self, inbox_id: int) -> None:
        slot = self._slot(inbox_id)
        if self._closing or (slot.task is not None and not slot.task.done()):
            return
        slot.task = asyncio.create_task(self._worker(inbox_id), name=f"inbox-{inbox_id}")

    async def _stop_worker(self, inbox_id: int) -> None:
        """Stop the inbox's worker and close its connection (the lease went elsewhere,
        or the inbox is disconnected)."""
        slot = self._slot(inbox_id)
        # Counted as waiting, so an IDLE in progress returns within a second: cancelling
        # the worker does not stop its IDLE on the connection's thread, and a LOGOUT sent
        # beside it would wait for the IDLE's end (up to idle_seconds).
        slot.waiting += 1
        try:
            if slot.task is not None and not slot.task.done():
                slot.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await slot.task
            async with slot.lock:
                if slot.session is not None:
                    with contextlib.suppress(Exception):  # the connection's thread is free
                        await asyncio.wait_for(slot.session.run(lambda: None), 10)
                await self._drop(slot)
        finally:
            slot.waiting -= 1

    # -- the one connection ---------------------------------------------------------

    async def _credentials(self, inbox_id: int) -> tuple[Login, Owner]:
        """The stored login of the inbox, and whose it is (``slot.secret`` notes which
        stored credentials these are)."""
        async with self.runtime.db.read() as session:
            inbox = await session.get(Inbox, inbox_id)
            if inbox is None:
                raise InvalidInput(f"no inbox {inbox_id}")
        self._slot(inbox_id).secret = inbox.secret
        return (Login(Endpoint(inbox.imap_host, inbox.imap_port,
                               MailSecurity(inbox.imap_security)),
                      inbox.username, await self._credential(inbox)),
                Owner.of(inbox))

    async def _credential(self, inbox: Inbox, rejected: str = "") -> str | Bearer:
        """The inbox's password, or a usable access token (refreshed when it is about to
        expire, or when ``rejected`` is the one a server just refused)."""
        if not inbox.secret:
            raise InboxError(InboxErrorCode.DISCONNECTED, "the inbox was disconnected by its user: "
                             "connect it again")
        if inbox.auth != InboxAuth.OAUTH:
            return self.box.decrypt(inbox.secret)
        try:
            return await self.tokens.bearer(inbox, rejected=rejected)
        except InboxError as exc:
            if exc.credentials_rejected:  # the grant is gone: no retry can cure that
                async with self.runtime.db.transaction() as session:
                    await inboxes.set_status(session, inbox.id, InboxStatus.DISCONNECTED,
                                             exc.message, exc.code)
                log.warning("inbox %d disconnected: %s", inbox.id, exc.message)
            raise

    def _files_sent(self, inbox: Inbox) -> bool:
        provider = self.options.oauth.providers.get(inbox.oauth_provider)
        if inbox.auth == InboxAuth.OAUTH and provider is not None:
            return provider.files_sent
        return inbox.smtp_host.lower().rstrip(".") in FILES_SENT_HOSTS

    async def _open(self, owner: Owner, login: Login,
                    inbox_id: int | None = None) -> ImapSession:
        """Open an IMAP connection for ``owner``, in its turn, on the network executor.
        An access token the server refuses is refreshed once (an expired token and an
        invalid one look the same over IMAP), then the login is tried again."""
        endpoint, username, password = login
        try:
            return await self._open_once(owner, endpoint, username, password)
        except InboxError as exc:
            if exc.code != InboxErrorCode.AUTH_REJECTED or not isinstance(password, Bearer) or (
                    inbox_id is None):
                raise
        async with self.runtime.db.read() as session:
            inbox = await session.get(Inbox, inbox_id)
        if inbox is None:
            raise InvalidInput(f"no inbox {inbox_id}")
        bearer = await self.tokens.bearer(inbox, rejected=password.token)
        return await self._open_once(owner, endpoint, username, bearer)

    async def _open_once(self, owner: Owner, endpoint: Endpoint, username: str,
                         password: str | Bearer) -> ImapSession:
        async with self.network.turn(*owner):
            return await self.network.run(functools.partial(
                ImapSession.open, endpoint, username, password, timeout=self.options.timeout,
                ssl_context=self.options.ssl_context,
                destinations=self.options.destinations))

    async def _smtp_socket(self, endpoint: Endpoint) -> socket.socket:
        """A TCP connection to an allowed address of the SMTP server (the caller holds
        the user's turn)."""
        return await self.network.run(self.options.destinations.connect, endpoint,
                                      MailProtocol.SMTP, self.options.timeout)

    @contextlib.asynccontextmanager
    async def _imap(self, inbox_id: int, login: Login | None = None
                    ) -> AsyncIterator[ImapSession]:
        """The inbox's connection, opened when needed (with ``login``, else the stored
        credentials), used by one caller at a time."""
        slot = self._slot(inbox_id)
        slot.waiting += 1
        try:
            await slot.lock.acquire()
        finally:
            slot.waiting -= 1
        try:
            if slot.session is None:
                if login is None or slot.owner is None:
                    stored, slot.owner = await self._credentials(inbox_id)
                    login = login or stored
                slot.session = await self._open(slot.owner, login, inbox_id)
            try:
                yield slot.session
            except InboxError as exc:
                if connection_ended(exc):
                    await self._drop(slot)
                raise
            if slot.task is None or slot.task.done():
                await self._drop(slot)  # no worker keeps it: do not hold a connection
        finally:
            slot.lock.release()

    async def _drop(self, slot: _Slot) -> None:
        if slot.session is not None:
            session, slot.session = slot.session, None
            await self.network.run(session.close)  # a LOGOUT: network work too

    # -- the background worker ------------------------------------------------------

    async def _worker(self, inbox_id: int) -> None:
        backoff = self.options.backoff_first
        slot = self._slot(inbox_id)
        # Sent mail still waiting in the spool is logged (as crm_send) before the sync
        # meets its copy in Sent: a worker (re)started when the database came back must
        # not log it first as synced.
        try:
            await self.pending_logs.run_once()
        except Exception:  # the spool's own task retries it: the sync goes on
            log.warning("inbox %d: the send spool could not be logged first", inbox_id,
                        exc_info=True)
        while True:
            try:
                async with self._imap(inbox_id) as imap:
                    report = await sync.sync_inbox(self.runtime, inbox_id, imap,
                                                   sync.SyncOptions(self.options.batch_uids))
                backoff = self.options.backoff_first
                synced = next((f.last_uid for f in report.folders
                               if f.role == FolderRole.INBOX and f.error is None), None)
                await self._wait_for_news(inbox_id, slot, synced)
            except asyncio.CancelledError:
                raise
            except InboxError as exc:
                if not await self._after_failure(inbox_id, exc):
                    return
                await self._sleep(slot, backoff)
                backoff = min(backoff * 2, self.options.backoff_max)
            except Exception:
                log.exception("inbox %d: sync failed; retrying in %.0f s", inbox_id, backoff)
                await self._sleep(slot, backoff)
                backoff = min(backoff * 2, self.options.backoff_max)

    async def _sleep(self, slot: _Slot, seconds: float) -> None:
        slot.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(slot.wake.wait(), seconds)

    async def _wait_for_news(self, inbox_id: int, slot: _Slot, synced: int | None) -> None:
        """IDLE on INBOX until something arrives; poll when the server has no IDLE or
        INBOX cannot be opened (the sync records why on the folder and goes on with
        the others, so one failing folder does not stop the inbox). Mail that arrived
        after the sync read INBOX up to UID ``synced`` and before IDLE began (which only
        announces what comes later) is news at once, once per UIDNEXT."""
        async with self._imap(inbox_id) as imap:
            if imap.has_idle:
                targets = sync_targets(await imap.run(imap.folders))
                try:
                    if FolderRole.INBOX in targets:
                        state = await imap.run(imap.examine, targets[FolderRole.INBOX].name)
                        if (synced is not None and state.uidnext is not None
                                and state.uidnext > synced + 1
                                and state.uidnext != slot.resynced_for):
                            slot.resynced_for = state.uidnext
                            return
                        await imap.run(imap.wait_for_news, self.options.idle_seconds,
                                       lambda: slot.waiting > 0 or self._closing)
                        return
                except InboxError as exc:
                    if connection_ended(exc):
                        raise
                    log.info("inbox %d: cannot IDLE (%s); polling", inbox_id, exc.message)
        await self._sleep(slot, self.options.poll_interval)

    async def _after_failure(self, inbox_id: int, exc: InboxError) -> bool:
        """Record a failure; False when the worker must stop (inbox disconnected)."""
        if exc.code == InboxErrorCode.TOO_MANY_CONNECTIONS:
            return True  # our own limit: try again later, nothing to record
        async with self.runtime.db.transaction() as session:
            if exc.code == InboxErrorCode.DESTINATION_NOT_ALLOWED:
                # Stored before the policy (or the operator's rules) changed: no retry.
                await inboxes.set_status(session, inbox_id, InboxStatus.DESTINATION_NOT_ALLOWED,
                                         exc.message)
                log.warning("inbox %d: %s", inbox_id, exc.message)
                return False
            if exc.credentials_rejected:
                current = await session.get(Inbox, inbox_id)
                tried = self._slot(inbox_id).secret
                if current is not None and tried is not None and current.secret != tried:
                    # Reconnected meanwhile: the refusal was of the credentials replaced,
                    # and must not mark the new ones disconnected. Try those.
                    log.info("inbox %d: old credentials refused; new ones stored", inbox_id)
                    return True
                await inboxes.set_status(session, inbox_id, InboxStatus.DISCONNECTED,
                                         exc.message, exc.code)
                log.warning("inbox %d disconnected: %s", inbox_id, exc.message)
                return False
            if exc.code in _STATUS_OF:
                await inboxes.set_status(session, inbox_id, _STATUS_OF[exc.code], exc.message)
                return True
            inbox = await inboxes.note_unreachable(session, inbox_id)
            if inbox is None:
                return False
            since = inbox.unreachable_since or utcnow()
            if utcnow() - since >= self.options.disconnect_after:
                await inboxes.set_status(session, inbox_id, InboxStatus.DISCONNECTED,
                                         f"unreachable since {since.isoformat()}: {exc.message}",
                                         exc.code)
                return False
            log.info("inbox %d unreachable (%s); retrying", inbox_id, exc.message)
            return True

    # -- InboxConnector -------------------------------------------------------------

    async def _tested(self, owner: Owner, address: str, request: ConnectRequest
                      ) -> tuple[Endpoint, Endpoint, str]:
        """The IMAP and SMTP servers (detected when not given) and the username, once
        both logins worked."""
        imap, smtp = request.imap, request.smtp
        if imap is None or smtp is None:
            found = await detect.detect(address)
            if found is None:
                raise InvalidInput(f"cannot detect the mail servers of {address}: "
                                   "give imap and smtp settings")
            imap, smtp = imap or found.imap, smtp or found.smtp
        username = request.username or address
        session = await self._open(owner, Login(imap, username, request.password))
        await self.network.run(session.close)
        async with self.network.turn(*owner, protocol=MailProtocol.SMTP):
            await send.check_login(smtp, username, request.password, connect=self._smtp_socket,
                                   timeout=self.options.timeout,
                                   context=self.options.ssl_context)
        return imap, smtp, username

    async def connect(self, portal_id: int, user_id: int, request: ConnectRequest) -> int:
        address = accounts.normalize_address(request.address)
        imap, smtp, username = await self._tested(Owner(portal_id, user_id), address, request)
        async with self.runtime.db.transaction() as db:
            user = await db.get(User, user_id)
            if user is None or user.portal_id != portal_id:
                raise InvalidInput("connect an inbox with the user's own token")
            inbox = await inboxes.save_inbox(
                db, portal_id, user_id, address, username, imap, smtp,
                self.box.encrypt(request.password), request.first_sync_days)
            inbox_id = inbox.id
        slot = self._slot(inbox_id)
        await self._restart(inbox_id, slot)
        return inbox_id

    async def connect_team(self, portal_id: int, team_inbox_id: int,
                           request: ConnectRequest) -> int:
        return await self.team_mailbox.connect_team(portal_id, team_inbox_id, request)

    async def _restart(self, inbox_id: int, slot: _Slot) -> None:
        """New credentials: drop the old connection; (re)start the worker, here (a node
        that held the inbox stops its worker at its next renewal)."""
        async with slot.lock:
            await self._drop(slot)
        if self.options.background:
            await self.leases.claim(inbox_id)
            if slot.task is not None and not slot.task.done():
                slot.wake.set()
            else:
                self._start_worker(inbox_id)

    async def sync_now(self, portal_id: int, inbox_id: int) -> SyncReport:
        async with self.runtime.db.read() as session:
            inbox = await inboxes.get_inbox(session, portal_id, inbox_id)
            was_disconnected = inbox.status in (InboxStatus.DISCONNECTED,
                                                InboxStatus.DESTINATION_NOT_ALLOWED)
        try:
            async with self._imap(inbox_id) as imap:
                report = await sync.sync_inbox(self.runtime, inbox_id, imap,
                                               sync.SyncOptions(self.options.batch_uids))
        except InboxError as exc:
            await self._after_failure(inbox_id, exc)
            raise
        if was_disconnected and self.options.background:
            await self.leases.claim(inbox_id)
            self._start_worker(inbox_id)
        return report

    async def send(self, portal_id: int, user_id: int, request: SendRequest) -> SendResult:
        return await self.sender.send(portal_id, user_id, request)

    async def _copy_to_sent(self, inbox_id: int, login: Login, raw: bytes) -> SentCopy:
        """Append a sent message to the Sent folder; never raises (the email went out)."""
        try:
            async with self._imap(inbox_id, login) as imap:
                target = sync_targets(await imap.run(imap.folders)).get(FolderRole.SENT)
                if target is None:
                    return SentCopy(error=InboxError(InboxErrorCode.NO_SENT_FOLDER,
                                                     "the mailbox has no Sent folder"))
                try:
                    await imap.run(imap.append, target.name, raw, utcnow())
                except InboxError as exc:
                    raise InboxError(exc.code, f"the copy to the Sent folder {target.name} "
                                     f"failed: {exc.message}") from None
                return SentCopy(folder=target.name)
        except InboxError as exc:
            log.warning("inbox %d: copy to Sent failed: %s", inbox_id, exc.message)
            return SentCopy(error=exc)
        except Exception as exc:  # the email went out: report, do not fail the send
            log.exception("inbox %d: copy to Sent failed", inbox_id)
            return SentCopy(error=InboxError(InboxErrorCode.IMAP_ERROR,
                                             f"the copy to the Sent folder failed: {exc}"))

    # -- OAuth 2.0 (core.oauth.OAuthConnector: inbox_sync.oauth_connect) ----------------

    def providers(self) -> list[str]:
        return self.oauth_connect.providers()

    async def authorization_url(self, portal_id: int, user_id: int, provider: str,
                                first_sync_days: int) -> str:
        return await self.oauth_connect.authorization_url(portal_id, user_id, provider,
                                                          first_sync_days)

    async def team_authorization_url(self, portal_id: int, team_inbox_id: int,
                                     provider: str, first_sync_days: int) -> str:
        return await self.team_mailbox.team_authorization_url(portal_id, team_inbox_id,
                                                              provider, first_sync_days)

    async def complete_authorization(self, state: str, code: str) -> OAuthResult:
        return await self.oauth_connect.complete_authorization(state, code)

    async def disconnect(self, portal_id: int, inbox_id: int) -> None:
        async with self.runtime.db.read() as session:
            inbox = await inboxes.get_inbox(session, portal_id, inbox_id)
        await self._stop_worker(inbox_id)
        if inbox.auth == InboxAuth.OAUTH and inbox.secret:
            provider = self.options.oauth.providers.get(inbox.oauth_provider)
            if provider is not None:
                with contextlib.suppress(ValueError, KeyError, InboxError):
                    await self.oauth_client.revoke(
                        provider, Tokens.loads(self.box.decrypt(inbox.secret)))
        async with self.runtime.db.transaction() as session:
            await inboxes.set_status(session, inbox_id, InboxStatus.DISCONNECTED,
                                     "disconnected by the user",
                                     InboxErrorCode.DISCONNECTED_BY_USER)
            found = await session.get(Inbox, inbox_id)
            if found is not None:
                found.secret = ""  # the tokens (or password) are forgotten
        # Its lease goes at the next look (here now; the node holding it, if another,
        # stops within a renewal period).
        self.leases.wake()
