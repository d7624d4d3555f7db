"""Bearer-token authentication: who is calling and which portal they may see."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from core import accounts
from core.runtime import Runtime
from extension_api.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="inboxlog"'}


@dataclass(frozen=True)
class Principal:
    portal_id: int
    user_id: int | None  # None for an admin token

    @property
    def is_admin(self) -> bool:
        return self.user_id is None


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing bearer token", _CHALLENGE)
    async with runtime_of(request).db.read() as session:
        found = await accounts.token_owner(session, token.strip())
    if found is None:
        raise ApiError(401, "unauthorized", "invalid or revoked token", _CHALLENGE)
    return Principal(found.portal_id, found.user_id)


Endpoint = Callable[[Request, Principal], Awaitable[Response]]


def authenticated(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint taking ``(request, principal)`` into a Starlette endpoint."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        return await endpoint(request, await authenticate(request))

    return wrapper
