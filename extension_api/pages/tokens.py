"""API tokens on a page: a user sees theirs (an admin, the portal's), makes a new one
(shown once) and revokes any of them at once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core import accounts, web_accounts
from core.storage.models import User
from extension_api.pages._web import (
    PageError,
    Viewer,
    form,
    redirect,
    render,
    runtime_of,
    signed_in,
)


async def _page(request: Request, viewer: Viewer, *, status: int = 200,
                secret: str = "") -> Response:
    async with runtime_of(request).db.read() as session:
        tokens = await web_accounts.tokens_of(session, viewer.account)
    return render(request, "tokens.html", status=status, tokens=tokens, secret=secret,
                  revoked=request.query_params.get("revoked", ""))


@signed_in
async def tokens_page(request: Request, viewer: Viewer) -> Response:
    return await _page(request, viewer)


@signed_in
async def create_token(request: Request, viewer: Viewer) -> Response:
    fields = await form(request)
    name = fields.get("name", "").strip()
    if not name or len(name) > 200:
        raise PageError(422, "No token made", "Give the token a name (up to 200 "
                        "characters), e.g. the machine or script that will use it.")
    async with runtime_of(request).db.transaction() as session:
        user = await session.get(User, viewer.user_id)
        assert user is not None
        _, secret = await accounts.issue_token(session, user, name=name)
    return await _page(request, viewer, status=201, secret=secret)


@signed_in
async def revoke_token(request: Request, viewer: Viewer) -> Response:
    await form(request)
    token_id = request.path_params["id"]
    async with runtime_of(request).db.transaction() as session:
        await web_accounts.revoke_token(session, viewer.account, token_id)
    return redirect(request, f"/tokens?revoked={token_id}")
