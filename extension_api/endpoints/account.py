"""Who am I, and the portal's logging settings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import accounts
from core.models import Portal, User
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.endpoints._params import json_object
from extension_api.schemas import me_json


@authenticated
async def me(request: Request, principal: Principal) -> Response:
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        portal = await session.get(Portal, principal.portal_id)
        user = await session.get(User, principal.user_id) if principal.user_id else None
        assert portal is not None
        return JSONResponse(me_json(portal, user, runtime.settings.bcc_domain))


@authenticated
async def get_settings(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        portal = await session.get(Portal, principal.portal_id)
        assert portal is not None
        return JSONResponse(accounts.portal_settings(portal))


@authenticated
async def patch_settings(request: Request, principal: Principal) -> Response:
    require_admin(principal, "changing the portal's settings (and its never-log list)")
    changes = await json_object(request)
    async with runtime_of(request).db.transaction() as session:
        portal = await session.get(Portal, principal.portal_id)
        assert portal is not None
        accounts.update_settings(portal, changes)
        body = accounts.portal_settings(portal)
    return JSONResponse(body)


async def settings(request: Request) -> Response:
    """GET and PATCH on one route, so a 405 lists both in Allow."""
    handler = patch_settings if request.method == "PATCH" else get_settings
    return await handler(request)
