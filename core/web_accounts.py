"""Signing in to the pages: passwords, roles, and one-time links (sign in, password
reset, invitation, a new portal's set-up).

A link's token is 256 random bits shown only in the link; the database keeps its sha256,
and following it spends it. Sign-in and reset links live ``LINK_FOR``, invitations and
set-up links ``INVITE_FOR``. Passwords are argon2id hashes (argon2-cffi), checked in a
worker thread: a hash costs tens of milliseconds of CPU the event loop must not spend.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from urllib.parse import urlencode

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, extension_grants
from core.errors import CoreError, InvalidInput, NotFound
from core.storage.models import ApiToken, Portal, User, utcnow
from core.storage.models.web import WebLink, WebLogin, WebSession
from core.types import Role

LINK_TOKEN_PREFIX = "ilw_"
LINK_FOR = timedelta(minutes=30)
INVITE_FOR = timedelta(days=7)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps a request from costing more
MAX_ID = 2**63 - 1  # the largest id the databases hold: a larger one cannot be looked up

_hasher = PasswordHasher()
# Verified when no account matches, so that an unknown address takes as long as a
# wrong password (the answer's timing tells nothing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LinkPurpose(enum.StrEnum):
    SIGN_IN = "signin"
    RESET = "reset"
    INVITE = "invite"
    SETUP = "setup"


class LinkInvalid(CoreError):
    """No link waits for this token: never issued, used already, or expired."""

    code = "link_invalid"


class SignInFailed(CoreError):
    """The address and password match no account (never says which was wrong)."""

    code = "sign_in_failed"


@dataclass(frozen=True)
class Account:
    """A user who may sign in to the pages, with their role (an admin manages the
    portal's settings, users and invitations)."""

    user: User
    login: WebLogin

    @property
    def role(self) -> Role:
        return Role(self.login.role)


@dataclass(frozen=True)
class IssuedLink:
    link: WebLink
    token: str  # the secret, shown once: in the mail, or printed by the CLI

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/link?" + urlencode({"token": self.token})


def check_password_rules(password: str) -> None:
    """InvalidInput unless ``password`` is acceptable (long enough, not absurdly long)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD} characters")


async def hash_password(password: str) -> str:
    check_password_rules(password)
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def login_of(session: AsyncSession, user_id: int) -> WebLogin | None:
    return await session.get(WebLogin, user_id)


async def enable(session: AsyncSession, user: User, role: Role = Role.USER) -> WebLogin:
    """Let ``user`` sign in to the pages (with a link until they set a password)."""
    login = await session.get(WebLogin, user.id)
    if login is None:
        login = WebLogin(user_id=user.id, portal_id=user.portal_id, role=role.value)
        session.add(login)
    else:
        login.role = role.value
    await session.flush()
    return login


def attempt_key(email: str) -> str:
    """The key of ``email``'s sign-in and mail budgets: the address as ``accounts_for``
    reads it, so that no other spelling of it (upper case, fullwidth letters, an
    ideographic full stop: one account) gets a budget of its own."""
    try:
        return accounts.normalize_address(email)
    except InvalidInput:
        return email.strip().lower()


async def accounts_for(session: AsyncSession, email: str) -> Sequence[Account]:
    """Every account signing in with ``email`` (one per portal it is a user of)."""
    try:
        address = accounts.normalize_address(email)
    except InvalidInput:
        return []
    rows = await session.execute(
        select(User, WebLogin).join(WebLogin, WebLogin.user_id == User.id)
        .where(User.email == address).order_by(User.id))
    return [Account(user, login) for user, login in rows]


async def account(session: AsyncSession, user_id: int) -> Account:
    found = (await session.execute(
        select(User, WebLogin).join(WebLogin, WebLogin.user_id == User.id)
        .where(User.id == user_id))).first()
    if found is None:
        raise NotFound(f"no account {user_id}")
    return Account(found[0], found[1])


async def check_password(session: AsyncSession, email: str, password: str) -> Account:
    """The account ``email`` and ``password`` sign in to; SignInFailed otherwise.

    An address that is a user of several portals signs in to the first whose password
    matches. A hash made with older parameters is renewed on the way.
    """
    candidates = [a for a in await accounts_for(session, email) if a.login.password_hash]
    if not candidates or len(password) > MAX_PASSWORD:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password[:MAX_PASSWORD])
        raise SignInFailed("the address or the password is wrong")
    for candidate in candidates:
        stored = candidate.login.password_hash
        assert stored is not None
        if await asyncio.to_thread(_verify, stored, password):
            if _hasher.check_needs_rehash(stored):
                candidate.login.password_hash = await hash_password(password)
            return candidate
    raise SignInFailed("the address or the password is wrong")


async def set_password(session: AsyncSession, login: WebLogin, password: str, *,
                       now: datetime | None = None) -> None:
    """Set a new password; every session of the user ends, and so does every sign-in
    or reset link still waiting (whoever had one no longer gets in with it), and every
    token the extension's sign-in issued them (whoever knew the old password could have
    signed an extension of theirs in; the extension signs in again in one click). Tokens
    made on purpose (the tokens page, the CLI) stay: scripts keep working, and the
    tokens page lists them for the user to revoke."""
    login.password_hash = await hash_password(password)
    login.password_changed_at = now or utcnow()
    await session.execute(update(WebSession).where(WebSession.user_id == login.user_id)
                          .values(expires_at=login.password_changed_at))
    await session.execute(update(WebLink).where(
        WebLink.user_id == login.user_id, WebLink.used_at.is_(None),
        WebLink.purpose.in_([LinkPurpose.SIGN_IN.value, LinkPurpose.RESET.value]),
    ).values(used_at=login.password_changed_at))
    await extension_grants.revoke_granted_tokens(session, login.user_id,
                                                 now=login.password_changed_at)
    await session.flush()


async def issue_link(session: AsyncSession, portal_id: int, purpose: LinkPurpose, *,
                     user_id: int | None = None, email: str = "", role: Role = Role.USER,
                     invited_by: int | None = None, now: datetime | None = None) -> IssuedLink:
    """A new one-time link of ``purpose``; the token is in the returned value only."""
    now = now or utcnow()
    lifetime = LINK_FOR if purpose in (LinkPurpose.SIGN_IN, LinkPurpose.RESET) else INVITE_FOR
    token = LINK_TOKEN_PREFIX + secrets.token_urlsafe(32)
    link = WebLink(portal_id=portal_id, purpose=purpose.value, user_id=user_id, email=email,
                   role=role.value, invited_by=invited_by,
                   token_hash=accounts.hash_token(token), created_at=now,
                   expires_at=now + lifetime)
    session.add(link)
    await session.flush()
    return IssuedLink(link, token)


async def change_password(session: AsyncSession, signed_in: Account, current: str,
                          new: str, *, now: datetime | None = None) -> None:
    """A signed-in user changes their password: ``current`` must be it (SignInFailed
    otherwise: whoever holds a session alone cannot take the account), ``new`` must
    pass the rules (InvalidInput). Then as ``set_password``: every session ends (the
    caller starts a new one for the browser that asked), and the extension's tokens."""
    stored = signed_in.login.password_hash
    if len(current) > MAX_PASSWORD or not stored or not await asyncio.to_thread(
            _verify, stored, current):
        raise SignInFailed("the current password is wrong")
    check_password_rules(new)
    await set_password(session, signed_in.login, new, now=now)


