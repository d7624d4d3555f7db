"""Portals, users, addresses and API tokens: creating them and resolving them."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from core.errors import InvalidInput
from core.sender_auth.decision import SenderAuthPolicy
from core.storage.models import ApiToken, Portal, TeamInbox, User, UserAddress, utcnow
from core.storage.statements import Reader, Statement
from core.types import InboxLogMode

USER_TOKEN_PREFIX = "ilu_"
ADMIN_TOKEN_PREFIX = "ila_"
# Letters and digits only, so the token survives every mail client's address handling.
_BCC_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def normalize_address(address: str) -> str:
    """Validate an email address and return it lower-cased, or raise InvalidInput."""
    try:
        result = validate_email(address.strip(), check_deliverability=False,
                                allow_smtputf8=True, allow_display_name=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address {address!r}: {exc}") from exc
    return result.normalized.lower()


def hash_token(token: str) -> str:
    # Tokens are 256-bit random strings: a plain sha256 is enough, no slow KDF needed.
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_bcc_token() -> str:
    return "".join(secrets.choice(_BCC_ALPHABET) for _ in range(20))


@dataclass(frozen=True)
class CreatedPortal:
    portal: Portal
    admin_token: str


@dataclass(frozen=True)
class CreatedUser:
    user: User
    api_token: str


async def create_portal(session: AsyncSession, name: str) -> CreatedPortal:
    """Create a portal with a fresh secret logging token and an admin API token."""
    if not name.strip():
        raise InvalidInput("portal name must not be empty")
    portal = Portal(name=name.strip(), bcc_token=new_bcc_token(), never_log=[])
    session.add(portal)
    await session.flush()
    token = _new_token(ADMIN_TOKEN_PREFIX)
    session.add(ApiToken(portal_id=portal.id, user_id=None, token_hash=hash_token(token)))
    await session.flush()
    return CreatedPortal(portal, token)


async def add_user(
    session: AsyncSession, portal_id: int, email: str, *, name: str = "",
    aliases: tuple[str, ...] = (),
) -> CreatedUser:
    """Add a user with their primary address and aliases, and issue an API token."""
    portal = await session.get(Portal, portal_id)
    if portal is None:
        raise InvalidInput(f"no portal {portal_id}")
    addresses = list(dict.fromkeys(normalize_address(a) for a in (email, *aliases)))
    taken = await session.scalars(
        select(UserAddress.address).where(
            UserAddress.portal_id == portal_id, UserAddress.address.in_(addresses),
            UserAddress.confirmed_at.is_not(None),
        )
    )
    if clash := list(taken):
        raise InvalidInput(f"address already belongs to a user: {', '.join(clash)}")
    # Another user's unconfirmed claim on one of them gives way to the admin's word.
    await session.execute(delete(UserAddress).where(
        UserAddress.portal_id == portal_id, UserAddress.address.in_(addresses),
        UserAddress.confirmed_at.is_(None)))
    session.info.pop(("users_by_address", portal_id), None)
    user = User(portal_id=portal_id, email=addresses[0], name=name.strip())
    # The operator's or the admin's word: confirmed at once (an address a user adds
    # later over the API waits for its link, core.user_addresses).
    now = utcnow()
    user.addresses = [UserAddress(portal_id=portal_id, address=a, confirmed_at=now)
                      for a in addresses]
    session.add(user)
    await session.flush()
    _, token = await issue_token(session, user, name="created with the user")
    return CreatedUser(user, token)


async def issue_token(session: AsyncSession, user: User, *, name: str = "") -> tuple[ApiToken, str]:
    """A new API token for ``user``; the secret is returned once, only its hash is kept."""
    token = _new_token(USER_TOKEN_PREFIX)
    record = ApiToken(portal_id=user.portal_id, user_id=user.id, token_hash=hash_token(token),
                      name=name)
    session.add(record)
    await session.flush()
    return record, token


async def token_owner(session: AsyncSession, token: str) -> ApiToken | None:
    """The live (not revoked) token record for a bearer token, or None."""
    if not token.startswith((USER_TOKEN_PREFIX, ADMIN_TOKEN_PREFIX)):
        return None
    found = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if found is None or found.revoked_at is not None:
        return None
    return found


@dataclass(frozen=True)
class LoggingAddress:
    """A parsed logging address: ``<bcc_token>[+<tag>]@<bcc_domain>``."""

    bcc_token: str
    tag: str | None


_LOCAL = re.compile(r"^([a-z0-9]+)(?:\+([A-Za-z0-9._-]+))?$")


def parse_logging_address(address: str, bcc_domain: str) -> LoggingAddress | None:
    """Split a recipient into token and tag when it is at the logging domain."""
    local, sep, domain = address.strip().strip("<>").rpartition("@")
    if not sep or domain.lower() != bcc_domain.lower():
        return None
    match = _LOCAL.match(local.lower())
    if match is None:
        return None
    return LoggingAddress(match.group(1), match.group(2))


@dataclass(frozen=True)
class PortalRoute:
    """What RCPT needs of the portal a logging address routes to."""

    id: int
    sender_auth: str


_PORTALS, _INBOXES = Portal.__table__.c, TeamInbox.__table__.c
# RCPT's reads, compiled once per dialect (core.storage.statements).
_BY_TOKEN = Statement(lambda: select(_PORTALS.id, _PORTALS.sender_auth).where(
    _PORTALS.bcc_token == bindparam("token")))
_BY_PREVIOUS_TOKEN = Statement(lambda: select(_PORTALS.id, _PORTALS.sender_auth).where(
    _PORTALS.previous_bcc_token == bindparam("token"),
    _PORTALS.previous_token_expires_at > bindparam("now")))
_BY_INBOX_TOKEN = Statement(lambda: select(_PORTALS.id, _PORTALS.sender_auth, _INBOXES.id)
                            .join(TeamInbox.__table__, _INBOXES.portal_id == _PORTALS.id)
                            .where(_INBOXES.token == bindparam("token")))
_REPLACED = Statement(lambda: select(_PORTALS.id).where(
    _PORTALS.previous_bcc_token == bindparam("token")).limit(1))


async def portal_for_address(
    reader: Reader, address: str, bcc_domain: str
) -> tuple[PortalRoute, str | None] | None:
    """The portal a logging address routes to, and its tag, or None. The address a
    rotation replaced routes too, until its grace period ends. (Read fresh at every
    RCPT, ``reader`` being ``Database.lookup()``'s: a rotation or a removed portal takes
    effect on the next one, whichever process made it.)"""
    parsed = parse_logging_address(address, bcc_domain)
    if parsed is None:
        return None
    token = parsed.bcc_token
    row = await reader.first(_BY_TOKEN, token=token)
    if row is None:
        row = await reader.first(_BY_PREVIOUS_TOKEN, token=token, now=utcnow())
    if row is None and parsed.tag is None:
        # A team inbox's own address routes as <bcc_token>+inbox-<id> (docs/tickets.md).
        found = await reader.first(_BY_INBOX_TOKEN, token=token)
        if found is not None:
            return PortalRoute(found[0], found[1]), f"inbox-{found[2]}"
    return None if row is None else (PortalRoute(row[0], row[1]), parsed.tag)


async def was_replaced(reader: Reader, address: str, bcc_domain: str) -> bool:
    """Whether ``address`` is a portal's logging address from before its last rotation
    (whatever its grace period: the caller asks after ``portal_for_address``)."""
    parsed = parse_logging_address(address, bcc_domain)
    return parsed is not None and await reader.first(
        _REPLACED, token=parsed.bcc_token) is not None


MAX_GRACE_DAYS = 90


def rotate_logging_address(portal: Portal, grace: timedelta) -> None:
    """A new logging address; the current one keeps routing mail for ``grace``. One
    before it, if still in its own grace period, stops now."""
    if not timedelta(0) <= grace <= timedelta(days=MAX_GRACE_DAYS):
        raise InvalidInput(f"the grace period is 0 to {MAX_GRACE_DAYS} days")
    portal.previous_bcc_token = portal.bcc_token
    portal.previous_token_expires_at = utcnow() + grace
    portal.bcc_token = new_bcc_token()


async def users_by_address(session: AsyncSession, portal_id: int) -> dict[str, User]:
    """Every confirmed user address of a portal (lower-case) mapped to its user; an
    address waiting for its confirmation link is nobody's yet.

    Remembered for the rest of the session: a group commit (``core.storage.group_commit``)
    ingests many messages of one portal in one session, and users don't change there
    (``add_user`` forgets it).
    """
    key = ("users_by_address", portal_id)
    if (known := session.info.get(key)) is not None:
        return dict(known)
    rows = await session.execute(_USERS_BY_ADDRESS, {"portal_id": portal_id})
    users = session.info[key] = {address: user for address, user in rows}
    return dict(users)


# Built once: SQLAlchemy remembers a statement object's cache key, so each group commit
# does not build the select and its loader options again and walk them for the key
# (about half of this read's CPU, bench/NOTES.md).
_USERS_BY_ADDRESS = (
    select(UserAddress.address, User)
    .join(User, User.id == UserAddress.user_id)
    .where(UserAddress.portal_id == bindparam("portal_id"),
           UserAddress.confirmed_at.is_not(None))
    # Not each user's addresses again (``User.addresses`` loads by selectin: a second
    # statement per group commit, 3 % of the SMTP loop's samples); routing reads none,
    # and the sessions this runs in (ingest, sync) show no user to anyone.
    .options(lazyload(User.addresses))
)


MAX_NEVER_LOG = 10_000
INBOX_LOG_MODES = tuple(InboxLogMode)
SENDER_AUTH_POLICIES = tuple(SenderAuthPolicy)


def portal_settings(portal: Portal) -> dict[str, object]:
    return {
        "log_attachments": portal.log_attachments,
        "auto_create_contacts": portal.auto_create_contacts,
        "never_log": list(portal.never_log),
        "inbox_log_mode": portal.inbox_log_mode,
        "sender_auth": portal.sender_auth,
    }


@dataclass(frozen=True)
class SettingsChange:
    """A partial change of a portal's settings: None leaves a setting as it is."""

    log_attachments: bool | None = None
    auto_create_contacts: bool | None = None
    never_log: list[str] | None = None  # addresses and bare domains ("@acme.com" too)
    inbox_log_mode: InboxLogMode | None = None
    sender_auth: SenderAuthPolicy | None = None


