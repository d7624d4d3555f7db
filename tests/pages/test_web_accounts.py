"""core.sessions and core.web_accounts on both backends: idle and absolute expiry,
sessions ended by a new password, links spent once or expired, roles of invitations."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import accounts, extension_grants, sessions, web_accounts
from core.errors import InvalidInput
from core.storage.db import Database
from core.storage.models import utcnow
from core.storage.models.web import WebLink
from core.types import Role
from core.web_accounts import LinkInvalid, LinkPurpose, SignInFailed

PASSWORD = "a long enough password"
SECRET = "a test server key"
VERIFIER = "v" * 43


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _utc(moment: datetime) -> datetime:
    """As stored: SQLite gives naive UTC back, PostgreSQL aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _account(db: Database, email: str = "ann@ourco.example",
                   role: Role = Role.USER) -> web_accounts.Account:
    async with db.transaction() as session:
        portal = await accounts.create_portal(session, "P")
        user = (await accounts.add_user(session, portal.portal.id, email)).user
        login = await web_accounts.enable(session, user, role)
        await web_accounts.set_password(session, login, PASSWORD)
        return web_accounts.Account(user, login)


async def test_a_session_ends_when_idle_and_at_its_absolute_expiry(database: Database) -> None:
    """Live while used; gone after IDLE without a request, and after ABSOLUTE however
    busy it was."""
    account = await _account(database)
    start = utcnow()
    async with database.transaction() as session:
        token = (await sessions.start(session, account, now=start)).token
    async with database.read() as session:
        assert await sessions.resolve(session, token, now=start) is not None
        idle_late = start + sessions.IDLE + timedelta(seconds=1)
        assert await sessions.resolve(session, token, now=idle_late) is None
    # Busy: a request every 11 hours (under IDLE) keeps it alive, up to the absolute limit.
    moment = start
    while moment + timedelta(hours=11) < start + sessions.ABSOLUTE:
        moment += timedelta(hours=11)
        async with database.transaction() as session:
            found = await sessions.resolve(session, token, now=moment)
            assert found is not None, moment - start
            if sessions.needs_touch(found[0], now=moment):
                await sessions.touch(session, found[0].id, now=moment)
    async with database.read() as session:
        assert await sessions.resolve(session, token, now=start + sessions.ABSOLUTE) is None


async def test_a_new_password_ends_every_session_and_waiting_link(database: Database) -> None:
    """After a password change, earlier sessions and sign-in links are worth nothing;
    the old password fails and the new one works."""
    account = await _account(database)
    async with database.transaction() as session:
        token = (await sessions.start(session, account)).token
        link = await web_accounts.issue_link(session, account.user.portal_id,
                                             LinkPurpose.SIGN_IN, user_id=account.user.id)
        login = await web_accounts.login_of(session, account.user.id)
        assert login is not None
        await web_accounts.set_password(session, login, "another long password")
    async with database.transaction() as session:
        assert await sessions.resolve(session, token) is None
        with pytest.raises(LinkInvalid):
            await web_accounts.pending_link(session, link.token)
        with pytest.raises(SignInFailed):
            await web_accounts.check_password(session, account.user.email, PASSWORD)
        signed_in = await web_accounts.check_password(session, account.user.email,
                                                      "another long password")
        assert signed_in.user.id == account.user.id


async def test_links_are_spent_once_and_expire(database: Database) -> None:
    """A link works once, only for its purpose, and not after its lifetime."""
    account = await _account(database)
    now = utcnow()
    async with database.transaction() as session:
        link = await web_accounts.issue_link(session, account.user.portal_id,
                                             LinkPurpose.SIGN_IN, user_id=account.user.id,
                                             now=now)
        old = await web_accounts.issue_link(session, account.user.portal_id,
                                            LinkPurpose.RESET, user_id=account.user.id,
                                            now=now - web_accounts.LINK_FOR)
    async with database.transaction() as session:
        with pytest.raises(LinkInvalid, match="something else"):
            await web_accounts.spend_link(session, link.token, LinkPurpose.RESET)
        await web_accounts.spend_link(session, link.token, LinkPurpose.SIGN_IN)
    async with database.transaction() as session:
        with pytest.raises(LinkInvalid):
            await web_accounts.spend_link(session, link.token, LinkPurpose.SIGN_IN)
        with pytest.raises(LinkInvalid):
            await web_accounts.pending_link(session, old.token)
        with pytest.raises(LinkInvalid):
            await web_accounts.pending_link(session, "ilw_" + "x" * 43)


