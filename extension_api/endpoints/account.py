"""Who am I, and the portal's logging settings."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from core import accounts
from core.storage.models import Portal, User
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.schemas import read_body, respond
from extension_api.schemas.account import (
    Rotated,
    RotateRequest,
    SettingsPatch,
    me_of,
    settings_of,
)


@authenticated
async def me(request: Request, principal: Principal) -> Response:
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        portal = await session.get(Portal, principal.portal_id)
        user = await session.get(User, principal.user_id) if principal.user_id else None
        assert portal is not None
        return respond(me_of(portal, user, runtime.settings.bcc_domain))


@authenticated
async def get_settings(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        portal = await session.get(Portal, principal.portal_id)
        assert portal is not None
        return respond(settings_of(portal))


@authenticated
async def patch_settings(request: Request, principal: Principal) -> Response:
    require_admin(principal, "changing the portal's settings (and its never-log list)")
    patch = await read_body(request, SettingsPatch)
    async with runtime_of(request).db.transaction() as session:
        portal = await session.get(Portal, principal.portal_id)
        assert portal is not None
        accounts.update_settings(portal, patch.change())
        body = settings_of(portal)
    return respond(body)


@authenticated
async def rotate_logging_address(request: Request, principal: Principal) -> Response:
    """A new logging address; the old one keeps working for ``grace_days`` (default 7,
    0 to 90), then answers 550 5.1.1 with a hint. Admin only."""
    require_admin(principal, "rotating the portal's logging address")
    body = await read_body(request, RotateRequest, optional=True)
    runtime = runtime_of(request)
    domain = runtime.settings.bcc_domain
    async with runtime.db.transaction() as session:
        portal = await session.get(Portal, principal.portal_id)
        assert portal is not None
        accounts.rotate_logging_address(portal, timedelta(days=body.grace_days))
        assert portal.previous_token_expires_at is not None
        result = Rotated(bcc_address=f"{portal.bcc_token}@{domain}",
                         previous_address=f"{portal.previous_bcc_token}@{domain}",
                         previous_valid_until=portal.previous_token_expires_at)
    return respond(result)


async def settings(request: Request) -> Response:
    """GET and PATCH on one route, so a 405 lists both in Allow."""
    handler = patch_settings if request.method == "PATCH" else get_settings
    return await handler(request)