async def purge_ended_links(session: AsyncSession, now: datetime) -> int:
    """Delete the rows of links spent or expired (the periodic purge): following one
    says "not valid any more" whether its row is there or not. The rows of extension
    codes are ``extension_grants.purge_spent_codes``'s, which keeps each while its code
    could still be presented. How many went."""
    gone = await session.execute(delete(WebLink).where(
        WebLink.purpose != extension_grants.CODE_PURPOSE,
        or_(WebLink.used_at.is_not(None), WebLink.expires_at <= now)))
    return int(getattr(gone, "rowcount", 0) or 0)


async def pending_link(session: AsyncSession, token: str, *,
                       now: datetime | None = None) -> WebLink:
    """The unspent, unexpired link of ``token``; LinkInvalid otherwise. Changes nothing."""
    link = None
    if token.startswith(LINK_TOKEN_PREFIX) and len(token) < 100:
        link = await session.scalar(select(WebLink).where(
            WebLink.token_hash == accounts.hash_token(token)))
    if link is None or link.used_at is not None or link.expires_at <= (now or utcnow()):
        raise LinkInvalid("this link is not valid any more: it was used already, or it "
                          "expired. Ask for a new one")
    return link


async def spend_link(session: AsyncSession, token: str, purpose: LinkPurpose, *,
                     now: datetime | None = None) -> WebLink:
    """Mark the link of ``token`` used (it must be of ``purpose``); LinkInvalid else.
    The update is conditional, so two requests racing with one link spend it once."""
    now = now or utcnow()
    link = await pending_link(session, token, now=now)
    if link.purpose != purpose.value:
        raise LinkInvalid("this link is for something else")
    spent = await session.execute(update(WebLink).where(
        WebLink.id == link.id, WebLink.used_at.is_(None)).values(used_at=now))
    if getattr(spent, "rowcount", 1) != 1:
        raise LinkInvalid("this link was used already")
    link.used_at = now
    return link