async def test_only_admins_invite_and_the_invitee_gets_the_role(database: Database) -> None:
    """A user may not invite; an admin's invitation makes a user of the portal with the
    invited role, and the same address cannot be invited twice once it signs in."""
    admin = await _account(database, "boss@ourco.example", Role.ADMIN)
    async with database.transaction() as session:
        member = await accounts.add_user(session, admin.user.portal_id, "m@ourco.example")
        plain = web_accounts.Account(member.user, await web_accounts.enable(
            session, member.user, Role.USER))
        with pytest.raises(InvalidInput):
            await web_accounts.invite(session, plain, "new@ourco.example", Role.USER)
        invitation = await web_accounts.invite(session, admin, "New@OurCo.example",
                                               Role.ADMIN)
    async with database.transaction() as session:
        joined = await web_accounts.join(session, invitation.token, name="Nia",
                                         password=PASSWORD)
        assert (joined.user.email, joined.role, joined.user.portal_id) == (
            "new@ourco.example", Role.ADMIN, admin.user.portal_id)
        with pytest.raises(InvalidInput, match="can sign in already"):
            await web_accounts.invite(session, admin, "new@ourco.example", Role.USER)


async def test_the_last_admin_stays_an_admin(database: Database) -> None:
    """Roles change between admins and users, but a portal never loses its last admin."""
    admin = await _account(database, "boss@ourco.example", Role.ADMIN)
    async with database.transaction() as session:
        with pytest.raises(InvalidInput, match="last admin"):
            await web_accounts.change_role(session, admin, admin.user.id, Role.USER)
        other = await accounts.add_user(session, admin.user.portal_id, "two@ourco.example")
        await web_accounts.enable(session, other.user, Role.USER)
        await web_accounts.change_role(session, admin, other.user.id, Role.ADMIN)
        demoted = await web_accounts.change_role(session, admin, admin.user.id, Role.USER)
        assert demoted.role == Role.USER.value


async def test_spent_codes_rows_are_purged_once_no_code_can_use_them(
        database: Database) -> None:
    """Redeeming a code records it in web_links; the next redemption deletes the rows
    of codes past a second lifetime (when their own age check refuses them anyway)."""
    account = await _account(database)
    asked = extension_grants.check_request(
        response_type="code", client_id="ext", redirect_uri="http://127.0.0.1:9/cb",
        code_challenge=_s256(VERIFIER), code_challenge_method="S256", state="")

    async def redeem(now: datetime) -> None:
        code = extension_grants.issue_code(SECRET, account.user, asked)
        async with database.transaction() as session:
            await extension_grants.redeem(session, SECRET, code=code, client_id="ext",
                                          redirect_uri="http://127.0.0.1:9/cb",
                                          verifier=VERIFIER, now=now)

    async def spent() -> list[datetime]:
        async with database.read() as session:
            return list(await session.scalars(select(WebLink.created_at).where(
                WebLink.purpose == extension_grants.CODE_PURPOSE).order_by(WebLink.id)))

    start = utcnow().replace(microsecond=0)
    await redeem(start)
    kept = start + 2 * extension_grants.CODE_FOR  # not yet past the second lifetime
    await redeem(kept)
    assert [_utc(at) for at in await spent()] == [start, kept]
    later = kept + timedelta(seconds=1)
    await redeem(later)
    assert [_utc(at) for at in await spent()] == [kept, later]
    async with database.transaction() as session:
        assert await extension_grants.purge_spent_codes(
            session, later + 3 * extension_grants.CODE_FOR) == 2
    assert await spent() == []
