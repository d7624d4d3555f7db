"""Shapes of who calls and what they manage: the caller, the portal's settings and
logging address, tokens, users and their sender addresses, the ingest log, health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from core import accounts, user_addresses
from core.sender_auth import SenderAuthPolicy
from core.storage.models import ApiToken, Portal
from core.storage.models import IngestLogEntry as IngestLogRow
from core.storage.models import User as UserRow
from core.storage.models import UserAddress as UserAddressRow
from core.types import InboxLogMode, NotLoggedReason, Role
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp
from extension_api.schemas.mail import Id

T = TypeVar("T")


class ErrorBody(ResponseShape):
    code: str
    message: str


class Error(ResponseShape):
    """Every error: a stable machine code and a message for people."""

    error: ErrorBody


class MePortal(ResponseShape):
    id: Id
    name: str
    bcc_address: str


class MeUser(ResponseShape):
    id: Id
    email: str
    name: str
    addresses: list[str]


class Me(ResponseShape):
    """The caller (the portal's admin, or one of its users), their portal and its
    logging address."""

    role: Role
    portal: MePortal
    user: MeUser | None


def _confirmed(user: UserRow) -> list[str]:
    # The addresses that are the user's: confirmed ones (the rest: .../addresses).
    return [a.address for a in user.addresses if a.confirmed_at is not None]


def me_of(portal: Portal, user: UserRow | None, bcc_domain: str) -> Me:
    return Me(
        role=Role.ADMIN if user is None else Role.USER,
        portal=MePortal(id=portal.id, name=portal.name,
                        bcc_address=f"{portal.bcc_token}@{bcc_domain}"),
        user=None if user is None else MeUser(id=user.id, email=user.email, name=user.name,
                                              addresses=_confirmed(user)))


_SENDER_AUTH_DOC = ("sender authentication of mail at the logging address: enforce refuses "
                    "mail claiming a user whose domain is not proven (550 5.7.1) and "
                    "threads no forged reply; monitor only records; off checks nothing")
_LOG_MODE_DOC = ("connected inboxes log replies to logged threads only, or also all mail "
                 "with known contacts")


class Settings(ResponseShape):
    """The portal's logging settings."""

    log_attachments: bool
    auto_create_contacts: bool
    never_log: Annotated[list[str], Meta(
        description="addresses and domains whose mail is never logged")]
    inbox_log_mode: Annotated[InboxLogMode, Meta(description=_LOG_MODE_DOC)]
    sender_auth: Annotated[SenderAuthPolicy, Meta(description=_SENDER_AUTH_DOC)]


def settings_of(portal: Portal) -> Settings:
    return Settings(log_attachments=portal.log_attachments,
                    auto_create_contacts=portal.auto_create_contacts,
                    never_log=list(portal.never_log),
                    inbox_log_mode=InboxLogMode(portal.inbox_log_mode),
                    sender_auth=SenderAuthPolicy(portal.sender_auth))


class SettingsPatch(RequestShape):
    """The settings to change; the others stay as they are."""

    log_attachments: bool | UnsetType = UNSET
    auto_create_contacts: bool | UnsetType = UNSET
    never_log: Annotated[list[str], Meta(max_length=accounts.MAX_NEVER_LOG)] | UnsetType = UNSET
    inbox_log_mode: InboxLogMode | UnsetType = UNSET
    sender_auth: Annotated[SenderAuthPolicy, Meta(
        description=_SENDER_AUTH_DOC)] | UnsetType = UNSET

    def change(self) -> accounts.SettingsChange:
        return accounts.SettingsChange(
            log_attachments=_given(self.log_attachments),
            auto_create_contacts=_given(self.auto_create_contacts),
            never_log=_given(self.never_log), inbox_log_mode=_given(self.inbox_log_mode),
            sender_auth=_given(self.sender_auth))


def _given(value: T | UnsetType) -> T | None:
    """A field of a partial change: None when the body left it out."""
    return None if isinstance(value, UnsetType) else value


DEFAULT_GRACE_DAYS = 7


class RotateRequest(RequestShape):
    grace_days: Annotated[int, Meta(ge=0, le=accounts.MAX_GRACE_DAYS)] = DEFAULT_GRACE_DAYS


class Rotated(ResponseShape):
    bcc_address: str
    previous_address: str
    previous_valid_until: Timestamp


class Token(ResponseShape):
    id: Id
    name: str
    user_id: int | None
    created_at: Timestamp
    revoked_at: Timestamp | None


class NewToken(Token):
    token: Annotated[str, Meta(description="the bearer token; shown only this once")]


def _token_fields(token: ApiToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "user_id": token.user_id,
            "created_at": token.created_at, "revoked_at": token.revoked_at}


def token_of(token: ApiToken) -> Token:
    return Token(**_token_fields(token))


def new_token_of(token: ApiToken, secret: str) -> NewToken:
    return NewToken(**_token_fields(token), token=secret)


class TokenRequest(RequestShape):
    """A new token's name, and (an admin only) the user it is for."""

    name: Annotated[str, Meta(max_length=200)] = ""
    user_id: Annotated[int, Meta(ge=1)] | UnsetType = UNSET


class User(ResponseShape):
    id: Id
    email: str
    name: str
    addresses: list[str]
    created_at: Timestamp


class NewUser(User):
    api_token: Annotated[str, Meta(
        description="the user's bearer token; shown only this once")]


def _user_fields(user: UserRow) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name,
            "addresses": _confirmed(user), "created_at": user.created_at}


