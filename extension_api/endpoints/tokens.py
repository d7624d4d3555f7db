"""API tokens: an extension install gets its own token, and can be cut off alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import accounts
from core.storage.models import ApiToken, User, utcnow
from extension_api.auth import Principal, authenticated, require_owner, runtime_of
from extension_api.endpoints._params import json_object, path_id
from extension_api.errors import ApiError
from extension_api.schemas import iso


def token_json(token: ApiToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "user_id": token.user_id,
            "created_at": iso(token.created_at), "revoked_at": iso(token.revoked_at)}


@authenticated
async def create(request: Request, principal: Principal) -> Response:
    """A new token for the caller; an admin may name another user of the portal."""
    body = await json_object(request)
    if set(body) - {"name", "user_id"}:
        raise ApiError(422, "invalid_input", "fields are name and user_id")
    name, user_id = body.get("name", ""), body.get("user_id", principal.user_id)
    if not isinstance(name, str) or len(name) > 200:
        raise ApiError(422, "invalid_input", "name must be a string of at most 200 characters")
    if user_id != principal.user_id and not principal.is_admin:
        raise ApiError(403, "forbidden", "only an admin token can create tokens for others")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ApiError(422, "invalid_input", "user_id must be a user id")
    async with runtime_of(request).db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None or user.portal_id != principal.portal_id:
            raise ApiError(404, "not_found", f"no user {user_id}")
        record, secret = await accounts.issue_token(session, user, name=name)
        body = {**token_json(record), "token": secret}
    return JSONResponse(body, status_code=201)


@authenticated
async def list_tokens(request: Request, principal: Principal) -> Response:
    query = select(ApiToken).where(ApiToken.portal_id == principal.portal_id)
    if principal.user_id is not None:
        query = query.where(ApiToken.user_id == principal.user_id)
    async with runtime_of(request).db.read() as session:
        tokens = (await session.scalars(query.order_by(ApiToken.id))).all()
    return JSONResponse({"items": [token_json(t) for t in tokens]})


@authenticated
async def revoke(request: Request, principal: Principal) -> Response:
    """Revoke a token at once (idempotent); a user may revoke only their own."""
    async with runtime_of(request).db.transaction() as session:
        token = await session.get(ApiToken, path_id(request))
        if token is None or token.portal_id != principal.portal_id:
            raise ApiError(404, "not_found", "no such token")
        require_owner(principal, token.user_id, f"token {token.id}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        body = token_json(token)
    return JSONResponse(body)
