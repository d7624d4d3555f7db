"""The extension's sign-in: OAuth 2.0 authorization code with PKCE against inboxlog
(``core.extension_grants``). ``/oauth/authorize`` asks the signed-in user to allow the
extension to log and track for them; ``/oauth/token`` trades the code for a user API
token bound to that client (a code presented twice revokes it); ``/oauth/revoke``
(RFC 7009) lets the extension give it back.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core import extension_grants
from core.extension_grants import CodeReplayed, GrantError
from extension_api.pages._web import (
    MAX_FORM,
    PageError,
    Viewer,
    finish,
    form,
    public,
    render,
    runtime_of,
    security_headers,
    signed_in,
)

_FIELDS = ("response_type", "client_id", "redirect_uri", "code_challenge",
           "code_challenge_method", "state")


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _back(request: Request, grant: extension_grants.Request, **params: str) -> Response:
    """303 to the client's (checked) redirect URI with ``params`` and its state."""
    query = urlencode({**params, **({"state": grant.state} if grant.state else {})})
    separator = "&" if urlsplit(grant.redirect_uri).query else "?"
    response = RedirectResponse(grant.redirect_uri + separator + query, 303,
                                headers=security_headers())
    finish(request, response)
    return response


def _grant(values: dict[str, str]) -> extension_grants.Request:
    try:
        return extension_grants.check_request(**{f: values.get(f, "") for f in _FIELDS})
    except GrantError as exc:
        raise PageError(400, "This extension's request is not valid", exc.message) from None


@signed_in
async def authorize_page(request: Request, viewer: Viewer) -> Response:
    grant = _grant(dict(request.query_params))
    return render(request, "authorize.html", grant=grant, form_target=_origin(grant.redirect_uri),
                  redirect_host=urlsplit(grant.redirect_uri).netloc)


@signed_in
async def authorize(request: Request, viewer: Viewer) -> Response:
    fields = await form(request)
    grant = _grant(fields)
    if fields.get("decision") != "allow":
        return _back(request, grant, error="access_denied")
    secret = runtime_of(request).settings.secret_key
    return _back(request, grant,
                 code=extension_grants.issue_code(secret, viewer.account.user, grant))


def _oauth_error(exc: GrantError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "error_description": exc.message}, 400,
                        headers={"Cache-Control": "no-store"})


async def _fields(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        raise GrantError("invalid_request", "send the parameters as "
                         "application/x-www-form-urlencoded")
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise GrantError("invalid_request", "the request is too large")
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


@public
async def token(request: Request) -> Response:
    """RFC 6749 §4.1.3: the code, the redirect URI, the client and the PKCE verifier."""
    try:
        fields = await _fields(request)
        if fields.get("grant_type") != "authorization_code":
            raise GrantError("unsupported_grant_type", "grant_type is authorization_code")
        async with runtime_of(request).db.transaction() as session:
            _, secret = await extension_grants.redeem(
                session, runtime_of(request).settings.secret_key,
                code=fields.get("code", ""), client_id=fields.get("client_id", ""),
                redirect_uri=fields.get("redirect_uri", ""),
                verifier=fields.get("code_verifier", ""))
    except CodeReplayed as exc:
        async with runtime_of(request).db.transaction() as session:
            await extension_grants.revoke_replayed(session, fields["code"])
        return _oauth_error(exc)
    except GrantError as exc:
        return _oauth_error(exc)
    return JSONResponse({"access_token": secret, "token_type": "Bearer",
                         "scope": extension_grants.SCOPE},
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@public
async def revoke(request: Request) -> Response:
    """RFC 7009: 200 whether or not the token was valid."""
    try:
        fields = await _fields(request)
    except GrantError as exc:
        return _oauth_error(exc)
    async with runtime_of(request).db.transaction() as session:
        await extension_grants.revoke(session, fields.get("token", ""))
    return Response(status_code=200, headers={"Cache-Control": "no-store"})
