"""A user's alternate sender addresses: added unconfirmed, confirmed by a link mailed to
the address (single use, valid 48 h), and counted as the user's only then
(``accounts.users_by_address`` reads confirmed addresses only).

The link's token is 256 random bits; only its sha256 is stored, and confirming clears it,
so a link works once and the database never holds a usable one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import hash_token, normalize_address
from core.errors import (
    AddressTaken,
    AlreadyConfirmed,
    ConfirmationExpired,
    ConfirmationInvalid,
    ConfirmationRecentlySent,
    InvalidInput,
    NotFound,
)
from core.storage.models import User, UserAddress, utcnow

CONFIRM_TOKEN_PREFIX = "ilc_"
CONFIRM_FOR = timedelta(hours=48)
# Each request mails an address the caller chose: bounded, so that the endpoint is no
# way to send mail to strangers.
MAX_UNCONFIRMED = 10
RESEND_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Requested:
    address: UserAddress
    token: str  # the link's secret; shown only in the message sent to the address


def _expired(row: UserAddress, now: datetime) -> bool:
    return row.requested_at is None or now - row.requested_at > CONFIRM_FOR


async def request(session: AsyncSession, user: User, address: str, *,
                  now: datetime | None = None) -> Requested:
    """Add ``address`` to ``user`` unconfirmed (or renew the link of an unconfirmed one)
    with a new confirmation token; any earlier link of it stops working.

    Within a portal an address is one user's: another user's confirmed address, or one
    waiting for their link, is AddressTaken; an expired claim of another user gives way.
    """
    now = now or utcnow()
    normalized = normalize_address(address)
    row = await session.scalar(select(UserAddress).where(
        UserAddress.portal_id == user.portal_id, UserAddress.address == normalized))
    if row is not None and row.user_id != user.id:
        if row.confirmed_at is not None:
            raise AddressTaken(f"{normalized} belongs to another user of this account")
        if not _expired(row, now):
            raise AddressTaken(f"{normalized} waits for another user's confirmation")
        await session.delete(row)
        await session.flush()
        row = None
    if row is not None and row.confirmed_at is not None:
        raise AlreadyConfirmed(f"{normalized} is confirmed already")
    if row is not None and row.requested_at and now - row.requested_at < RESEND_AFTER:
        raise ConfirmationRecentlySent(
            f"a confirmation was sent to {normalized} less than a minute ago")
    if row is None:
        pending = await session.scalar(select(func.count()).select_from(UserAddress).where(
            UserAddress.user_id == user.id, UserAddress.confirmed_at.is_(None)))
        if (pending or 0) >= MAX_UNCONFIRMED:
            raise InvalidInput(f"at most {MAX_UNCONFIRMED} addresses may wait for their "
                               "confirmation; confirm or remove one first")
        row = UserAddress(portal_id=user.portal_id, user_id=user.id, address=normalized)
        session.add(row)
    token = CONFIRM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.confirm_token_hash, row.requested_at = hash_token(token), now
    await session.flush()
    return Requested(row, token)


async def pending(session: AsyncSession, token: str, *,
                  now: datetime | None = None) -> UserAddress:
    """The unconfirmed address a link's token confirms; ConfirmationInvalid or
    ConfirmationExpired. Changes nothing."""
    row = None
    if token.startswith(CONFIRM_TOKEN_PREFIX) and len(token) < 100:
        row = await session.scalar(select(UserAddress).where(
            UserAddress.confirm_token_hash == hash_token(token)))
    if row is None or row.confirmed_at is not None:
        raise ConfirmationInvalid("this confirmation link is not valid: it was used "
                                  "already, or a newer one was sent")
    if _expired(row, now or utcnow()):
        raise ConfirmationExpired("this confirmation link has expired (after 48 hours): "
                                  "add the address again for a new one")
    return row


async def confirm(session: AsyncSession, token: str, *,
                  now: datetime | None = None) -> UserAddress:
    """Confirm the address of a link's token; the token is spent."""
    now = now or utcnow()
    row = await pending(session, token, now=now)
    row.confirmed_at, row.confirm_token_hash = now, None
    session.info.pop(("users_by_address", row.portal_id), None)
    await session.flush()
    return row


async def remove(session: AsyncSession, user: User, address_id: int) -> UserAddress:
    """Remove one of ``user``'s addresses (not the primary one); NotFound otherwise."""
    row = await session.get(UserAddress, address_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"no address {address_id} of this user")
    if row.address == user.email.lower():
        raise InvalidInput("the user's primary address cannot be removed")
    await session.delete(row)
    session.info.pop(("users_by_address", row.portal_id), None)
    await session.flush()
    return row


def confirmation_message(*, user: User, portal_name: str, address: str, link: str,
                         sender: str) -> EmailMessage:
    """The message that carries the link to the address being added."""
    message = EmailMessage()
    message["From"] = formataddr(("inboxlog", sender))
    message["To"] = address
    message["Subject"] = "Confirm the address you send from"
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    who = f"{user.name} <{user.email}>" if user.name else user.email
    text = (f"{who} asked to log the mail sent from {address} in the CRM account "
            f"\"{portal_name}\".\n\n"
            f"If that is you, confirm it (the link works once, for 48 hours):\n\n{link}\n\n"
            "If you did not ask for this, ignore this message: nothing changes until the "
            "link is followed.\n")
    # Plain 7bit when it can be, so the link reads whole even in the raw message.
    message.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
    return message
