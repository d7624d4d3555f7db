"""A team inbox's own mailbox: connecting it (the admin's doing) and sending replies
through it (``core.inboxes.TeamMailer``, registered for the service's runtime).

It works through the service's one connection per inbox, network limits and
credentials (``InboxService``): the service owns those, this module only the team
mailbox's own steps. ``InboxService.connect_team`` and ``team_authorization_url``
delegate here, since the HTTP adapter finds the connector as one object
(``app.state.inboxes``).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import TYPE_CHECKING

from core import accounts, inboxes, queries
from core.errors import CoreError
from core.inboxes import ConnectRequest, Endpoint, InboxError, TeamSentCopy
from core.oauth import PendingAuthorization
from core.storage.models import Inbox, TeamInbox
from core.types import InboxErrorCode, InboxStatus, MailProtocol, MailSecurity
from inbox_sync import send
from inbox_sync.imap import Bearer
from inbox_sync.oauth import new_verifier
from inbox_sync.owner import Owner

if TYPE_CHECKING:
    from inbox_sync.service import InboxService

log = logging.getLogger(__name__)


class TeamMailbox:
    """Implements ``core.inboxes.TeamMailer`` and ``TeamMailboxConnector`` for the
    service."""

    def __init__(self, service: InboxService) -> None:
        self.service = service

    # -- connecting (core.inboxes.TeamMailboxConnector) ----------------------------

    async def connect_team(self, portal_id: int, team_inbox_id: int,
                           request: ConnectRequest) -> int:
        """Connect a team inbox's own mailbox (the admin's doing): both logins tested as
        for a user's, then synced into the team inbox's tickets (``sync``)."""
        service = self.service
        address = accounts.normalize_address(request.address)
        async with service.runtime.db.read() as db:  # another portal's: NotFound first
            await queries.owned(db, TeamInbox, portal_id, team_inbox_id)
        imap, smtp, username = await service._tested(Owner.team(portal_id, team_inbox_id),
                                                     address, request)
        async with service.runtime.db.transaction() as db:
            inbox = await inboxes.save_team_mailbox(
                db, portal_id, team_inbox_id, address, username, imap, smtp,
                service.box.encrypt(request.password), request.first_sync_days)
            inbox_id = inbox.id
        await service._restart(inbox_id, service._slot(inbox_id))
        return inbox_id

    async def team_authorization_url(self, portal_id: int, team_inbox_id: int,
                                     provider: str, first_sync_days: int) -> str:
        service = self.service
        chosen = service.oauth_connect.provider(provider)
        async with service.runtime.db.read() as db:  # another portal's: NotFound
            await queries.owned(db, TeamInbox, portal_id, team_inbox_id)
        verifier = new_verifier()
        state = service.states.seal(PendingAuthorization(
            portal_id, None, chosen.name, verifier, new_verifier()[:24], first_sync_days,
            team_inbox_id=team_inbox_id))
        return service.oauth_client.authorization_url(chosen, state, verifier)

    # -- sending (core.inboxes.TeamMailer) -------------------------------------------

    async def _team_inbox(self, portal_id: int, team_inbox_id: int) -> Inbox:
        async with self.service.runtime.db.read() as db:
            inbox = await inboxes.team_mailbox(db, team_inbox_id)
        if inbox is None or inbox.portal_id != portal_id:
            raise InboxError(InboxErrorCode.DISCONNECTED, "the team inbox has no mailbox")
        if inbox.status == InboxStatus.DISCONNECTED:
            raise InboxError(InboxErrorCode.DISCONNECTED, f"the team inbox's mailbox is "
                             f"disconnected ({inbox.status_reason}); reconnect it first")
        return inbox

    async def deliver_team(self, portal_id: int, team_inbox_id: int, message: EmailMessage,
                           recipients: tuple[str, ...]) -> dict[str, str]:
        """Send an agent's reply through the team mailbox's SMTP server, as a CRM send
        goes (the same limits; ``send_unconfirmed`` when no answer came after the
        message went)."""
        service = self.service
        inbox = await self._team_inbox(portal_id, team_inbox_id)
        owner = Owner.of(inbox)
        endpoint = Endpoint(inbox.smtp_host, inbox.smtp_port, MailSecurity(inbox.smtp_security))
        outgoing = send.Outgoing(message, str(message["Message-ID"]).strip("<>"), recipients)

        async def attempt(password: str | Bearer) -> dict[str, str]:
            async with service.network.turn(*owner, protocol=MailProtocol.SMTP):
                return await send.deliver(endpoint, inbox.username, password, outgoing,
                                          connect=service._smtp_socket,
                                          timeout=service.options.timeout,
                                          context=service.options.ssl_context)

        password = await service._credential(inbox)
        try:
            try:
                return await attempt(password)
            except InboxError as exc:
                # An access token refused at AUTH (before MAIL: nothing was sent):
                # refreshed once, then tried again, as a CRM send does.
                if exc.code != InboxErrorCode.AUTH_REJECTED or not isinstance(password, Bearer):
                    raise
                return await attempt(await service._credential(inbox, password.token))
        except InboxError as exc:
            if exc.credentials_rejected:
                async with service.runtime.db.transaction() as db:
                    await inboxes.set_status(db, inbox.id, InboxStatus.DISCONNECTED,
                                             exc.message, exc.code)
            raise

    async def copy_team_sent(self, portal_id: int, team_inbox_id: int,
                             raw: bytes) -> TeamSentCopy:
        service = self.service
        try:
            inbox = await self._team_inbox(portal_id, team_inbox_id)
            if service._files_sent(inbox):
                return TeamSentCopy()
            login = (await service._credentials(inbox.id))[0]
        except InboxError as exc:
            return TeamSentCopy(error=exc)
        except CoreError as exc:  # the database: the reply went out all the same
            return TeamSentCopy(error=InboxError(InboxErrorCode.IMAP_ERROR, exc.message))
        copy = await service._copy_to_sent(inbox.id, login, raw)
        try:
            async with service.runtime.db.transaction() as db:
                await inboxes.note_sent_copy(db, inbox.id, copy.error.code if copy.error
                                             else None, copy.error.message if copy.error else "")
        except Exception:  # the reply went out: nothing after that may fail it
            log.warning("inbox %d: status not updated after the copy to Sent", inbox.id,
                        exc_info=True)
        return TeamSentCopy(copy.folder, copy.error)
