"""What every page shares: templates, security headers, the session and CSRF cookies,
form parsing, sign-in rate limits, and the two endpoint decorators (``public`` and
``signed_in``) that put them together.

- Session: the cookie ``il_session`` holds the session's token signed with the server's
  key (itsdangerous); HttpOnly, SameSite=Lax, Secure when the page is served over TLS.
  ``core.sessions`` decides whether it is still live (idle and absolute expiry).
- CSRF: the cookie ``il_csrf`` holds a random value; every form carries its HMAC under
  the server's key, and every POST must bring both (a cross-site page can neither read
  the cookie nor compute the HMAC). Cross-site POSTs (``Sec-Fetch-Site: cross-site``) are
  refused before that.
- Headers: a strict Content-Security-Policy (no inline script; the thread page alone
  allows inline styles, for the emails' own), ``frame-ancestors 'none'``,
  ``X-Content-Type-Options``, ``Referrer-Policy`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core import sessions, web_reads
from core.control_characters import NUL, NUL_MESSAGE, label_problem
from core.errors import CoreError, NotFound
from core.runtime import Runtime
from core.types import Role
from core.web_accounts import Account
from extension_api.throttle import RateLimiter

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "il_session"
CSRF_COOKIE = "il_csrf"
MAX_FORM = 64 * 1024

# Sign-in attempts: per address (guessing one account's password) and per client
# address (trying many accounts); links by mail per address (no mail bombing).
SIGN_IN_PER_ACCOUNT = "10 per 10 minutes"
SIGN_IN_PER_CLIENT = "100 per 10 minutes"  # an office behind one address signs in at 9
MAIL_PER_ADDRESS = "3 per 10 minutes"

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'{styles}; img-src 'self' "
        "data:{images}; connect-src 'self'; form-action 'self'{forms}; base-uri 'none'; "
        "frame-src 'self'; frame-ancestors 'none'")


def security_headers(*, inline_styles: bool = False, remote_images: bool = False,
                     form_target: str = "") -> dict[str, str]:
    """The headers of every page. ``inline_styles`` and ``remote_images`` loosen the CSP
    for the thread page (the email's own styles; its images once the user asks);
    ``form_target`` is an origin a form's answer may redirect to (the extension's, on
    the authorization page)."""
    csp = _CSP.format(styles=" 'unsafe-inline'" if inline_styles else "",
                      images=" https: http:" if remote_images else "",
                      forms=f" {form_target}" if form_target else "")
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin", "Cache-Control": "no-store"}


class WebState:
    """The pages' state in ``app.state.web``: signing keys and attempt budgets."""

    def __init__(self, secret: str) -> None:
        self._sessions = URLSafeSerializer(secret, salt="inboxlog.web-session")
        self._csrf_key = hashlib.sha256(b"inboxlog.csrf\0" + secret.encode()).digest()
        self.sign_in_per_account = RateLimiter(SIGN_IN_PER_ACCOUNT, name="sign-in-account")
        self.sign_in_per_client = RateLimiter(SIGN_IN_PER_CLIENT, name="sign-in-client")
        self.mail_per_address = RateLimiter(MAIL_PER_ADDRESS, name="mail-address")
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["when"] = _when

    def sign_session(self, token: str) -> str:
        return self._sessions.dumps(token)

    def session_token(self, cookie: str) -> str | None:
        try:
            token = self._sessions.loads(cookie)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def csrf_for(self, cookie: str) -> str:
        return hmac.new(self._csrf_key, cookie.encode(), "sha256").hexdigest()


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request."""

    account: Account
    session_id: int

    @property
    def user_id(self) -> int:
        return self.account.user.id

    @property
    def portal_id(self) -> int:
        return self.account.user.portal_id

    @property
    def is_admin(self) -> bool:
        return self.account.role is Role.ADMIN

    @property
    def caller(self) -> str:
        """The API's budget key of this user (``Principal.caller``): one budget."""
        return f"user:{self.user_id}"