def user_of(user: UserRow) -> User:
    return User(**_user_fields(user))


def new_user_of(user: UserRow, api_token: str) -> NewUser:
    return NewUser(**_user_fields(user), api_token=api_token)


MAX_ALIASES = 50


class UserRequest(RequestShape):
    email: str
    name: Annotated[str, Meta(max_length=200)] = ""
    aliases: Annotated[list[str], Meta(max_length=MAX_ALIASES)] = msgspec.field(
        default_factory=list)

    def __post_init__(self) -> None:
        if not self.email.strip():
            raise ValueError("email is required")


class UserAddress(ResponseShape):
    id: Id
    address: str
    primary: bool
    confirmed: Annotated[bool, Meta(
        description="only a confirmed address is the user's: mail from it logs as theirs")]
    confirmed_at: Timestamp | None
    confirmation_expires_at: Annotated[Timestamp | None, Meta(
        description="when the link sent to it stops working (unconfirmed only)")]


class AddedUserAddress(UserAddress):
    confirmation_sent: bool


def _address_fields(row: UserAddressRow, user: UserRow) -> dict[str, Any]:
    expires: datetime | None = None
    if row.confirmed_at is None and row.requested_at is not None:
        expires = row.requested_at + user_addresses.CONFIRM_FOR
    return {"id": row.id, "address": row.address, "primary": row.address == user.email,
            "confirmed": row.confirmed_at is not None, "confirmed_at": row.confirmed_at,
            "confirmation_expires_at": expires}


def user_address_of(row: UserAddressRow, user: UserRow) -> UserAddress:
    return UserAddress(**_address_fields(row, user))


def added_user_address_of(row: UserAddressRow, user: UserRow) -> AddedUserAddress:
    return AddedUserAddress(**_address_fields(row, user), confirmation_sent=True)


class UserAddressRequest(RequestShape):
    address: Annotated[str, Meta(max_length=320)]


class IngestLogEntry(ResponseShape):
    """A message received and not logged, and why."""

    id: Id
    at: Timestamp
    logging_address: str
    sender: str
    envelope_sender: str
    message_id: str | None
    source: str
    reason_code: NotLoggedReason
    reason: str
    size: int


def ingest_log_entry_of(entry: IngestLogRow) -> IngestLogEntry:
    return IngestLogEntry(
        id=entry.id, at=entry.at, logging_address=entry.logging_address,
        sender=entry.sender, envelope_sender=entry.envelope_sender,
        message_id=entry.message_id, source=entry.source,
        reason_code=NotLoggedReason(entry.reason_code), reason=entry.reason, size=entry.size)


class Health(ResponseShape):
    status: Literal["ok", "unavailable"]
    database: str
