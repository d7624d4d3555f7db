"""Connecting an inbox with OAuth 2.0: the authorization URL, the provider's redirect
back (``/oauth/callback``), the result page, and disconnecting (revoking the grant).

The work is the connector's (``core.oauth.OAuthConnector``, on ``app.state.inboxes``).
The callback is opened by the user's browser, without a token: the signed ``state`` says
who asked. It never answers 500: every outcome is a redirect to the result page.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core import inboxes
from core.errors import CoreError
from core.inboxes import InboxError
from core.oauth import OAuthConnector, OAuthError
from core.types import InboxErrorCode as E
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.endpoints.inboxes import (
    _failure,
    _require_user,
    may_manage,
    team_authorization_url,
)
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.inboxes import OAuthStart, OAuthStarted, inbox_of

log = logging.getLogger(__name__)

RESULT_PATH = "/oauth/result"
_STATUS = {E.OAUTH_NOT_CONFIGURED: 404, E.PROVIDER_UNAVAILABLE: 503,
           E.DESTINATION_NOT_ALLOWED: 502}
# What the result page says for each outcome (the code comes back in its URL).
_TEXTS = {
    "connected": "The inbox is connected. Its mail is syncing now; you can close this page.",
    "reconnected": "The inbox is connected again; sync resumes where it stopped.",
    "oauth_denied": "Access was not granted at the provider, so nothing was connected.",
    "oauth_state_invalid": "This sign-in link is not valid any more (it is used once and "
                           "expires after 10 minutes). Start connecting the inbox again.",
    "oauth_scope_missing": "The provider did not grant access to mail. Connect again "
                           "and allow reading and sending mail.",
    "oauth_revoked": "The provider refused the sign-in. Connect again.",
    "provider_unavailable": "The provider could not be reached. Try again in a few "
                            "minutes.",
}


def _connector(request: Request) -> OAuthConnector:
    connector: OAuthConnector | None = getattr(request.app.state, "inboxes", None)
    if connector is None:
        raise ApiError(503, ApiErrorCode.INBOXES_UNAVAILABLE,
                       "connected inboxes are not running here")
    return connector


@authenticated
async def start(request: Request, principal: Principal) -> Response:
    """The authorization URL to open in the user's browser (the admin's, for a team
    inbox's mailbox: ``team_inbox_id``)."""
    body = await read_body(request, OAuthStart, optional=True)
    provider = request.path_params["provider"]
    try:
        if body.team_inbox_id is not None:
            url = await team_authorization_url(request, principal, provider, body)
        else:
            url = await _connector(request).authorization_url(
                principal.portal_id, _require_user(principal), provider, body.days())
    except OAuthError as exc:
        raise ApiError(_STATUS.get(exc.code, 422), exc.code, exc.message) from None
    return respond(OAuthStarted(provider=provider, authorization_url=url, expires_in=600))


def _result(request: Request, status: str, code: str, inbox_id: int | None = None
            ) -> Response:
    query = {"status": status, "code": code}
    if inbox_id is not None:
        query["inbox_id"] = str(inbox_id)
    return RedirectResponse(f"{RESULT_PATH}?{urlencode(query)}", 303)


async def callback(request: Request) -> Response:
    """The provider sends the browser back here with ``code`` and ``state`` (or
    ``error``); always a redirect to the result page."""
    params = request.query_params
    state, code = params.get("state", ""), params.get("code", "")
    if params.get("error"):
        return _result(request, "failed", E.OAUTH_DENIED)
    if not state or not code:
        return _result(request, "failed", E.OAUTH_STATE_INVALID)
    try:
        result = await _connector(request).complete_authorization(state, code)
    except (OAuthError, InboxError) as exc:
        log.info("OAuth connect failed: %s (%s)", exc.code, exc.message)
        return _result(request, "failed", exc.code)
    except CoreError as exc:
        log.info("OAuth connect failed: %s", exc.message)
        return _result(request, "failed", exc.code)
    except Exception:
        log.exception("OAuth connect failed")
        return _result(request, "failed", E.OAUTH_FAILED)
    return _result(request, "connected",
                   "reconnected" if result.reconnected else "connected", result.inbox_id)


async def result_page(request: Request) -> Response:
    """A minimal page for the browser that went through the provider."""
    params = request.query_params
    status = "connected" if params.get("status") == "connected" else "failed"
    code = params.get("code", "")
    text = _TEXTS.get(code, "Connecting the inbox failed"
                      + (f" ({code})." if code.replace("_", "").isalnum() else "."))
    title = "Inbox connected" if status == "connected" else "Inbox not connected"
    page = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
            f"<body><h1>{title}</h1><p id=result data-status={status} "
            f"data-code=\"{html.escape(code)}\">{html.escape(text)}</p></body></html>")
    return HTMLResponse(page, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY", "Content-Security-Policy":
            "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"})


@authenticated
async def disconnect(request: Request, principal: Principal) -> Response:
    """The user disconnects the inbox: the grant is revoked at the provider (OAuth),
    the credentials forgotten, syncing stops; the checkpoints stay."""
    inbox_id = path_id(request)
    async with runtime_of(request).db.read() as session:
        inbox = await inboxes.get_inbox(session, principal.portal_id, inbox_id)
        await may_manage(session, principal, inbox)  # a team inbox's: its admin's
    try:
        await _connector(request).disconnect(principal.portal_id, inbox_id)
    except InboxError as exc:
        raise _failure(exc) from None
    async with runtime_of(request).db.read() as session:
        return respond(inbox_of(await inboxes.get_inbox(
            session, principal.portal_id, inbox_id)))
