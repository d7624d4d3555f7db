"""A refresh in flight when the inbox's tokens change (a disconnect, a reconnect) does not
write its answer over them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core import accounts, inboxes
from core.credentials import CredentialBox
from core.inboxes import Endpoint, InboxError
from core.oauth import OAuthProvider
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.storage.models import Inbox
from inbox_sync.oauth import OAuthClient, TokenKeeper, Tokens

SECRET = "test-secret"
PROVIDER = OAuthProvider("oidc", "https://idp.example/authorize", "https://idp.example/token",
                         client_id="c")


class SlowRefresh(OAuthClient):
    """A provider whose refresh answers only when the test lets it."""

    def __init__(self) -> None:
        self.entered, self.go = asyncio.Event(), asyncio.Event()

    async def refresh(self, provider: OAuthProvider, tokens: Tokens) -> Tokens:
        self.entered.set()
        await self.go.wait()
        return Tokens("renewed-access", "renewed-refresh", time.time() + 3600)


async def _oauth_inbox(tmp_path: Path) -> tuple[Runtime, int]:
    runtime = Runtime(Settings(data_dir=tmp_path, secret_key=SECRET))
    await migrate(runtime.db)
    async with runtime.db.transaction() as session:
        portal = (await accounts.create_portal(session, "p")).portal
        user = (await accounts.add_user(session, portal.id, "ann@ourco.example")).user
        expired = Tokens("old-access", "old-refresh", time.time() - 10)
        inbox = await inboxes.save_inbox(
            session, portal.id, user.id, "ann@ourco.example", "ann@ourco.example",
            Endpoint("imap.idp.example", 993, "ssl"), Endpoint("smtp.idp.example", 465, "ssl"),
            CredentialBox(SECRET).encrypt(expired.dumps()), 30, auth="oauth",
            oauth_provider="oidc")
        return runtime, inbox.id


async def _refresh_while(tmp_path: Path, change: str) -> tuple[str, str]:
    """The inbox's stored secret after a refresh that was under way while ``change`` (the
    new secret: "" for a disconnect) was stored, and what the caller got (an access
    token, or the code of the InboxError)."""
    runtime, inbox_id = await _oauth_inbox(tmp_path)
    client = SlowRefresh()
    keeper = TokenKeeper(runtime, CredentialBox(SECRET), client, {"oidc": PROVIDER})
    try:
        async with runtime.db.read() as session:
            inbox = await session.get(Inbox, inbox_id)
        assert inbox is not None
        refreshing = asyncio.create_task(keeper.bearer(inbox))
        await asyncio.wait_for(client.entered.wait(), 10)
        async with runtime.db.transaction() as session:
            row = await session.get(Inbox, inbox_id)
            assert row is not None
            row.secret = change
        client.go.set()
        try:
            got = (await refreshing).token
        except InboxError as exc:
            got = exc.code
        async with runtime.db.read() as session:
            row = await session.get(Inbox, inbox_id)
            assert row is not None
            return row.secret, got
    finally:
        await runtime.close()


async def test_a_refresh_under_way_does_not_bring_back_the_tokens_of_a_disconnect(
        tmp_path: Path) -> None:
    """Disconnecting forgets the tokens: a refresh that was in flight must not store its
    new tokens again (a later sync would then use a grant the user let go)."""
    assert await _refresh_while(tmp_path, "") == ("", "disconnected")


async def test_a_refresh_under_way_does_not_overwrite_a_reconnects_tokens(
        tmp_path: Path) -> None:
    reconnected = CredentialBox(SECRET).encrypt(
        Tokens("new-grant", "new-grant-refresh", time.time() + 3600).dumps())
    assert await _refresh_while(tmp_path, reconnected) == (reconnected, "new-grant")
