"""A user's sender addresses: add one (a confirmation link is mailed to it), list them,
remove one; and the confirmation page the link opens.

The user manages their own, the portal's admin anyone's; another user's are 403, another
portal's 404. The link's page (GET) only shows what it confirms; its button (POST)
confirms, so a mail scanner that opens every link confirms nothing.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from core import user_addresses
from core.errors import (
    ConfirmationExpired,
    ConfirmationInvalid,
    CoreError,
    NotFound,
    RelayFailed,
)
from core.storage.models import Portal, User, UserAddress
from extension_api.auth import Principal, authenticated, require_owner, runtime_of
from extension_api.endpoints._params import json_object, path_id
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.account import (
    UserAddressRequest,
    added_user_address_of,
    user_address_of,
)

_MAX_FORM = 4096


async def _user(session: AsyncSession, principal: Principal, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or user.portal_id != principal.portal_id:
        raise NotFound(f"no user {user_id}")
    require_owner(principal, user.id, f"user {user_id}'s addresses")
    return user


@authenticated
async def list_addresses(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        user = await _user(session, principal, path_id(request))
        rows = sorted(user.addresses, key=lambda a: a.id)
        return respond({"items": [user_address_of(a, user) for a in rows]})


@authenticated
async def add_address(request: Request, principal: Principal) -> Response:
    """An unconfirmed address; its confirmation link goes to it through the operator's
    relay (409 smtp_relay_not_configured without one, before anything is stored)."""
    runtime = runtime_of(request)
    sender = runtime.settings.outbound_mail
    body = await read_body(request, UserAddressRequest)
    async with runtime.db.transaction() as session:
        user = await _user(session, principal, path_id(request))
        requested = await user_addresses.request(session, user, body.address)
        portal = await session.get(Portal, user.portal_id)
        assert portal is not None
        link = (f"{runtime.settings.base_url.rstrip('/')}/confirm-address?"
                + urlencode({"token": requested.token}))
        message = user_addresses.confirmation_message(
            user=user, portal_name=portal.name, address=requested.address.address,
            link=link, sender=sender.sender)
        result = added_user_address_of(requested.address, user)
    try:
        await sender.send(message, requested.address.address)
    except RelayFailed:
        # The link never went out: it must not count as sent (a retry is allowed at once).
        async with runtime.db.transaction() as session:
            await session.execute(update(UserAddress).where(
                UserAddress.id == result.id).values(requested_at=None,
                                                       confirm_token_hash=None))
        raise
    return respond(result, 201)


@authenticated
async def remove_address(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.transaction() as session:
        user = await _user(session, principal, path_id(request))
        row = await user_addresses.remove(session, user, path_id(request, "address_id"))
        return respond(user_address_of(row, user))


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _page(title: str, text: str, *, status: int = 200, form_token: str | None = None,
          state: str = "") -> HTMLResponse:
    form = ""
    if form_token is not None:
        form = ("<form method=post action=/confirm-address>"
                f"<input type=hidden name=token value=\"{html.escape(form_token)}\">"
                "<button type=submit>Confirm</button></form>")
    page = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
            f"<body><h1>{title}</h1><p id=result data-state={state}>{html.escape(text)}</p>"
            f"{form}</body></html>")
    return HTMLResponse(page, status, headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
        # Its button must not be clicked through another site's frame.
        "Content-Security-Policy": "default-src 'none'; base-uri 'none'; "
                                   "form-action 'self'; frame-ancestors 'none'"})


def _failure(request: Request, exc: CoreError) -> Response:
    status = 410 if isinstance(exc, ConfirmationExpired) else 404
    if _wants_json(request):
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status,
                            headers={"Cache-Control": "no-store"})
    return _page("Address not confirmed", exc.message, status=status, state=exc.code)


async def confirm_page(request: Request) -> Response:
    """GET: what the link confirms, and a button; nothing changes yet."""
    token = request.query_params.get("token", "")
    try:
        async with runtime_of(request).db.read() as session:
            row = await user_addresses.pending(session, token)
            address = row.address
    except (ConfirmationInvalid, ConfirmationExpired) as exc:
        return _failure(request, exc)
    if _wants_json(request):
        return JSONResponse({"address": address, "confirmed": False},
                            headers={"Cache-Control": "no-store"})
    return _page("Confirm your address", f"Confirm that you send mail from {address}.",
                 form_token=token, state="pending")


async def confirm(request: Request) -> Response:
    """POST (the page's form, or JSON {"token"}): confirm; the token is spent."""
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        raise ApiError(413, ApiErrorCode.TOO_LARGE, "the body is one token")
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await json_object(request)
        token = body.get("token") if isinstance(body.get("token"), str) else ""
    else:
        token = (parse_qs(raw.decode(errors="replace")).get("token") or [""])[0]
    try:
        async with runtime_of(request).db.transaction() as session:
            row = await user_addresses.confirm(session, str(token))
            address = row.address
    except (ConfirmationInvalid, ConfirmationExpired) as exc:
        return _failure(request, exc)
    if _wants_json(request) or request.headers.get("content-type", "").startswith(
            "application/json"):
        return JSONResponse({"address": address, "confirmed": True},
                            headers={"Cache-Control": "no-store"})
    return _page("Address confirmed", f"{address} is confirmed: mail you send from it is "
                 "logged as yours.", state="confirmed")
