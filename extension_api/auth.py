"""Bearer-token authentication: who is calling and which portal they may see."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from core import accounts
from core.runtime import Runtime
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.throttle import RateLimiter

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="inboxlog"'}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user of a portal, or the portal's admin (a token with no user)."""

    portal_id: int
    user_id: int | None  # None for an admin token
    token_id: int = 0

    @property
    def is_admin(self) -> bool:
        return self.user_id is None

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "user"

    @property
    def caller(self) -> str:
        """The key of the caller's budgets (requests, streams): a user's tokens share one."""
        return f"token:{self.token_id}" if self.is_admin else f"user:{self.user_id}"


def require_admin(principal: Principal, action: str) -> None:
    """403 unless the caller is the portal's admin; ``action`` names what was refused."""
    if not principal.is_admin:
        raise ApiError(403, ApiErrorCode.FORBIDDEN,
                       f"{action} is for the portal's admin: use an admin token")


def require_owner(principal: Principal, owner_id: int | None, what: str) -> None:
    """403 unless the caller is the admin or the user ``owner_id`` (``what`` is theirs).

    Only for objects of the caller's own portal: another portal's stay 404.
    """
    if not principal.is_admin and owner_id != principal.user_id:
        raise ApiError(403, ApiErrorCode.FORBIDDEN,
                       f"{what} belongs to another user of the portal: "
                       "only they or the portal's admin may do this")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, ApiErrorCode.UNAUTHORIZED, "missing bearer token", _CHALLENGE)
    async with runtime_of(request).db.read() as session:
        found = await accounts.token_owner(session, token.strip())
    if found is None:
        raise ApiError(401, ApiErrorCode.UNAUTHORIZED, "invalid or revoked token", _CHALLENGE)
    principal = Principal(found.portal_id, found.user_id, found.id)
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        await limiter.enforce(principal.caller, runtime_of(request))
    return principal


Endpoint = Callable[[Request, Principal], Awaitable[Response]]


def authenticated(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint taking ``(request, principal)`` into a Starlette endpoint."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        return await endpoint(request, await authenticate(request))

    return wrapper