async def invite(session: AsyncSession, admin: Account, email: str, role: Role, *,
                 now: datetime | None = None) -> IssuedLink:
    """An invitation for ``email`` to join the admin's portal with ``role``.

    InvalidInput when the address already is a user of the portal with a login.
    """
    if admin.role is not Role.ADMIN:
        raise InvalidInput("only the portal's admins invite users")
    address = accounts.normalize_address(email)
    existing = await session.scalar(
        select(User).join(WebLogin, WebLogin.user_id == User.id)
        .where(User.portal_id == admin.user.portal_id, User.email == address))
    if existing is not None:
        raise InvalidInput(f"{address} can sign in already")
    return await issue_link(session, admin.user.portal_id, LinkPurpose.INVITE, email=address,
                            role=role, invited_by=admin.user.id, now=now)


async def join(session: AsyncSession, token: str, *, name: str, password: str,
               email: str = "", now: datetime | None = None) -> Account:
    """Follow an invitation or a set-up link: the user (made if the portal has none with
    that address), their login with the link's role and ``password``.

    An invitation names the address; a set-up link takes ``email`` and makes an admin.
    """
    check_password_rules(password)
    link = await pending_link(session, token, now=now)
    if link.purpose not in (LinkPurpose.INVITE.value, LinkPurpose.SETUP.value):
        raise LinkInvalid("this link is for something else")
    address = link.email or accounts.normalize_address(email)
    await spend_link(session, token, LinkPurpose(link.purpose), now=now)
    user = await session.scalar(select(User).where(User.portal_id == link.portal_id,
                                                   User.email == address))
    if user is None:
        user = (await accounts.add_user(session, link.portal_id, address, name=name)).user
    elif name.strip():
        user.name = name.strip()
    login = await enable(session, user, Role(link.role))
    await set_password(session, login, password, now=now)
    return Account(user, login)


