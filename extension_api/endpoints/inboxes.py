"""Connected inboxes: connect (testing both logins), read, sync now; send through one.

The IMAP/SMTP work is the connector's (``core.inboxes.InboxConnector``), which the
composition root puts on ``app.state.inboxes``; this module parses, checks and maps.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import inboxes, queries
from core.errors import StorageUnavailable
from core.inboxes import (
    SECURITY,
    ConnectRequest,
    Endpoint,
    InboxConnector,
    InboxError,
    SendRequest,
    SendResult,
    SyncReport,
)
from core.storage.models import Inbox
from extension_api.auth import Principal, authenticated, require_owner, runtime_of
from extension_api.endpoints._params import json_object, mail_fields, path_id
from extension_api.errors import ApiError
from extension_api.schemas import email_json, iso

# A failure to reach or use the user's mail servers, as an HTTP status.
STATUS = {
    "name_not_found": 422, "connection_refused": 422, "tls_failure": 422,
    "auth_rejected": 422, "app_password_required": 422, "no_imap": 422, "no_smtp": 422,
    "timeout": 504, "unreachable": 502, "imap_error": 502, "send_rejected": 502,
    "throttled": 429, "mailbox_full": 507, "disconnected": 409,
    # The server took the message and never answered: it may have been sent.
    "send_unconfirmed": 504,
    # Not a public address on a mail port (nor allowed by the operator): nothing was sent.
    "destination_not_allowed": 422,
    # The server broke a limit of the conversation (literal, line, reply, time, bytes).
    "remote_protocol_violation": 502,
    # This user or portal already has as many connections in progress as it may.
    "too_many_connections": 429,
    # OAuth inboxes: the grant is gone or lacks mail access; the provider is down.
    "oauth_revoked": 409, "oauth_scope_missing": 409, "provider_unavailable": 503,
}
_MAX_ADDRESSES = 100


def _connector(request: Request) -> InboxConnector:
    connector: InboxConnector | None = getattr(request.app.state, "inboxes", None)
    if connector is None:
        raise ApiError(503, "inboxes_unavailable", "connected inboxes are not running here")
    return connector


def _require_user(principal: Principal) -> int:
    if principal.user_id is None:
        raise ApiError(403, "forbidden", "use the user's own token for their inbox")
    return principal.user_id


def _failure(exc: InboxError) -> ApiError:
    headers = ({"Retry-After": "60"} if exc.code in ("throttled", "too_many_connections")
               else None)
    return ApiError(STATUS.get(exc.code, 502), exc.code, exc.message, headers)


def _bad(message: str) -> ApiError:
    return ApiError(422, "invalid_input", message)


def _string(body: dict[str, Any], name: str, *, required: bool = False,
            limit: int = 998) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(f"{name} must be a string of at most {limit} characters")
    if required and not value.strip():
        raise _bad(f"{name} is required")
    return value


def _endpoint(body: dict[str, Any], name: str) -> Endpoint | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"{name} must be an object {{host, port, security}}")
    host, port, security = value.get("host"), value.get("port"), value.get("security")
    if not isinstance(host, str) or not host.strip() or len(host) > 255:
        raise _bad(f"{name}.host is required")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise _bad(f"{name}.port must be an integer from 1 to 65535")
    if security not in SECURITY:
        raise _bad(f"{name}.security must be one of {', '.join(SECURITY)}")
    return Endpoint(host.strip(), port, security)


def _addresses(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name) or []
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or len(value) > _MAX_ADDRESSES
            or not all(isinstance(v, str) and "@" in v and len(v) <= 320 for v in value)):
        raise _bad(f"{name} must be a list of email addresses")
    return tuple(v.strip() for v in value)


def inbox_json(inbox: Inbox) -> dict[str, Any]:
    """An inbox as the API shows it: never its password."""
    return {
        "id": inbox.id, "user_id": inbox.user_id, "address": inbox.address,
        "username": inbox.username,
        "imap": {"host": inbox.imap_host, "port": inbox.imap_port,
                 "security": inbox.imap_security},
        "smtp": {"host": inbox.smtp_host, "port": inbox.smtp_port,
                 "security": inbox.smtp_security},
        "first_sync_days": inbox.first_sync_days, "status": inbox.status,
        "status_reason": inbox.status_reason, "last_sync_at": iso(inbox.last_sync_at),
        "status_code": inbox.status_code, "auth": inbox.auth,
        "oauth_provider": inbox.oauth_provider,
        "created_at": iso(inbox.created_at),
        "folders": [{"role": f.role, "name": f.name, "uidvalidity": f.uidvalidity,
                     "last_uid": f.last_uid, "synced_at": iso(f.synced_at),
                     "status": "failing" if f.error else "ok", "error": f.error}
                    for f in inbox.folders],
    }


def sent_json(result: SendResult) -> dict[str, Any]:
    """What became of a send the SMTP server accepted (``email`` is filled in by the
    caller when it was logged)."""
    return {
        "email": None, "email_id": result.email_id, "message_id": result.message_id,
        "logged": result.log == "logged", "log": result.log, "log_reason": result.log_reason,
        "sent_folder": result.sent_folder, "sent_copy_error": result.sent_copy_error,
        "sent_copy_error_code": result.sent_copy_error_code,
        "refused_recipients": [{"address": address, "reply": reply}
                               for address, reply in result.refused_recipients.items()],
    }


def report_json(report: SyncReport) -> dict[str, Any]:
    return {"inbox_id": report.inbox_id, "status": report.status, "folders": [
        {"role": f.role, "name": f.name, "headers_fetched": f.headers_fetched,
         "bodies_fetched": f.bodies_fetched, "logged": f.logged,
         "already_logged": f.already_logged, "last_uid": f.last_uid, "error": f.error}
        for f in report.folders]}


async def _inbox_body(request: Request, portal_id: int, inbox_id: int) -> dict[str, Any]:
    async with runtime_of(request).db.read() as session:
        return inbox_json(await inboxes.get_inbox(session, portal_id, inbox_id))


@authenticated
async def connect_inbox(request: Request, principal: Principal) -> Response:
    user_id = _require_user(principal)
    body = await json_object(request)
    days = body.get("first_sync_days", inboxes.DEFAULT_FIRST_SYNC_DAYS)
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
        raise _bad("first_sync_days must be an integer from 0 to 3650")
    connect = ConnectRequest(
        address=_string(body, "address", required=True, limit=320),
        password=_string(body, "password", required=True, limit=1000),
        username=_string(body, "username", limit=320),
        imap=_endpoint(body, "imap"), smtp=_endpoint(body, "smtp"), first_sync_days=days)
    try:
        inbox_id = await _connector(request).connect(principal.portal_id, user_id, connect)
    except InboxError as exc:
        raise _failure(exc) from None
    return JSONResponse(await _inbox_body(request, principal.portal_id, inbox_id), 201)


@authenticated
async def list_inboxes(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        query = inboxes.select_inboxes(principal.portal_id, principal.user_id)
        return JSONResponse({"items": [inbox_json(i) for i in await session.scalars(query)]})


@authenticated
async def get_inbox(request: Request, principal: Principal) -> Response:
    body = await _inbox_body(request, principal.portal_id, path_id(request))
    require_owner(principal, body["user_id"], f"inbox {body['id']}")  # a colleague's: 403
    return JSONResponse(body)


@authenticated
async def sync_inbox(request: Request, principal: Principal) -> Response:
    inbox_id = path_id(request)
    async with runtime_of(request).db.read() as session:
        inbox = await inboxes.get_inbox(session, principal.portal_id, inbox_id)
        require_owner(principal, inbox.user_id, f"inbox {inbox_id}")  # a colleague's: 403
    try:
        report = await _connector(request).sync_now(principal.portal_id, inbox_id)
    except InboxError as exc:
        raise _failure(exc) from None
    return JSONResponse(report_json(report))


@authenticated
async def send_email(request: Request, principal: Principal) -> Response:
    user_id = _require_user(principal)
    body = await json_object(request)
    mail_fields(body, addresses=("to", "cc", "bcc"), headers=("subject", "in_reply_to"))
    inbox_id = body.get("inbox_id")
    if inbox_id is not None and (not isinstance(inbox_id, int) or isinstance(inbox_id, bool)):
        raise _bad("inbox_id must be an integer")
    flags = {}
    for name in ("track_opens", "track_clicks"):
        flags[name] = body.get(name, False)
        if not isinstance(flags[name], bool):
            raise _bad(f"{name} must be true or false")
    send = SendRequest(
        to=_addresses(body, "to"), cc=_addresses(body, "cc"), bcc=_addresses(body, "bcc"),
        subject=_string(body, "subject"), text=_string(body, "text", limit=5_000_000),
        html=_string(body, "html", limit=5_000_000), inbox_id=inbox_id,
        in_reply_to=_string(body, "in_reply_to") or None,
        track_opens=flags["track_opens"], track_clicks=flags["track_clicks"])
    if not send.to:
        raise _bad("to is required")
    if not (send.text or send.html):
        raise _bad("give text or html")
    try:
        result = await _connector(request).send(principal.portal_id, user_id, send)
    except InboxError as exc:
        raise _failure(exc) from None
    payload = sent_json(result)
    if result.email_id is not None:
        try:
            async with runtime_of(request).db.read() as session:
                email = await queries.email(session, principal.portal_id, result.email_id)
                payload["email"] = email_json(email)
        except StorageUnavailable:
            # Logged, only not readable now: the send must not look failed, and a 201
            # always carries its email, so this is a 202 that says so.
            payload["log_reason"] = (f"logged as email {result.email_id}, which cannot be "
                                     "read back right now; GET /api/v1/emails/"
                                     f"{result.email_id} later")
            return JSONResponse(payload, 202)
    # 201: sent and logged; 202: sent, logged later; 200: sent, not logged.
    status = {"logged": 201, "pending": 202}.get(result.log, 200)
    return JSONResponse(payload, status)