def _never_log_entry(entry: str) -> str:
    """An address or a bare domain, normalized; InvalidInput otherwise."""
    if not entry.strip():
        raise InvalidInput("never_log entries must be non-empty strings")
    # "@acme.com" is how people often write a domain; anything else with "@" is an address.
    domain = entry.strip().lower().removeprefix("@")
    if "@" in domain:
        return normalize_address(domain)
    if not re.fullmatch(r"(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}", domain):
        raise InvalidInput(f"not an address or a domain: {entry!r}")
    return domain


def update_settings(portal: Portal, change: SettingsChange) -> None:
    """Apply a partial settings change after validating every field in it (nothing is
    changed when one is invalid)."""
    inbox_log_mode = _member(InboxLogMode, "inbox_log_mode", change.inbox_log_mode)
    sender_auth = _member(SenderAuthPolicy, "sender_auth", change.sender_auth)
    never_log = None
    if change.never_log is not None:
        if len(change.never_log) > MAX_NEVER_LOG:
            raise InvalidInput(f"never_log must be a list of at most {MAX_NEVER_LOG} entries")
        never_log = list(dict.fromkeys(_never_log_entry(e) for e in change.never_log))
    if never_log is not None:
        portal.never_log = never_log
    if change.log_attachments is not None:
        portal.log_attachments = change.log_attachments
    if change.auto_create_contacts is not None:
        portal.auto_create_contacts = change.auto_create_contacts
    if inbox_log_mode is not None:
        portal.inbox_log_mode = inbox_log_mode.value
    if sender_auth is not None:
        portal.sender_auth = sender_auth.value


E = TypeVar("E", bound=enum.StrEnum)


def _member(kind: type[E], field: str, value: E | None) -> E | None:
    """``value`` as a member of ``kind`` (a caller may hand over a plain string, e.g.
    a form's); InvalidInput naming ``field`` when it is none of them."""
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{field} must be one of {', '.join(kind)}") from None
