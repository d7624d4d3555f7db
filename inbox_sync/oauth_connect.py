"""Connecting an inbox with OAuth 2.0 (``core.oauth.OAuthConnector``): the operator's
providers, the authorization URL a user's browser goes to, and the callback's
completion (the code exchanged, both logins tested with the token, the inbox stored and
started, a user's or a team inbox's).

It works through the service's connections, network limits and sealed states
(``InboxService``, whose OAuthConnector methods delegate here); the tokens themselves
are kept and refreshed by ``inbox_sync.oauth.TokenKeeper``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from core import accounts, inboxes
from core.inboxes import InboxError
from core.oauth import OAuthError, OAuthProvider, OAuthResult, PendingAuthorization
from core.storage.models import Inbox, User
from core.types import InboxAuth, InboxErrorCode, MailProtocol
from inbox_sync import send
from inbox_sync.imap import Bearer
from inbox_sync.oauth import address_from, new_verifier
from inbox_sync.owner import Owner

if TYPE_CHECKING:
    from inbox_sync.service import InboxService

log = logging.getLogger(__name__)


class OAuthConnect:
    """Implements ``core.oauth.OAuthConnector`` for the service."""

    def __init__(self, service: InboxService) -> None:
        self.service = service

    def providers(self) -> list[str]:
        return sorted(self.service.options.oauth.providers)

    def provider(self, name: str) -> OAuthProvider:
        provider = self.service.options.oauth.providers.get(name)
        if provider is None:
            raise OAuthError(InboxErrorCode.OAUTH_NOT_CONFIGURED, f"no OAuth provider {name!r} is "
                             "configured on this server (configured: "
                             f"{', '.join(self.providers()) or 'none'})")
        return provider

    async def authorization_url(self, portal_id: int, user_id: int, provider: str,
                                first_sync_days: int) -> str:
        service = self.service
        chosen = self.provider(provider)
        verifier = new_verifier()
        state = service.states.seal(PendingAuthorization(
            portal_id, user_id, chosen.name, verifier, new_verifier()[:24], first_sync_days))
        return service.oauth_client.authorization_url(chosen, state, verifier)

    async def complete_authorization(self, state: str, code: str) -> OAuthResult:
        service = self.service
        pending = service.states.open(state)
        provider = self.provider(pending.provider)
        tokens, claims = await service.oauth_client.exchange(provider, code,
                                                             pending.code_verifier)
        address = accounts.normalize_address(address_from(claims))
        if pending.team_inbox_id is not None:
            owner = Owner.team(pending.portal_id, pending.team_inbox_id)
        else:
            assert pending.user_id is not None
            owner = Owner(pending.portal_id, pending.user_id)
        bearer = Bearer(tokens.access_token, provider.sasl)
        try:
            session = await service._open_once(owner, provider.imap, address, bearer)
            await service.network.run(session.close)
            async with service.network.turn(*owner, protocol=MailProtocol.SMTP):
                await send.check_login(provider.smtp, address, bearer,
                                       connect=service._smtp_socket,
                                       timeout=service.options.timeout,
                                       context=service.options.ssl_context)
        except InboxError as exc:
            if exc.code == InboxErrorCode.AUTH_REJECTED:
                # A token just issued and refused: the grant lacks mail access.
                raise OAuthError(InboxErrorCode.OAUTH_SCOPE_MISSING, f"{exc.message} (the "
                                 "grant does not give access to mail; connect again and "
                                 "allow it)") from None
            raise
        async with service.runtime.db.transaction() as db:
            existing = await db.scalar(select(Inbox.id).where(
                Inbox.portal_id == pending.portal_id, Inbox.address == address))
            secret = service.box.encrypt(tokens.dumps())
            if pending.team_inbox_id is not None:
                inbox = await inboxes.save_team_mailbox(
                    db, pending.portal_id, pending.team_inbox_id, address, address,
                    provider.imap, provider.smtp, secret, pending.first_sync_days,
                    auth=InboxAuth.OAUTH, oauth_provider=provider.name)
            else:
                user = await db.get(User, pending.user_id)
                if user is None or user.portal_id != pending.portal_id:
                    raise OAuthError(InboxErrorCode.OAUTH_STATE_INVALID,
                                     "the user who asked is gone")
                inbox = await inboxes.save_inbox(
                    db, pending.portal_id, user.id, address, address, provider.imap,
                    provider.smtp, secret, pending.first_sync_days,
                    auth=InboxAuth.OAUTH, oauth_provider=provider.name)
            inbox_id = inbox.id
        await service._restart(inbox_id, service._slot(inbox_id))
        log.info("inbox %d connected with OAuth (%s)", inbox_id, provider.name)
        return OAuthResult(inbox_id, address, existing is not None)
