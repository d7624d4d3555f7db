"""API tokens: an extension install gets its own token, and can be cut off alone."""

from __future__ import annotations

from msgspec import UNSET
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from core import accounts
from core.storage.models import ApiToken, User, utcnow
from extension_api.auth import Principal, authenticated, require_owner, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.account import TokenRequest, new_token_of, token_of


@authenticated
async def create(request: Request, principal: Principal) -> Response:
    """A new token for the caller; an admin may name another user of the portal."""
    body = await read_body(request, TokenRequest)
    user_id = principal.user_id if body.user_id is UNSET else body.user_id
    if user_id != principal.user_id and not principal.is_admin:
        raise ApiError(403, ApiErrorCode.FORBIDDEN,
                       "only an admin token can create tokens for others")
    if user_id is None:
        raise ApiError(422, ApiErrorCode.INVALID_INPUT, "user_id must be a user id")
    async with runtime_of(request).db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None or user.portal_id != principal.portal_id:
            raise ApiError(404, ApiErrorCode.NOT_FOUND, f"no user {user_id}")
        record, secret = await accounts.issue_token(session, user, name=body.name)
        created = new_token_of(record, secret)
    return respond(created, 201)


@authenticated
async def list_tokens(request: Request, principal: Principal) -> Response:
    query = select(ApiToken).where(ApiToken.portal_id == principal.portal_id)
    if principal.user_id is not None:
        query = query.where(ApiToken.user_id == principal.user_id)
    async with runtime_of(request).db.read() as session:
        tokens = (await session.scalars(query.order_by(ApiToken.id))).all()
    return respond({"items": [token_of(t) for t in tokens]})


@authenticated
async def revoke(request: Request, principal: Principal) -> Response:
    """Revoke a token at once (idempotent); a user may revoke only their own."""
    async with runtime_of(request).db.transaction() as session:
        token = await session.get(ApiToken, path_id(request))
        if token is None or token.portal_id != principal.portal_id:
            raise ApiError(404, ApiErrorCode.NOT_FOUND, "no such token")
        require_owner(principal, token.user_id, f"token {token.id}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        revoked = token_of(token)
    return respond(revoked)
