"""Connected inboxes: connect (testing both logins), read, sync now; send through one.

The IMAP/SMTP work is the connector's (``core.inboxes.InboxConnector``), which the
composition root puts on ``app.state.inboxes``; this module parses, checks and maps.

A team inbox's own mailbox (``team_inbox_id``) is connected by the admin; the inbox's
members may read it and sync it now; anyone else gets a 404, as for the team inbox.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from core import inboxes, queries
from core.errors import StorageUnavailable
from core.inboxes import InboxConnector, InboxError, TeamMailboxConnector
from core.storage.models import Inbox as InboxRow
from core.tickets.inboxes import visible_inbox
from core.types import InboxErrorCode as E
from extension_api.auth import (
    Principal,
    authenticated,
    require_admin,
    require_owner,
    runtime_of,
)
from extension_api.endpoints._params import path_id
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.inboxes import (
    Inbox,
    InboxConnect,
    OAuthStart,
    SendRequest,
    inbox_of,
    sent_of,
    sync_report_of,
)
from extension_api.schemas.mail import email_of

# A failure to reach or use the user's mail servers, as an HTTP status.
STATUS: dict[E, int] = {
    E.NAME_NOT_FOUND: 422, E.CONNECTION_REFUSED: 422, E.TLS_FAILURE: 422,
    E.AUTH_REJECTED: 422, E.APP_PASSWORD_REQUIRED: 422, E.NO_IMAP: 422, E.NO_SMTP: 422,
    E.TIMEOUT: 504, E.UNREACHABLE: 502, E.IMAP_ERROR: 502, E.SEND_REJECTED: 502,
    E.THROTTLED: 429, E.MAILBOX_FULL: 507, E.DISCONNECTED: 409,
    # The server took the message and never answered: it may have been sent.
    E.SEND_UNCONFIRMED: 504,
    # Not a public address on a mail port (nor allowed by the operator): nothing was sent.
    E.DESTINATION_NOT_ALLOWED: 422,
    # The server broke a limit of the conversation (literal, line, reply, time, bytes).
    E.REMOTE_PROTOCOL_VIOLATION: 502,
    # This user or portal already has as many connections in progress as it may.
    E.TOO_MANY_CONNECTIONS: 429,
    # OAuth inboxes: the grant is gone or lacks mail access; the provider is down.
    E.OAUTH_REVOKED: 409, E.OAUTH_SCOPE_MISSING: 409, E.PROVIDER_UNAVAILABLE: 503,
}


def _connector(request: Request) -> InboxConnector:
    connector: InboxConnector | None = getattr(request.app.state, "inboxes", None)
    if connector is None:
        raise ApiError(503, ApiErrorCode.INBOXES_UNAVAILABLE,
                       "connected inboxes are not running here")
    return connector


def _team_connector(request: Request) -> TeamMailboxConnector:
    connector: TeamMailboxConnector | None = getattr(request.app.state, "inboxes", None)
    if connector is None or not hasattr(connector, "connect_team"):
        raise ApiError(503, ApiErrorCode.INBOXES_UNAVAILABLE,
                       "connected inboxes are not running here")
    return connector


async def _may_read(session: AsyncSession, principal: Principal, inbox: InboxRow) -> None:
    """A user's inbox: theirs or the admin's (a colleague's: 403); a team inbox's: its
    members' and the admin's (anyone else: 404, as the team inbox)."""
    if inbox.team_inbox_id is None:
        require_owner(principal, inbox.user_id, f"inbox {inbox.id}")
    else:
        await visible_inbox(session, principal.portal_id, principal.user_id,
                            inbox.team_inbox_id)


async def may_manage(session: AsyncSession, principal: Principal, inbox: InboxRow) -> None:
    """A user's inbox: theirs or the admin's (a colleague's: 403); a team inbox's: the
    admin's (its members: 403; anyone else: 404, as the team inbox)."""
    await _may_read(session, principal, inbox)
    if inbox.team_inbox_id is not None:
        require_admin(principal, "connecting or disconnecting a team inbox's mailbox")


async def team_authorization_url(request: Request, principal: Principal, provider: str,
                                 body: OAuthStart) -> str:
    """``POST /api/v1/inboxes/oauth/{provider}`` with ``team_inbox_id``: where the admin
    signs in to the team inbox's shared mailbox (raises OAuthError)."""
    assert body.team_inbox_id is not None
    await _require_team_admin(request, principal, body.team_inbox_id)
    return await _team_connector(request).team_authorization_url(
        principal.portal_id, body.team_inbox_id, provider, body.days())


def _require_user(principal: Principal) -> int:
    if principal.user_id is None:
        raise ApiError(403, ApiErrorCode.FORBIDDEN, "use the user's own token for their inbox")
    return principal.user_id


def _failure(exc: InboxError) -> ApiError:
    headers = ({"Retry-After": "60"}
               if exc.code in (E.THROTTLED, E.TOO_MANY_CONNECTIONS) else None)
    return ApiError(STATUS.get(exc.code, 502), exc.code, exc.message, headers)


async def _inbox_body(request: Request, portal_id: int, inbox_id: int) -> Inbox:
    async with runtime_of(request).db.read() as session:
        return inbox_of(await inboxes.get_inbox(session, portal_id, inbox_id))


async def _require_team_admin(request: Request, principal: Principal,
                              team_inbox_id: int) -> None:
    async with runtime_of(request).db.read() as session:
        # A user learns nothing of an inbox they are not in: 404 before 403.
        await visible_inbox(session, principal.portal_id, principal.user_id, team_inbox_id)
    require_admin(principal, "connecting a team inbox's mailbox")


async def _connect_team(request: Request, principal: Principal, body: InboxConnect,
                        team_inbox_id: int) -> Response:
    await _require_team_admin(request, principal, team_inbox_id)
    try:
        inbox_id = await _team_connector(request).connect_team(
            principal.portal_id, team_inbox_id, body.request())
    except InboxError as exc:
        raise _failure(exc) from None
    return respond(await _inbox_body(request, principal.portal_id, inbox_id), 201)


@authenticated
async def connect_inbox(request: Request, principal: Principal) -> Response:
    body = await read_body(request, InboxConnect)
    if body.team_inbox_id is not None:
        return await _connect_team(request, principal, body, body.team_inbox_id)
    user_id = _require_user(principal)
    try:
        inbox_id = await _connector(request).connect(principal.portal_id, user_id,
                                                     body.request())
    except InboxError as exc:
        raise _failure(exc) from None
    return respond(await _inbox_body(request, principal.portal_id, inbox_id), 201)


@authenticated
async def list_inboxes(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        query = inboxes.select_inboxes(principal.portal_id, principal.user_id)
        return respond({"items": [inbox_of(i) for i in await session.scalars(query)]})


@authenticated
async def get_inbox(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        inbox = await inboxes.get_inbox(session, principal.portal_id, path_id(request))
        await _may_read(session, principal, inbox)  # a colleague's: 403
        return respond(inbox_of(inbox))


@authenticated
async def sync_inbox(request: Request, principal: Principal) -> Response:
    inbox_id = path_id(request)
    async with runtime_of(request).db.read() as session:
        inbox = await inboxes.get_inbox(session, principal.portal_id, inbox_id)
        await _may_read(session, principal, inbox)  # a colleague's: 403
    try:
        report = await _connector(request).sync_now(principal.portal_id, inbox_id)
    except InboxError as exc:
        raise _failure(exc) from None
    return respond(sync_report_of(report))


@authenticated
async def send_email(request: Request, principal: Principal) -> Response:
    user_id = _require_user(principal)
    send = (await read_body(request, SendRequest)).request()
    try:
        result = await _connector(request).send(principal.portal_id, user_id, send)
    except InboxError as exc:
        raise _failure(exc) from None
    payload = sent_of(result)
    if result.email_id is not None:
        try:
            async with runtime_of(request).db.read() as session:
                email = await queries.email(session, principal.portal_id, result.email_id)
                payload.email = email_of(email)
        except StorageUnavailable:
            # Logged, only not readable now: the send must not look failed, and a 201
            # always carries its email, so this is a 202 that says so.
            payload.log_reason = (f"logged as email {result.email_id}, which cannot be "
                                  "read back right now; GET /api/v1/emails/"
                                  f"{result.email_id} later")
            return respond(payload, 202)
    # 201: sent and logged; 202: sent, logged later; 200: sent, not logged.
    status = {"logged": 201, "pending": 202}.get(result.log, 200)
    return respond(payload, status)
