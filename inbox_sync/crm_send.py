"""A CRM send, end to end: compose, keep in the send spool, send through the user's
SMTP server, copy to Sent, log as ``crm_send``.

Nothing is logged unless the SMTP server accepted the message. Once it has, the caller
always hears that it was sent, never an error that would invite sending it again: when
the database cannot take the log right then, the message stays in the spool and
``sent_log.PendingLogs`` logs it later, once. When the transaction broke off after the
message went out and before the server answered, nobody can tell whether it was sent:
the spool entry is set aside, nothing is logged, and the caller hears exactly that
(``send_unconfirmed``), so that they check before sending again.

Once the spool entry exists, the send runs to its end even if the caller is cancelled
(the HTTP client went away): the server may be taking the message, and the spool must
say what became of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html as html_lib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from core import inboxes, pipeline, tracked_sends
from core.credentials import CredentialBox
from core.errors import CoreError, StorageUnavailable
from core.inboxes import Endpoint, InboxError, SendRequest, SendResult
from core.runtime import Runtime
from core.storage.models import Inbox, User
from core.tracking import TokenSigner
from core.types import InboxErrorCode, InboxStatus, MailProtocol, MailSecurity, SendLog
from inbox_sync import sent_log
from inbox_sync.imap import Bearer, Login, SentCopy
from inbox_sync.network import NetworkWork
from inbox_sync.send import Connect, Outgoing, compose, deliver
from inbox_sync.spool import SendSpool, SpooledSend

log = logging.getLogger(__name__)
T = TypeVar("T")

# (inbox id, its IMAP login, the raw message) -> where the copy went, or why it did not
CopyToSent = Callable[[int, Login, bytes], Awaitable[SentCopy]]
# The password or access token of an inbox; ``rejected``: the token a server refused.
Credential = Callable[[Inbox, str], Awaitable["str | Bearer"]]


@dataclass(frozen=True)
class _From:
    """What a send needs to know about the sender's inbox, read before anything is sent
    (afterwards the database may be gone)."""

    portal_id: int
    user_id: int
    inbox_id: int
    address: str
    name: str
    user_email: str
    smtp: Login
    imap: Login
    # The provider's SMTP server files sent mail in Sent itself (Gmail): no copy.
    files_sent: bool = False
    inbox: Inbox | None = None


class CrmSender:
    """Sends for ``InboxService.send``. ``in_flight`` holds the spool entries (file
    stems) of sends in progress, which ``pending`` must leave to them; ``copy_to_sent``
    appends through the service's one IMAP connection of the inbox."""

    def __init__(self, runtime: Runtime, box: CredentialBox, spool: SendSpool,
                 pending: sent_log.PendingLogs, in_flight: set[str],
                 copy_to_sent: CopyToSent, *, timeout: float,
                 ssl_context: ssl.SSLContext | None, network: NetworkWork,
                 connect: Connect, credential: Credential | None = None,
                 files_sent: Callable[[Inbox], bool] | None = None) -> None:
        self.runtime, self.box, self.spool, self.pending = runtime, box, spool, pending
        self.in_flight, self.copy_to_sent = in_flight, copy_to_sent
        self.timeout, self.ssl_context = timeout, ssl_context
        self.network, self.connect = network, connect
        self.credential = credential or self._password
        self.files_sent = files_sent or (lambda inbox: False)

    async def _password(self, inbox: Inbox, rejected: str = "") -> str | Bearer:
        return self.box.decrypt(inbox.secret)

    async def send(self, portal_id: int, user_id: int, request: SendRequest) -> SendResult:
        sender = await self._sender(portal_id, user_id, request.inbox_id)
        html, tracked_id = await self._tracked_html(request, portal_id, user_id)
        outgoing = compose(request, sender.address, sender.name, html=html)
        raw = outgoing.message.as_bytes()
        # A message core cannot log is not sent.
        prepared = await pipeline.prepare(raw, spool_dir=self.runtime.blobs.spool_dir())
        entry = SpooledSend(portal_id, sender.user_email, sender.inbox_id,
                            outgoing.message_id, tracked_id, raw)
        path = await asyncio.to_thread(self.spool.hold, entry)
        self.in_flight.add(path.stem)
        try:
            return await _to_the_end(self._send_held(sender, outgoing, entry, prepared, path))
        finally:
            self.in_flight.discard(path.stem)

    async def _send_held(self, sender: _From, outgoing: Outgoing, entry: SpooledSend,
                         prepared: pipeline.Prepared, path: Path) -> SendResult:
        """Everything after the spool entry ``path`` is written (``in_flight`` holds it)."""
        refused = await self._deliver(sender, outgoing, path)
        path, marked = await self._mark_sent(path)
        if sender.files_sent:
            copy = SentCopy()  # the provider filed it (Gmail): no duplicate
        else:
            copy = await self.copy_to_sent(sender.inbox_id, sender.imap, entry.raw)
            await self._note_copy(sender.inbox_id, copy.error)
        folder, copy_error = copy.folder, copy.error
        result, log_state, reason = await self._log(entry, prepared, path, marked)
        if log_state is SendLog.PENDING:
            self.pending.wake.set()
        return SendResult(
            result.email_id if result else None, outgoing.message_id,
            result.thread_id if result else None, folder,
            copy_error.message if copy_error else None,
            copy_error.code if copy_error else None,
            log=log_state, log_reason=reason, refused_recipients=refused)

    async def _sender(self, portal_id: int, user_id: int, inbox_id: int | None) -> _From:
        async with self.runtime.db.read() as session:
            inbox = await inboxes.user_inbox(session, portal_id, user_id, inbox_id)
            user = await session.get(User, user_id)
            assert user is not None
            if inbox.status == InboxStatus.DISCONNECTED:
                raise InboxError(InboxErrorCode.DISCONNECTED, f"the inbox is disconnected "
                                 f"({inbox.status_reason}); reconnect it first")
            name, email = user.name, user.email
        # Outside the read: an OAuth token may be refreshed (and stored) here.
        password = await self.credential(inbox, "")
        return _From(
            portal_id, user_id, inbox.id, inbox.address, name, email,
            Login(Endpoint(inbox.smtp_host, inbox.smtp_port, MailSecurity(inbox.smtp_security)),
                  inbox.username, password),
            Login(Endpoint(inbox.imap_host, inbox.imap_port, MailSecurity(inbox.imap_security)),
                  inbox.username, password), self.files_sent(inbox), inbox)

    async def _deliver(self, sender: _From, outgoing: Outgoing,
                       path: Path) -> dict[str, str]:
        """Send; returns the refused recipients when others accepted it. On a failure
        InboxError is raised: when nothing was sent the spool entry goes; when it may
        have been sent (``send_unconfirmed``) the entry is set aside in ``unknown/``,
        as at start-up, and not logged: logging an email that never went out would be
        worse than missing one."""
        endpoint, username, password = sender.smtp
        try:
            try:
                async with self.network.turn(sender.portal_id, sender.user_id, MailProtocol.SMTP):
                    return await deliver(endpoint, username, password, outgoing,
                                         connect=self.connect, timeout=self.timeout,
                                         context=self.ssl_context)
            except InboxError as exc:
                # An access token refused at AUTH (before MAIL: nothing was sent):
                # refresh it once and try again.
                if (exc.code != InboxErrorCode.AUTH_REJECTED or not isinstance(password, Bearer)
                        or sender.inbox is None):
                    raise
                password = await self.credential(sender.inbox, password.token)
                async with self.network.turn(sender.portal_id, sender.user_id, MailProtocol.SMTP):
                    return await deliver(endpoint, username, password, outgoing,
                                         connect=self.connect, timeout=self.timeout,
                                         context=self.ssl_context)
        except InboxError as exc:
            if exc.code == InboxErrorCode.SEND_UNCONFIRMED:
                log.warning("send <%s>: %s", outgoing.message_id, exc.message)
                await self._set_aside(path)
                raise
            await asyncio.to_thread(self.spool.remove, path)
            if exc.credentials_rejected:
                async with self.runtime.db.transaction() as session:
                    await inboxes.set_status(session, sender.inbox_id, InboxStatus.DISCONNECTED,
                                             exc.message, exc.code)
            raise

    async def _set_aside(self, path: Path) -> None:
        try:
            aside = await asyncio.to_thread(self.spool.set_aside, path)
        except OSError:
            # Left as .sending, it is set aside at the next start all the same.
            log.error("send spool: could not set %s aside", path.name, exc_info=True)
        else:
            log.warning("send spool: kept in %s, not logged", aside)

    async def _mark_sent(self, path: Path) -> tuple[Path, bool]:
        """Mark the spool entry as sent, so that the retry logs it if this send cannot:
        (its path, whether that worked). Tried twice; when it fails the entry stays
        ``.sending``, which the retry never reads (and the next start sets aside)."""
        for attempt in (1, 2):
            try:
                return await asyncio.to_thread(self.spool.mark_sent, path), True
            except OSError:
                log.error("send spool: could not mark %s as sent (attempt %d)", path.name,
                          attempt, exc_info=True)
        return path, False

    async def _note_copy(self, inbox_id: int, error: InboxError | None) -> None:
        """A full mailbox flags the inbox; best effort: the database may be down."""
        try:
            async with self.runtime.db.transaction() as session:
                await inboxes.note_sent_copy(session, inbox_id, error.code if error else None,
                                             error.message if error else "")
        except Exception:  # the email went out: nothing after that may fail the send
            log.warning("inbox %d: status not updated after the copy to Sent", inbox_id,
                        exc_info=True)

    async def _log(self, entry: SpooledSend, prepared: pipeline.Prepared, path: Path,
                   marked: bool) -> tuple[pipeline.IngestResult | None, SendLog, str | None]:
        """Log the message just sent: (result, "logged" | "not_logged" | "pending" |
        "failed", reason). Pending leaves it in the spool for the retry; that is only
        promised when the entry is ``marked`` as sent, since the retry reads no other:
        otherwise a failure is "failed", said as it is."""
        try:
            result = await sent_log.log_sent(self.runtime, entry, prepared)
        except StorageUnavailable as exc:
            log.warning("sent <%s>; logging it later: %s", entry.message_id, exc.message)
            if not marked:
                return self._unlogged(entry, f"{exc.message}")
            return None, SendLog.PENDING, "the database is unavailable; the email is logged " \
                "as soon as it is back"
        except CoreError as exc:
            await self._forget(path)
            return None, SendLog.NOT_LOGGED, exc.message
        except Exception as exc:
            log.exception("sent <%s>; logging it failed, retrying later", entry.message_id)
            if not marked:
                return self._unlogged(entry, f"{type(exc).__name__}: {exc}")
            return None, SendLog.PENDING, "logging failed; it is retried in the background"
        await self._forget(path)
        if result.email_id is None:
            return result, SendLog.NOT_LOGGED, result.reason
        return result, SendLog.LOGGED, None

    @staticmethod
    def _unlogged(entry: SpooledSend, why: str
                  ) -> tuple[pipeline.IngestResult | None, SendLog, str | None]:
        log.error("sent <%s>; not logged, and the send spool could not keep it for a "
                  "later attempt: %s", entry.message_id, why)
        return None, SendLog.FAILED, (
            f"the email was sent but could not be logged ({why}), and it could not be "
            "kept to log later; log it from the Sent folder")

    async def _forget(self, path: Path) -> None:
        try:
            await asyncio.to_thread(self.spool.remove, path)
        except OSError:
            # Logged already: a retry of this file would be a harmless duplicate.
            log.warning("send spool: could not remove %s", path, exc_info=True)

    async def _tracked_html(self, request: SendRequest, portal_id: int,
                            user_id: int) -> tuple[str, int | None]:
        """The HTML to send: as given, or rewritten with a signed pixel and signed links
        by a new tracked send, exactly as for the extension's tracked sends."""
        if not (request.track_opens or request.track_clicks):
            return request.html, None
        html = request.html or html_lib.escape(request.text).replace("\n", "<br>\n")
        async with self.runtime.db.transaction() as session:
            created = await tracked_sends.create(
                session, portal_id=portal_id, user_id=user_id,
                request=tracked_sends.TrackedSendRequest(
                    to=request.to, cc=request.cc, bcc=request.bcc, subject=request.subject,
                    html=html, track_opens=request.track_opens,
                    track_clicks=request.track_clicks),
                signer=TokenSigner(self.runtime.settings.secret_key),
                base_url=self.runtime.settings.base_url, creator_ip="")
            return created.send.html, created.send.id


async def _to_the_end(work: Awaitable[T]) -> T:
    """Await ``work`` in a task of its own that a cancelled caller does not stop: the
    caller's cancellation is passed on once the work has finished (its outcome is then
    dropped)."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.info("a cancelled send ended with %r", task.exception())
        raise