def link_message(*, kind: LinkPurpose, to: str, portal_name: str, url: str,
                 sender: str) -> EmailMessage:
    """The mail carrying a sign-in, reset or invitation link (plain text, 7bit so the
    link reads whole in the raw message)."""
    subjects = {
        LinkPurpose.SIGN_IN: f"Sign in to inboxlog ({portal_name})",
        LinkPurpose.RESET: f"Reset your inboxlog password ({portal_name})",
        LinkPurpose.INVITE: f"You are invited to {portal_name} on inboxlog",
    }
    bodies = {
        LinkPurpose.SIGN_IN: "Follow this link within 30 minutes to sign in:",
        LinkPurpose.RESET: "Follow this link within 30 minutes to choose a new password:",
        LinkPurpose.INVITE: "Follow this link within 7 days to choose your password and "
                            "join:",
    }
    message = EmailMessage()
    message["From"] = formataddr(("inboxlog", sender))
    message["To"] = to
    message["Subject"] = subjects[kind]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"{bodies[kind]}\n\n{url}\n\nThe link works once. If you did not ask for it, "
        "ignore this message: nothing changes.\n", cte="7bit")
    return message


async def portal_name(session: AsyncSession, portal_id: int) -> str:
    portal = await session.get(Portal, portal_id)
    return portal.name if portal is not None else ""


async def first_admin_link(session: AsyncSession, portal_id: int, *,
                           now: datetime | None = None) -> IssuedLink:
    """The set-up link ``admin create-portal`` prints: whoever follows it chooses their
    address and password and becomes the portal's admin (once, within INVITE_FOR)."""
    return await issue_link(session, portal_id, LinkPurpose.SETUP, role=Role.ADMIN, now=now)


async def operator_sign_in_link(session: AsyncSession, portal_id: int, email: str, *,
                                now: datetime | None = None) -> IssuedLink:
    """A sign-in link for the portal's user ``email``, made an admin of the pages if
    they could not sign in yet (``serve``'s demo account, printed at each start)."""
    user = await session.scalar(select(User).where(
        User.portal_id == portal_id, User.email == accounts.normalize_address(email)))
    if user is None:
        raise NotFound(f"no user {email} in portal {portal_id}")
    if await session.get(WebLogin, user.id) is None:
        await enable(session, user, Role.ADMIN)
    return await issue_link(session, portal_id, LinkPurpose.SIGN_IN, user_id=user.id, now=now)


async def tokens_of(session: AsyncSession, viewer: Account) -> Sequence[ApiToken]:
    """The API tokens ``viewer`` may see: their own; an admin's, the whole portal's."""
    query = select(ApiToken).where(ApiToken.portal_id == viewer.user.portal_id)
    if viewer.role is not Role.ADMIN:
        query = query.where(ApiToken.user_id == viewer.user.id)
    return (await session.scalars(query.order_by(ApiToken.id.desc()))).all()


async def revoke_token(session: AsyncSession, viewer: Account, token_id: int, *,
                       now: datetime | None = None) -> ApiToken:
    """Revoke one of the tokens ``viewer`` may see, at once (again: nothing changes);
    NotFound for any other."""
    token = await session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if token is None or token.portal_id != viewer.user.portal_id or (
            viewer.role is not Role.ADMIN and token.user_id != viewer.user.id):
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
    return token


async def change_role(session: AsyncSession, admin: Account, user_id: int, role: Role) -> WebLogin:
    """An admin sets another sign-in's role; the portal keeps at least one admin.
    NotFound for a user of another portal, or one who cannot sign in."""
    if admin.role is not Role.ADMIN:
        raise InvalidInput("only the portal's admins change roles")
    login = await session.get(WebLogin, user_id) if 0 < user_id <= MAX_ID else None
    if login is None or login.portal_id != admin.user.portal_id:
        raise NotFound(f"no sign-in for user {user_id}")
    if login.role == Role.ADMIN and role is not Role.ADMIN:
        admins = await session.scalars(select(WebLogin.user_id).where(
            WebLogin.portal_id == login.portal_id, WebLogin.role == Role.ADMIN.value))
        if list(admins) == [user_id]:
            raise InvalidInput("the portal's last admin stays an admin")
    login.role = role.value
    await session.flush()
    return login
