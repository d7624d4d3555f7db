"""Signing in and out: password, a one-time link by mail, password reset, invitations
and a new portal's set-up link.

A link's page (GET) only shows what it does; its button (POST) does it, so a mail
scanner that opens every link signs nobody in. Asking for a link never tells whether
the address has an account.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from core import sessions, web_accounts
from core.errors import InvalidInput, RelayFailed, RelayNotConfigured
from core.outbound_mail import OutboundMail
from core.runtime import Runtime
from core.storage.models import User
from core.web_accounts import Account, LinkInvalid, LinkPurpose, SignInFailed
from extension_api.pages._web import (
    SESSION_COOKIE,
    PageError,
    client_address,
    end_session,
    form,
    public,
    redirect,
    render,
    runtime_of,
    safe_next,
    start_session,
    web,
)

log = logging.getLogger(__name__)

_LINK_TITLES = {
    LinkPurpose.SIGN_IN: "Sign in",
    LinkPurpose.RESET: "Choose a new password",
    LinkPurpose.INVITE: "Join your team on inboxlog",
    LinkPurpose.SETUP: "Set up your portal",
}


@public
async def home(request: Request) -> Response:
    return redirect(request, "/setup" if request.state.viewer else "/sign-in")


@public
async def sign_in_page(request: Request) -> Response:
    if request.state.viewer is not None:
        return redirect(request, safe_next(request.query_params.get("next", "/")))
    return render(request, "sign_in.html", next=safe_next(request.query_params.get("next", "/")),
                  email="", error="")


async def _begin(request: Request, account: Account) -> None:
    """Start a session for ``account`` (ending the browser's previous one, if any)."""
    async with runtime_of(request).db.transaction() as session:
        if old := web(request).session_token(request.cookies.get(SESSION_COOKIE, "")):
            await sessions.end(session, old)
        started = await sessions.start(session, account,
                                       user_agent=request.headers.get("user-agent", ""))
    start_session(request, started.token)


def _wait(seconds: int) -> PageError:
    return PageError(429, "Too many attempts",
                     f"Too many sign-in attempts. Try again in {seconds} seconds.",
                     {"Retry-After": str(seconds)})


@public
async def sign_in(request: Request) -> Response:
    fields = await form(request)
    email, password = fields.get("email", "").strip(), fields.get("password", "")
    target = safe_next(fields.get("next", "/"))
    state = web(request)
    for limiter, key in ((state.sign_in_per_client, client_address(request)),
                         (state.sign_in_per_account, web_accounts.attempt_key(email))):
        if wait := await limiter.attempt(key, runtime_of(request)):
            raise _wait(wait)
    try:
        async with runtime_of(request).db.transaction() as session:
            account = await web_accounts.check_password(session, email, password)
    except SignInFailed as exc:
        return render(request, "sign_in.html", status=401, next=target, email=email,
                      error=exc.message)
    await _begin(request, account)
    return redirect(request, target)


@public
async def sign_out(request: Request) -> Response:
    await form(request)
    if token := web(request).session_token(request.cookies.get(SESSION_COOKIE, "")):
        async with runtime_of(request).db.transaction() as session:
            await sessions.end(session, token)
    end_session(request)
    request.state.viewer = None
    return render(request, "message.html", title="Signed out",
                  message="You are signed out.", state="signed-out")


async def _mail_links(request: Request, email: str, purpose: LinkPurpose) -> Response:
    """Mail a link of ``purpose`` to every account of ``email``; the same answer
    whether there is one or not (but for a server that sends no mail at all)."""
    state = web(request)
    runtime = runtime_of(request)
    if (wait := await state.mail_per_address.attempt(web_accounts.attempt_key(email), runtime)
            or await state.sign_in_per_client.attempt(client_address(request), runtime)):
        raise _wait(wait)
    try:
        sender = runtime.settings.outbound_mail
    except RelayNotConfigured:
        raise PageError(409, "No mail from this server",
                        "This server sends no mail (its operator configured no SMTP "
                        "relay), so it cannot send you a link. Ask your admin for a "
                        "sign-in link instead.") from None
    response = render(request, "message.html", title="Check your mail", state="link-sent",
                      message=f"If {email} has an account here, a link is on its way to "
                      "it. It works once, within 30 minutes.")
    # Looked up and sent after the answer: its time, or a relay's failure, would tell
    # whether the address has an account.
    response.background = BackgroundTask(_send_links, runtime, sender, email, purpose)
    return response


async def _send_links(runtime: Runtime, sender: OutboundMail, email: str,
                      purpose: LinkPurpose) -> None:
    async with runtime.db.transaction() as session:
        found = await web_accounts.accounts_for(session, email)
        messages = []
        for account in found:
            issued = await web_accounts.issue_link(session, account.user.portal_id, purpose,
                                                   user_id=account.user.id)
            name = await web_accounts.portal_name(session, account.user.portal_id)
            messages.append((account.user.email, web_accounts.link_message(
                kind=purpose, to=account.user.email, portal_name=name,
                url=issued.url(runtime.settings.base_url), sender=sender.sender)))
    for recipient, message in messages:
        try:
            await sender.send(message, recipient)
        except RelayFailed as exc:
            log.warning("a %s link to %s was not sent: %s", purpose.value, recipient,
                        exc.message)


@public
async def request_sign_in_link(request: Request) -> Response:
    fields = await form(request)
    return await _mail_links(request, _address(fields.get("email", "")), LinkPurpose.SIGN_IN)


@public
async def reset_page(request: Request) -> Response:
    return render(request, "reset.html")


@public
async def request_reset(request: Request) -> Response:
    fields = await form(request)
    return await _mail_links(request, _address(fields.get("email", "")), LinkPurpose.RESET)


def _address(text: str) -> str:
    text = text.strip()
    if not text or len(text) > 320:
        raise PageError(422, "No address", "Give the email address you sign in with.")
    return text


async def _link_context(session: AsyncSession, token: str) -> dict[str, object]:
    link = await web_accounts.pending_link(session, token)
    purpose = LinkPurpose(link.purpose)
    user = await session.get(User, link.user_id) if link.user_id is not None else None
    return {"purpose": purpose.value, "title": _LINK_TITLES[purpose],
            "email": user.email if user is not None else link.email,
            "portal": await web_accounts.portal_name(session, link.portal_id),
            "token": token}


@public
async def link_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    try:
        async with runtime_of(request).db.read() as session:
            context = await _link_context(session, token)
    except LinkInvalid as exc:
        raise PageError(410, "Link not valid", exc.message) from None
    return render(request, "link.html", error="", values=context)


@public
async def follow_link(request: Request) -> Response:
    fields = await form(request)
    token = fields.get("token", "")
    if wait := await web(request).sign_in_per_client.attempt(client_address(request),
                                                            runtime_of(request)):
        raise _wait(wait)
    runtime = runtime_of(request)
    try:
        async with runtime.db.transaction() as session:
            link = await web_accounts.pending_link(session, token)
            purpose = LinkPurpose(link.purpose)
            if purpose is LinkPurpose.SIGN_IN:
                await web_accounts.spend_link(session, token, purpose)
                assert link.user_id is not None
                account = await web_accounts.account(session, link.user_id)
            elif purpose is LinkPurpose.RESET:
                web_accounts.check_password_rules(fields.get("password", ""))
                await web_accounts.spend_link(session, token, purpose)
                assert link.user_id is not None
                account = await web_accounts.account(session, link.user_id)
                await web_accounts.set_password(session, account.login, fields["password"])
            else:
                account = await web_accounts.join(
                    session, token, name=fields.get("name", ""),
                    password=fields.get("password", ""), email=fields.get("email", ""))
    except LinkInvalid as exc:
        raise PageError(410, "Link not valid", exc.message) from None
    except InvalidInput as exc:
        async with runtime.db.read() as session:
            context = await _link_context(session, token)
        return render(request, "link.html", status=422, error=exc.message, values=context)
    await _begin(request, account)
    return redirect(request, "/setup")