class PageError(Exception):
    """Ends a page's work with an error page: ``status``, a title and a sentence."""

    def __init__(self, status: int, title: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message
        self.headers = dict(headers or {})


def web(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _csrf_cookie(request: Request) -> str:
    """This browser's CSRF cookie value, made (and set on the response) when missing."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if len(value) != 43:
        value = getattr(request.state, "new_csrf", "") or secrets.token_urlsafe(32)
        request.state.new_csrf = value
    return value


def render(request: Request, template: str, *, status: int = 200,
           headers: Mapping[str, str] | None = None, inline_styles: bool = False,
           remote_images: bool = False, form_target: str = "",
           values: Mapping[str, Any] | None = None, **context: Any) -> HTMLResponse:
    """A page from ``template`` with the security headers; the template gets ``viewer``
    (or None), ``csrf`` (the form token), ``live_after`` (where a signed-in page's live
    feed starts, else None), ``values`` and ``context``."""
    state = web(request)
    csrf = state.csrf_for(_csrf_cookie(request))
    viewer = getattr(request.state, "viewer", None)
    body = state.templates.get_template(template).render(
        viewer=viewer, csrf=csrf, path=request.url.path,
        live_after=getattr(request.state, "live_after", None), **(values or {}), **context)
    response = HTMLResponse(body, status, headers={
        **security_headers(inline_styles=inline_styles, remote_images=remote_images,
                           form_target=form_target),
        **(headers or {})})
    finish(request, response)
    return response


def redirect(request: Request, to: str) -> Response:
    """303 to a local path (never elsewhere), with the security headers."""
    if not to.startswith("/") or to.startswith("//") or "\\" in to:
        to = "/"
    response = RedirectResponse(to, 303, headers=security_headers())
    finish(request, response)
    return response


def finish(request: Request, response: Response) -> None:
    """Set the cookies this request made (a new CSRF value, a session started or ended)."""
    secure = is_tls(request)
    if new_csrf := getattr(request.state, "new_csrf", ""):
        response.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="lax",
                            secure=secure, path="/")
    started = getattr(request.state, "started_session", None)
    if started is not None:
        response.set_cookie(SESSION_COOKIE, web(request).sign_session(started),
                            httponly=True, samesite="lax", secure=secure, path="/",
                            max_age=int(sessions.ABSOLUTE.total_seconds()))
    if getattr(request.state, "ended_session", False):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=secure)


def start_session(request: Request, token: str) -> None:
    request.state.started_session = token


def end_session(request: Request) -> None:
    request.state.ended_session = True


async def form(request: Request) -> dict[str, str]:
    """The POSTed form (application/x-www-form-urlencoded), after the CSRF check; a
    field given twice keeps its last value, ``fields_of`` returns all of them."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise PageError(403, "Refused", "This form was sent from another site.")
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise PageError(413, "Too large", "This form is larger than any of ours.")
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    request.state.form_pairs = pairs
    fields = dict(pairs)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = web(request).csrf_for(cookie) if cookie else ""
    if not expected or not hmac.compare_digest(fields.get("csrf", ""), expected):
        raise PageError(403, "Form expired",
                        "This form is out of date (or was not sent by this site). Go "
                        "back, reload the page and send it again.")
    _refuse_nul(pairs)
    return fields


def _refuse_nul(pairs: Iterable[tuple[str, str]]) -> None:
    """400 naming the first form field or query parameter that holds a NUL (PostgreSQL's
    text columns refuse it); nothing typed is altered."""
    for name, value in pairs:
        if NUL in name or NUL in value:
            shown = name.replace(NUL, "\\u0000")[:40]
            raise PageError(400, "Not accepted", f"{shown}: {NUL_MESSAGE}.")


def label_field(name: str, value: str) -> str:
    """``value`` of the label-like field ``name`` (a pipeline, a stage, a tag) as typed;
    400 naming it when it holds a control character other than tab and line breaks."""
    if (problem := label_problem(name, value)) is not None:
        raise PageError(400, "Not accepted", f"{problem}.")
    return value


def fields_of(request: Request, name: str) -> list[str]:
    return [v for k, v in getattr(request.state, "form_pairs", []) if k == name]


async def current_viewer(request: Request) -> Viewer | None:
    """The request's signed-in user, from the session cookie; None when signed out."""
    cookie = request.cookies.get(SESSION_COOKIE)
    token = web(request).session_token(cookie) if cookie else None
    if token is None:
        return None
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        found = await sessions.resolve(session, token)
    if found is None:
        return None
    row, account = found
    if sessions.needs_touch(row):
        async with runtime.db.transaction() as session:
            await sessions.touch(session, row.id)
    return Viewer(account, row.id)


def error_page(request: Request, exc: PageError) -> Response:
    return render(request, "error.html", status=exc.status, headers=exc.headers,
                  title=exc.title, message=exc.message)


Page = Callable[[Request], Awaitable[Response]]
SignedInPage = Callable[[Request, Viewer], Awaitable[Response]]


def _guarded(request: Request, exc: Exception) -> Response:
    if isinstance(exc, PageError):
        return error_page(request, exc)
    if isinstance(exc, NotFound):
        return error_page(request, PageError(404, "Not found", exc.message))
    assert isinstance(exc, CoreError)
    return error_page(request, PageError(422, "Not done", exc.message))


def public(endpoint: Page) -> Page:
    """A page anyone may open (sign-in and its links); errors become error pages."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        request.state.viewer = await current_viewer(request)
        try:
            _refuse_nul(request.query_params.multi_items())
            return await endpoint(request)
        except (PageError, CoreError) as exc:
            return _guarded(request, exc)

    return wrapper


def signed_in(endpoint: SignedInPage) -> Page:
    """A page for signed-in users; anyone else goes to the sign-in page, and back here
    after signing in (GET) or to where they were (POST)."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        viewer = request.state.viewer = await current_viewer(request)
        if viewer is not None:  # where the page's live feed starts: what is older is shown
            async with runtime_of(request).db.read() as session:
                request.state.live_after = await web_reads.last_event_id(
                    session, viewer.portal_id, viewer.user_id)
        if viewer is None:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target = back if request.method == "GET" else "/"
            return redirect(request, "/sign-in?next=" + quote(target, safe=""))
        try:
            _refuse_nul(request.query_params.multi_items())
            return await endpoint(request, viewer)
        except (PageError, CoreError) as exc:
            return _guarded(request, exc)

    return wrapper


def require_admin(viewer: Viewer, action: str) -> None:
    if not viewer.is_admin:
        raise PageError(403, "For admins", f"{action} is for the portal's admins.")


def safe_next(value: str) -> str:
    """A post-sign-in destination: a local path only, else the start page."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"
