"""User management: the portal's admin lists its users and adds new ones."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import Response

from core import accounts
from core.storage.models import User
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.schemas import read_body, respond
from extension_api.schemas.account import UserRequest, new_user_of, user_of


@authenticated
async def list_users(request: Request, principal: Principal) -> Response:
    require_admin(principal, "listing the portal's users")
    async with runtime_of(request).db.read() as session:
        users = await session.scalars(
            select(User).where(User.portal_id == principal.portal_id)
            .options(selectinload(User.addresses)).order_by(User.id))
        return respond({"items": [user_of(u) for u in users]})


@authenticated
async def add_user(request: Request, principal: Principal) -> Response:
    """A new user with their addresses, and their first API token (shown once)."""
    require_admin(principal, "adding users")
    body = await read_body(request, UserRequest)
    async with runtime_of(request).db.transaction() as session:
        created = await accounts.add_user(session, principal.portal_id, body.email,
                                          name=body.name, aliases=tuple(body.aliases))
        await session.refresh(created.user, ["addresses"])
        result = new_user_of(created.user, created.api_token)
    return respond(result, 201)
