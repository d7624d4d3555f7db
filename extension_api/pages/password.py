"""Changing one's password while signed in: the current one, then the new one. Every
other session of the user ends and the extension's tokens are revoked
(``web_accounts.change_password``); this browser stays signed in with a new session.
Wrong current passwords count against the account's sign-in budget, so a stolen session
cannot guess its way to the password."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core import sessions, web_accounts
from core.errors import InvalidInput
from core.web_accounts import SignInFailed
from extension_api.pages._web import (
    PageError,
    Viewer,
    form,
    render,
    runtime_of,
    signed_in,
    start_session,
    web,
)


@signed_in
async def password_page(request: Request, viewer: Viewer) -> Response:
    return render(request, "password.html", error="",
                  has_password=bool(viewer.account.login.password_hash))


@signed_in
async def change_password(request: Request, viewer: Viewer) -> Response:
    fields = await form(request)
    if wait := await web(request).sign_in_per_account.attempt(
            web_accounts.attempt_key(viewer.account.user.email), runtime_of(request)):
        raise PageError(429, "Too many attempts",
                        f"Too many attempts. Try again in {wait} seconds.",
                        {"Retry-After": str(wait)})
    has_password = bool(viewer.account.login.password_hash)
    try:
        async with runtime_of(request).db.transaction() as session:
            account = await web_accounts.account(session, viewer.user_id)
            await web_accounts.change_password(session, account, fields.get("current", ""),
                                               fields.get("password", ""))
            started = await sessions.start(session, account,
                                           user_agent=request.headers.get("user-agent", ""))
    except SignInFailed as exc:
        return render(request, "password.html", status=401, error=exc.message,
                      has_password=has_password)
    except InvalidInput as exc:
        return render(request, "password.html", status=422, error=exc.message,
                      has_password=has_password)
    start_session(request, started.token)
    return render(request, "message.html", title="Password changed", state="password-changed",
                  message="Your password is changed. You are signed out everywhere else, "
                  "and the browser extension signs in again; your other API tokens keep "
                  "working (revoke them on the Tokens page).")
