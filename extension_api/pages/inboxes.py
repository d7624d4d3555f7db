"""Connected inboxes: the user's mailboxes with their state, folders and last sync, a
connect form (servers detected from the address unless given), each failure's own
error and what to do, "sync now" (which also reconnects a disconnected inbox),
"disconnect" (as the API's: the grant revoked, the password or tokens forgotten, the
reason recorded), and "connect with Google / Microsoft" for the OAuth providers the
operator configured, which start the flow the API starts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core import inboxes
from core.inboxes import ConnectRequest, Endpoint, InboxConnector, InboxError
from core.oauth import OAuthConnector, OAuthError
from core.types import MailSecurity
from extension_api.pages import words
from extension_api.pages._web import (
    PageError,
    Viewer,
    form,
    redirect,
    render,
    runtime_of,
    signed_in,
)

SECURITIES = [s.value for s in MailSecurity]
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft", "oidc": "your mail provider"}


def _connector(request: Request) -> InboxConnector:
    connector: InboxConnector | None = getattr(request.app.state, "inboxes", None)
    if connector is None:
        raise PageError(503, "Not available", "Connected inboxes are not running on this "
                        "server.")
    return connector


def _oauth(request: Request) -> OAuthConnector | None:
    connector = getattr(request.app.state, "inboxes", None)
    return connector if callable(getattr(connector, "providers", None)) else None


async def _page(request: Request, viewer: Viewer, *, status: int = 200,
                error: words.Reason | None = None, code: str = "",
                values: dict[str, str] | None = None) -> Response:
    async with runtime_of(request).db.read() as session:
        found = list(await session.scalars(inboxes.select_inboxes(viewer.portal_id,
                                                                  viewer.user_id)))
    oauth = _oauth(request)
    providers = [(name, PROVIDER_NAMES.get(name, name))
                 for name in (oauth.providers() if oauth else [])]
    return render(request, "inboxes.html", status=status, inboxes=found, error=error,
                  providers=providers,
                  code=code, form_values=values or {"address": viewer.account.user.email},
                  securities=SECURITIES, reason=words.inbox_problem,
                  synced=request.query_params.get("synced", ""))


@signed_in
async def inboxes_page(request: Request, viewer: Viewer) -> Response:
    return await _page(request, viewer)


def _endpoint(fields: dict[str, str], kind: str) -> Endpoint | None:
    host = fields.get(f"{kind}_host", "").strip()
    if not host:
        return None
    port = fields.get(f"{kind}_port", "").strip()
    security = fields.get(f"{kind}_security", "")
    if not port.isdigit() or not 0 < int(port) < 65536 or security not in SECURITIES:
        raise PageError(422, "Not connected", f"The {kind.upper()} server needs a port "
                        "(1-65535) and a security of ssl, starttls or none.")
    return Endpoint(host, int(port), MailSecurity(security))


@signed_in
async def connect(request: Request, viewer: Viewer) -> Response:
    fields = await form(request)
    kept = {k: v for k, v in fields.items() if k not in ("csrf", "password")}
    address, password = fields.get("address", "").strip(), fields.get("password", "")
    if not address or not password or len(address) > 320 or len(password) > 1000:
        raise PageError(422, "Not connected", "Give the mailbox's address and password.")
    connect_request = ConnectRequest(
        address=address, password=password, username=fields.get("username", "").strip(),
        imap=_endpoint(fields, "imap"), smtp=_endpoint(fields, "smtp"))
    try:
        await _connector(request).connect(viewer.portal_id, viewer.user_id, connect_request)
    except InboxError as exc:
        return await _page(request, viewer, status=422, code=exc.code,
                           error=words.inbox_problem(exc.code, exc.message), values=kept)
    return redirect(request, "/inboxes")


@signed_in
async def sync(request: Request, viewer: Viewer) -> Response:
    await form(request)
    inbox_id = request.path_params["id"]
    async with runtime_of(request).db.read() as session:
        inbox = await inboxes.get_inbox(session, viewer.portal_id, inbox_id)
        if inbox.user_id != viewer.user_id:
            raise PageError(404, "Not found", f"no inbox {inbox_id}")
    try:
        await _connector(request).sync_now(viewer.portal_id, inbox_id)
    except InboxError as exc:
        return await _page(request, viewer, status=422, code=exc.code,
                           error=words.inbox_problem(exc.code, exc.message))
    return redirect(request, f"/inboxes?synced={inbox_id}")


async def _own_inbox(request: Request, viewer: Viewer, inbox_id: int) -> None:
    async with runtime_of(request).db.read() as session:
        inbox = await inboxes.get_inbox(session, viewer.portal_id, inbox_id)
        if inbox.user_id != viewer.user_id:
            raise PageError(404, "Not found", f"no inbox {inbox_id}")


@signed_in
async def disconnect(request: Request, viewer: Viewer) -> Response:
    """Stop syncing: the connector revokes an OAuth grant, forgets the credentials and
    records "disconnected by the user" (with its ``inbox_disconnected`` event)."""
    await form(request)
    inbox_id = request.path_params["id"]
    await _own_inbox(request, viewer, inbox_id)
    oauth = _oauth(request)
    if oauth is None:
        raise PageError(503, "Not available", "Connected inboxes are not running on this "
                        "server.")
    try:
        await oauth.disconnect(viewer.portal_id, inbox_id)
    except InboxError as exc:
        return await _page(request, viewer, status=422, code=exc.code,
                           error=words.inbox_problem(exc.code, exc.message))
    return redirect(request, f"/inboxes#inbox-{inbox_id}")


@signed_in
async def connect_with(request: Request, viewer: Viewer) -> Response:
    """Start the OAuth flow the API starts; the answer is a page whose one link leads
    to the provider (a form's answer may not redirect to another origin under the
    pages' ``form-action 'self'``)."""
    await form(request)
    provider = request.path_params["provider"]
    oauth = _oauth(request)
    if oauth is None or provider not in oauth.providers():
        raise PageError(404, "Not configured", "This server has no such sign-in "
                        "provider for inboxes: ask its operator.")
    try:
        url = await oauth.authorization_url(viewer.portal_id, viewer.user_id, provider,
                                            inboxes.DEFAULT_FIRST_SYNC_DAYS)
    except OAuthError as exc:
        return await _page(request, viewer, status=422, code=exc.code,
                           error=words.inbox_problem(exc.code, exc.message))
    return render(request, "connect_with.html", url=url,
                  provider=PROVIDER_NAMES.get(provider, provider))
