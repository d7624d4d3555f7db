"""User management: the portal's admin lists its users and adds new ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import accounts
from core.storage.models import User
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.endpoints._params import json_object
from extension_api.errors import ApiError
from extension_api.schemas import iso

_MAX_ALIASES = 50


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name,
            # The addresses that are the user's: confirmed ones (the rest: .../addresses).
            "addresses": [a.address for a in user.addresses if a.confirmed_at is not None],
            "created_at": iso(user.created_at)}


@authenticated
async def list_users(request: Request, principal: Principal) -> Response:
    require_admin(principal, "listing the portal's users")
    async with runtime_of(request).db.read() as session:
        users = await session.scalars(
            select(User).where(User.portal_id == principal.portal_id)
            .options(selectinload(User.addresses)).order_by(User.id))
        return JSONResponse({"items": [user_json(u) for u in users]})


@authenticated
async def add_user(request: Request, principal: Principal) -> Response:
    """A new user with their addresses, and their first API token (shown once)."""
    require_admin(principal, "adding users")
    body = await json_object(request)
    if set(body) - {"email", "name", "aliases"}:
        raise ApiError(422, "invalid_input", "fields are email, name and aliases")
    email, name, aliases = body.get("email"), body.get("name", ""), body.get("aliases", [])
    if not isinstance(email, str) or not email.strip():
        raise ApiError(422, "invalid_input", "email is required")
    if not isinstance(name, str) or len(name) > 200:
        raise ApiError(422, "invalid_input", "name must be a string of at most 200 characters")
    if (not isinstance(aliases, list) or len(aliases) > _MAX_ALIASES
            or not all(isinstance(a, str) for a in aliases)):
        raise ApiError(422, "invalid_input",
                       f"aliases must be a list of at most {_MAX_ALIASES} addresses")
    async with runtime_of(request).db.transaction() as session:
        created = await accounts.add_user(session, principal.portal_id, email, name=name,
                                          aliases=tuple(aliases))
        await session.refresh(created.user, ["addresses"])
        result = {**user_json(created.user), "api_token": created.api_token}
    return JSONResponse(result, status_code=201)
